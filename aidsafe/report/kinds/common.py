"""Pieces every kind uses: counting into plots, rejections, teacher calls per agent, the generic view."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from aidsafe.report.model import PlotData, Row, SampleView, Section
from aidsafe.report.run import RunView

__all__ = [
    "bar",
    "rejection_plots",
    "agent_plots",
    "calls_of",
    "generic_sample",
    "rejected_sample",
    "text_of",
    "first_line",
]


def bar(name: str, title: str, counts: Counter | dict, xlabel: str = "", *, sort_keys: bool = False) -> PlotData:
    """One series of counts; most frequent first unless the categories have an order of their own."""
    items = sorted(counts.items()) if sort_keys else Counter(counts).most_common()
    return PlotData(name, title, [str(k) for k, _ in items], {"count": [v for _, v in items]}, xlabel)


def calls_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The teacher calls a record carries: metadata.calls (generation, pairs) or teacher.call (traces)."""
    metadata = record.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("calls"), list):
        return [c for c in metadata["calls"] if isinstance(c, dict)]
    teacher = record.get("teacher")
    if isinstance(teacher, dict) and isinstance(teacher.get("call"), dict):
        return [{"agent": teacher.get("agent", "teacher"), **teacher["call"]}]
    return []


def agent_plots(records: Iterable[dict[str, Any]]) -> list[PlotData]:
    """Mean tokens and latency per call, per agent: where a run's time and money go."""
    tokens: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # calls, prompt, completion
    latency: dict[str, float] = defaultdict(float)
    for record in records:
        for call in calls_of(record):
            agent = str(call.get("agent", "?"))
            tokens[agent][0] += 1
            tokens[agent][1] += int(call.get("prompt_tokens") or 0)
            tokens[agent][2] += int(call.get("completion_tokens") or 0)
            latency[agent] += float(call.get("latency_s") or 0.0)
    agents = list(tokens)
    mean = lambda total, agent: round(total / tokens[agent][0], 4)  # noqa: E731
    return [
        PlotData(
            "tokens_per_agent",
            "Tokens per call, by agent (mean)",
            agents,
            {
                "prompt": [mean(tokens[a][1], a) for a in agents],
                "completion": [mean(tokens[a][2], a) for a in agents],
            },
            "agent",
            "tokens",
        ),
        PlotData(
            "latency_per_agent",
            "Latency per call, by agent (mean)",
            agents,
            {"seconds": [mean(latency[a], a) for a in agents]},
            "agent",
            "seconds",
        ),
    ]


def rejection_plots(view: RunView) -> list[PlotData]:
    reasons = Counter(str(entry.get("reason", "?")) for entry in view.iter_rejected())
    return [bar("rejection_reasons", "Rejections by reason", reasons, "reason")]


def text_of(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1)


def first_line(text: Any, limit: int = 160) -> str:
    line = str(text or "").strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


_TITLE_KEYS = ("prompt", "input", "instruction", "text")


def generic_sample(record: dict[str, Any]) -> SampleView:
    """Any record: each top-level field a section (a kind nobody registered still shows its data)."""
    title = next((record[k] for k in _TITLE_KEYS if isinstance(record.get(k), str)), "")
    sections = [Section(str(key), [Row(text_of(value))]) for key, value in record.items() if key not in ("id",)]
    return SampleView(str(record.get("id", "")), first_line(title), {}, {"fields": len(record)}, sections)


def rejected_sample(entry: dict[str, Any]) -> SampleView:
    """A rejected item: why, at which stage, and the rest of what the executor kept."""
    reason = str(entry.get("reason", "?"))
    lead = [Row(reason, [f"stage: {entry['stage']}"] if "stage" in entry else [], "reason")]
    if entry.get("error"):
        lead.append(Row(str(entry["error"]), [], "error"))
    skip = {"id", "input_sha", "reason", "stage", "error"}
    rest = [Section(str(k), [Row(text_of(v))]) for k, v in entry.items() if k not in skip]
    title = next((entry[k] for k in _TITLE_KEYS if isinstance(entry.get(k), str)), "")
    return SampleView(
        str(entry.get("id", "")),
        first_line(title),
        {"rejection": [reason], "status": ["rejected"]},
        {},
        [Section("Rejected", lead), *rest],
    )
