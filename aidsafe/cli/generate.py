"""`aidsafe generate`, `aidsafe validate`, `aidsafe graph`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

# Top-level commands: added to the root app without a group name, so they merge into it.
app = typer.Typer()

RecipeArg = Annotated[
    str, typer.Argument(metavar="RECIPE", help="Built-in recipe name (e.g. aidsafe) or a recipe YAML path.")
]
SetOpt = Annotated[list[str], typer.Option("--set", help="Override a recipe field: key.path=value (repeatable).")]


@app.command("generate")
def generate(
    recipe: RecipeArg,
    input: Annotated[
        str, typer.Option("--input", "-i", help="Prompts: .jsonl, .csv, .parquet or a HF dataset id[:split].")
    ],
    output: Annotated[str, typer.Option("--output", "-o", help="Run directory (created; rerun to resume).")],
    base_url: Annotated[str | None, typer.Option(help="Teacher endpoint, e.g. http://localhost:8000/v1.")] = None,
    model: Annotated[str | None, typer.Option(help="Teacher model name as the endpoint serves it.")] = None,
    prompt_field: Annotated[str, typer.Option(help="Input field holding the prompt.")] = "prompt",
    limit: Annotated[int | None, typer.Option(help="Only the first N prompts.", min=1)] = None,
    concurrency: Annotated[int | None, typer.Option(help="Teacher calls in flight at most.", min=1)] = None,
    set_: SetOpt = [],  # noqa: B006 (typer reads the default)
    retry_rejected: Annotated[
        bool, typer.Option(help="Also retry samples rejected for non-transient reasons.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show the live progress bar.")] = True,
    shard: Annotated[
        str | None, typer.Option(help="K/N: only the inputs whose id hashes to K of N (0 <= K < N); see `merge`.")
    ] = None,
    label_task: Annotated[
        str | None,
        typer.Option(
            "--label-task",
            metavar="TASK",
            help="guardreasoner recipes: the task (request, completion or response) that a bare gold label "
            "(harmful, unharmful, refusal, compliance) in --input is for; Answers: blocks need none.",
        ),
    ] = None,
) -> None:
    """Generate a corpus: AIDSAFE chain-of-thought from prompts, GuardReasoner traces from labelled rows,
    or ThinkGuard critiques from BeaverTails-shaped rows."""
    from rich.console import Console

    from aidsafe.errors import AidsafeError
    from aidsafe.generation.runner import GenerateRequest
    from aidsafe.generation.runner import generate as run

    if not output.strip():  # Path("") is ".": it would silently write into the current directory
        raise AidsafeError("--output: empty path; expected the run directory to create or resume")
    request = GenerateRequest(
        recipe=recipe,
        input=input,
        output=Path(output),
        prompt_field=prompt_field,
        base_url=base_url,
        model=model,
        overrides=set_,
        limit=limit,
        concurrency=concurrency,
        retry_rejected=retry_rejected,
        progress=progress,
        shard=shard,
        label_task=label_task,
    )
    if label_task is not None:
        from aidsafe.guard.traces import is_trace_recipe as reads_gold_labels

        if not reads_gold_labels(recipe):  # said rather than ignored: no other recipe reads gold labels
            raise AidsafeError("--label-task: only for guardreasoner recipes (kind: guardreasoner), whose input rows "
                               "may carry one bare gold label each")  # fmt: skip
    from aidsafe.guard.critiques import generate_critiques, is_critique_recipe
    from aidsafe.guard.traces import generate_traces, is_trace_recipe

    # The recipe's `kind` picks the pipeline: `kind: guardreasoner` traces, `kind: thinkguard`
    # critiques, none: the AIDSAFE graph.
    guard_data = (
        generate_traces if is_trace_recipe(recipe) else generate_critiques if is_critique_recipe(recipe) else None
    )
    if guard_data is not None and shard:
        raise AidsafeError("--shard: only AIDSAFE generation runs shard so far; split the labelled input instead")
    stats = (guard_data or run)(request, env=dict(os.environ))
    Console(stderr=True).print(
        f"{stats['samples']} samples, {stats['rejected']} rejected, {stats['pending']} pending "
        f"-> {Path(output) / 'samples.jsonl'}"
    )


@app.command("merge")
def merge(
    shards: Annotated[
        list[Path], typer.Argument(metavar="SHARD_DIR...", help="Run directories of `generate --shard`.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The merged run directory (new).")],
) -> None:
    """Combine the shard runs of one recipe into one run directory (stats recomputed)."""
    from rich.console import Console

    from aidsafe.generation.runner import merge as run

    result, stats = run(shards, output)
    console = Console(stderr=True)
    if result.missing_shards:
        console.print(f"warning: shards {', '.join(result.missing_shards)} not given; their inputs are pending")
    if result.duplicates:
        console.print(f"warning: {result.duplicates} ids were in more than one input; the first was kept")
    console.print(f"{stats['samples']} samples, {stats['rejected']} rejected -> {output / 'samples.jsonl'}")


launch = typer.Typer(help="Run one generation as shards on a cluster.", no_args_is_help=True)
app.add_typer(launch, name="launch")


@launch.command("ray")
def launch_ray(
    recipe: RecipeArg,
    input: Annotated[
        str, typer.Option("--input", "-i", help="Prompts, visible from every node (shared path or Hub id).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Root folder: shard-K-of-N/ and merged/ go in it.")],
    shards: Annotated[int, typer.Option(help="How many shards (Ray tasks).", min=1)],
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address (auto, ray://...); none: a local Ray.")
    ] = None,
    base_url: Annotated[str | None, typer.Option(help="Teacher endpoint.")] = None,
    model: Annotated[str | None, typer.Option(help="Teacher model name.")] = None,
    prompt_field: Annotated[str, typer.Option(help="Input field holding the prompt.")] = "prompt",
    set_: SetOpt = [],  # noqa: B006
) -> None:
    """Generate on Ray: one `generate --shard K/N` per task, then `merge` into OUTPUT/merged."""
    from rich.console import Console

    from aidsafe.generation.ray_launch import launch_on_ray
    from aidsafe.generation.runner import GenerateRequest

    request = GenerateRequest(recipe=recipe, input=input, output=output, prompt_field=prompt_field,
                              base_url=base_url, model=model, overrides=set_)  # fmt: skip
    stats = launch_on_ray(request, shards, env=dict(os.environ), address=address)
    Console(stderr=True).print(f"{stats['samples']} samples, {stats['rejected']} rejected -> {output / 'merged'}")


@app.command("validate")
def validate(recipe: RecipeArg, set_: SetOpt = []) -> None:  # noqa: B006
    """Check a recipe, its policies, agent cards and templates, with no LLM call."""
    from aidsafe.generation.pipeline import load_pipeline
    from aidsafe.guard.critiques import is_critique_recipe, load_critique_recipe
    from aidsafe.guard.traces import is_trace_recipe, load_trace_recipe
    from aidsafe.pairs.recipe import is_pairs_recipe

    if is_trace_recipe(recipe):
        loaded = load_trace_recipe(recipe, set_)
        typer.echo(
            f"ok: recipe {loaded.recipe.name} ({loaded.recipe_hash}); guardreasoner traces, card {loaded.card.name}"
        )
        return
    if is_critique_recipe(recipe):
        critiques = load_critique_recipe(recipe, set_)
        loaded = critiques.loaded
        typer.echo(
            f"ok: recipe {loaded.recipe.name} ({loaded.recipe_hash}); thinkguard critiques, card {loaded.card.name}, "
            f"policies {critiques.policies.id} ({len(critiques.policies.policies)})"
        )
        return
    if is_pairs_recipe(recipe):
        from aidsafe.pairs.recipe import load_pairs_pipeline

        pairs = load_pairs_pipeline(recipe, set_)
        roles = ", ".join(f"{role}: {agent.name}" for role, agent in pairs.agents.items())
        typer.echo(
            f"ok: recipe {pairs.recipe.name} ({pairs.recipe_hash}); pairs, policies {pairs.policies.id}; {roles}"
        )
        return

    pipeline = load_pipeline(recipe, set_)
    roles = ", ".join(
        f"{role}: {'/'.join(a.name for a in agents)}" for role, agents in pipeline.agents.items() if agents
    )
    typer.echo(
        f"ok: recipe {pipeline.recipe.name} ({pipeline.recipe_hash}); policies {pipeline.policies.id} "
        f"v{pipeline.policies.version} ({len(pipeline.policies.policies)}); {roles}"
    )


@app.command("graph")
def graph(recipe: RecipeArg, set_: SetOpt = []) -> None:  # noqa: B006
    """Print the recipe's graph as Mermaid."""
    from aidsafe.generation.graph import build_graph
    from aidsafe.generation.pipeline import load_pipeline

    pipeline = load_pipeline(recipe, set_)
    roles = [role for role, agents in pipeline.agents.items() if agents]
    typer.echo(build_graph(dedup=pipeline.recipe.dedup.enabled, roles=roles).get_graph().draw_mermaid())
