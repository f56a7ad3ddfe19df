"""`aidsafe export RUN_DIR --format FORMAT --output DIR [--push-to-hub owner/name]` (formats: aidsafe.export.formats).

The Hub token is read here, from HF_TOKEN, and handed to the library in memory; the endpoint from
HF_ENDPOINT (huggingface_hub's own variable), so a mirror or a loopback test Hub works the same.
The benchmarks folder for decontamination comes from --benchmarks-dir or AIDSAFE_SHARED_BENCHMARKS,
and benchmark embeddings are cached under $XDG_CACHE_HOME/aidsafe (else ~/.cache/aidsafe).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from aidsafe.terminal import say

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
    dedup: Annotated[
        bool, typer.Option("--dedup/--no-dedup", help="Drop exact and near-duplicate prompts (the first stays).")
    ] = True,
    near_dup_threshold: Annotated[
        float, typer.Option("--near-dup-threshold", help="Cosine similarity at which a prompt is a near-duplicate.")
    ] = 0.95,
    decontaminate: Annotated[
        bool,
        typer.Option("--decontaminate/--no-decontaminate", help="Drop prompts found in evaluation benchmarks."),
    ] = True,
    contamination_threshold: Annotated[
        float, typer.Option("--contamination-threshold", help="Cosine similarity to a benchmark prompt that drops.")
    ] = 0.9,
    decontaminate_against: Annotated[
        list[str],
        typer.Option(
            "--decontaminate-against", metavar="FILE_OR_HUB_ID", help="Another benchmark to check; repeatable."
        ),
    ] = [],  # noqa: B006 (typer reads the default)
    benchmarks_dir: Annotated[
        Path | None,
        typer.Option("--benchmarks-dir", help="Folder with guardreasoner/0_*.json [env AIDSAFE_SHARED_BENCHMARKS]."),
    ] = None,
) -> None:
    """Export a run as Parquet configs of one dataset, with a dataset card."""
    from rich.console import Console

    from aidsafe.errors import AidsafeError
    from aidsafe.export import ExportRequest, HubTarget, export_run
    from aidsafe.export.filters import FilterSettings

    if push_to_hub is None and (private or revision):
        raise AidsafeError("--private and --revision go with --push-to-hub OWNER/NAME")
    hub = None
    if push_to_hub is not None:
        token, endpoint = os.environ.get("HF_TOKEN"), os.environ.get("HF_ENDPOINT")
        hub = HubTarget(push_to_hub, token=token, private=private, revision=revision, endpoint=endpoint)
    shared = benchmarks_dir or os.environ.get("AIDSAFE_SHARED_BENCHMARKS")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aidsafe"
    filters = FilterSettings(
        dedup=dedup,
        near_dup_threshold=near_dup_threshold,
        decontaminate=decontaminate,
        contamination_threshold=contamination_threshold,
        decontaminate_against=tuple(decontaminate_against),
        benchmarks_dir=Path(shared) if shared else None,
        cache_dir=cache,
    )
    request = ExportRequest(
        run_dir, output, tuple(dict.fromkeys(formats)), test_size, license_, hub, keep_beliefs, filters
    )
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    # A spinner on a terminal (encoding a large corpus takes minutes); nothing in a pipe or a log.
    with console.status("filtering prompts (duplicates, benchmark contamination), writing Parquet ..."):
        result = export_run(request)
    rows = "; ".join(
        f"{name}: " + ", ".join(f"{n} {s}" for s, n in splits.items()) for name, splits in result.configs.items()
    )
    if result.filters.get("unavailable"):
        # Not rich markup: `owner/name:train:` would otherwise print as an emoji.
        line = "warning: decontamination skipped these default benchmark sets: " + "; ".join(
            result.filters["unavailable"]
        )
        say(line)
    counts = result.filters.get("counts", {})
    if not result.filters.get("applied", True):
        say("filters: not applied (this kind of run holds classifier inputs, not user prompts)")
    elif counts:
        dropped = ", ".join(f"{reason} {n}" for reason, n in counts.items())
        say(f"filters: {dropped} dropped (see {result.output / 'filtered.jsonl'})")
    shown = result.license or "none given: the card claims none; pass --license ID before publishing"
    say(f"{rows} -> {result.output} (license: {shown})")
    if result.commit_url:
        say(f"pushed to {push_to_hub}: {result.commit_url}")
