"""`aidsafe predict ...`: run a served model over a benchmark (resumable)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from aidsafe.cli.evaluate import choose
from aidsafe.errors import AidsafeError
from aidsafe.run.loop import run_async
from aidsafe.terminal import say

__all__ = ["app"]

_FORMATS = ("guardreasoner", "thinkguard", "policy")
_RENDERINGS = ("generic", "harmony")

app = typer.Typer(help="Run a served model over a benchmark.", no_args_is_help=True)


@app.command("guard")
def predict_guard(
    benchmark: Annotated[
        str,
        typer.Option(
            help="Benchmark: a GuardReasoner .json, a .jsonl, or a HF id owner/name[:config]:split; with --format "
            "policy: dynabench, cosapien, a policy-guard run directory (its held-out rows), or a file in their shapes."
        ),
    ],
    base_url: Annotated[str, typer.Option(help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1.")],
    model: Annotated[str, typer.Option(help="Model name as the endpoint serves it.")],
    output: Annotated[Path, typer.Option(help="Predictions JSONL (rerun the same command to resume).")],
    format: Annotated[
        str, typer.Option("--format", help="guardreasoner, thinkguard, or policy (each row brings its own policy).")
    ] = "guardreasoner",
    rendering: Annotated[
        str, typer.Option(help="With --format policy: generic, or harmony (gpt-oss-safeguard's policy prompt).")
    ] = "generic",
    policies: Annotated[
        str, typer.Option(help="ThinkGuard's category block: a policy set name or YAML path.")
    ] = "beavertails",
    concurrency: Annotated[int, typer.Option(help="Requests in flight at most.", min=1)] = 16,
    progress: Annotated[bool, typer.Option(help="Show the live progress bar.")] = True,
    samples: Annotated[int, typer.Option(help="Outputs per row (HS-DPO mining: 4); rows get `predicts`.", min=1)] = 1,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (0: greedy; the paper samples 0.7).")] = 0.0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling (the paper samples 0.95).")] = 1.0,
    limit: Annotated[int | None, typer.Option(help="Only the first N rows of the benchmark.", min=1)] = None,
) -> None:
    """Predict with a guard model served by vLLM (greedy; completions endpoint, chat for --format policy); resumable."""

    from aidsafe.agents.policies import load_policies
    from aidsafe.guard.predict import check_sampling, load_benchmark
    from aidsafe.guard.predict import predict_guard as run

    choose(format, _FORMATS, "--format")
    choose(rendering, _RENDERINGS, "--rendering")
    check_sampling(format, samples, temperature, top_p)
    if format == "policy":
        return _predict_policy(benchmark, base_url, model, output, rendering, concurrency, progress, limit,
                               temperature, top_p)  # fmt: skip
    if rendering != "generic":
        raise AidsafeError("--rendering is for --format policy")
    examples = load_benchmark(benchmark)[:limit]
    policy_set = load_policies(policies) if format == "thinkguard" else None
    stats = run_async(
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
            samples=samples,
            temperature=temperature,
            top_p=top_p,
        )
    )
    say(f"{stats['done']} predicted, {stats['skipped']} already done -> {output}")


def _predict_policy(
    benchmark: str, base_url: str, model: str, output: Path, rendering: str, concurrency: int, progress: bool,
    limit: int | None, temperature: float, top_p: float,
) -> None:  # fmt: skip
    from aidsafe.guard.policy_bench import load_policy_benchmark
    from aidsafe.guard.policy_predict import predict_policy_guard

    examples = load_policy_benchmark(benchmark)[:limit]
    stats = run_async(
        predict_policy_guard(examples, output, base_url, model, rendering=rendering, concurrency=concurrency,
                             api_key=os.environ.get("OPENAI_API_KEY"), progress=progress, temperature=temperature,
                             top_p=top_p)
    )  # fmt: skip
    say(f"{stats['done']} predicted, {stats['skipped']} already done -> {output}")
