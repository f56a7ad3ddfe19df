"""A finished (or half-finished) run as the report and `aidsafe show` see it: read only.

A run directory is what the executor writes (aidsafe/run/journal.py): samples.jsonl,
rejected.jsonl, stats.json, run.json and the resolved recipe.yaml. A single JSONL file (the
output of `aidsafe predict`) is read as a run with samples only. Records are streamed from the
journal; only the first `cap` are kept for the sample browser, so a million-sample run stays a
report of reasonable size while its plots still count every record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aidsafe.errors import AidsafeError
from aidsafe.run.journal import RunDirectory
from aidsafe.run.jsonl import iter_jsonl

__all__ = ["RunView", "open_run", "detect_kind", "DEFAULT_CAP"]

DEFAULT_CAP = 2000


@dataclass
class RunView:
    path: Path
    kind: str
    recipe: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    samples_file: Path | None = None
    rejected_file: Path | None = None

    def iter_samples(self) -> Iterator[dict[str, Any]]:
        return _iter_records(self.samples_file)

    def iter_rejected(self) -> Iterator[dict[str, Any]]:
        return _iter_records(self.rejected_file)

    def first_samples(self, cap: int) -> tuple[list[dict[str, Any]], int]:
        """The first `cap` samples and how many there are in all."""
        kept, total = [], 0
        for record in self.iter_samples():
            total += 1
            if len(kept) < cap:
                kept.append(record)
        return kept, total


def _iter_records(path: Path | None) -> Iterator[dict[str, Any]]:
    if path is None or not path.is_file():
        return iter(())
    # A cut-off last line is a record still being written (a run in progress, or killed).
    return (record for _, record in iter_jsonl(path, skip_partial_tail=True) if isinstance(record, dict))


def open_run(path: str | Path) -> RunView:
    """The run at `path` (a run directory or a JSONL file), or a one-line error saying what is there."""
    path = Path(path).expanduser()
    if path.is_file():
        view = RunView(path, "unknown", samples_file=path)
        view.kind = detect_kind({}, next(view.iter_samples(), None))
        return view
    if not path.is_dir():
        raise AidsafeError(f"{path}: no such run directory; expected the --output of an aidsafe run")
    run = RunDirectory(path)
    if not run.samples_path.exists() and not run.rejected_path.exists():
        raise AidsafeError(f"{path}: not a run directory (no samples.jsonl or rejected.jsonl)")
    recipe = _read_mapping(run.recipe_path, yaml.safe_load)
    stats = _read_mapping(run.stats_path, json.loads)
    view = RunView(path, "unknown", recipe, stats, run.samples_path, run.rejected_path)
    view.kind = detect_kind(recipe, next(view.iter_samples(), None))
    return view


def _read_mapping(path: Path, parse: Any) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = parse(path.read_text(encoding="utf-8"))
    except (ValueError, yaml.YAMLError) as exc:
        raise AidsafeError(
            f"{path}: cannot be parsed ({str(exc).splitlines()[0]}); expected the file aidsafe wrote"
        ) from None
    return data if isinstance(data, dict) else {}


def detect_kind(recipe: dict[str, Any], first: dict[str, Any] | None) -> str:
    """Which kind of run: from the recipe when it says (a `kind`, a `pairs:` section), else from
    the shape of the first record. Kinds nobody registered are shown generically."""
    if isinstance(recipe.get("kind"), str):
        return {"guardreasoner": "guard_traces"}.get(recipe["kind"], recipe["kind"])
    if "pairs" in recipe:
        return "pairs"
    if "deliberation" in recipe:
        return "generation"
    record = first or {}
    if "deliberation" in record and "thoughts" in record:
        return "generation"
    if {"chosen", "rejected", "scores"} <= record.keys():
        return "pairs"
    if {"instruction", "output", "labels"} <= record.keys():
        return "guard_traces"
    if "predict" in record:
        return "predictions"
    return "unknown"
