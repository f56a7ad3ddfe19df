"""`aidsafe eval guard` and `aidsafe predict guard`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from aidsafe.errors import AidsafeError

__all__ = ["register"]

_TASKS = ("prompt", "response", "refusal")
_MODES = ("strict", "paper")
_FORMATS = ("guardreasoner", "thinkguard")

eval_app = typer.Typer(help="Evaluate models and generated data.", no_args_is_help=True)
predict_app = typer.Typer(help="Run a served model over a benchmark.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
    app.add_typer(predict_app, name="predict")


def _choice(value: str | None, choices: tuple[str, ...], option: str) -> None:
    if value is not None and value not in choices:
        raise AidsafeError(f"{option} {value!r}: choose one of {', '.join(choices)}")


@eval_app.command("guard")
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
    _choice(mode, _MODES, "--mode")
    _choice(task, _TASKS, "--task")
    _choice(format, _FORMATS, "--format")
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
    if format == "thinkguard":
        if mode != "strict":
            raise AidsafeError("--mode paper reproduces GuardReasoner's script; ThinkGuard is scored strict only")
        from aidsafe.guard.evaluate import evaluate_thinkguard_file

        report: dict[str, Any] = {"file": str(predictions), **evaluate_thinkguard_file(predictions, task)}
    else:
        from aidsafe.guard.evaluate import evaluate_file

        report = {
            "file": str(predictions),
            "format": "guardreasoner",
            **evaluate_file(predictions, task, mode).to_dict(),
        }
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    line = (
        f"{predictions}: F1 {report['f1']:.2f} ({report['mode']}, task {task}); {report['n']} rows, "
        f"{report['unparseable']} unparseable, {report['skipped']} without gold"
    )
    if report.get("auprc") is not None:
        line += f"; AUPRC {report['auprc']:.2f} ({report['unscored']} unscored)"
    if "category_accuracy" in report:
        line += (
            f"; categories: accuracy {report['category_accuracy']:.2f}, "
            f"macro-F1 {report['category_macro_f1']:.2f} over {report['category_rows']} rows"
        )
    typer.echo(line)


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


@predict_app.command("guard")
def predict_guard(
    benchmark: Annotated[
        str, typer.Option(help="Benchmark: a GuardReasoner .json, a .jsonl, or a HF id owner/name[:config]:split.")
    ],
    base_url: Annotated[str, typer.Option(help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1.")],
    model: Annotated[str, typer.Option(help="Model name as the endpoint serves it.")],
    output: Annotated[Path, typer.Option(help="Predictions JSONL (rerun the same command to resume).")],
    format: Annotated[str, typer.Option("--format", help="guardreasoner or thinkguard.")] = "guardreasoner",
    policies: Annotated[
        str, typer.Option(help="ThinkGuard's category block: a policy set name or YAML path.")
    ] = "beavertails",
    concurrency: Annotated[int, typer.Option(help="Requests in flight at most.", min=1)] = 16,
    progress: Annotated[bool, typer.Option(help="Show the live progress bar.")] = True,
) -> None:
    """Predict with a guard model served by vLLM (greedy, completions endpoint); resumable."""
    import asyncio

    from rich.console import Console

    from aidsafe.guard.predict import load_benchmark
    from aidsafe.guard.predict import predict_guard as run
    from aidsafe.generation.policies import load_policies

    _choice(format, _FORMATS, "--format")
    examples = load_benchmark(benchmark)
    policy_set = load_policies(policies) if format == "thinkguard" else None
    stats = asyncio.run(
        run(
            examples,
            output,
            base_url,
            model,
            fmt=format,
            policies=policy_set,
            concurrency=concurrency,
            api_key=os.environ.get("OPENAI_API_KEY"),
            progress=progress,
        )
    )
    Console(stderr=True).print(f"{stats['done']} predicted, {stats['skipped']} already done -> {output}")
