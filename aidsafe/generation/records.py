"""Sample records (one line of samples.jsonl) and the run statistics built from the journal."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from aidsafe.generation.policies import PolicySet
from aidsafe.teacher.types import TeacherStats

__all__ = ["sample_record", "corpus_stats"]

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
            "stop_reason": state.get("stop_reason", ""),
            "calls": calls,
            "prompt_tokens": sum(c["prompt_tokens"] for c in calls),
            "completion_tokens": sum(c["completion_tokens"] for c in calls),
            "latency_s": round(sum(c["latency_s"] for c in calls), 3),
        },
    }


def corpus_stats(
    samples: list[dict[str, Any]],
    rejected: list[dict[str, Any]],
    inputs: int,
    repeated_inputs: int,
    teacher: TeacherStats,
    wall_s: float,
) -> dict[str, Any]:
    """stats.json: the corpus as it stands (all runs into this directory) plus this run's calls."""
    rounds = [s["metadata"]["rounds_used"] for s in samples]
    removed = Counter(r["reason"] for s in samples for r in s["removed"])
    latencies = sorted(teacher.latencies_s)
    return {
        "inputs": inputs,
        "repeated_inputs_skipped": repeated_inputs,
        "samples": len(samples),
        "rejected": len(rejected),
        "pending": max(inputs - len(samples) - len(rejected), 0),
        "rejected_by_stage": dict(Counter(r["stage"] for r in rejected)),
        "rejected_by_reason": dict(Counter(r["reason"] for r in rejected)),
        "rounds_used": {
            "mean": round(statistics.fmean(rounds), 3) if rounds else 0.0,
            "histogram": {str(k): v for k, v in sorted(Counter(rounds).items())},
        },
        "stop_reasons": dict(Counter(s["metadata"]["stop_reason"] for s in samples)),
        "thoughts_kept": sum(len(s["thoughts"]) for s in samples),
        "thoughts_removed_by_reason": dict(removed),
        "tokens": {
            "prompt": sum(s["metadata"]["prompt_tokens"] for s in samples),
            "completion": sum(s["metadata"]["completion_tokens"] for s in samples),
        },
        "last_run": {
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
        },
    }
