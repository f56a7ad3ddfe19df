"""The export's view of a run's kind (aidsafe.kinds): the formats that fit it, its records checked.

The kind itself, its formats, records file and required fields are the registry's; a format
asked of a run it does not fit is refused in one line naming the formats that do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aidsafe.errors import AidsafeError
from aidsafe.kinds import KINDS
from aidsafe.run.identity import file_digest
from aidsafe.run.jsonl import iter_jsonl

__all__ = ["check_formats", "hard_samples_hash", "iter_records"]


def check_formats(run_dir: Path, kind: str, formats: tuple[str, ...]) -> None:
    fitting = KINDS[kind].export if kind in KINDS else ()
    wrong = [f for f in formats if f not in fitting]
    if wrong:
        fits = f"formats that fit: {', '.join(fitting)}" if fitting else "no export format fits it yet"
        raise AidsafeError(f"--format {', '.join(wrong)}: {run_dir} is a {kind} run; {fits}")


def hard_samples_hash(path: Path) -> str:
    """Hard-sample output has no recipe: its identity is its pairs file's content."""
    return file_digest(path)[:16]


def iter_records(path: Path, kind: str) -> Iterator[dict[str, Any]]:
    """Records of a run's journal, each checked for its kind's fields; a cut-off last line from a
    killed run is skipped (that sample is redone when the run resumes). Hard-sample pairs carry no
    id: the hash of their prompt is one (mining keeps one pair per prompt), so the split works alike."""
    fields = KINDS[kind].fields
    for number, record in iter_jsonl(path, skip_partial_tail=True):
        for field in fields:
            value = record.get(field.key)
            if not isinstance(value, field.types) or isinstance(value, bool):
                raise AidsafeError(f"{path}:{number}: field {field.key!r} missing or not {field.expected}")
        if kind == "pairs":
            for side in ("chosen", "rejected"):
                if not (
                    isinstance(record[side].get("thoughts"), list) and isinstance(record[side].get("response"), str)
                ):
                    raise AidsafeError(f"{path}:{number}: field {side!r} must hold thoughts (a list) and a response")
        if kind == "policy-guard":
            policy = record["policy"]
            if not (isinstance(policy.get("text"), str) and isinstance(policy.get("rule_ids"), list)):
                raise AidsafeError(f"{path}:{number}: field 'policy' must hold the policy text and its rule_ids")
        if "id" not in record:  # a kind whose records have no id of their own (hard-sample pairs)
            record = {
                **record,
                "id": hashlib.sha256(record["prompt"].encode("utf-8", "surrogatepass")).hexdigest()[:16],
            }
        yield record
