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
from aidsafe.kinds import KINDS, run_kind
from aidsafe.run.journal import RunDirectory
from aidsafe.run.jsonl import iter_jsonl

__all__ = ["RunView", "open_run", "policy_texts", "DEFAULT_CAP"]

DEFAULT_CAP = 2000


@dataclass
class RunView:
    path: Path
    kind: str
    recipe: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    samples_file: Path | None = None
    rejected_file: Path | None = None
    # Policy id -> {"title", "rule"} as the run used them (policy_texts); {}: its tags stay bare.
    policies: dict[str, dict[str, str]] = field(default_factory=dict)

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
    """The run at `path` (a run directory or a JSONL file), or a one-line error saying what is there.
    Its kind is the registry's answer (aidsafe.kinds.run_kind): run.json's, else inferred."""
    path = Path(path).expanduser()
    if path.is_file():
        return RunView(path, run_kind(path) or "unknown", samples_file=path)
    if not path.is_dir():
        raise AidsafeError(f"{path}: no such run directory; expected the --output of an aidsafe run")
    run = RunDirectory(path)
    kind = run_kind(path) or "unknown"
    records = path / ((KINDS[kind].records if kind in KINDS else None) or run.samples_path.name)
    if not records.exists() and not run.rejected_path.exists():
        raise AidsafeError(f"{path}: not a run directory (no {records.name} or rejected.jsonl)")
    recipe = _read_mapping(run.recipe_path, yaml.safe_load)
    stats = _read_mapping(run.stats_path, json.loads)
    return RunView(path, kind, recipe, stats, records, run.rejected_path, policy_texts(recipe))


def policy_texts(recipe: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Each policy's title and rule from the run's own snapshot (recipe.yaml `resolved.policies`,
    written when the run was created), never from today's built-ins: an old run's `P3` reads as
    it meant then. A run written before the snapshot, or with a damaged one, gets {}; the report
    still renders, its tags bare."""
    resolved = recipe.get("resolved")
    snapshot = resolved.get("policies") if isinstance(resolved, dict) else None
    rules = snapshot.get("policies") if isinstance(snapshot, dict) else None
    texts = {}
    for policy in rules if isinstance(rules, list) else []:
        if isinstance(policy, dict) and isinstance(policy.get("id"), str):
            texts[policy["id"]] = {key: " ".join(str(policy.get(key) or "").split()) for key in ("title", "rule")}
    return texts


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
