"""Generation runs (`aidsafe generate`, the AIDSAFE graph): records of aidsafe.generation.records."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aidsafe.report.kinds.common import agent_plots, bar, first_line, rejection_plots
from aidsafe.report.model import PlotData, Row, SampleView, Section
from aidsafe.report.run import RunView

__all__ = ["generation_plots", "generation_sample"]


def generation_plots(view: RunView) -> list[PlotData]:
    stops, rounds, removed, per_thought, cited = Counter(), Counter(), Counter(), Counter(), Counter()
    for record in view.iter_samples():
        metadata = record.get("metadata") or {}
        stops[str(metadata.get("stop_reason", "?"))] += 1
        rounds[int(metadata.get("rounds_used", 0))] += 1
        removed.update(f"{r.get('stage', '?')}: {r.get('reason', '?')}" for r in record.get("removed", []))
        for thought in record.get("thoughts", []):
            policies = thought.get("policies", [])
            per_thought[len(policies)] += 1
            cited.update(policies)
    return [
        bar("stop_reasons", "Stop reasons", stops, "stop reason"),
        bar("rounds_used", "Deliberation rounds used", rounds, "rounds", sort_keys=True),
        bar("thoughts_removed", "Thoughts removed, by stage and reason", removed, "stage: reason"),
        bar("policies_per_thought", "Policies cited per refined thought", per_thought, "policies", sort_keys=True),
        bar("policy_citations", "Refined thoughts citing each policy", cited, "policy"),
        *agent_plots(view.iter_samples()),
        *rejection_plots(view),
    ]


def _thought(thought: dict[str, Any]) -> Row:
    return Row(str(thought.get("text", "")), [str(p) for p in thought.get("policies", [])], str(thought.get("id", "")))


def _removed(entry: dict[str, Any]) -> Row:
    tags = [f"{entry.get('stage', '?')}: {entry.get('reason', '?')}"]
    if entry.get("duplicate_of"):
        similarity = f" ({entry['similarity']:.3f})" if isinstance(entry.get("similarity"), int | float) else ""
        tags.append(f"duplicate of {entry['duplicate_of']}{similarity}")
    if entry.get("replaced_by"):
        tags.append(f"replaced by {entry['replaced_by']}")
    tags += [str(p) for p in entry.get("policies", [])]
    return Row(str(entry.get("text", "")), tags, str(entry.get("id", "")))


def _turns(record: dict[str, Any]) -> list[Row]:
    rows = []
    for turn in record.get("deliberation", []):
        lead = f"round {turn.get('round', '?')} · {turn.get('agent', '?')}"
        done = ["marked complete"] if turn.get("complete") else []
        made = turn.get("thoughts", [])
        if not made:
            rows.append(Row("(no new or corrected thought)", done, lead))
        for thought in made:
            rows.append(Row(str(thought.get("text", "")), [*thought.get("policies", []), *done], lead))
        if turn.get("response"):
            rows.append(Row(str(turn["response"]), ["response draft"], lead))
    return rows


def generation_sample(record: dict[str, Any]) -> SampleView:
    metadata = record.get("metadata") or {}
    thoughts = record.get("thoughts", [])
    policies = sorted({str(p) for t in thoughts for p in t.get("policies", [])})
    intents = [
        Row(str(i.get("text", "")), [str(i.get(k)) for k in ("kind", "nature") if i.get(k)])
        for i in record.get("intents", [])
    ]
    calls = [
        Row(
            f"{c.get('prompt_tokens', 0)} prompt + {c.get('completion_tokens', 0)} completion tokens, "
            f"{float(c.get('latency_s') or 0):.2f} s",
            [str(c.get("model", ""))],
            str(c.get("agent", "")),
        )
        for c in metadata.get("calls", [])
    ]
    removed = record.get("removed", [])
    return SampleView(
        str(record.get("id", "")),
        first_line(record.get("prompt", "")),
        {
            "stop reason": [str(metadata.get("stop_reason", ""))],
            "policy": policies,
            "removed": sorted({str(r.get("reason", "")) for r in removed}),
            "status": ["finished"],
        },
        {
            "rounds": int(metadata.get("rounds_used", 0)),
            "thoughts": len(thoughts),
            "turns": len(record.get("deliberation", [])),
            "removed": len(removed),
        },
        [
            Section("Prompt", [Row(str(record.get("prompt", "")))]),
            Section("Intents", intents),
            Section("Refined thoughts", [_thought(t) for t in thoughts]),
            Section("Response", [Row(str(record.get("response", "")))]),
            Section("Deliberation", _turns(record)),
            Section("Removed thoughts", [_removed(r) for r in removed]),
            Section("Teacher calls", calls),
        ],
    )
