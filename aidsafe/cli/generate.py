"""`aidsafe generate`, `aidsafe validate`, `aidsafe check`, `aidsafe graph`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from aidsafe.check import DEFAULT_INPUT_TOKENS
from aidsafe.terminal import say

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
    gold_field: Annotated[
        str | None,
        typer.Option(
            "--gold-field",
            metavar="NAME",
            help="policy-guard recipes: the input field holding a gold verdict (allowed or violation; empty: "
            "none, two judges decide). Default: gold, where the rows have it.",
        ),
    ] = None,
) -> None:
    """Generate a corpus: AIDSAFE chain-of-thought from prompts, GuardReasoner traces from labelled rows,
    ThinkGuard critiques from BeaverTails-shaped rows, or policy-guard data from rows judged against a policy."""

    from aidsafe.errors import AidsafeError
    from aidsafe.generation.runner import GenerateRequest
    from aidsafe.kinds import load_object, recipe_for

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
        gold_field=gold_field,
    )
    # The recipe's kind picks the pipeline (aidsafe.kinds): AIDSAFE, GuardReasoner traces, ThinkGuard
    # critiques; a pairs or training recipe is refused with the command that runs it.
    kind = recipe_for(recipe, "aidsafe generate")
    if label_task is not None and kind.name != "guardreasoner":  # said rather than ignored
        raise AidsafeError("--label-task: only for guardreasoner recipes (kind: guardreasoner), whose input rows "
                           "may carry one bare gold label each")  # fmt: skip
    if gold_field is not None and kind.name != "policy-guard":
        raise AidsafeError("--gold-field: only for policy-guard recipes (kind: policy-guard), whose rows may carry "
                           "a gold verdict")  # fmt: skip
    if shard and not kind.shards:
        raise AidsafeError(f"--shard: only generation runs shard, not {kind.name} runs; split the input instead")
    stats = load_object(kind.run)(request, env=dict(os.environ))
    say(
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

    from aidsafe.generation.runner import merge as run

    result, stats = run(shards, output)
    if result.missing_shards:
        say(f"warning: shards {', '.join(result.missing_shards)} not given; their inputs are pending")
    if result.duplicates:
        say(f"warning: {result.duplicates} ids were in more than one input; the first was kept")
    say(f"{stats['samples']} samples, {stats['rejected']} rejected -> {output / 'samples.jsonl'}")


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

    from aidsafe.errors import AidsafeError
    from aidsafe.generation.ray_launch import launch_on_ray
    from aidsafe.generation.runner import GenerateRequest
    from aidsafe.kinds import recipe_for

    kind = recipe_for(recipe, "aidsafe generate")
    if not kind.shards:
        raise AidsafeError(f"{recipe}: only generation runs shard, not {kind.name} runs; run `aidsafe generate`")
    request = GenerateRequest(recipe=recipe, input=input, output=output, prompt_field=prompt_field,
                              base_url=base_url, model=model, overrides=set_)  # fmt: skip
    stats = launch_on_ray(request, shards, env=dict(os.environ), address=address)
    say(f"{stats['samples']} samples, {stats['rejected']} rejected -> {output / 'merged'}")


@app.command("validate")
def validate(recipe: RecipeArg, set_: SetOpt = []) -> None:  # noqa: B006
    """Check a recipe of any kind (generation, pairs, guard data, training), its policies, agent cards
    and templates, with no LLM call; or a policy set file on its own (rules and cases)."""
    from aidsafe.agents.policies import describe_policies, is_policy_file, load_policies
    from aidsafe.cli.recipes import describe_recipe
    from aidsafe.kinds import load_object, recipe_kind

    if is_policy_file(recipe):
        typer.echo(f"ok: {describe_policies(load_policies(recipe))}")
        return
    kind = recipe_kind(recipe)
    loaded = load_object(kind.load)(recipe, set_)
    typer.echo(f"ok: {load_object(kind.describe)(loaded) if kind.describe else describe_recipe(loaded, kind.name)}")


@app.command("check")
def check(
    recipe: RecipeArg,
    base_url: Annotated[str | None, typer.Option(help="Teacher endpoint, e.g. http://localhost:8000/v1.")] = None,
    model: Annotated[str | None, typer.Option(help="Teacher model name as the endpoint serves it.")] = None,
    set_: SetOpt = [],  # noqa: B006 (typer reads the default)
    input_tokens: Annotated[
        int,
        typer.Option(min=1, help="Tokens to allow for each text a run takes from its input (a prompt, a response)."),
    ] = DEFAULT_INPUT_TOKENS,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the table.")] = False,
) -> None:
    """Check a recipe's teacher endpoints before a run: every slot's model is served, its key accepted,
    it answers and applies the structured-output schema, the longest request fits the served context, and
    the system messages let the prefix cache work. Exit code 0 only when every check holds."""
    from aidsafe.check import CheckRequest, check_recipe

    request = CheckRequest(recipe, base_url, model, set_, input_tokens)
    report = check_recipe(request, env=dict(os.environ))
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        from rich.console import Console

        console = Console()
        console.print(report.table(console.width))
    failures = report.failure_lines()
    for line in failures:
        say(f"failed: {line}")
    slots = len(report.slots)
    if failures:
        failing = sum(not slot.ok for slot in report.slots)
        say(f"{len(failures)} failure{'s' * (len(failures) != 1)} in {failing} of {slots} slots of {recipe}")
        raise typer.Exit(1)
    say(f"ok: every check holds for the {slots} slot{'s' * (slots != 1)} of {recipe}")


@app.command("graph")
def graph(recipe: RecipeArg, set_: SetOpt = []) -> None:  # noqa: B006
    """Print the recipe's graph as Mermaid (AIDSAFE generation and pairs recipes)."""
    from aidsafe.errors import AidsafeError
    from aidsafe.kinds import KINDS, load_object, recipe_kind

    kind = recipe_kind(recipe)
    if kind.graph is None:
        drawn = " and ".join(k.name for k in KINDS.values() if k.graph)
        raise AidsafeError(f"{recipe} is a {kind.name} recipe: it runs no graph; `aidsafe graph` draws {drawn} recipes")
    loaded = load_object(kind.load)(recipe, set_)
    typer.echo(load_object(kind.graph)(loaded).get_graph().draw_mermaid())
