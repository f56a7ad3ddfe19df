"""`aidsafe pairs hard-samples`: HS-DPO pairs from sampled guard predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(help="Build preference pairs.", no_args_is_help=True)


@app.command("hard-samples")
def hard_samples(
    predictions: Annotated[
        list[Path], typer.Argument(help="Sampled predictions JSONL files (`predicts` lists); earlier files win.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory for pairs.jsonl and stats.json.")],
) -> None:
    """GuardReasoner hard-sample pairs with per-file min-max weights (methods.md, HS-DPO)."""
    from rich.console import Console

    from aidsafe.guard.mining import mine_files, write_pairs

    pairs, stats = mine_files(predictions)
    target = write_pairs(pairs, stats, output)
    Console(stderr=True).print(f"{len(pairs)} hard-sample pairs from {len(predictions)} files -> {target}")
