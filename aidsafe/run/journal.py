"""The run directory: append-only results that double as the resume journal.

samples.jsonl and rejected.jsonl are written one whole line per `os.write` on an O_APPEND
descriptor, so a killed process leaves at most one partial last line, which the next run cuts off
(the sample is then finished again from its checkpoint). A sample id is in exactly one of the
two files.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aidsafe.errors import AidsafeError
from aidsafe.run.jsonl import append_jsonl, cut_partial_tail, read_jsonl, write_atomic
from aidsafe.generation.recipe import check_output_dir_recipe

__all__ = ["JournalIndex", "RejectionInfo", "RunDirectory", "input_digest", "read_journal"]


# Stand-in for the journal engineer's ids-only index (wave2-journal); replaced on merge.
def input_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class RejectionInfo:
    transient: bool
    reason: str
    digest: str


@dataclass
class JournalIndex:
    finished: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, RejectionInfo] = field(default_factory=dict)


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Records of a journal file we are about to append to, cutting off a partial last line."""
    if not path.exists():
        return []
    cut_partial_tail(path)
    return [row for _, row in read_jsonl(path)]


class RunDirectory:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.samples_path = path / "samples.jsonl"
        self.rejected_path = path / "rejected.jsonl"
        self.stats_path = path / "stats.json"
        self.recipe_path = path / "recipe.yaml"
        self.run_info_path = path / "run.json"
        self.checkpoints_path = path / "checkpoints.sqlite"

    def open(self, recipe_hash: str, resolved_recipe: dict[str, Any]) -> None:
        """Create the directory, or check that an existing one was made by the same recipe."""
        if self.path.exists() and not self.path.is_dir():
            raise AidsafeError(f"{self.path}: exists and is not a directory")
        self.path.mkdir(parents=True, exist_ok=True)
        stored = None
        if self.run_info_path.exists():
            stored = json.loads(self.run_info_path.read_text(encoding="utf-8")).get("recipe_hash")
        check_output_dir_recipe(stored, recipe_hash, self.path)
        if stored is None:
            write_atomic(self.run_info_path, json.dumps({"recipe_hash": recipe_hash}, indent=2) + "\n")
            write_atomic(self.recipe_path, yaml.safe_dump(resolved_recipe, sort_keys=False, allow_unicode=True))

    def check(self, recipe_hash: str) -> None:
        """Read-only: refuse a path that is not a directory or holds another recipe's samples."""
        if self.path.exists() and not self.path.is_dir():
            raise AidsafeError(f"{self.path}: exists and is not a directory")
        if self.run_info_path.exists() and (self.samples_path.exists() or self.rejected_path.exists()):
            stored = json.loads(self.run_info_path.read_text(encoding="utf-8")).get("recipe_hash")
            check_output_dir_recipe(stored, recipe_hash, self.path)

    def index(self) -> JournalIndex:
        def digest(row: dict[str, Any]) -> str:
            return row.get("digest") or (input_digest(row["prompt"]) if isinstance(row.get("prompt"), str) else "")

        return JournalIndex(
            {r["id"]: digest(r) for r in self.finished().values()},
            {r["id"]: RejectionInfo(bool(r.get("transient")), r.get("reason", ""), digest(r)) for r in self.rejected()},
        )

    def finished(self) -> dict[str, dict[str, Any]]:
        return {record["id"]: record for record in read_journal(self.samples_path)}

    def rejected(self) -> list[dict[str, Any]]:
        return read_journal(self.rejected_path)

    def forget_rejections(self, ids: set[str]) -> None:
        """Drop rejections that are about to be retried, so a sample never sits in both files."""
        if not ids:
            return
        keep = [r for r in self.rejected() if r["id"] not in ids]
        write_atomic(self.rejected_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in keep))

    def append_sample(self, record: dict[str, Any], digest: str = "") -> None:
        append_jsonl(self.samples_path, record)

    def append_rejected(self, entry: dict[str, Any], digest: str = "") -> None:
        append_jsonl(self.rejected_path, entry)
