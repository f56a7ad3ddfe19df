"""Which kind of run a directory holds, the export formats that fit it, and its records checked.

Kinds, told apart by what each stage writes:

- `generation`: `aidsafe generate` with an AIDSAFE recipe (recipe.yaml without `kind` or `pairs`);
- `pairs`: `aidsafe pairs` (recipe.yaml with a `pairs:` section): belief-augmented pairs;
- `guardreasoner`: `aidsafe generate guardreasoner` (recipe.yaml `kind: guardreasoner`): traces;
- `thinkguard`: `aidsafe generate thinkguard` (recipe.yaml `kind: thinkguard`): critiques;
- `hard-samples`: `aidsafe pairs hard-samples` (a folder with pairs.jsonl and stats.json, no
  recipe): HS-DPO pairs with a `weight`.

A format asked of a run it does not fit is refused in one line naming the formats that do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aidsafe.errors import AidsafeError
from aidsafe.run.jsonl import iter_jsonl

__all__ = ["FILTERED_KINDS", "KIND_FORMATS", "PAPERS", "check_formats", "hard_samples_hash", "iter_records", "run_kind"]

# The formats each kind of run can be exported as, in the order the card lists them.
KIND_FORMATS: dict[str, tuple[str, ...]] = {
    "generation": ("sft", "aidsafe"),
    "pairs": ("dpo",),
    "guardreasoner": ("guardreasoner",),
    "hard-samples": ("dpo",),
    "thinkguard": ("thinkguard", "thinkguard-label-only"),
}
# Kinds whose records hold the user's prompt in `prompt`: the corpus filters read it (aidsafe.export.filters).
FILTERED_KINDS = frozenset({"generation", "pairs", "thinkguard"})
# Whose method made the data: the card cites that paper.
PAPERS = {"generation": "aidsafe", "pairs": "aidsafe", "guardreasoner": "guardreasoner",
          "hard-samples": "guardreasoner", "thinkguard": "thinkguard"}  # fmt: skip
# Where each kind keeps its records, and the fields every record must have.
RECORDS_FILE = {"hard-samples": "pairs.jsonl"}
_SIDE = "a {thoughts, response} object"
_FIELDS: dict[str, tuple[tuple[str, type | tuple[type, ...], str], ...]] = {
    "generation": (("id", str, "a str"), ("prompt", str, "a str"), ("response", str, "a str"),
                   ("thoughts", list, "a list")),
    "pairs": (("id", str, "a str"), ("prompt", str, "a str"), ("chosen", dict, _SIDE), ("rejected", dict, _SIDE)),
    "guardreasoner": (("id", str, "a str"), ("instruction", str, "a str"), ("input", str, "a str"),
                      ("output", str, "a str")),
    "thinkguard": (("id", str, "a str"), ("input", str, "a str"), ("output", str, "a str"),
                   ("output_label_only", str, "a str")),
    "hard-samples": (("prompt", str, "a str"), ("chosen", str, "a str"), ("rejected", str, "a str"),
                     ("weight", (int, float), "a number")),
}  # fmt: skip


def run_kind(run_dir: Path, recipe: dict[str, Any]) -> str:
    """The kind of run in `run_dir` whose recipe.yaml holds `recipe` ({} for hard-samples)."""
    if not recipe and (run_dir / "pairs.jsonl").is_file():
        return "hard-samples"
    declared = recipe.get("kind")
    if declared is not None:
        return str(declared)
    return "pairs" if isinstance(recipe.get("pairs"), dict) else "generation"


def check_formats(run_dir: Path, kind: str, formats: tuple[str, ...]) -> None:
    fitting = KIND_FORMATS.get(kind, ())
    wrong = [f for f in formats if f not in fitting]
    if wrong:
        fits = f"formats that fit: {', '.join(fitting)}" if fitting else "no export format fits it yet"
        raise AidsafeError(f"--format {', '.join(wrong)}: {run_dir} is a {kind} run; {fits}")


def hard_samples_hash(path: Path) -> str:
    """Hard-sample output has no recipe: its identity is its pairs file's content."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def iter_records(path: Path, kind: str) -> Iterator[dict[str, Any]]:
    """Records of a run's journal, each checked for its kind's fields; a cut-off last line from a
    killed run is skipped (that sample is redone when the run resumes). Hard-sample pairs carry no
    id: the hash of their prompt is one (mining keeps one pair per prompt), so the split works alike."""
    for number, record in iter_jsonl(path, skip_partial_tail=True):
        for key, kind_of, expected in _FIELDS.get(kind, _FIELDS["generation"]):
            value = record.get(key)
            if not isinstance(value, kind_of) or isinstance(value, bool):
                raise AidsafeError(f"{path}:{number}: field {key!r} missing or not {expected}")
        if kind == "pairs":
            for side in ("chosen", "rejected"):
                if not (
                    isinstance(record[side].get("thoughts"), list) and isinstance(record[side].get("response"), str)
                ):
                    raise AidsafeError(f"{path}:{number}: field {side!r} must hold thoughts (a list) and a response")
        if kind == "hard-samples":
            record = {
                **record,
                "id": hashlib.sha256(record["prompt"].encode("utf-8", "surrogatepass")).hexdigest()[:16],
            }
        yield record
