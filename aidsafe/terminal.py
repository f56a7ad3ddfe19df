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

__all__ = ["printable", "say"]

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
