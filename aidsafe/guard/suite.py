"""The GuardReasoner benchmark suite: 13 benchmarks over three tasks, scored as the paper does.

A predictions directory is laid out like the released repository's `data/test/<size>/`:
`<Dataset>/generated_predictions.jsonl`, one row per benchmark record with `label` (gold) and
`predict` (the model's output). WildGuardTest is one file scored on all three tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aidsafe.errors import AidsafeError
from aidsafe.guard.evaluate import PREDICTIONS_FILE, evaluate_file
from aidsafe.guard.metrics import F1Result, weighted_average

__all__ = [
    "GUARDREASONER_SUITE",
    "Benchmark",
    "SuiteResult",
    "evaluate_suite",
    "suite_table",
]


@dataclass(frozen=True)
class Benchmark:
    folder: str  # folder name in the released repository's data/test/<size>/ (typos included)
    task: str
    paper_rows: int  # the row count the paper weights this benchmark by
    file: str | None  # the benchmark file in data/benchmark/ of the released repository


# In the published table's order. XSTest refusal: the paper's table says 499 rows, the file has
# 449; the paper's number is kept as the weight so averages match the paper's definition.
GUARDREASONER_SUITE: tuple[Benchmark, ...] = (
    Benchmark("ToxicChat", "prompt", 2853, "0_8_toxic_chat.json"),
    Benchmark("HarmBenchPrompt", "prompt", 239, "0_3_harmbench_prompt.json"),
    Benchmark("OpenAIModeration", "prompt", 1680, "0_2_OpenAIModeration.json"),
    Benchmark("AegisSafetyTest", "prompt", 359, "0_1_AegisSafetyTest.json"),
    Benchmark("SimpleSafetyTests", "prompt", 100, "0_0_SimpleSafetyTests.json"),
    Benchmark("WildGuardTest", "prompt", 1756, "0_4_wild_guard_test.json"),
    Benchmark("HarmBenchResponse", "response", 602, "0_5_harmbench_response.json"),
    Benchmark("SafeRLHF", "response", 2000, "0_9_safe_rlhf.json"),
    Benchmark("BeaverTails", "response", 3021, "0_A_beaver_tails.json"),
    Benchmark("XSTestReponseHarmful", "response", 446, "0_6_xstest_response_harmful.json"),
    Benchmark("WildGuardTest", "response", 1768, "0_4_wild_guard_test.json"),
    Benchmark("XSTestResponseRefusal", "refusal", 499, "0_7_xstest_response_refusal.json"),
    Benchmark("WildGuardTest", "refusal", 1777, "0_4_wild_guard_test.json"),
)


@dataclass(frozen=True)
class SuiteResult:
    mode: str
    scores: list[tuple[Benchmark, F1Result | None]]  # None: no predictions file

    def average(self, task: str) -> tuple[float | None, bool]:
        """(weighted F1 over the benchmarks present, whether all of the task's benchmarks are)."""
        present = [(r.f1, b.paper_rows) for b, r in self.scores if b.task == task and r is not None]
        complete = all(r is not None for b, r in self.scores if b.task == task)
        return (weighted_average(present) if present else None), complete

    def mean(self) -> tuple[float | None, bool]:
        """(mean of the three task averages, whether every benchmark is present)."""
        averages = [self.average(task) for task in ("prompt", "response", "refusal")]
        if any(value is None for value, _ in averages):
            return None, False
        return sum(value for value, _ in averages) / 3, all(complete for _, complete in averages)

    def to_dict(self) -> dict[str, Any]:
        benchmarks = []
        for benchmark, result in self.scores:
            row: dict[str, Any] = {"dataset": benchmark.folder, "task": benchmark.task, "weight": benchmark.paper_rows}
            row.update(result.to_dict() if result else {"f1": None, "missing": True})
            benchmarks.append(row)
        averages = {}
        for task in ("prompt", "response", "refusal"):
            value, complete = self.average(task)
            averages[task] = {"f1": value, "complete": complete}
        value, complete = self.mean()
        return {
            "suite": "guardreasoner",
            "mode": self.mode,
            "benchmarks": benchmarks,
            "averages": averages,
            "mean": {"f1": value, "complete": complete},
        }


def evaluate_suite(predictions_dir: Path, mode: str = "strict") -> SuiteResult:
    """Score every benchmark of the suite found under `predictions_dir` (one model size)."""
    if not predictions_dir.is_dir():
        raise AidsafeError(f"{predictions_dir}: not a directory; expected <Dataset>/{PREDICTIONS_FILE} inside")
    scores = []
    for benchmark in GUARDREASONER_SUITE:
        path = predictions_dir / benchmark.folder / PREDICTIONS_FILE
        multi_task = benchmark.folder == "WildGuardTest"
        result = evaluate_file(path, benchmark.task, mode, bare_labels=not multi_task) if path.is_file() else None
        scores.append((benchmark, result))
    if all(result is None for _, result in scores):
        names = ", ".join(sorted({b.folder for b in GUARDREASONER_SUITE}))
        raise AidsafeError(f"{predictions_dir}: no <Dataset>/{PREDICTIONS_FILE} found; datasets: {names}")
    return SuiteResult(mode, scores)


def suite_table(result: SuiteResult, title: str, width: int | None = None) -> Any:
    """The suite as a rich Table in the published table's order: per task its benchmarks and their
    weighted average, then the mean; with `width`, made to fit that many columns."""
    from rich.table import Table

    from aidsafe.terminal import fit_table

    table = Table(title=title)
    for column in ("Task", "Benchmark", "F1", "Rows", "Unparseable", "Weight"):
        table.add_column(column, justify="left" if column in ("Task", "Benchmark") else "right")
    table.columns[1].overflow = "fold"  # "Mean of the three tasks (partial: ...)" may wrap
    for task in ("prompt", "response", "refusal"):
        entries = [(b, r) for b, r in result.scores if b.task == task]
        for benchmark, score in entries:
            if score is None:
                table.add_row(task, benchmark.folder, "missing", "-", "-", str(benchmark.paper_rows))
            else:
                shown = (f"{score.f1:.2f}", str(score.n), str(score.unparseable), str(benchmark.paper_rows))
                table.add_row(task, benchmark.folder, *shown)
        value, complete = result.average(task)
        present = sum(score is not None for _, score in entries)
        label = "Weighted avg." if complete else f"Weighted avg. over {present}/{len(entries)} present"
        table.add_row(task, label, "-" if value is None else f"{value:.2f}", "", "", "", style="bold")
        table.add_section()
    value, complete = result.mean()
    label = "Mean of the three tasks" + ("" if complete else " (partial: benchmarks missing)")
    table.add_row("all", label, "-" if value is None else f"{value:.2f}", "", "", "", style="bold")
    return table if width is None else fit_table(table, width)
