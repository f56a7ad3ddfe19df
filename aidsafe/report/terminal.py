"""`aidsafe show`: the sample browser's content in the terminal (rich), for a quick look over SSH.

Sample text goes into rich as Text objects, never as markup, so `[red]` or `[/]` in a prompt is
printed as written, and with its control characters shown escaped (aidsafe.terminal), so an
escape sequence in a prompt or a reply is read, not run by the terminal.
"""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from aidsafe.report.model import SampleView
from aidsafe.report.run import RunView
from aidsafe.terminal import fit_table, printable

__all__ = ["print_sample", "print_table"]


def _section(title: str, rows: list) -> Panel:
    body = []
    for row in rows:
        line = Text()
        if row.label:
            line.append(printable(row.label) + "  ", style="bold cyan")
        line.append(printable(row.text))
        for tag in row.tags:
            line.append("  [" + printable(tag) + "]", style="magenta")
        body.append(line)
    return Panel(Group(*body) if body else Text("(none)", style="dim"), title=Text(printable(f"{title} ({len(rows)})")),
                 title_align="left")  # fmt: skip


def print_sample(console: Console, sample: SampleView) -> None:
    head = Text()
    head.append(f"id {printable(sample.id)}", style="bold")
    for name, values in sample.facets.items():
        if values:
            head.append(printable(f"   {name}: " + ", ".join(values)), style="dim")
    console.print(head)
    for section in sample.sections:
        console.print(_section(section.title, section.rows))


def print_table(console: Console, view: RunView, samples: list[SampleView], total: int) -> None:
    sizes = list(dict.fromkeys(k for s in samples for k in s.sizes))
    table = Table(title=Text(printable(f"{view.path} ({view.kind}): first {len(samples)} of {total} samples")))
    table.add_column("id", no_wrap=True)
    table.add_column("prompt", overflow="fold", ratio=1, min_width=24)
    table.add_column("stop reason", no_wrap=True)
    for name in sizes:
        table.add_column(name, justify="right")
    for s in samples:
        stop = ", ".join(s.facets.get("stop reason") or s.facets.get("label") or [])
        table.add_row(
            Text(printable(s.id)),
            Text(printable(s.title)),
            Text(printable(stop)),
            *(str(s.sizes.get(n, "")) for n in sizes),
        )
    console.print(fit_table(table, console.width))
