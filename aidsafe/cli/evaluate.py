"""`aidsafe eval ...`: scores for guard predictions (and later stages' evaluations)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from aidsafe.errors import AidsafeError

__all__ = ["app", "choose"]

_TASKS = ("prompt", "response", "refusal")
_MODES = ("strict", "paper")
_FORMATS = ("guardreasoner", "thinkguard")

app = typer.Typer(help="Evaluate models and generated data.", no_args_is_help=True)


def choose(value: str | None, choices: tuple[str, ...], option: str) -> None:
    """Refuse a value outside `choices`, naming the option and the valid ones."""
    if value is not None and value not in choices:
        raise AidsafeError(f"{option} {value!r}: choose one of {', '.join(choices)}")


@app.command("guard")
def eval_guard(
    predictions: Annotated[Path | None, typer.Option(help="One predictions JSONL file (label, predict).")] = None,
    task: Annotated[str | None, typer.Option(help="With --predictions: prompt, response or refusal.")] = None,
    suite: Annotated[str | None, typer.Option(help="A whole suite: guardreasoner.")] = None,
    predictions_dir: Annotated[
        Path | None, typer.Option(help="With --suite: one model's folder of <Dataset>/generated_predictions.jsonl.")
    ] = None,
    mode: Annotated[
        str, typer.Option(help="strict (unparseable = wrong once) or paper (the published script).")
    ] = "strict",
    format: Annotated[
        str, typer.Option("--format", help="guardreasoner, or thinkguard (adds AUPRC, categories).")
    ] = "guardreasoner",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
) -> None:
    """Guard F1 on one predictions file, or the GuardReasoner suite's table."""
    choose(mode, _MODES, "--mode")
    choose(task, _TASKS, "--task")
    choose(format, _FORMATS, "--format")
    if suite is not None:
        if suite != "guardreasoner":
            raise AidsafeError(f"--suite {suite!r}: the only suite is guardreasoner")
        if predictions_dir is None or predictions is not None or task is not None or format != "guardreasoner":
            raise AidsafeError(
                "--suite takes --predictions-dir (and --mode, --json), not --predictions/--task/--format"
            )
        from aidsafe.guard.suite import evaluate_suite

        result = evaluate_suite(predictions_dir, mode)
        if as_json:
            typer.echo(json.dumps(result.to_dict(), indent=2))
        else:
            _print_suite(result, predictions_dir)
        return
    if predictions is None or task is None or predictions_dir is not None:
        raise AidsafeError(
            "give --predictions FILE --task prompt|response|refusal, or --suite guardreasoner --predictions-dir DIR"
        )
    from aidsafe.guard.evaluate import evaluate_predictions, summary_line, unparseable_warning

    report = evaluate_predictions(predictions, task, format, mode)
    warning = unparseable_warning(report, task, format)
    if warning:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(json.dumps(report, indent=2) if as_json else summary_line(report))


def _print_suite(result: Any, predictions_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"GuardReasoner suite: {predictions_dir} ({result.mode} mode)")
    for column in ("Task", "Benchmark", "F1", "Rows", "Unparseable", "Weight"):
        table.add_column(column, justify="left" if column in ("Task", "Benchmark") else "right")
    for task in _TASKS:
        entries = [(b, r) for b, r in result.scores if b.task == task]
        for benchmark, score in entries:
            if score is None:
                table.add_row(task, benchmark.folder, "missing", "-", "-", str(benchmark.paper_rows))
            else:
                table.add_row(
                    task,
                    benchmark.folder,
                    f"{score.f1:.2f}",
                    str(score.n),
                    str(score.unparseable),
                    str(benchmark.paper_rows),
                )
        value, complete = result.average(task)
        present = sum(score is not None for _, score in entries)
        label = "Weighted avg." if complete else f"Weighted avg. over {present}/{len(entries)} present"
        table.add_row(task, label, "-" if value is None else f"{value:.2f}", "", "", "", style="bold")
        table.add_section()
    value, complete = result.mean()
    label = "Mean of the three tasks" + ("" if complete else " (partial: benchmarks missing)")
    table.add_row("all", label, "-" if value is None else f"{value:.2f}", "", "", "", style="bold")
    Console(width=110).print(table)
