"""`aidsafe show`: the sample browser's content in the terminal (rich), for a quick look over SSH.

Sample text goes into rich as Text objects, never as markup, so `[red]` or `[/]` in a prompt is
printed as written.
"""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from aidsafe.report.model import SampleView
from aidsafe.report.run import RunView

__all__ = ["print_sample", "print_table"]


def _section(title: str, rows: list) -> Panel:
    body = []
    for row in rows:
        line = Text()
        if row.label:
            line.append(row.label + "  ", style="bold cyan")
        line.append(row.text)
        for tag in row.tags:
            line.append("  [" + tag + "]", style="magenta")
        body.append(line)
    return Panel(Group(*body) if body else Text("(none)", style="dim"), title=Text(f"{title} ({len(rows)})"),
                 title_align="left")  # fmt: skip


def print_sample(console: Console, sample: SampleView) -> None:
    head = Text()
    head.append(f"id {sample.id}", style="bold")
    for name, values in sample.facets.items():
        if values:
            head.append(f"   {name}: " + ", ".join(values), style="dim")
    console.print(head)
    for section in sample.sections:
        console.print(_section(section.title, section.rows))


def print_table(console: Console, view: RunView, samples: list[SampleView], total: int) -> None:
    sizes = list(dict.fromkeys(k for s in samples for k in s.sizes))
    table = Table(title=Text(f"{view.path} ({view.kind}): first {len(samples)} of {total} samples"))
    table.add_column("id", no_wrap=True)
    table.add_column("prompt", overflow="fold", ratio=1, min_width=24)
    table.add_column("stop reason", no_wrap=True)
    for name in sizes:
        table.add_column(name, justify="right")
    for s in samples:
        stop = ", ".join(s.facets.get("stop reason") or s.facets.get("label") or [])
        table.add_row(Text(s.id), Text(s.title), Text(stop), *(str(s.sizes.get(n, "")) for n in sizes))
    console.print(table)
