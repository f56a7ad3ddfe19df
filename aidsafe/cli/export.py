"""`aidsafe export RUN_DIR --format sft|aidsafe --output DIR`: a run as a Hugging Face dataset folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer()


@app.command("export")
def export(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory from `aidsafe generate`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Dataset folder (Parquet per format + README.md).")],
    formats: Annotated[
        list[str], typer.Option("--format", "-f", help="sft (TRL messages) or aidsafe (published columns); repeatable.")
    ] = ["sft"],  # noqa: B006 (typer reads the default)
    test_size: Annotated[
        float, typer.Option("--test-size", help="Fraction of samples in the test split, chosen by a hash of the id.")
    ] = 0.0,
    license_: Annotated[
        str | None, typer.Option("--license", help="License id for the card (e.g. cc-by-4.0); never guessed.")
    ] = None,
) -> None:
    """Export a run as Parquet configs of one dataset, with a dataset card."""
    from rich.console import Console

    from aidsafe.export import ExportRequest, export_run

    result = export_run(ExportRequest(run_dir, output, tuple(dict.fromkeys(formats)), test_size, license_))
    rows = "; ".join(
        f"{name}: " + ", ".join(f"{n} {s}" for s, n in splits.items()) for name, splits in result.configs.items()
    )
    Console(stderr=True, highlight=False).print(f"{rows} -> {result.output} (license: {result.license})")
