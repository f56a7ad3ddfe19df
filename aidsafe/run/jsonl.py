"""JSON Lines files: reading with line-numbered errors, and append-only journals.

Journals (samples.jsonl, rejected.jsonl, prediction files) are appended one whole line per
`os.write` on an O_APPEND descriptor, so a killed writer leaves at most one partial last line.
Readers either skip that line (someone else's journal) or cut it off before appending again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aidsafe.errors import AidsafeError

__all__ = ["read_jsonl", "cut_partial_tail", "append_jsonl", "write_atomic"]


def read_jsonl(path: Path, *, skip_partial_tail: bool = False) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a bad line raises naming `path:line`.

    With `skip_partial_tail`, an unterminated last line that is not valid JSON (a write cut
    short by a kill) is ignored instead of raising.
    """
    if not path.is_file():
        raise AidsafeError(f"{path}: file not found")
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            if skip_partial_tail and number == len(lines) and not text.endswith("\n"):
                break
            raise AidsafeError(
                f"{path}:{number}: not valid JSON ({exc.msg}); expected one JSON object per line"
            ) from None
        if not isinstance(row, dict):
            raise AidsafeError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        rows.append((number, row))
    return rows


def cut_partial_tail(path: Path) -> None:
    """Remove an unterminated last line left by a killed writer, before appending again."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one record as one line with a single write, so a kill cannot interleave lines."""
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
