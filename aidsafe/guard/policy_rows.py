"""The rows `aidsafe generate policy-guard` judges: a prompt, an optional response, an optional gold
verdict, from any input `aidsafe.sources.read_rows` reads (.jsonl, .json, .csv, .parquet, Hub ids).

Columns: the prompt (`prompt`, or `--prompt-field`), `response` (missing, null or empty: the
prompt alone is judged), the gold verdict (`gold`, or `--gold-field NAME`: `allowed` or
`violation`; missing, null or empty: none, and two judges must agree instead) and `id`
(default: a hash of the prompt and response). A `--gold-field` no row has is an error, as is a
verdict outside the two, an id holding `~` (variant ids are `<id>~cf-...`) or one id for two
contents; a row repeating an earlier one is skipped and counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aidsafe.errors import AidsafeError
from aidsafe.guard.policy_format import VERDICTS
from aidsafe.oneline import one_line
from aidsafe.run.journal import input_digest
from aidsafe.sources import read_rows

__all__ = ["DEFAULT_GOLD_FIELD", "PolicyRow", "read_policy_rows"]

DEFAULT_GOLD_FIELD = "gold"


@dataclass(frozen=True)
class PolicyRow:
    id: str
    prompt: str
    response: str | None
    gold: str | None  # allowed, violation, or None: the judges decide
    source: str  # file:line, for messages and the record

    def digest(self) -> str:
        return input_digest(json.dumps([self.prompt, self.response, self.gold]))


def read_policy_rows(
    ref: str, prompt_field: str = "prompt", gold_field: str | None = None
) -> tuple[list[PolicyRow], int]:
    """Every row of `ref`, checked before any teacher call, and how many repeated an earlier one."""
    gold_key = gold_field or DEFAULT_GOLD_FIELD

    def columns(names: list[str], place: str) -> list[str]:
        if prompt_field not in names:
            raise AidsafeError(f"{place}: missing field {prompt_field!r} (fields: {', '.join(names) or 'none'}); "
                               "choose one with --prompt-field")  # fmt: skip
        return [name for name in dict.fromkeys([prompt_field, "response", gold_key, "id"]) if name in names]

    rows: list[PolicyRow] = []
    seen: dict[str, PolicyRow] = {}
    repeats, gold_seen = 0, False
    for where, record in read_rows(ref, columns=columns):
        gold_seen = gold_seen or gold_key in record
        row = _row(where, record, prompt_field, gold_key)
        earlier = seen.get(row.id)
        if earlier is not None:
            if (earlier.prompt, earlier.response, earlier.gold) != (row.prompt, row.response, row.gold):
                raise AidsafeError(f"{where}: id {row.id!r} was already used for another row at {earlier.source}")
            repeats += 1
            continue
        seen[row.id] = row
        rows.append(row)
    if gold_field is not None and not gold_seen:
        raise AidsafeError(f"--gold-field {gold_field}: no row of {ref} has that field")
    return rows, repeats


def _row(where: str, record: dict[str, Any], prompt_field: str, gold_key: str) -> PolicyRow:
    prompt = record.get(prompt_field)
    if prompt_field not in record:
        fields = ", ".join(map(str, record)) or "none"
        raise AidsafeError(
            f"{where}: missing field {prompt_field!r} (fields: {fields}); choose one with --prompt-field"
        )
    if not isinstance(prompt, str) or not prompt.strip():
        raise AidsafeError(f"{where}: {prompt_field}: expected non-empty text")
    response = record.get("response")
    if response is not None and not isinstance(response, str):
        raise AidsafeError(f"{where}: response: expected text or null, got {type(response).__name__}")
    response = response if response and response.strip() else None
    gold = record.get(gold_key)
    if gold is not None and not isinstance(gold, str):
        raise AidsafeError(f"{where}: {gold_key}: expected allowed, violation or empty, got {one_line(repr(gold), 40)}")
    gold = gold.strip().lower() if gold and gold.strip() else None
    if gold is not None and gold not in VERDICTS:
        raise AidsafeError(f"{where}: {gold_key}: {one_line(repr(record[gold_key]), 40)} is not a verdict; "
                           "expected allowed, violation or empty (no gold)")  # fmt: skip
    given = record.get("id")
    key = str(given) if given not in (None, "") else input_digest(json.dumps([prompt, response]))[:16]
    if "~" in key:
        raise AidsafeError(f"{where}: id {one_line(repr(key), 60)}: contains '~', which variant ids use; rename it")
    return PolicyRow(key, prompt, response, gold, where)
