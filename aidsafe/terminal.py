"""Text from data (prompts, ids, teacher replies, server messages) made safe for a terminal.

A prompt or a reply may hold ESC and C1 control sequences: clear the screen, retitle the window,
plant an OSC 8 link or write the clipboard (OSC 52). Written raw to a terminal they act; shown
here they are read. Every message that quotes data, and `aidsafe show`, passes it through
`printable`. Rich markup is a second hazard (`[/INST]` in a Llama-2 template crashes rich's
markup parser, `[bold]` silently vanishes): quoted data goes to rich as `Text`, never as markup.
"""

from __future__ import annotations

import re
import sys
from typing import Any

__all__ = ["fit_table", "printable", "say"]

# C0 controls except tab and newline, DEL, the C1 block, and the bidi overrides and isolates that
# can make shown text read in another order than it is.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with every control character shown as an escape (`\\x1b`, `\\u202e`), nothing removed."""
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def say(text: str) -> None:
    """One line of a command's result or warning on stderr: plain text, never rich markup (a path
    or an id holding `[/x]` is printed as written), control characters shown escaped."""
    sys.stderr.write(printable(text) + "\n")
    sys.stderr.flush()


def fit_table(table: Any, width: int) -> Any:
    """`table` (a rich Table) made to fit `width` columns, never cutting a value or dropping a column.

    A value stays whole on its line, except in the columns its builder marked `overflow="fold"`
    (prose: a prompt, a label), which wrap. When the columns cannot all fit so (rich would squeeze
    ids and numbers into fragments, or drop the last columns), each row is stacked instead: its
    values one per line, named by their column, rows apart by a blank line.
    """
    from rich.console import Console, Group
    from rich.table import Table
    from rich.text import Text

    for column in table.columns:
        column.no_wrap = column.no_wrap or column.overflow != "fold"
    if _least_width(table, Console(width=width)) <= width:
        return table
    parts: list[Any] = [Text(str(table.title), style="bold")] if table.title else []
    cells = [list(column.cells) for column in table.columns]
    for index, row in enumerate(table.rows):
        stacked = Table.grid(padding=(0, 1))
        stacked.add_column(style="dim", no_wrap=True)
        stacked.add_column(overflow="fold")
        for column, values in zip(table.columns, cells, strict=True):
            if str(values[index]):  # an empty cell says nothing
                stacked.add_row(str(column.header), values[index], style=row.style)
        parts.extend([Text(""), stacked] if parts else [stacked])
    return Group(*parts)


def _least_width(table: Any, console: Any) -> int:
    """The narrowest `table` can be drawn with its no_wrap columns' values whole on one line."""
    from rich.measure import Measurement

    total = 0
    for column in table.columns:
        header = Measurement.get(console, console.options, column.header).minimum
        values = [Measurement.get(console, console.options, cell) for cell in column.cells]
        need = max([header, column.min_width or 0, *(m.maximum if column.no_wrap else m.minimum for m in values)])
        total += need + table.padding[1] + table.padding[3]
    if table.box:
        total += len(table.columns) - 1 + (2 if table.show_edge else 0)
    return total
