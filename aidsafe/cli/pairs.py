"""`aidsafe pairs`: preference pairs.

`aidsafe pairs RECIPE -i RUN_DIR ...` makes belief-augmented pairs from a generation run (the
`make` command; its name may be left out), `aidsafe pairs hard-samples PREDICTIONS...` mines
GuardReasoner hard-sample pairs from sampled guard predictions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from aidsafe.cli.generate import RecipeArg, SetOpt
from aidsafe.terminal import say

__all__ = ["app"]


class _RecipeOrCommand(TyperGroup):
    """A first argument that names no subcommand is a recipe for `make`: the issue's
    `aidsafe pairs aidsafe-pairs -i ...` and `aidsafe pairs hard-samples ...` both hold."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            return "make", self.commands["make"], args
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=_RecipeOrCommand,
    help=(
        "Build preference pairs: `pairs RECIPE -i RUN_DIR` (make, from a generation run) or `pairs hard-samples FILES`."
    ),
    no_args_is_help=True,
)


@app.command("make")
def pairs(
    recipe: RecipeArg,
    input: Annotated[str, typer.Option("--input", "-i", help="A generation run directory (its samples are chosen).")],
    output: Annotated[str, typer.Option("--output", "-o", help="Pairs run directory (created; rerun to resume).")],
    base_url: Annotated[str | None, typer.Option(help="Teacher endpoint, e.g. http://localhost:8000/v1.")] = None,
    model: Annotated[str | None, typer.Option(help="Teacher model name as the endpoint serves it.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N samples.", min=1)] = None,
    concurrency: Annotated[int | None, typer.Option(help="Teacher calls in flight at most.", min=1)] = None,
    set_: SetOpt = [],  # noqa: B006 (typer reads the default)
    retry_rejected: Annotated[
        bool, typer.Option(help="Also retry samples rejected for non-transient reasons (no_separation too).")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show the live progress bar.")] = True,
) -> None:
    """Make DPO pairs: an ear-whisperer steers a rejected side until an LLM judge separates it."""

    from aidsafe.errors import AidsafeError
    from aidsafe.kinds import load_object, recipe_for
    from aidsafe.pairs.runner import PairsRequest

    if not output.strip():
        raise AidsafeError("--output: empty path; expected the run directory to create or resume")
    kind = recipe_for(recipe, "aidsafe pairs make")  # a generation recipe here says to use `aidsafe generate`
    request = PairsRequest(recipe=recipe, input=Path(input), output=Path(output), base_url=base_url, model=model,
                           overrides=set_, limit=limit, concurrency=concurrency, retry_rejected=retry_rejected,
                           progress=progress)  # fmt: skip
    stats = load_object(kind.run)(request, env=dict(os.environ))
    say(
        f"{stats['pairs']} pairs, {stats['no_separation']} no_separation, {stats['rejected']} rejected, "
        f"{stats['pending']} pending -> {Path(output) / 'samples.jsonl'}"
    )


@app.command("hard-samples")
def hard_samples(
    predictions: Annotated[
        list[Path], typer.Argument(help="Sampled predictions JSONL files (`predicts` lists); earlier files win.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory for pairs.jsonl and stats.json.")],
) -> None:
    """GuardReasoner hard-sample pairs (HS-DPO) with per-file min-max weights."""

    from aidsafe.guard.mining import mine_files, write_pairs

    pairs, stats = mine_files(predictions)
    target = write_pairs(pairs, stats, output)
    unparseable = sum(counts.get("unparseable_samples", 0) for counts in stats["files"].values())
    say(
        f"{len(pairs)} hard-sample pairs from {len(predictions)} files ({unparseable} sampled outputs unparseable) "
        f"-> {target}"
    )
