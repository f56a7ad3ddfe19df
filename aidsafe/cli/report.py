"""`aidsafe report`, `aidsafe show`, `aidsafe schema`: looking at runs and at file formats."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer()

RunArg = Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory (or a predict output .jsonl).")]


@app.command("report")
def report(
    run_dir: RunArg,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="The HTML file [RUN_DIR/report.html].")] = None,
    png: Annotated[
        Path | None, typer.Option("--png", metavar="DIR", help="Also write each plot as DIR/NAME.png.")
    ] = None,
    max_samples: Annotated[
        int, typer.Option("--max-samples", min=0, help="Records embedded in the sample browser (plots count all).")
    ] = 2000,
) -> None:
    """Write one self-contained HTML page: summary, plots and a sample browser."""
    from rich.console import Console
    from rich.text import Text

    from aidsafe.report import write_report
    from aidsafe.terminal import printable, say

    target = output or (run_dir / "report.html" if run_dir.is_dir() else run_dir.with_suffix(".html"))
    # Text, not a str: rich would read a path holding `[/x]` as markup (and crash on it).
    with Console(stderr=True).status(Text(printable(f"reading {run_dir}"))):
        data = write_report(run_dir, target, png, max_samples)
    say(f"{data.total_samples} samples, {data.total_rejected} rejected, {len(data.plots)} plots -> {target}")


@app.command("show")
def show(
    run_dir: RunArg,
    sample_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="A sample id; none: the first samples.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Rows of the table without an ID.")] = 20,
) -> None:
    """Print one sample (as the report shows it), or a table of the first samples."""
    from rich.console import Console

    from aidsafe.report import first_views, sample_by_id
    from aidsafe.report.terminal import print_sample, print_table

    console = Console(highlight=False)
    if sample_id is None:
        view, samples, total = first_views(run_dir, limit)
        print_table(console, view, samples, total)
    else:
        print_sample(console, sample_by_id(run_dir, sample_id)[1])


@app.command("schema")
def schema(
    name: Annotated[
        str | None, typer.Argument(metavar="KIND", help="recipe, pairs-recipe, train-recipe, policies, card, ...")
    ] = None,
    write: Annotated[
        Path | None, typer.Option("--write", metavar="DIR", help="Write every schema as DIR/KIND.schema.json.")
    ] = None,
) -> None:
    """Print the JSON Schema of a YAML file kind (for editors), or write them all."""
    from aidsafe.config.schemas import SCHEMAS, schema_text, write_schemas

    if write is not None:
        for path in write_schemas(write):
            typer.echo(str(path))
        return
    if name is None:
        typer.echo("\n".join(SCHEMAS))
        return
    typer.echo(schema_text(name), nl=False)
