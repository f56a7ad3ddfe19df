"""`aidsafe export`: a run directory as a Hugging Face dataset folder (Parquet + dataset card).

Layout of the folder (what `datasets.load_dataset(DIR)` and the Hub read):

    README.md                              the card; its YAML lists each format as a config
    croissant.json                         the same in Croissant 1.1 with its RAI vocabulary
    export.json                            which run this is, and each config's row counts
    filtered.jsonl                         the samples the corpus filters left out, with reasons
    <format>/train-00000-of-00001.parquet  one folder per format (config)
    <format>/test-00000-of-00001.parquet   only with --test-size > 0 and rows to put there

Exporting another format of the same run into the same folder adds a config and keeps the
others; a folder that holds anything else is refused rather than mixed. The folder is built
beside its place and moved there whole (aidsafe.export.staging): an export that fails leaves
nothing, and a re-export that fails leaves the previous export as it was.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aidsafe.errors import AidsafeError
from aidsafe.export.card import SHARD_FILE
from aidsafe.export.croissant import CROISSANT, write_croissant
from aidsafe.export.filters import FilterSettings, filter_corpus
from aidsafe.export.formats import DEFAULT_COT_TEMPLATE, FORMATS, features_of, record_in_test_split
from aidsafe.export.hub import HubTarget, check_hub_target, push_export
from aidsafe.export.kinds import check_formats, hard_samples_hash, iter_records
from aidsafe.export.staging import staged
from aidsafe.kinds import KINDS, run_kind
from aidsafe.run.identity import file_digest
from aidsafe.run.jsonl import iter_jsonl, write_atomic
from aidsafe.run.lock import run_lock

__all__ = ["ExportRequest", "ExportResult", "RunInfo", "export_run", "read_run_info"]

MANIFEST = "export.json"
FILTERED = "filtered.jsonl"  # the samples the corpus filters dropped, each with its reason
# Rows held in memory before a Parquet shard is written: bounded memory on runs of millions.
SHARD_ROWS = 20_000
_LICENSE_ID = re.compile(r"[a-z0-9][a-z0-9.+-]*")  # the Hub's ids: lowercase, no spaces


@dataclass(frozen=True)
class ExportRequest:
    run_dir: Path
    output: Path
    formats: tuple[str, ...] = ()  # none: the run's first format (aidsafe.kinds: the kind's `export`)
    test_size: float = 0.0
    license: str | None = None
    push_to_hub: HubTarget | None = None
    keep_beliefs: bool = False  # dpo of a pairs run: a `belief` column (for audit; dual use)
    filters: FilterSettings = field(default_factory=FilterSettings)
    # Hears (done, total) while the benchmark index is built (aidsafe.export.filters.Progress).
    progress: Callable[[int, int], None] | None = field(default=None, compare=False)


@dataclass
class RunInfo:
    """What the card says about the run: its recipe, hash and counters, read from the run directory."""

    path: Path
    recipe_hash: str
    recipe: dict[str, Any]
    stats: dict[str, Any]
    kind: str = "generation"  # aidsafe.kinds

    @property
    def records_path(self) -> Path:
        return self.path / (KINDS[self.kind].records or "samples.jsonl")


@dataclass
class ExportResult:
    output: Path
    configs: dict[str, dict[str, int]] = field(default_factory=dict)  # format -> split -> rows
    license: str | None = None  # None: none was given, and the card claims none
    commit_url: str | None = None  # with --push-to-hub
    filters: dict[str, Any] = field(default_factory=dict)  # FilterReport.summary(): counts, sets checked


def read_run_info(run_dir: Path) -> RunInfo:
    """The run's identity and counters; refuses, in one line, a folder no aidsafe stage wrote."""
    kind = run_kind(run_dir)
    spec = KINDS.get(kind) if kind is not None else None
    if spec is None or spec.records is None or spec.output_file or not (run_dir / spec.records).is_file():
        made = ", ".join(f"`{k.command}` ({k.records})" for k in KINDS.values() if k.export)
        raise AidsafeError(f"{run_dir}: not a run directory that exports; expected the output of {made}")
    if spec.recipe is None and not (run_dir / "run.json").is_file():
        return _recipeless_info(run_dir, spec.name, run_dir / spec.records)
    parsed = {}
    for name, loader in (("run.json", json.loads), ("recipe.yaml", yaml.safe_load), ("stats.json", json.loads)):
        path = run_dir / name
        try:
            value = loader(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AidsafeError(f"{path}: missing; the run directory is incomplete (rerun `{spec.command}`)") from None
        except (ValueError, yaml.YAMLError) as exc:
            raise AidsafeError(f"{path}: not valid {name.rsplit('.', 1)[1].upper()} ({exc})".splitlines()[0]) from None
        if not isinstance(value, dict):
            raise AidsafeError(f"{path}: expected a mapping, as aidsafe writes it")
        parsed[name] = value
    recipe_hash = parsed["run.json"].get("recipe_hash")
    if not isinstance(recipe_hash, str):
        raise AidsafeError(f"{run_dir / 'run.json'}: key 'recipe_hash' missing or not a string")
    return RunInfo(run_dir, recipe_hash, parsed["recipe.yaml"], parsed["stats.json"], spec.name)


def _recipeless_info(run_dir: Path, kind: str, records: Path) -> RunInfo:
    """A stage without a recipe (hard-sample mining): its identity is its records' content."""
    path, command = run_dir / "stats.json", KINDS[kind].command
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AidsafeError(f"{path}: missing; expected the stats.json `{command}` writes") from None
    except ValueError as exc:
        raise AidsafeError(f"{path}: not valid JSON ({exc})".splitlines()[0]) from None
    if not isinstance(stats, dict):
        raise AidsafeError(f"{path}: expected a mapping, as `{command}` writes it")
    return RunInfo(run_dir, hard_samples_hash(records), {}, stats, kind)


def export_run(request: ExportRequest) -> ExportResult:
    """Write the requested formats of a run as configs of one dataset folder, with its card; push it
    to the Hub as one commit when `push_to_hub` names a repo. The run is locked while it is read
    (aidsafe.run.lock): a run still being written is refused, not exported half done."""
    run_dir = Path(request.run_dir)
    if not run_dir.is_dir():
        return _export_run(request)  # read_run_info says what is wrong with it
    with run_lock(run_dir, what="exporting", reader=True):
        return _export_run(request)


def _export_run(request: ExportRequest) -> ExportResult:
    from aidsafe.export.card import write_card

    unknown = [f for f in request.formats if f not in FORMATS]
    if unknown:
        raise AidsafeError(f"--format {', '.join(unknown)}: expected one of {', '.join(FORMATS)}")
    if not (0.0 <= request.test_size < 1.0) or math.isnan(request.test_size):
        raise AidsafeError(f"--test-size {request.test_size}: expected a fraction >= 0 and < 1")
    run = read_run_info(Path(request.run_dir))
    # No format asked: the run's first (sft, dpo, guardreasoner); one that does not fit is refused.
    formats = request.formats or KINDS[run.kind].export[:1]
    check_formats(run.path, run.kind, formats or ("(none)",))
    if request.keep_beliefs and not (run.kind == "pairs" and "dpo" in formats):
        raise AidsafeError(f"--keep-beliefs: goes with --format dpo of a pairs run; {run.path} is a {run.kind} run")
    output = Path(request.output)
    stored = _existing_export(output, run.recipe_hash)
    configs = dict(stored.get("configs", {}))
    kept = [name for name in configs if name not in formats]
    if kept and stored.get("test_size") != request.test_size:
        raise AidsafeError(
            f"{output}: its configs {', '.join(kept)} were split with --test-size {stored.get('test_size')}; "
            "use the same, so every config splits alike, or a new --output"
        )
    # Kinds whose records carry the user's prompt; guard traces and hard-sample pairs hold
    # classifier inputs (the instruction text would make every row a near-duplicate).
    filtered = KINDS[run.kind].filtered
    settings = request.filters if filtered else FilterSettings(dedup=False, decontaminate=False)
    settings.check()
    if kept and stored.get("filters", {}).get("settings") != settings.decides():
        raise AidsafeError(
            f"{output}: its configs {', '.join(kept)} were filtered with other settings "
            f"({stored.get('filters', {}).get('settings')}); use the same filter flags, so every config "
            "holds the same samples, or a new --output"
        )
    # A config added later keeps the license the folder was exported with.
    license_ = request.license or _recipe_license(run) or stored.get("license")
    if license_ is not None and not _LICENSE_ID.fullmatch(license_):
        raise AidsafeError(f"--license {license_}: expected a Hub license id such as cc-by-4.0, mit or apache-2.0")
    if request.push_to_hub is not None:
        check_hub_target(request.push_to_hub, license_)
    # Decided once, by sample id, before any config is written: every format drops the same samples.
    samples = [(r["id"], r["prompt"]) for r in iter_records(run.records_path, run.kind)] if filtered else []
    report = filter_corpus(samples, settings, progress=request.progress)
    if kept and _filtered_ids(output) != set(report.dropped):
        # Same flags, yet other samples go (a benchmark file changed, another --benchmarks-dir):
        # the configs kept would hold other samples than the new one.
        raise AidsafeError(
            f"{output}: its configs {', '.join(kept)} left out other samples than these filters do now "
            f"({output / FILTERED}); re-export every format together, or use a new --output"
        )
    if samples and len(report.dropped) >= len(samples):  # said before anything is written
        dropped = ", ".join(f"{reason} {n}" for reason, n in report.counts.items() if n)
        raise AidsafeError(
            f"{run.records_path}: the filters dropped all {len(samples)} finished samples ({dropped}); nothing "
            "to export (--no-dedup, --no-decontaminate or a higher threshold keeps them)"
        )
    # Whether any filter ran: guard traces and hard-sample pairs are never filtered (see above).
    summary = {**report.summary(), "applied": filtered}
    with staged(output, {"README.md", CROISSANT, MANIFEST, FILTERED, *formats}) as work:
        rows = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in report.dropped.values())
        write_atomic(work / FILTERED, rows)
        for name in formats:
            configs[name] = _write_config(run, name, work, request.test_size, request.keep_beliefs, set(report.dropped))
        manifest = {
            "recipe_hash": run.recipe_hash,
            "test_size": request.test_size,
            "license": license_,
            "configs": configs,
            "filters": summary,
        }
        write_atomic(work / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        write_card(work, run, configs, license_, summary if filtered else None)
        write_croissant(work, run, configs, license_, summary if filtered else None)
    result = ExportResult(output, configs, license_, filters=summary)
    if request.push_to_hub is not None:
        result.commit_url = push_export(output, _written_files(output, configs), request.push_to_hub)
    return result


def _written_files(output: Path, configs: dict[str, Any]) -> list[Path]:
    """The files an export consists of: what it wrote, never whatever else is in the folder."""
    files = [output / name for name in ("README.md", CROISSANT, MANIFEST, FILTERED) if (output / name).exists()]
    for name in configs:
        files += [p for p in (output / name).iterdir() if SHARD_FILE.fullmatch(p.name)]
    return files


def _filtered_ids(output: Path) -> set[str] | None:
    path = output / FILTERED
    return {row["id"] for _, row in iter_jsonl(path)} if path.is_file() else None


def _recipe_license(run: RunInfo) -> str | None:
    value = run.recipe.get("license")
    if value is not None and not isinstance(value, str):
        raise AidsafeError(f"{run.path / 'recipe.yaml'}: key 'license' must be a license id like cc-by-4.0")
    return value or None


def _existing_export(output: Path, recipe_hash: str) -> dict[str, Any]:
    """The manifest of an export of this run already in `output` ({} if none); refuses a folder
    holding anything else."""
    if not output.exists():
        return {}
    if not output.is_dir():
        raise AidsafeError(f"{output}: exists and is not a directory; expected an empty or export folder")
    manifest = output / MANIFEST
    if not manifest.is_file():
        if any(output.iterdir()):
            raise AidsafeError(f"{output}: not empty and not an aidsafe export (no {MANIFEST}); use a new --output")
        return {}
    try:
        stored = json.loads(manifest.read_text(encoding="utf-8"))
        stored_hash = stored["recipe_hash"]
        if not isinstance(stored["configs"], dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise AidsafeError(f"{manifest}: not the {MANIFEST} aidsafe writes; use a new --output") from None
    if stored_hash != recipe_hash:
        raise AidsafeError(
            f"{output}: holds an export of another run (recipe hash {stored_hash}, this run {recipe_hash}); "
            "use a new --output"
        )
    return stored


def _write_config(
    run: RunInfo, name: str, output: Path, test_size: float, keep_beliefs: bool, dropped: set[str]
) -> dict[str, int]:
    """One format of the run in Parquet shards per split, read in one streaming pass, into a new
    folder (a re-export replaces a config whole, never leaving a stale shard)."""
    folder = output / name
    folder.mkdir()
    samples = run.records_path
    to_row, features = FORMATS[name], features_of(name, run.kind, keep_beliefs)
    if keep_beliefs and name == "dpo":
        to_row = functools.partial(to_row, keep_beliefs=True)
    buffers: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    shards: dict[str, list[Path]] = {"train": [], "test": []}
    counts = {"train": 0, "test": 0}
    for record in iter_records(samples, run.kind):
        if record["id"] in dropped:
            continue
        split = "test" if record_in_test_split(record, run.kind, test_size) else "train"
        buffers[split].append(to_row(record, DEFAULT_COT_TEMPLATE))
        counts[split] += 1
        if len(buffers[split]) >= SHARD_ROWS:
            shards[split].append(_write_shard(folder, split, len(shards[split]), buffers[split], features))
            buffers[split] = []
    for split, rows in buffers.items():
        if rows:
            shards[split].append(_write_shard(folder, split, len(shards[split]), rows, features))
    if not counts["train"]:
        raise AidsafeError(f"{samples}: no finished samples for the train split; nothing to export")
    for split, paths in shards.items():
        for index, path in enumerate(paths):
            # The Hub's shard naming (train-00000-of-00003) and the content's digest: `datasets` caches
            # a local folder by its name, configs and data files, so another export into a folder of
            # the same name must name other files, or its rows would load as this one's.
            path.rename(folder / f"{split}-{index:05d}-of-{len(paths):05d}-{file_digest(path)[:12]}.parquet")
    return {split: n for split, n in counts.items() if n}


def _write_shard(folder: Path, split: str, index: int, rows: list[dict[str, Any]], features: Any) -> Path:
    from datasets import Dataset
    from datasets import utils as ds_utils

    path = folder / f"{split}-{index:05d}.partial.parquet"
    # One bar per shard would flood the terminal; restore the user's setting afterwards.
    was_disabled = ds_utils.are_progress_bars_disabled()
    ds_utils.disable_progress_bars()
    try:
        Dataset.from_list(rows, features=features).to_parquet(str(path))
    finally:
        if not was_disabled:
            ds_utils.enable_progress_bars()
    return path
