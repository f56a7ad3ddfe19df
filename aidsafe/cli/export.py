"""`aidsafe export RUN_DIR --format FORMAT --output DIR [--push-to-hub owner/name]` (formats: aidsafe.export.formats).

The Hub token is read here, from HF_TOKEN, and handed to the library in memory; the endpoint from
HF_ENDPOINT (huggingface_hub's own variable), so a mirror or a loopback test Hub works the same.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer()


@app.command("export")
def export(
    run_dir: Annotated[
        Path,
        typer.Argument(
            metavar="RUN_DIR",
            help="A run directory (generate, pairs, generate guardreasoner) or pairs hard-samples output.",
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Dataset folder (Parquet per format + README.md).")],
    formats: Annotated[
        list[str],
        typer.Option(
            "--format",
            "-f",
            help="Generation runs: sft, aidsafe; pairs and hard-samples: dpo; guardreasoner traces: guardreasoner; "
            "thinkguard runs: thinkguard, thinkguard-label-only. Repeatable; default: the run's first.",
        ),
    ] = [],  # noqa: B006 (typer reads the default)
    test_size: Annotated[
        float, typer.Option("--test-size", help="Fraction of samples in the test split, chosen by a hash of the id.")
    ] = 0.0,
    license_: Annotated[
        str | None, typer.Option("--license", help="License id for the card (e.g. cc-by-4.0); never guessed.")
    ] = None,
    push_to_hub: Annotated[
        str | None, typer.Option("--push-to-hub", metavar="OWNER/NAME", help="Also upload, as one commit (HF_TOKEN).")
    ] = None,
    private: Annotated[bool, typer.Option("--private", help="With --push-to-hub: create the repo private.")] = False,
    keep_beliefs: Annotated[
        bool, typer.Option("--keep-beliefs", help="dpo of a pairs run: add the ear-whisperer's belief column (audit).")
    ] = False,
    revision: Annotated[
        str | None, typer.Option("--revision", help="With --push-to-hub: the branch to commit to (created if new).")
    ] = None,
) -> None:
    """Export a run as Parquet configs of one dataset, with a dataset card."""
    from rich.console import Console

    from aidsafe.errors import AidsafeError
    from aidsafe.export import ExportRequest, HubTarget, export_run

    if push_to_hub is None and (private or revision):
        raise AidsafeError("--private and --revision go with --push-to-hub OWNER/NAME")
    hub = None
    if push_to_hub is not None:
        token, endpoint = os.environ.get("HF_TOKEN"), os.environ.get("HF_ENDPOINT")
        hub = HubTarget(push_to_hub, token=token, private=private, revision=revision, endpoint=endpoint)
    request = ExportRequest(run_dir, output, tuple(dict.fromkeys(formats)), test_size, license_, hub, keep_beliefs)
    result = export_run(request)
    rows = "; ".join(
        f"{name}: " + ", ".join(f"{n} {s}" for s, n in splits.items()) for name, splits in result.configs.items()
    )
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    console.print(f"{rows} -> {result.output} (license: {result.license})")
    if result.commit_url:
        console.print(f"pushed to {push_to_hub}: {result.commit_url}")
