"""BeaverTails, as the ThinkGuard critique stage (aidsafe.guard.critiques) reads it: rows of one
conversation, its gold verdict and its harm categories as S-codes (ThinkGuard's numbering of
BeaverTails' 14 categories), and the policy set that writes those categories out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aidsafe.agents.policies import PolicySet, load_policies
from aidsafe.errors import AidsafeError
from aidsafe.guard.formats import BEAVERTAILS_CATEGORIES
from aidsafe.run.journal import input_digest
from aidsafe.sources import read_rows

__all__ = ["CATEGORY_CODES", "Conversation", "category_policies", "read_conversations"]

# S1..S14 in the order of formats.BEAVERTAILS_CATEGORIES (ThinkGuard's numbering).
CATEGORY_CODES = tuple(f"S{i}" for i in range(1, len(BEAVERTAILS_CATEGORIES) + 1))
_CODE_OF = dict(zip(BEAVERTAILS_CATEGORIES, CATEGORY_CODES, strict=True))


@dataclass(frozen=True)
class Conversation:
    id: str
    prompt: str
    response: str | None  # None: the prompt alone is judged (the User is the last turn)
    assessment: str  # "safe" or "unsafe"
    categories: tuple[str, ...]  # S-codes in S1..S14 order
    source: str

    def digest(self) -> str:
        """What a critique is made from: a rerun notices a changed row under the same id."""
        return input_digest(json.dumps([self.prompt, self.response, self.assessment, self.categories]))


_COLUMNS = ("prompt", "response", "is_safe", "category")


def read_conversations(ref: str) -> tuple[list[Conversation], int]:
    """Rows of BeaverTails shape (`prompt`, `response`, `is_safe`, `category`: the 14 category keys
    to booleans) from JSONL / JSON / Parquet or a Hub id `owner/name[:split]` (e.g.
    `PKU-Alignment/BeaverTails:30k_train`). Returns the rows and how many repeated an earlier one."""
    rows, seen, repeats = [], set(), 0
    for where, record in read_rows(ref):
        row = _conversation(where, record)
        if row.id in seen:
            repeats += 1
            continue
        seen.add(row.id)
        rows.append(row)
    return rows, repeats


def _conversation(where: str, record: dict[str, Any]) -> Conversation:
    missing = [c for c in _COLUMNS if c not in record]
    if missing:
        raise AidsafeError(
            f"{where}: missing field(s) {', '.join(missing)}; expected BeaverTails columns {', '.join(_COLUMNS)} "
            f"(found: {', '.join(map(str, record)) or 'none'})"
        )
    prompt, response, is_safe, category = (record[c] for c in _COLUMNS)
    if not isinstance(prompt, str) or not prompt.strip():
        raise AidsafeError(f"{where}: prompt: expected a non-empty string")
    if response is not None and not isinstance(response, str):
        raise AidsafeError(f"{where}: response: expected a string or null")
    if not isinstance(is_safe, bool):
        raise AidsafeError(f"{where}: is_safe: expected true or false, got {is_safe!r}")
    if not isinstance(category, dict) or set(category) != set(BEAVERTAILS_CATEGORIES):
        raise AidsafeError(f"{where}: category: expected an object of the 14 BeaverTails category keys to booleans")
    if not all(isinstance(v, bool) for v in category.values()):
        bad = next(k for k, v in category.items() if not isinstance(v, bool))
        raise AidsafeError(f"{where}: category.{bad}: expected true or false, got {category[bad]!r}")
    codes = tuple(_CODE_OF[key] for key in BEAVERTAILS_CATEGORIES if category[key])
    # BeaverTails: a pair is safe exactly when it falls in no category; a row saying otherwise
    # would make the teacher explain a contradiction.
    if is_safe == bool(codes):
        flagged = ", ".join(codes) or "none"
        raise AidsafeError(f"{where}: is_safe is {str(is_safe).lower()} but the categories flagged are {flagged}")
    response = response or None  # an empty response: the prompt alone is judged
    key = input_digest(json.dumps([prompt, response]))[:16]
    return Conversation(key, prompt, response, "safe" if is_safe else "unsafe", codes, where)


def category_policies(ref: str, recipe_path: Path) -> PolicySet:
    """The policy set a ThinkGuard recipe names (a path relative to the recipe, else a built-in),
    which must be BeaverTails' 14 categories as S1..S14 in their order: its text is the prompt's
    category block, and its ids the codes a critique cites."""
    candidate = recipe_path.parent / ref
    policies = load_policies(candidate if candidate.is_file() else ref)
    ids = tuple(p.id for p in policies.policies)
    if ids != CATEGORY_CODES:
        raise AidsafeError(
            f"{recipe_path}: policies: {ref} has ids {', '.join(ids)}; ThinkGuard needs S1..S14 in "
            "BeaverTails order (policies/beavertails.yaml)"
        )
    return policies
