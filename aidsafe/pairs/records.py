"""Pair records (one line of the pairs run's samples.jsonl), the chosen samples they start
from, and the pairs run's own part of stats.json."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aidsafe.errors import AidsafeError
from aidsafe.run.journal import RunDirectory, input_digest
from aidsafe.run.jsonl import read_jsonl
from aidsafe.run.stats import StageCounts

__all__ = ["Chosen", "attempt_scores", "pair_counts", "pair_record", "read_chosen"]


@dataclass(frozen=True)
class Chosen:
    """A finished sample of a generation run: the chosen side of its pair."""

    id: str
    prompt: str
    intents: tuple[dict, ...]
    thoughts: tuple[dict, ...]  # {"text", "policies"}
    response: str
    source_hash: str  # the generation recipe's hash

    def digest(self) -> str:
        body = {"prompt": self.prompt, "thoughts": list(self.thoughts), "response": self.response}
        return input_digest(json.dumps(body, sort_keys=True, ensure_ascii=False))

    def start_state(self) -> dict[str, Any]:
        chosen = {"thoughts": [dict(t) for t in self.thoughts], "response": self.response}
        return {"id": self.id, "prompt": self.prompt, "intents": [dict(i) for i in self.intents], "chosen": chosen}


def read_chosen(run: str | Path, policy_set_id: str) -> list[Chosen]:
    """The finished samples of generation run directory `run`, checked line by line."""
    path = Path(run).expanduser() / "samples.jsonl"
    if not path.is_file():
        raise AidsafeError(
            f"{run}: not a generation run directory (no samples.jsonl); expected `aidsafe generate`'s --output"
        )
    chosen = []
    # A cut-off last line (a killed generate) is that sample not finished yet: skipped.
    for number, record in read_jsonl(path, skip_partial_tail=True):
        where = f"{path}:{number}"
        for key, kind in (("id", str), ("prompt", str), ("response", str), ("thoughts", list)):
            if not isinstance(record.get(key), kind):
                raise AidsafeError(f"{where}: field {key!r} missing or not a {kind.__name__}; expected a sample record")
        metadata = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
        used = (metadata.get("policy_set") or {}).get("id")
        if used is not None and used != policy_set_id:
            raise AidsafeError(
                f"{where}: metadata.policy_set: sample made under policy set {used!r}, the pairs recipe "
                f"judges by {policy_set_id!r}; set the recipe's `policies` to the generation run's"
            )
        thoughts = tuple({"text": str(t.get("text", "")), "policies": list(t.get("policies", []))}
                         for t in record["thoughts"] if isinstance(t, dict))  # fmt: skip
        chosen.append(Chosen(record["id"], record["prompt"], tuple(record.get("intents") or ()), thoughts,
                             record["response"], str(metadata.get("recipe_hash", ""))))  # fmt: skip
    if not chosen:
        raise AidsafeError(f"{path}: no finished samples to pair")
    return chosen


def attempt_scores(attempts: list[dict]) -> list[dict[str, Any]]:
    """Every iteration's belief and both verdicts (the rejected text of failed attempts is left out)."""
    keys = ("iteration", "judge", "judge_order", "chosen", "rejected", "gap", "separated")  # no order: a guard
    return [{**{k: a[k] for k in keys if k in a}, "belief": {k: a["belief"][k] for k in ("text", "target_policy")}}
            for a in attempts]  # fmt: skip


def pair_record(state: dict[str, Any], chosen: Chosen, recipe_hash: str, policies: Any, judge: dict) -> dict:
    """The published pair: the chosen sample, the separating attempt's rejected side and belief."""
    attempts = state["attempts"]
    final = attempts[-1]
    calls = state.get("calls", [])
    return {
        "id": chosen.id,
        "prompt": chosen.prompt,
        "chosen": {"thoughts": [dict(t) for t in chosen.thoughts], "response": chosen.response},
        "rejected": {"thoughts": final["rejected_cot"]["thoughts"], "response": final["rejected_cot"]["response"]},
        "belief": {"text": final["belief"]["text"], "target_policy": final["belief"]["target_policy"]},
        "scores": attempt_scores(attempts),
        "iterations": len(attempts),
        "metadata": {
            "recipe_hash": recipe_hash,
            "source_recipe_hash": chosen.source_hash,
            "policy_set": {"id": policies.id, "version": policies.version},
            "judge": judge,
            "calls": calls,
            "prompt_tokens": sum(c["prompt_tokens"] for c in calls),
            "completion_tokens": sum(c["completion_tokens"] for c in calls),
            "latency_s": round(sum(c["latency_s"] for c in calls), 3),
        },
    }


