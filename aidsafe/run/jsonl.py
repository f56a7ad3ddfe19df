"""JSON Lines files: streaming reads with line-numbered errors, and append-only journals.

Journals (samples.jsonl, rejected.jsonl, prediction files) are appended one whole line per
`os.write` on an O_APPEND descriptor, so a killed writer leaves at most one partial last line.
Readers either skip that line (someone else's journal) or cut it off before appending again.
Nothing here holds a whole file in memory: run directories reach millions of lines, and a line
is at most `MAX_LINE_BYTES` (one longer is refused in one line, not read until memory runs out).

A run directory may come from elsewhere (a tarball, a CI artifact) with links planted in it.
What aidsafe writes there never goes through a link: journals are opened with O_NOFOLLOW, whole
files are written to a fresh temporary file (O_CREAT|O_EXCL, `tempfile.mkstemp` in the same
folder) and renamed over the target, and a target that is a link is refused in one line.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from aidsafe.errors import AidsafeError

__all__ = [
    "MAX_LINE_BYTES",
    "atomic_file",
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
# A record (a sample with its whole deliberation, a prediction with k outputs) is kilobytes; a
# line past this is not one, and reading it whole would take the memory it holds.
MAX_LINE_BYTES = 64 << 20


class LineTooLong(AidsafeError):
    """A line past `MAX_LINE_BYTES`; `line` is its number."""

    def __init__(self, path: Any, line: int) -> None:
        super().__init__(
            f"{path}:{line}: a line longer than {MAX_LINE_BYTES >> 20} MB; expected one JSON object per line"
        )
        self.line = line


def line_spans(
    handle: IO[bytes], *, start_line: int = 1, path: Any = None
) -> Iterator[tuple[int, bytearray, int, int]]:
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
            if filled == len(buf):  # one line longer than the buffer: grow it, up to the cap
                if filled >= MAX_LINE_BYTES:
                    raise LineTooLong(path or getattr(handle, "name", "file"), number)
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
    except RecursionError:
        raise AidsafeError(f"{path}:{number}: nested too deeply; expected one JSON object per line") from None
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
    from aidsafe.config.yamlio import regular_file  # one check of "a readable file" for every reader

    regular_file(path, "a JSON Lines file")
    with path.open("rb") as handle:
        number = 0
        for number, buf, start, end in line_spans(handle, path=path):
            line = buf[start:end]
            if line.strip():
                yield number, parse_line(path, number, line)
        tail = b"" if skip_partial_tail else _unterminated_tail(handle)
    if tail.strip():
        yield number + 1, parse_line(path, number + 1, tail)


def read_jsonl(path: Path, *, skip_partial_tail: bool = False) -> list[tuple[int, dict[str, Any]]]:
    """`iter_jsonl` as a list, for files that are small by nature (prompts, benchmarks)."""
    return list(iter_jsonl(path, skip_partial_tail=skip_partial_tail))


def _unterminated_tail(handle: IO[bytes]) -> bytes:
    """The bytes after the last newline, found by reading backwards from the end."""
    return last_line(handle, handle.seek(0, os.SEEK_END))


def _line_start(handle: IO[bytes], end: int) -> int:
    """Where the line ending at byte `end` starts: one backward pass of 64 KB blocks, keeping none."""
    pos = end
    while pos > 0:
        step = min(1 << 16, pos)
        pos -= step
        handle.seek(pos)
        cut = handle.read(step).rfind(b"\n")
        if cut >= 0:
            return pos + cut + 1
        if end - pos > MAX_LINE_BYTES:
            raise LineTooLong(getattr(handle, "name", "file"), "end")
    return 0


def last_line(handle: IO[bytes], end: int) -> bytes:
    """The line that ends at byte `end` (a newline), found by reading backwards, then read once
    (prepending block by block was quadratic: an 80 MB unterminated line took over 20 s)."""
    start = _line_start(handle, end)
    handle.seek(start)
    return handle.read(end - start)


def complete_size(handle: IO[bytes]) -> int:
    """Bytes up to and including the last newline: the part of a journal no kill can change.
    Past a line cap the tail is still cut: its length is found without reading it."""
    size = handle.seek(0, os.SEEK_END)
    if not size:
        return 0
    try:
        return _line_start(handle, size)
    except LineTooLong:
        return _last_newline(handle, size)


def _last_newline(handle: IO[bytes], end: int) -> int:
    pos = end
    while pos > 0:
        step = min(_CHUNK, pos)
        pos -= step
        handle.seek(pos)
        cut = handle.read(step).rfind(b"\n")
        if cut >= 0:
            return pos + cut + 1
    return 0


def cut_partial_tail(path: Path) -> None:
    """Remove an unterminated last line left by a killed writer, before appending again.

    Reads backwards from the end only as far as the last newline, never the whole file.
    """
    if not path.exists():
        return
    with _open_own(path, os.O_RDWR) as handle:
        size = handle.seek(0, os.SEEK_END)
        keep = complete_size(handle)
        if keep < size:
            handle.truncate(keep)


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
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        os.write(fd, line)
    except OSError as exc:
        raise _write_error(path, exc) from None
    finally:
        os.close(fd)


@contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """A binary handle whose content replaces `path` when the block ends without an error (a reader
    never sees half a file; on an error `path` is untouched and the temporary file is gone). The
    temporary file is new (O_EXCL) and the rename replaces a directory entry, so neither follows a
    link; a `path` that is a link is refused, since the link is not aidsafe's to replace."""
    if path.is_symlink():
        raise AidsafeError(f"{path}: is a symbolic link; aidsafe writes only its own files there: remove the link")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(tmp, path)
    except OSError as exc:
        raise _write_error(path, exc) from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def write_atomic(path: Path, content: str | bytes) -> None:
    """Replace `path` with `content` (text as UTF-8) so a reader never sees half a file."""
    with atomic_file(path) as handle:
        handle.write(content.encode("utf-8") if isinstance(content, str) else content)


@contextmanager
def _open_own(path: Path, flags: int) -> Iterator[IO[bytes]]:
    """A file aidsafe owns, opened without following a link (O_NOFOLLOW)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW)
    except OSError as exc:
        raise _write_error(path, exc) from None
    with os.fdopen(fd, "r+b" if flags & os.O_RDWR else "rb") as handle:
        yield handle


def _write_error(path: Path, exc: OSError) -> AidsafeError:
    """One line for a failed write: a link where a file should be, a full disk, or what the OS said."""
    if exc.errno == errno.ELOOP:
        return AidsafeError(f"{path}: is a symbolic link; aidsafe writes only its own files there: remove the link")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return AidsafeError(f"disk full writing {path}; free space and rerun to resume")
    return AidsafeError(f"{path}: cannot be written ({exc.strerror or exc})")
