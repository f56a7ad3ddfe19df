"""Build an export beside its folder and move it into place whole, so a failed export leaves nothing.

`aidsafe export -o DIR` writes into a new sibling, `.DIR.partial-<random>` (the same parent, so
the same file system, where a rename is atomic), and renames it to DIR when every file is written.
An export that fails on the way (an error, a full disk, Ctrl-C) removes its sibling and leaves
DIR as it was: no `filtered.jsonl`, no empty config folders that the next attempt would refuse
as a folder that is not an export.

A re-export over an existing export starts its sibling with hard links to whatever of the old
folder it does not rewrite (the configs it keeps, a user's notes), so nothing is copied and the
old folder stays whole until the swap: the old folder is renamed into a second sibling, the new
one renamed to DIR (on a failure here the old one is renamed back), and the old one removed. A
kill -9 between those two renames (microseconds) leaves no DIR, only siblings; the next export
removes them and writes DIR afresh.

Each sibling holds the run lock of aidsafe.run.lock (`.aidsafe.lock` inside it) while it is in
use. A sibling whose lock nobody holds belongs to an export that was killed; the next export into
DIR removes it, once it is a minute old (a sibling just made may not be locked yet).
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from aidsafe.errors import AidsafeError
from aidsafe.run.lock import LOCK_FILE, run_lock

__all__ = ["PARTIAL", "staged"]

PARTIAL = ".partial-"  # in the name of a sibling: `.DIR.partial-<random>`
_ABANDONED_AFTER_S = 60.0


@contextmanager
def staged(target: Path, rewritten: Collection[str]) -> Iterator[Path]:
    """A new folder to build `target` in, holding (as hard links) what of an existing `target`
    is not in `rewritten`. When the block ends normally it replaces `target`; when it raises, it
    is removed, and so are the parent folders it had to make, and `target` is as it was."""
    target = Path(target).resolve()  # a link to an export: the export is rebuilt where it lies
    made = [folder for folder in (target.parent, *target.parent.parents) if not folder.exists()]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(target)
        with _sibling(target) as work:
            if target.is_dir():
                _carry_over(target, work, {*rewritten, LOCK_FILE})
            yield work
            _swap(work, target)
            (target / LOCK_FILE).unlink(missing_ok=True)  # the sibling's lock, renamed with it
        made = []
    except OSError as exc:
        raise AidsafeError(
            f"{exc.filename or target}: cannot build the export ({exc.strerror or exc}); {target} is unchanged"
        ) from None
    finally:
        for folder in made:  # innermost first; one holding anything else stays
            try:
                folder.rmdir()
            except OSError:
                break


@contextmanager
def _sibling(target: Path) -> Iterator[Path]:
    """A new, locked `.NAME.partial-<random>` beside `target`, removed on leaving unless it was
    renamed away (into place) meanwhile."""
    path = target.parent / f".{target.name}{PARTIAL}{secrets.token_hex(6)}"
    path.mkdir()
    try:
        with run_lock(path, what="exporting"):
            yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _carry_over(old: Path, new: Path, rewritten: Collection[str]) -> None:
    for entry in os.scandir(old):
        if entry.name in rewritten:
            continue
        source, copy = Path(entry.path), new / entry.name
        if entry.is_symlink():  # a link stays a link, never followed
            copy.symlink_to(os.readlink(source))
        elif entry.is_dir():
            shutil.copytree(source, copy, symlinks=True, copy_function=_link)
        else:
            _link(source, copy)


def _link(source: str | Path, copy: str | Path) -> None:
    try:
        os.link(source, copy, follow_symlinks=False)
    except OSError:  # a file system without hard links
        shutil.copy2(source, copy, follow_symlinks=False)


def _swap(work: Path, target: Path) -> None:
    if not target.exists():
        os.rename(work, target)
        return
    with _sibling(target) as trash:  # the old export goes here, and is removed with it
        aside = trash / "replaced"
        os.rename(target, aside)
        try:
            os.rename(work, target)
        except BaseException:
            os.rename(aside, target)
            raise


def _remove_abandoned(target: Path) -> None:
    """Remove the siblings of exports into `target` that were killed (see the module's doc)."""
    prefix = f".{target.name}{PARTIAL}"
    for entry in os.scandir(target.parent):
        if entry.name.startswith(prefix) and entry.is_dir(follow_symlinks=False) and _abandoned(Path(entry.path)):
            shutil.rmtree(entry.path, ignore_errors=True)


def _abandoned(path: Path) -> bool:
    try:
        if time.time() - path.stat().st_mtime < _ABANDONED_AFTER_S:
            return False
        fd = os.open(path / LOCK_FILE, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return True  # killed before it took its lock, a minute ago or more
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # an export at work
    finally:
        os.close(fd)
    return True
