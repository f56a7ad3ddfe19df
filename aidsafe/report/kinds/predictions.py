"""Prediction files (`aidsafe predict guard`, and the released GuardReasoner ones): gold label vs answers."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aidsafe.report.kinds.common import bar, first_line, text_of
from aidsafe.report.model import PlotData, Row, SampleView, Section
from aidsafe.report.run import RunView
from aidsafe.run.journal import input_digest

__all__ = ["predictions_plots", "predictions_sample"]


def _answers(record: dict[str, Any]) -> dict[str, str]:
    from aidsafe.guard.formats import parse_answers

    predict = record.get("predict")
    return parse_answers(predict) if isinstance(predict, str) else {}


def predictions_plots(view: RunView) -> list[PlotData]:
    gold, answered = Counter(), {}
    for record in view.iter_samples():
        gold[text_of(record.get("label"))] += 1
        for task, answer in _answers(record).items():
            answered.setdefault(task, Counter())[answer] += 1
    answers = sorted({a for c in answered.values() for a in c})
    return [
        bar("gold_labels", "Gold labels", gold, "label"),
        PlotData(
            "predicted_answers",
            "Predicted answers per task",
            answers,
            {task: [c[a] for a in answers] for task, c in answered.items()},
            "answer",
        ),  # fmt: skip
    ]


def predictions_sample(record: dict[str, Any]) -> SampleView:
    prompt = str(record.get("prompt", ""))
    human = prompt.split("Human user:\n", 1)[-1]  # the classifier instruction comes first
    answers = _answers(record)
    tags = [f"{task}: {answer}" for task, answer in answers.items()]
    return SampleView(
        # Prediction rows carry no id; predict matches them by prompt, so the prompt's digest names them.
        str(record.get("id") or input_digest(prompt)),
        first_line(human),
        {"gold label": [text_of(record.get("label"))], "answer": tags},
        {"predict chars": len(str(record.get("predict", "")))},
        [
            Section("Input", [Row(human)]),
            Section("Gold label", [Row(text_of(record.get("label")))]),
            Section("Prediction", [Row(text_of(record.get("predict", "")), tags)]),
            Section("Prompt", [Row(prompt)]),
        ],
    )
