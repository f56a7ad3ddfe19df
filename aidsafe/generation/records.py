"""Sample records (one line of samples.jsonl) and the run statistics built from the journal."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aidsafe.agents.policies import PolicySet
from aidsafe.run.journal import RunDirectory
from aidsafe.run.jsonl import write_atomic
from aidsafe.teacher.types import TeacherStats

__all__ = ["sample_record", "corpus_stats", "write_corpus_stats", "CorpusCounters"]

_THOUGHT_KEYS = ("id", "text", "policies")


def sample_record(state: dict[str, Any], recipe_hash: str, policies: PolicySet) -> dict[str, Any]:
    """The published record of a finished sample: refined CoT, response, log and provenance."""
    calls = state.get("calls", [])
    return {
        "id": state["id"],
        "prompt": state["prompt"],
        "intents": state.get("intents", []),
        "thoughts": [{key: t[key] for key in _THOUGHT_KEYS} for t in state.get("thoughts", [])],
        "response": state.get("response", ""),
        "deliberation": state.get("deliberation", []),
        "removed": state.get("removed", []),
        "metadata": {
            "recipe_hash": recipe_hash,
            "policy_set": {"id": policies.id, "version": policies.version},
            "rounds_used": state.get("rounds", 0),
            # The refiner sets it when there was no deliberation; a graph without one cannot.
            "stop_reason": state.get("stop_reason") or "no_deliberation",
            "calls": calls,
            "prompt_tokens": sum(c["prompt_tokens"] for c in calls),
            "completion_tokens": sum(c["completion_tokens"] for c in calls),
            "latency_s": round(sum(c["latency_s"] for c in calls), 3),
        },
    }


@dataclass
class CorpusCounters:
    """What stats.json says about the corpus, as counters that grow one record at a time."""

    samples: int = 0
    rejected: int = 0
    rejected_by_stage: Counter = field(default_factory=Counter)
    rejected_by_reason: Counter = field(default_factory=Counter)
    rounds: Counter = field(default_factory=Counter)
    stop_reasons: Counter = field(default_factory=Counter)
    thoughts_kept: int = 0
    thoughts_removed: Counter = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @classmethod
    def from_stats(cls, stats: dict[str, Any]) -> CorpusCounters:
        """The sample counters back from a stats.json this module wrote (rejections are recounted)."""
        return cls(
            samples=int(stats["samples"]),
            rounds=Counter({int(k): int(v) for k, v in stats["rounds_used"]["histogram"].items()}),
            stop_reasons=Counter({str(k): int(v) for k, v in stats["stop_reasons"].items()}),
            thoughts_kept=int(stats["thoughts_kept"]),
            thoughts_removed=Counter({str(k): int(v) for k, v in stats["thoughts_removed_by_reason"].items()}),
            prompt_tokens=int(stats["tokens"]["prompt"]),
            completion_tokens=int(stats["tokens"]["completion"]),
        )

    def add_sample(self, record: dict[str, Any]) -> None:
        metadata = record["metadata"]
        self.samples += 1
        self.rounds[metadata["rounds_used"]] += 1
        self.stop_reasons[metadata["stop_reason"]] += 1
        self.thoughts_kept += len(record["thoughts"])
        self.thoughts_removed.update(r["reason"] for r in record["removed"])
        self.prompt_tokens += metadata["prompt_tokens"]
        self.completion_tokens += metadata["completion_tokens"]

    def add_rejected(self, entry: dict[str, Any]) -> None:
        self.rejected += 1
        self.rejected_by_stage[entry["stage"]] += 1
        self.rejected_by_reason[entry["reason"]] += 1

    def as_stats(self, inputs: int) -> dict[str, Any]:
        rounds_total = sum(k * v for k, v in self.rounds.items())
        return {
            "samples": self.samples,
            "rejected": self.rejected,
            "pending": max(inputs - self.samples - self.rejected, 0),
            "rejected_by_stage": dict(self.rejected_by_stage),
            "rejected_by_reason": dict(self.rejected_by_reason),
            "rounds_used": {
                "mean": round(rounds_total / self.samples, 3) if self.samples else 0.0,
                "histogram": {str(k): v for k, v in sorted(self.rounds.items())},
            },
            "stop_reasons": dict(self.stop_reasons),
            "thoughts_kept": self.thoughts_kept,
            "thoughts_removed_by_reason": dict(self.thoughts_removed),
            "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens},
        }


def corpus_stats(
    samples: Iterable[dict[str, Any]],
    rejected: Iterable[dict[str, Any]],
    inputs: int,
    repeated_inputs: int,
    teacher: TeacherStats,
    wall_s: float,
    *,
    counted: CorpusCounters | None = None,
) -> dict[str, Any]:
    """stats.json: the corpus as it stands (all runs into this directory) plus this run's calls.

    Both journals are consumed one record at a time: memory holds counters, never the corpus.
    `counted` holds the samples already counted by an earlier run; `samples` are the rest.
    """
    corpus = counted if counted is not None else CorpusCounters()
    for sample in samples:
        corpus.add_sample(sample)
    for entry in rejected:
        corpus.add_rejected(entry)
    return {
        "inputs": inputs,
        "repeated_inputs_skipped": repeated_inputs,
        **corpus.as_stats(inputs),
        "last_run": _last_run(teacher, wall_s),
    }


def write_corpus_stats(
    run_dir: RunDirectory, *, inputs: int, repeated_inputs: int, teacher: TeacherStats, wall_s: float
) -> dict[str, Any]:
    """Update stats.json after a run: count only the samples appended since the last update.

    The previous stats.json records (`journal`) how much of samples.jsonl it counted; while that
    part of the file is unchanged, its counters are reused, so a rerun over a million finished
    samples does not parse them again. Rejections are recounted (retries rewrite that file).
    `last_run` describes the latest run that made teacher calls: a rerun that had nothing to do
    keeps the previous one.
    """
    previous = _read_previous(run_dir)
    mark = run_dir.samples_mark()
    counted, start = None, 0
    journal = previous.get("journal") if previous is not None else None
    if isinstance(journal, dict) and run_dir.mark_holds(journal.get("samples.jsonl")):
        try:
            counted = CorpusCounters.from_stats(previous)
            start = previous["journal"]["samples.jsonl"]["bytes"]
        except (KeyError, TypeError, ValueError, AttributeError):
            counted, start = None, 0
    stats = corpus_stats(
        run_dir.iter_samples(start, stop=mark["bytes"]),
        run_dir.iter_rejected(),
        inputs,
        repeated_inputs,
        teacher,
        wall_s,
        counted=counted,
    )
    if teacher.calls == 0 and previous is not None and isinstance(previous.get("last_run"), dict):
        stats["last_run"] = previous["last_run"]
    stats["journal"] = {"samples.jsonl": mark}
    write_atomic(run_dir.stats_path, json.dumps(stats, indent=2) + "\n")
    return stats


def _read_previous(run_dir: RunDirectory) -> dict[str, Any] | None:
    try:
        previous = json.loads(run_dir.stats_path.read_bytes())
    except (OSError, ValueError):
        return None  # none yet, or damaged: recount from the journals
    return previous if isinstance(previous, dict) else None


def _last_run(teacher: TeacherStats, wall_s: float) -> dict[str, Any]:
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
