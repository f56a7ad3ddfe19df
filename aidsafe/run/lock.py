"""One writer per run directory: an advisory lock (`fcntl.flock`) on `RUN/.aidsafe.lock`.

Two `aidsafe generate` on one `--output` used to both run: every sample written twice, the
teacher paid twice. Every command that writes a run (generate, pairs, the guard stages, eval,
merge) or reads it whole (export) holds the lock for as long as it uses the run; a second one
refuses at once, in one line naming the holder's pid. The kernel drops a lock when its holder
exits, however it exits (kill -9 included), so a stale lock file never blocks anyone: the file
stays, and only a held lock counts.

The lock is taken before the pre-flight. A directory that the lock had to create is removed
again if nothing else was written into it, so a run that stops before its first write (a failed
pre-flight) leaves no trace.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aidsafe.errors import AidsafeError

__all__ = ["LOCK_FILE", "run_lock"]

LOCK_FILE = ".aidsafe.lock"


@contextmanager
def run_lock(directory: Path, *, what: str = "writing", reader: bool = False, name: str = LOCK_FILE) -> Iterator[None]:
    """Hold the lock of the run in `directory` (created if missing) for the block. A `reader`
    (export) of a run it cannot write to (a read-only mount) reads it unlocked: no writer can
    be writing there either. `name`: the lock file (a single output file's own, beside it)."""
    directory = Path(directory)
    created = not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AidsafeError(f"{directory / name}: is a symbolic link; remove it") from None
        if reader and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            yield
            return
        raise AidsafeError(f"{directory}: cannot be used as a run directory ({exc.strerror or exc})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").split()
            who = f"pid {holder[0]}" if holder and holder[0].isdigit() else "another process"
            activity = holder[1] if len(holder) > 1 else "using"
            raise AidsafeError(
                f"{directory}: another aidsafe ({who}) is {activity} this run; wait for it to finish (or stop it), "
                "then rerun"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {what}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
        if created:
            _remove_if_untouched(directory, name)


def _remove_if_untouched(directory: Path, name: str) -> None:
    try:
        if [entry.name for entry in os.scandir(directory)] == [name]:
            (directory / name).unlink()
            directory.rmdir()
    except OSError:
        pass  # another process made it its own meanwhile: leave it
