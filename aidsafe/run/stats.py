"""stats.json: one writer for every stage.

Every stage's stats.json says the same things, counted from its journals (all runs into the
directory, so a resumed run's stats describe the whole output):

    inputs             this run's items
    samples            finished records
    rejected, pending  rejected items; inputs neither finished nor rejected
    rejected_by_stage, rejected_by_reason
    last_run           the latest run's wall time and model calls: calls, failed calls, re-asks,
                       transport retries, prompt and completion tokens, latency (mean, p50, p95)
    spent              what every run into the directory cost, summed: runs, calls, prompt and
                       completion tokens, wall time; every attempt counts, rejected items' and
                       failed calls' included (records hold only what went into kept samples)

A rerun that made no call (nothing left to do) keeps the `last_run` before it: that is the run
that made the output. What only one stage counts (generation's rounds and thoughts, pairs' judge
scores, the guard stages' skipped source rows) the stage supplies as `StageCounts`: its input
counters go right after `inputs`, its own section right before `last_run`.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aidsafe.run.journal import RunDirectory
from aidsafe.run.jsonl import write_atomic
from aidsafe.teacher.types import TeacherStats

__all__ = ["StageCounts", "last_run", "read_stats", "spent", "stage_stats", "write_stats"]


@dataclass(frozen=True)
class StageCounts:
    """What a stage adds to stats.json, beside what every stage writes."""

    inputs: int
    before: Mapping[str, Any] = field(default_factory=dict)  # after `inputs`: e.g. repeated inputs skipped
    after: Mapping[str, Any] = field(default_factory=dict)  # before `last_run`: the stage's own counters
    # Finished records, when the stage counted them itself (generation counts incrementally);
    # None: the journal's index says.
    samples: int | None = None


def stage_stats(
    counts: StageCounts, samples: int, rejections: Iterable[Mapping[str, Any]], teacher: TeacherStats, wall_s: float
) -> dict[str, Any]:
    """stats.json's content from the finished count, the rejection lines and this run's calls."""
    by_stage: Counter = Counter()
    by_reason: Counter = Counter()
    for entry in rejections:
        by_stage[entry.get("stage", "?")] += 1
        by_reason[entry.get("reason", "?")] += 1
    rejected = sum(by_reason.values())
    return {
        "inputs": counts.inputs,
        **counts.before,
        "samples": samples,
        "rejected": rejected,
        "pending": max(counts.inputs - samples - rejected, 0),
        "rejected_by_stage": dict(by_stage),
        "rejected_by_reason": dict(by_reason),
        **counts.after,
        "last_run": last_run(teacher, wall_s),
    }


def write_stats(
    run_dir: RunDirectory,
    counts: Callable[[dict[str, Any] | None], StageCounts],
    teacher: TeacherStats,
    wall_s: float,
) -> dict[str, Any]:
    """Write stats.json for a run that ended (or stopped); `counts(previous)` is the stage's part,
    given the stats.json this replaces (None if there was none, or it was damaged)."""
    previous = read_stats(run_dir.stats_path)
    stage = counts(previous)
    samples = stage.samples if stage.samples is not None else len(run_dir.index().finished)
    stats = stage_stats(stage, samples, run_dir.iter_rejected(), teacher, wall_s)
    if teacher.calls == 0 and previous is not None and isinstance(previous.get("last_run"), dict):
        stats["last_run"] = previous["last_run"]
    stats["spent"] = spent(previous, teacher, wall_s)
    write_atomic(run_dir.stats_path, json.dumps(stats, indent=2) + "\n")
    return stats


_SPENT = ("calls", "prompt_tokens", "completion_tokens")


def spent(previous: dict[str, Any] | None, teacher: TeacherStats, wall_s: float) -> dict[str, Any]:
    """The cost of every run into the directory: the previous total plus this run's calls. A
    stats.json from before totals were kept holds only its last run: the total starts there."""
    before = (previous or {}).get("spent") or (previous or {}).get("last_run") or {}
    before = before if isinstance(before, dict) else {}
    runs = int(before.get("runs", 1 if before else 0) or 0) + (1 if teacher.calls else 0)
    total = {key: int(before.get(key, 0) or 0) for key in _SPENT}
    total = {"calls": total["calls"] + teacher.calls, "prompt_tokens": total["prompt_tokens"] + teacher.prompt_tokens,
             "completion_tokens": total["completion_tokens"] + teacher.completion_tokens}  # fmt: skip
    return {"runs": runs, **total, "wall_s": round(float(before.get("wall_s", 0.0) or 0.0) + wall_s, 3)}


def read_stats(path: Path) -> dict[str, Any] | None:
    """The stats.json at `path`, or None when there is none or it is damaged (then recounted)."""
    try:
        stats = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return stats if isinstance(stats, dict) else None


def last_run(teacher: TeacherStats, wall_s: float) -> dict[str, Any]:
    """One run's wall time and model calls (every call, failed or not, costs tokens and time)."""
    latencies = sorted(teacher.latencies_s)
    return {
        "wall_s": round(wall_s, 3),
        "calls": teacher.calls,
        "failed_calls": teacher.failed_calls,
        "parse_retries": teacher.parse_retries,
        "transport_retries": teacher.transport_retries,
        "prompt_tokens": teacher.prompt_tokens,
        "completion_tokens": teacher.completion_tokens,
        "latency_s": {
            "mean": round(statistics.fmean(latencies), 4) if latencies else 0.0,
            "p50": round(latencies[len(latencies) // 2], 4) if latencies else 0.0,
            "p95": round(latencies[int(len(latencies) * 0.95)], 4) if latencies else 0.0,
        },
    }
