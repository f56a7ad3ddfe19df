"""Pairs runs (`aidsafe pairs`): records of aidsafe.pairs.records, the judge's scores of both sides."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aidsafe.report.kinds.common import agent_plots, bar, first_line, rejection_plots
from aidsafe.report.model import PlotData, Row, SampleView, Section
from aidsafe.report.run import RunView

__all__ = ["pairs_plots", "pairs_sample"]

_SCALE = [1, 2, 3, 4, 5]  # the judge's faithfulness scale (aidsafe/pairs/schemas.py)


def pairs_plots(view: RunView) -> list[PlotData]:
    """The separation the method exists for: faithfulness of chosen vs rejected, as kept and overall."""
    final = {"chosen": Counter(), "rejected": Counter()}
    every = {"chosen": Counter(), "rejected": Counter()}
    iterations, gaps = Counter(), Counter()
    for pair in view.iter_samples():
        iterations[int(pair.get("iterations", 0))] += 1
        scores = pair.get("scores") or []
        if scores:
            gaps[scores[-1].get("gap", "?")] += 1
            for side in final:
                final[side][scores[-1][side]["faithfulness"]] += 1
        for score in scores:
            for side in every:
                every[side][score[side]["faithfulness"]] += 1
    for entry in view.iter_rejected():  # attempts that never separated count among all attempts
        for score in entry.get("attempts") or []:
            for side in every:
                every[side][score[side]["faithfulness"]] += 1

    def sides(name: str, title: str, counts: dict[str, Counter]) -> PlotData:
        series = {side: [counts[side][k] for k in _SCALE] for side in counts}
        return PlotData(name, title, [str(k) for k in _SCALE], series, "judge faithfulness (1-5)", "attempts")

    return [
        sides("judge_scores_pairs", "Judge scores of the kept pairs: chosen vs rejected", final),
        sides("judge_scores_all", "Judge scores of every attempt: chosen vs rejected", every),
        bar("score_gap", "Score gap of the kept pairs", gaps, "chosen - rejected", sort_keys=True),
        bar("iterations", "Belief iterations used", iterations, "iterations", sort_keys=True),
        *agent_plots(view.iter_samples()),
        *rejection_plots(view),
    ]


def _side(side: dict[str, Any]) -> list[Row]:
    rows = [Row(str(t.get("text", "")), [str(p) for p in t.get("policies", [])]) for t in side.get("thoughts", [])]
    return [*rows, Row(str(side.get("response", "")), ["response"])]


def _verdict(name: str, verdict: dict[str, Any]) -> str:
    broken = ", ".join(verdict.get("violated_policies") or []) or "none"
    return f"{name}: faithfulness {verdict.get('faithfulness')}, violates {verdict.get('violates')} ({broken})"


def pairs_sample(record: dict[str, Any]) -> SampleView:
    belief = record.get("belief") or {}
    chosen, rejected = record.get("chosen") or {}, record.get("rejected") or {}
    scores = [
        Row(
            f"{_verdict('chosen', s['chosen'])}; {_verdict('rejected', s['rejected'])}",
            [f"gap {s.get('gap')}", "separated" if s.get("separated") else "not separated"],
            f"iteration {s.get('iteration')}",
        )
        for s in record.get("scores", [])
    ]
    policies = sorted(
        {str(p) for side in (chosen, rejected) for t in side.get("thoughts", []) for p in t.get("policies", [])}
    )
    return SampleView(
        str(record.get("id", "")),
        first_line(record.get("prompt", "")),
        {"policy": policies, "target policy": [str(belief.get("target_policy", ""))], "status": ["finished"]},
        {
            "iterations": int(record.get("iterations", 0)),
            "chosen thoughts": len(chosen.get("thoughts", [])),
            "rejected thoughts": len(rejected.get("thoughts", [])),
        },  # fmt: skip
        [
            Section("Prompt", [Row(str(record.get("prompt", "")))]),
            Section("Belief", [Row(str(belief.get("text", "")), [str(belief.get("target_policy", ""))])]),
            Section("Chosen", _side(chosen)),
            Section("Rejected", _side(rejected)),
            Section("Judge scores", scores),
        ],
    )
