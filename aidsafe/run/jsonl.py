"""JSON Lines files: streaming reads with line-numbered errors, and append-only journals.

Journals (samples.jsonl, rejected.jsonl, prediction files) are appended one whole line per
`os.write` on an O_APPEND descriptor, so a killed writer leaves at most one partial last line.
Readers either skip that line (someone else's journal) or cut it off before appending again.
Nothing here holds a whole file in memory: run directories reach millions of lines.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from aidsafe.errors import AidsafeError

__all__ = [
    "read_jsonl",
    "iter_jsonl",
    "line_spans",
    "parse_line",
    "cut_partial_tail",
    "complete_size",
    "last_line",
    "encode_line",
    "append_jsonl",
    "write_atomic",
]

# Big reads: the journal scan looks at the first bytes of each line, so its cost is reading.
_CHUNK = 1 << 20


def line_spans(handle: IO[bytes], *, start_line: int = 1) -> Iterator[tuple[int, bytearray, int, int]]:
    """(line number, buffer, start, end) of each complete line; `buffer[start:end]` is the line.

    The buffer is reused: a span is valid only until the next one is taken. A caller that only
    matches a line's prefix therefore copies nothing, and reading into one buffer spares a fresh
    allocation per chunk (on these VMs the page faults cost more than the scan). An
    unterminated last line (a write cut short) is not yielded.
    """
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    filled = 0
    number = start_line
    try:
        while True:
            if filled == len(buf):  # one line longer than the buffer: grow it
                view.release()
                buf.extend(bytes(len(buf)))
                view = memoryview(buf)
            got = handle.readinto(view[filled:])
            if not got:
                return
            filled += got
            pos = 0
            while (end := buf.find(b"\n", pos, filled)) >= 0:
                yield number, buf, pos, end
                number += 1
                pos = end + 1
            if pos:
                buf[: filled - pos] = bytes(view[pos:filled])  # a copy: the ranges may overlap
                filled -= pos
    finally:
        view.release()


def parse_line(path: Path, number: int | str, line: bytes) -> dict[str, Any]:
    """One JSON object from one line; anything else raises naming `path:line`."""
    try:
        row = json.loads(line.decode("utf-8"))  # decoding first spares json's encoding detection
    except UnicodeDecodeError:
        from aidsafe.config.yamlio import utf8_error  # names the byte's offset in the whole file

        raise utf8_error(path) from None
    except json.JSONDecodeError as exc:
        raise AidsafeError(f"{path}:{number}: not valid JSON ({exc.msg}); expected one JSON object per line") from None
    if not isinstance(row, dict):
        raise AidsafeError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
    return row


def iter_jsonl(path: Path, *, skip_partial_tail: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line, streaming; a bad line raises naming `path:line`.

    With `skip_partial_tail`, an unterminated last line (a write cut short by a kill) is
    ignored; without it, that line is parsed like any other.
    """
    if not path.is_file():
        raise AidsafeError(f"{path}: file not found")
    with path.open("rb") as handle:
        number = 0
        for number, buf, start, end in line_spans(handle):
            line = buf[start:end]
            if line.strip():
                yield number, parse_line(path, number, line)
        tail = _unterminated_tail(handle)
    if tail and tail.strip() and not skip_partial_tail:
        yield number + 1, parse_line(path, number + 1, tail)


def read_jsonl(path: Path, *, skip_partial_tail: bool = False) -> list[tuple[int, dict[str, Any]]]:
    """`iter_jsonl` as a list, for files that are small by nature (prompts, benchmarks)."""
    return list(iter_jsonl(path, skip_partial_tail=skip_partial_tail))


def _unterminated_tail(handle: IO[bytes]) -> bytes:
    """The bytes after the last newline, found by reading backwards from the end."""
    return last_line(handle, handle.seek(0, os.SEEK_END))


def last_line(handle: IO[bytes], end: int) -> bytes:
    """The line that ends at byte `end` (a newline), found by reading backwards."""
    pos = end
    line = b""
    while pos > 0:
        step = min(1 << 16, pos)
        pos -= step
        handle.seek(pos)
        block = handle.read(step)
        cut = block.rfind(b"\n")
        if cut >= 0:
            return block[cut + 1 :] + line
        line = block + line
    return line


def complete_size(handle: IO[bytes]) -> int:
    """Bytes up to and including the last newline: the part of a journal no kill can change."""
    size = handle.seek(0, os.SEEK_END)
    return size - len(_unterminated_tail(handle)) if size else 0


def cut_partial_tail(path: Path) -> None:
    """Remove an unterminated last line left by a killed writer, before appending again.

    Reads backwards from the end only as far as the last newline, never the whole file.
    """
    if not path.exists():
        return
    with path.open("r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        tail = _unterminated_tail(handle) if size else b""
        if tail:
            handle.truncate(size - len(tail))


def encode_line(record: dict[str, Any]) -> bytes:
    """One record as one UTF-8 JSON line; a lone surrogate (valid in JSON input) stays escaped.
    NaN and Infinity are not JSON (and break every reader after us): refused, never written."""
    try:
        return (json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(record, allow_nan=False) + "\n").encode("ascii")


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one record as one line with a single write, so a kill cannot interleave lines."""
    line = encode_line(record)
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
