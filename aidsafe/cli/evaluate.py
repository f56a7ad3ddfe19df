"""`aidsafe eval ...`: scores for guard predictions, CoT quality of generation runs (`eval cot`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from aidsafe.errors import AidsafeError
from aidsafe.run.loop import run_async
from aidsafe.terminal import say

__all__ = ["app", "choose"]

_TASKS = ("prompt", "response", "refusal")
_MODES = ("strict", "paper")
_FORMATS = ("guardreasoner", "thinkguard", "policy")

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
        str,
        typer.Option(
            "--format",
            help="guardreasoner, thinkguard (adds AUPRC, categories), or policy (predict guard --format policy).",
        ),
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
    if format == "policy":
        return _eval_policy(predictions, task, predictions_dir, mode, as_json)
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


def _eval_policy(predictions: Path | None, task: str | None, predictions_dir: Path | None, mode: str,
                 as_json: bool) -> None:  # fmt: skip
    if predictions is None or task is not None or predictions_dir is not None or mode != "strict":
        raise AidsafeError(
            "--format policy takes --predictions FILE (and --json); the verdict is the only task, strict"
        )
    from aidsafe.guard.policy_metrics import evaluate_policy_predictions, policy_summary

    report = evaluate_policy_predictions(predictions)
    if report["unparseable"] * 2 > report["n"]:
        typer.echo(
            f"warning: {report['unparseable']} of {report['n']} answers have no verdict: check that predict guard's "
            "--rendering matches what the model answers (harmony for gpt-oss-safeguard); F1 counts them as wrong",
            err=True,
        )
    typer.echo(json.dumps(report, indent=2) if as_json else policy_summary(report))


def _print_suite(result: Any, predictions_dir: Path) -> None:
    from rich.console import Console

    from aidsafe.guard.suite import suite_table

    console = Console()
    console.print(suite_table(result, f"GuardReasoner suite: {predictions_dir} ({result.mode} mode)", console.width))


@app.command("cot")
def eval_cot(
    run: Annotated[Path, typer.Argument(help="A generation run directory (aidsafe generate's --output).")],
    model: Annotated[
        list[str],
        typer.Option(help="Judge model; repeat for several judges. NAME (at --base-url) or base_url=URL,model=NAME."),
    ],
    base_url: Annotated[str | None, typer.Option(help="Judge endpoint, e.g. http://localhost:8000/v1.")] = None,
    judge: Annotated[
        str | None, typer.Option(help="Judge card (path or built-in); default cot_grader, cot_pairwise with --compare.")
    ] = None,
    compare: Annotated[
        Path | None, typer.Option(help="Another run of the same prompts: pairwise preference, matched by prompt id.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Holds one folder per judge (default RUN/eval-cot, or RUN/eval-cot/vs-OTHER).")
    ] = None,
    policies: Annotated[str | None, typer.Option(help="Policy set the judge reads (default: the run's own).")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N samples (or matched prompts).", min=1)] = None,
    concurrency: Annotated[int, typer.Option(help="Judge calls in flight at most.", min=1)] = 8,
    seed: Annotated[int, typer.Option(help="Seeds which run is answer A for each prompt (--compare).")] = 0,
    api_key_env: Annotated[str, typer.Option(help="Variable holding the judge's API key.")] = "OPENAI_API_KEY",
    retry_rejected: Annotated[bool, typer.Option(help="Also retry non-transient rejections.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of tables.")] = False,
    progress: Annotated[bool, typer.Option(help="Show the live progress bar.")] = True,
) -> None:
    """CoT quality: an LLM judge scores every sample 1-5 on six criteria, or prefers between two runs."""
    from rich.console import Console

    from aidsafe.eval.cot import CotEvalRequest, evaluate_cot, parse_judges
    from aidsafe.eval.cot_report import report_tables

    _check_key_variable("--api-key-env", api_key_env)
    request = CotEvalRequest(run=run, judges=parse_judges(model, base_url), compare=compare, card=judge, output=output,
                             policies=policies, limit=limit, concurrency=concurrency, seed=seed,
                             api_key_env=api_key_env, retry_rejected=retry_rejected, progress=progress)  # fmt: skip
    report = evaluate_cot(request, env=dict(os.environ))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        console = Console()
        for table in report_tables(report, console.width):
            console.print(table)
    judged = [j.get("samples", j.get("pairs", 0)) for j in report["judges"]]
    noun = "pairs compared" if report["mode"] == "compare" else "samples graded"
    where = Path(report["judges"][0]["output"]).parent / "report.json"  # every judge's folder is beside it
    say(f"{max(judged, default=0)} {noun} by {len(judged)} judge{'s' * (len(judged) != 1)} -> {where}")


@app.command("safety")
def eval_safety(
    base_url: Annotated[str, typer.Option(help="The served student's OpenAI-compatible URL (.../v1).")],
    model: Annotated[str, typer.Option(help="The student's model name on that server.")],
    judge_base_url: Annotated[str, typer.Option(help="The judge's OpenAI-compatible URL.")],
    judge_model: Annotated[str, typer.Option(help="The judge's model name.")],
    benchmarks: Annotated[
        str, typer.Option(help="Comma-separated: beavertails, wildchat, strongreject, xstest; name=FILE_OR_HUB_ID.")
    ] = "beavertails,wildchat,strongreject,xstest",
    judge: Annotated[
        str, typer.Option(help="llama-guard-3 (a served Llama Guard 3, completions API) or a safety_judge card.")
    ] = "safety_judge",
    grader_base_url: Annotated[
        str | None, typer.Option(help="URL for the StrongREJECT and XSTest cards (default: the judge's).")
    ] = None,
    grader_model: Annotated[str | None, typer.Option(help="Model for those cards (default: the judge's).")] = None,
    strongreject_judge: Annotated[str | None, typer.Option(help="Another strongreject_judge card.")] = None,
    refusal_judge: Annotated[str | None, typer.Option(help="Another refusal_judge card (XSTest).")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N prompts per benchmark.")] = None,
    output: Annotated[Path | None, typer.Option(help="Run directory (default runs/eval-safety/MODEL).")] = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="The student's reply limit.")] = 512,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight.")] = 16,
    timeout: Annotated[float, typer.Option(help="Seconds per request (a CPU-served student is slow).")] = 600.0,
    student_key_env: Annotated[
        str | None, typer.Option(help="Variable holding the student server's key (default: none is sent).")
    ] = None,
    judge_key_env: Annotated[str, typer.Option(help="Variable holding the judge's key.")] = "OPENAI_API_KEY",
    grader_key_env: Annotated[
        str | None, typer.Option(help="Variable holding the grader's key (default: the judge's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
) -> None:
    """Safety of a served student on the paper's Table 2 benchmarks, judged, with 95% intervals."""
    from aidsafe.eval.benchmarks import load_benchmarks, parse_benchmarks
    from aidsafe.eval.safety import SafetySettings, evaluate_safety
    from aidsafe.eval.safety_report import render_table
    from aidsafe.run.journal import folder_name
    from aidsafe.teacher.types import Endpoint

    for option, value in (("--student-key-env", student_key_env), ("--judge-key-env", judge_key_env),
                          ("--grader-key-env", grader_key_env)):  # fmt: skip
        if value:
            _check_key_variable(option, value)

    items = load_benchmarks(parse_benchmarks(benchmarks), limit)
    # Each endpoint gets its own key variable: a judge's OpenAI key must not travel to a student on
    # a rented host. The student gets none unless asked ("" names no variable: no key is sent).
    judge_endpoint = Endpoint(base_url=judge_base_url, model=judge_model, timeout_s=timeout, api_key_env=judge_key_env)
    settings = SafetySettings(
        student=Endpoint(base_url=base_url, model=model, timeout_s=timeout, api_key_env=student_key_env or ""),
        judge=judge_endpoint,
        grader=Endpoint(
            base_url=grader_base_url or judge_base_url,
            model=grader_model or judge_model,
            timeout_s=timeout,
            api_key_env=grader_key_env or judge_key_env,
        ),
        judge_kind=judge,
        strongreject_card=strongreject_judge,
        refusal_card=refusal_judge,
        max_tokens=max_tokens,
        concurrency=concurrency,
    )
    out = output or Path("runs/eval-safety") / folder_name(model, "student")  # `..` must not climb out
    report = run_async(evaluate_safety(items, settings, out, progress=not as_json))
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        from rich.console import Console

        console = Console()
        console.print(render_table(report, console.width))
    rejected = sum(report.rejected.values())
    if rejected:
        say(f"warning: {rejected} prompts rejected, not counted; see {out / 'rejected.jsonl'}")
    say(f"{len(report.rows)} results on {len(report.rejected)} benchmarks -> {out / 'report.json'}")


def _check_key_variable(option: str, value: str) -> None:
    """One line (without the value, which may be a pasted key) unless `value` names a variable."""
    from aidsafe.agents.settings import check_env_var_name
    from aidsafe.errors import AidsafeError

    try:
        check_env_var_name(value)
    except ValueError as exc:
        raise AidsafeError(f"{option}: {exc}") from None
