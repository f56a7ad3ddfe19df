"""`aidsafe pairs`: belief-augmented preference pairs from a generation run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from aidsafe.cli.generate import RecipeArg, SetOpt

__all__ = ["app"]

app = typer.Typer()  # merged into the root app, like generate


@app.command("pairs")
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
    from rich.console import Console

    from aidsafe.errors import AidsafeError
    from aidsafe.pairs.runner import PairsRequest, make_pairs

    if not output.strip():
        raise AidsafeError("--output: empty path; expected the run directory to create or resume")
    request = PairsRequest(recipe=recipe, input=Path(input), output=Path(output), base_url=base_url, model=model,
                           overrides=set_, limit=limit, concurrency=concurrency, retry_rejected=retry_rejected,
                           progress=progress)  # fmt: skip
    stats = make_pairs(request, env=dict(os.environ))
    Console(stderr=True).print(
        f"{stats['pairs']} pairs, {stats['no_separation']} no_separation, {stats['rejected']} rejected, "
        f"{stats['pending']} pending -> {Path(output) / 'samples.jsonl'}"
    )