# stats.json: the pairs run's own section ----------------------------------------------------------------


class _Scores:
    """Both sides' judge scores over a set of attempts, and the gap between them.

    LLM judge: faithfulness 1..5 and its histogram. Guard judge: P(unsafe), histogrammed in
    tenths ("0.3" counts 0.3 <= p < 0.4; 1.0 falls in "0.9"), the gap (rejected minus chosen)
    in tenths from -1 to 1. The kind is read off the scores (a guard side has `p_unsafe`)."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {"chosen": [], "rejected": []}
        self.violates = {"chosen": 0, "rejected": 0}
        self.gaps: list[float] = []
        self.guard = False

    @property
    def n(self) -> int:
        return len(self.gaps)

    def add(self, score: dict[str, Any]) -> None:
        self.guard = "p_unsafe" in score["chosen"]
        for side in ("chosen", "rejected"):
            self.values[side].append(score[side]["p_unsafe"] if self.guard else int(score[side]["faithfulness"]))
            self.violates[side] += bool(score[side]["violates"])
        self.gaps.append(score["gap"])

    def as_stats(self) -> dict[str, Any]:
        def mean(values: list[float]) -> float:
            return round(sum(values) / len(values), 3) if values else 0.0

        name = "p_unsafe" if self.guard else "faithfulness"
        sides = {
            side: {
                f"{name}_mean": mean(self.values[side]),
                f"{name}_histogram": _histogram(self.values[side], self.guard),
                "violation_rate": round(self.violates[side] / self.n, 3) if self.n else 0.0,
            }
            for side in ("chosen", "rejected")
        }
        if self.guard:
            gaps = Counter(f"{_tenth(g):.1f}" for g in self.gaps)
            ordered = sorted(gaps, key=float)
        else:
            gaps = Counter(str(g) for g in self.gaps)
            ordered = sorted(gaps, key=int)
        gap = {"mean": mean(self.gaps), "histogram": {k: gaps[k] for k in ordered}}
        return {"attempts": self.n, **sides, "gap": gap}


def _tenth(value: float) -> float:
    """The tenth a value falls in (floor, so -0.05 is in -0.1), 1.0 in 0.9 (one-sided top bin)."""
    return min(math.floor(round(value * 10, 9)), 9) / 10


def _histogram(values: list[float], guard: bool) -> dict[str, int]:
    if guard:
        counts = Counter(f"{_tenth(v):.1f}" for v in values)
        return {f"{k / 10:.1f}": counts[f"{k / 10:.1f}"] for k in range(10)}
    counts = Counter(int(v) for v in values)
    return {str(k): counts[k] for k in range(1, 6)}


def pair_counts(run_dir: RunDirectory, inputs: int) -> StageCounts:
    """The pairs run's own part of stats.json (the rest is the one writer's, aidsafe.run.stats):
    the pairs and no_separation counts, iterations per pair, and the judge's scores of the kept
    pairs and of every judged attempt, from its journals as they stand (all runs into it)."""
    count, iterations, final, every = 0, Counter(), _Scores(), _Scores()
    for pair in run_dir.iter_samples():
        count += 1
        iterations[pair["iterations"]] += 1
        final.add(pair["scores"][-1])
        for score in pair["scores"]:
            every.add(score)
    no_separation = 0
    for entry in run_dir.iter_rejected():
        no_separation += entry["reason"] == "no_separation"
        for score in entry.get("attempts", []):
            every.add(score)
    total = sum(k * v for k, v in iterations.items())
    section = {
        "pairs": count,
        "no_separation": no_separation,
        "iterations": {
            "mean": round(total / count, 3) if count else 0.0,
            "histogram": {str(k): v for k, v in sorted(iterations.items())},
        },
        # The paper's point is the gap: the kept pairs' final verdicts, and every judged attempt.
        "judge": {"pairs": final.as_stats(), "all_attempts": every.as_stats()},
    }
    return StageCounts(inputs, after=section, samples=count)
