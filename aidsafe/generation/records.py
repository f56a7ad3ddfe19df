"""Sample records (one line of samples.jsonl) and the run statistics built from the journal."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aidsafe.agents.policies import PolicySet
from aidsafe.run.journal import RunDirectory
from aidsafe.run.stats import StageCounts, stage_stats, write_stats
from aidsafe.teacher.types import TeacherStats

__all__ = ["CorpusCounters", "corpus_counts", "corpus_stats", "sample_record", "write_corpus_stats"]

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
    """What generation's stats.json says about its samples, as counters that grow one record at a
    time (rejections and the rest are the one writer's, aidsafe.run.stats)."""

    samples: int = 0
    rounds: Counter = field(default_factory=Counter)
    stop_reasons: Counter = field(default_factory=Counter)
    thoughts_kept: int = 0
    thoughts_removed: Counter = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @classmethod
    def from_stats(cls, stats: dict[str, Any]) -> CorpusCounters:
        """The sample counters back from a stats.json this module wrote."""
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

    def as_counts(self, inputs: int, repeated_inputs: int, **after: Any) -> StageCounts:
        rounds_total = sum(k * v for k, v in self.rounds.items())
        section = {
            "rounds_used": {
                "mean": round(rounds_total / self.samples, 3) if self.samples else 0.0,
                "histogram": {str(k): v for k, v in sorted(self.rounds.items())},
            },
            "stop_reasons": dict(self.stop_reasons),
            "thoughts_kept": self.thoughts_kept,
            "thoughts_removed_by_reason": dict(self.thoughts_removed),
            "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens},
            **after,
        }
        return StageCounts(inputs, {"repeated_inputs_skipped": repeated_inputs}, section, samples=self.samples)


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
    return stage_stats(corpus.as_counts(inputs, repeated_inputs), corpus.samples, rejected, teacher, wall_s)


def write_corpus_stats(
    run_dir: RunDirectory, *, inputs: int, repeated_inputs: int, teacher: TeacherStats, wall_s: float
) -> dict[str, Any]:
    """Update stats.json after a run, through the one writer: count only the samples appended
    since the last update."""
    return write_stats(run_dir, corpus_counts(run_dir, inputs, repeated_inputs), teacher, wall_s)


def corpus_counts(run_dir: RunDirectory, inputs: int, repeated_inputs: int) -> Callable[[dict | None], StageCounts]:
    """Generation's part of stats.json, given the stats.json it replaces.

    That one records (`journal`) how much of samples.jsonl it counted; while that part of the
    file is unchanged, its counters are reused, so a rerun over a million finished samples does
    not parse them again. Rejections are recounted by the writer (retries rewrite that file).
    """

    def counts(previous: dict[str, Any] | None) -> StageCounts:
        mark = run_dir.samples_mark()
        counted, start = None, 0
        journal = previous.get("journal") if previous is not None else None
        if isinstance(journal, dict) and run_dir.mark_holds(journal.get("samples.jsonl")):
            try:
                counted = CorpusCounters.from_stats(previous)
                start = previous["journal"]["samples.jsonl"]["bytes"]
            except (KeyError, TypeError, ValueError, AttributeError):
                counted, start = None, 0
        corpus = counted if counted is not None else CorpusCounters()
        for sample in run_dir.iter_samples(start, stop=mark["bytes"]):
            corpus.add_sample(sample)
        return corpus.as_counts(inputs, repeated_inputs, journal={"samples.jsonl": mark})

    return counts
