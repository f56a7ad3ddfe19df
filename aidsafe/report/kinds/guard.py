"""Guard data runs (`aidsafe generate guardreasoner`): reasoning traces of aidsafe.guard.traces."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aidsafe.report.kinds.common import agent_plots, first_line, rejection_plots
from aidsafe.report.model import PlotData, Row, SampleView, Section
from aidsafe.report.run import RunView

__all__ = ["guard_plots", "guard_sample"]


def _labels(record: dict[str, Any]) -> dict[str, str]:
    labels = record.get("labels") or {}
    return {str(task): "None" if label is None else str(label) for task, label in labels.items()}


def guard_plots(view: RunView) -> list[PlotData]:
    """Label counts per task: how balanced the traces are (grouped by label, one bar per task)."""
    counts: dict[str, Counter] = {}
    for record in view.iter_samples():
        for task, label in _labels(record).items():
            counts.setdefault(task, Counter())[label] += 1
    labels = sorted({label for c in counts.values() for label in c})
    series = {task: [c[label] for label in labels] for task, c in counts.items()}
    return [
        PlotData("label_counts", "Gold labels per task", labels, series, "label"),
        *agent_plots(view.iter_samples()),
        *rejection_plots(view),
    ]


def guard_sample(record: dict[str, Any]) -> SampleView:
    labels = _labels(record)
    tags = [f"{task}: {label}" for task, label in labels.items()]
    output = str(record.get("output", ""))
    return SampleView(
        str(record.get("id", "")),
        first_line(str(record.get("input", "")).removeprefix("Human user:\n")),
        {"label": tags, "status": ["finished"]},
        {"output chars": len(output)},
        [
            Section("Labels", [Row(", ".join(tags) or "(none)")]),
            Section("Input", [Row(str(record.get("input", "")))]),
            Section("Output", [Row(output)]),
            Section("Instruction", [Row(str(record.get("instruction", "")))]),
            Section("Source", [Row(str(record.get("source", "")))]),
        ],
    )
