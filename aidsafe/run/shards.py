"""Shards: split one run's inputs across machines by a hash of each item's id, and merge the
shard run directories back into one.

`--shard K/N` (K from 0 to N-1, as `$SLURM_ARRAY_TASK_ID` with `--array=0-N` or a Ray task index)
keeps the items whose id hashes to K modulo N: the same split on every machine and every rerun,
whatever order the input is read in, so shards are disjoint and together cover the input. Each
shard writes its own run directory (its shard is recorded in `shard.json` there, and a rerun with
another shard is refused); `merge_runs` combines them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aidsafe.errors import AidsafeError
from aidsafe.run.journal import RunDirectory
from aidsafe.run.jsonl import write_atomic
from aidsafe.run.lock import run_lock

__all__ = ["MergeResult", "Shard", "check_shard", "merge_runs", "parse_shard", "record_shard"]

T = TypeVar("T")
SHARD_FILE = "shard.json"


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, key: str) -> bool:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    def select(self, items: Iterable[T], key: Any) -> Iterator[T]:
        return (item for item in items if self.holds(key(item)))


def parse_shard(text: str) -> Shard:
    index, slash, count = text.partition("/")
    try:
        shard = Shard(int(index), int(count))
    except ValueError:
        shard = None
    if not slash or shard is None or shard.count < 1 or not 0 <= shard.index < shard.count:
        raise AidsafeError(f"--shard {text!r}: expected K/N with 0 <= K < N, e.g. 0/4 for the first of four")
    return shard


def check_shard(run_dir: Path, shard: Shard | None) -> None:
    """Refuse to continue a run directory with another shard than the one it was started with."""
    stored = _stored_shard(run_dir)
    if stored != (str(shard) if shard else None) and (run_dir / "samples.jsonl").exists():
        was = f"shard {stored}" if stored else "no shard (all inputs)"
        now = f"--shard {shard}" if shard else "no --shard"
        raise AidsafeError(f"{run_dir}: was started with {was}; rerun it with the same, not {now}")


def record_shard(run_dir: Path, shard: Shard | None) -> None:
    if shard is not None and run_dir.is_dir():
        write_atomic(run_dir / SHARD_FILE, json.dumps({"shard": str(shard)}) + "\n")


def _stored_shard(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / SHARD_FILE).read_text(encoding="utf-8"))["shard"]
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None  # no record, or no directory we can read: the run directory's own check says which
    except (OSError, ValueError, KeyError, TypeError):
        raise AidsafeError(f"{run_dir / SHARD_FILE}: not a shard record as aidsafe writes it") from None


@dataclass
class MergeResult:
    output: Path
    samples: int = 0
    rejected: int = 0
    duplicates: int = 0  # ids found in more than one input (the first kept): 0 for true shards
    missing_shards: list[str] = field(default_factory=list)


def merge_runs(inputs: list[Path], output: Path) -> MergeResult:
    """Combine finished shard runs of one recipe into `output` (new or empty): every finished
    sample once, the rejections of ids that no shard finished, recipe and run.json of the shards.
    Holds the lock of every run it reads or writes (aidsafe.run.lock): no shard still running."""
    if not inputs:
        raise AidsafeError("merge: give the shard run directories to combine")
    with ExitStack() as locks:
        for path in dict.fromkeys(Path(p) for p in inputs):
            if Path(path).is_dir():
                locks.enter_context(run_lock(Path(path), what="merging"))
        locks.enter_context(run_lock(Path(output), what="merging into"))
        return _merge_runs(inputs, output)


def _merge_runs(inputs: list[Path], output: Path) -> MergeResult:
    dirs = [RunDirectory(Path(p)) for p in inputs]
    hashes = {d.path: _recipe_hash(d) for d in dirs}
    first = dirs[0]
    for d in dirs[1:]:
        if hashes[d.path] != hashes[first.path]:
            raise AidsafeError(
                f"{d.path}: recipe {hashes[d.path]} differs from {first.path}'s {hashes[first.path]}; "
                "only shards of one recipe merge"
            )
    out = RunDirectory(Path(output))
    if out.samples_path.exists() and out.samples_path.stat().st_size or Path(output) in {d.path for d in dirs}:
        raise AidsafeError(f"{output}: already holds samples; merge into a new directory")
    out.path.mkdir(parents=True, exist_ok=True)
    for name in ("recipe.yaml", "run.json"):
        write_atomic(out.path / name, (first.path / name).read_text(encoding="utf-8"))
    result = MergeResult(Path(output), missing_shards=_missing_shards(dirs))
    finished: set[str] = set()
    for d in dirs:
        for record in d.iter_samples():
            if record["id"] in finished:
                result.duplicates += 1
                continue
            finished.add(record["id"])
            out.append_sample(record, str(record.get("input_sha", "")))
            result.samples += 1
    seen = set(finished)
    out.rejected_path.touch()
    for d in dirs:
        for entry in d.iter_rejected():
            if entry["id"] not in seen:
                seen.add(entry["id"])
                out.append_rejected(entry, str(entry.get("input_sha", "")))
                result.rejected += 1
    return result


def _recipe_hash(run_dir: RunDirectory) -> str:
    try:
        return str(json.loads(run_dir.run_info_path.read_text(encoding="utf-8"))["recipe_hash"])
    except (OSError, ValueError, KeyError, TypeError):
        raise AidsafeError(f"{run_dir.path}: not a run directory (no readable run.json)") from None


def _missing_shards(dirs: list[RunDirectory]) -> list[str]:
    stored = [_stored_shard(d.path) for d in dirs]
    shards = [parse_shard(s) for s in stored if s]
    counts = {s.count for s in shards}
    if len(counts) != 1:
        return []
    count = counts.pop()
    have = {s.index for s in shards}
    return [f"{k}/{count}" for k in range(count) if k not in have]
