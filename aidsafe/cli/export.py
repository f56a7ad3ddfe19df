"""`aidsafe export RUN_DIR --format FORMAT --output DIR [--push-to-hub owner/name]` (formats: aidsafe.export.formats).

The Hub token is read here, from HF_TOKEN, and handed to the library in memory; the endpoint from
HF_ENDPOINT (huggingface_hub's own variable), so a mirror or a loopback test Hub works the same.
The benchmarks folder for decontamination comes from --benchmarks-dir or AIDSAFE_SHARED_BENCHMARKS,
and benchmark embeddings are cached under $XDG_CACHE_HOME/aidsafe (else ~/.cache/aidsafe).
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from aidsafe.terminal import say

__all__ = ["app"]

_WORKING = "filtering prompts (duplicates, benchmark contamination), writing Parquet"
_INDEX = "benchmark index, one time"
_LOG_EVERY_S = 10.0  # without a terminal: one progress line at most this often (CI logs, nohup)

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
    from aidsafe.export.benchsets import unavailable_line
    from aidsafe.export.filters import FilterSettings
    from aidsafe.export.writer import MANIFEST

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
    with _ExportProgress(console) as progress:
        result = export_run(replace(request, progress=progress.index))
    if result.filters.get("unavailable"):
        # say(): printed as is, not as rich markup.
        say(unavailable_line(len(result.filters["checked"]), result.filters["unavailable"], result.output / MANIFEST))
    rows = "; ".join(
        f"{name}: " + ", ".join(f"{n} {s}" for s, n in splits.items()) for name, splits in result.configs.items()
    )
    counts = result.filters.get("counts", {})
    if not result.filters.get("applied", True):
        say("filters: not applied to this kind of run (docs/export.md, the dataset card says why)")
    elif counts:
        dropped = ", ".join(f"{reason} {n}" for reason, n in counts.items())
        say(f"filters: {dropped} dropped (see {result.output / 'filtered.jsonl'})")
    shown = result.license or "none given: the card claims none; pass --license ID before publishing"
    say(f"{rows} -> {result.output} (license: {shown})")
    if result.commit_url:
        say(f"pushed to {push_to_hub}: {result.commit_url}")


class _ExportProgress:
    """A terminal gets a spinner while the export works and a bar while the benchmark index is
    built (minutes, the first time on a machine); a pipe or log gets a line at most every
    `_LOG_EVERY_S` seconds while the index is built, and the last one, each ending in a newline."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self._bar: Any = None
        self._task: Any = None
        self._logged = 0.0

    def __enter__(self) -> _ExportProgress:
        if self.console.is_terminal:
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeRemainingColumn

            self._bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.fields[count]}"), TimeRemainingColumn(),
                                 console=self.console, transient=True)  # fmt: skip
            self._task = self._bar.add_task(_WORKING, total=None, count="")
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def index(self, done: int, total: int) -> None:
        """filter_corpus's hook: (benchmark prompts embedded, all of them)."""
        if self._bar is not None:
            if done < total:
                count = f"{done:,}/{total:,}"
                self._bar.update(self._task, description=_INDEX, total=total, completed=done, count=count)
            else:  # the index is built: back to the spinner for the rest
                self._bar.reset(self._task, description=_WORKING, total=None, count="")
            return
        now = time.monotonic()
        if done == total or now - self._logged >= _LOG_EVERY_S:
            self._logged = now
            self.console.out(f"{_INDEX}: {done:,}/{total:,}", highlight=False)
