"""The four sources of GuardReasonerTrain, read as labelled rows for `generate guardreasoner`.

Each adapter maps one source's own columns (as on its Hugging Face dataset card) to the three
GuardReasoner gold labels, Request / Completion / Response (Liu et al., 2025):

- `wildguardmix` (allenai/wildguardmix, config wildguardtrain): `prompt`, `response`,
  `prompt_harm_label`, `response_refusal_label`, `response_harm_label` taken as they are; an empty
  label or response is `None`.
- `aegis` (nvidia/Aegis-AI-Content-Safety-Dataset-1.0): `text`, `text_type`, `labels_0`..`labels_4`.
  Only `user_message` rows: the annotations are per dialog, and an `llm_response` row's text is
  the whole dialog, which we cannot split into the prompt and the reply without guessing. Request
  is the strict majority of the annotators' votes, a vote being unsafe unless it is `Safe` (so
  `Needs Caution` counts unsafe); a tie has no gold and the row is skipped (`aegis_tie`).
- `toxicchat` (lmsys/toxic-chat, config toxicchat0124): `user_input`, `human_annotation`,
  `toxicity`. Only rows with `human_annotation` true; Request = harmful when `toxicity` is 1. The
  labels judge the user input only, so the response is `None` (as in the ToxicChat benchmark).
- `beavertails` (PKU-Alignment/BeaverTails, split 30k_train): `prompt`, `response`, `is_safe`.
  Response = unharmful when `is_safe`; Request and Completion have no gold: the teacher decides
  them (`None` in `LabelledRow.gold`, an enum of both labels in the schema).

`guardreasoner` (instruction/input/output) and `labelled` (prompt/response/label) files go
through `labelled.read_labelled`. `auto` picks the source from the columns, or from the Hub id.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aidsafe.errors import AidsafeError
from aidsafe.guard.formats import GUARDREASONER_INSTRUCTION, guardreasoner_input
from aidsafe.guard.labelled import LabelledRow, read_labelled
from aidsafe.run.journal import input_digest
from aidsafe.sources import hub_parts, read_rows

__all__ = [
    "HUB_DEFAULTS",
    "REQUIRED_COLUMNS",
    "SOURCES",
    "SourceRows",
    "aegis_vote",
    "detect_source",
    "hub_reference",
    "read_source",
]

SOURCES = ("auto", "guardreasoner", "labelled", "wildguardmix", "aegis", "toxicchat", "beavertails")
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "guardreasoner": ("instruction", "input", "output"),
    "labelled": ("prompt", "label"),
    "wildguardmix": ("prompt", "response", "prompt_harm_label", "response_refusal_label", "response_harm_label"),
    "aegis": ("text", "text_type", "labels_0"),
    "toxicchat": ("user_input", "human_annotation", "toxicity"),
    "beavertails": ("prompt", "response", "is_safe"),
}
# Hub id -> (source, config, split) used when the id gives no `:config:split` of its own.
HUB_DEFAULTS: dict[str, tuple[str, str | None, str]] = {
    "allenai/wildguardmix": ("wildguardmix", "wildguardtrain", "train"),
    "nvidia/aegis-ai-content-safety-dataset-1.0": ("aegis", None, "train"),
    "lmsys/toxic-chat": ("toxicchat", "toxicchat0124", "train"),
    "pku-alignment/beavertails": ("beavertails", None, "30k_train"),
}
_AEGIS_ANNOTATORS = 5  # labels_0 .. labels_4


@dataclass
class SourceRows:
    source: str
    rows: list[LabelledRow]
    repeats: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> rows without usable gold


def read_source(ref: str, source: str = "auto", label_task: str | None = None) -> SourceRows:
    """Labelled rows of `ref` (a .jsonl/.json/.csv/.parquet file or a Hub id) read as `source`;
    `label_task` names the task of a bare gold label (guardreasoner and labelled rows only)."""
    if source not in SOURCES:
        raise AidsafeError(f"source {source!r}: expected one of {', '.join(SOURCES)}")
    if source in ("guardreasoner", "labelled"):
        rows, repeats = read_labelled(ref, label_task)
        return SourceRows(source, rows, repeats)
    path = Path(ref).expanduser()
    hub_source, _, config, split = hub_reference(ref)  # used only when `ref` is no file
    records = read_rows(ref, config=config, split=split)
    if source == "auto" and hub_source and not path.is_file():
        source = hub_source
    if source == "auto":
        source = detect_source(records[0][1], records[0][0])
    if source in ("guardreasoner", "labelled"):  # the GuardReasoner readers keep the text byte for byte
        if path.is_file() and path.suffix.lower() not in (".json", ".jsonl"):
            raise AidsafeError(f"{ref}: {source} rows are read from .json or .jsonl files only")
        return read_source(ref, source, label_task)
    if label_task is not None:  # a silent no-op would look like it applied
        raise AidsafeError(
            f"--label-task: {ref} is read as {source}, whose rows carry their own labels per task; "
            "it is for guardreasoner or labelled rows with one bare label each"
        )
    read = _convert(source, records)
    if not read.rows:  # say why before the executor reports "nothing finished"
        why = ", ".join(f"{reason} {n}" for reason, n in sorted(read.skipped.items()))
        raise AidsafeError(f"{ref}: no {source} row has usable gold labels (skipped: {why or 'none'})")
    return read


def detect_source(record: dict[str, Any], where: str) -> str:
    """The source whose columns `record` has (the first that fits, most specific first)."""
    for source in ("guardreasoner", "wildguardmix", "aegis", "toxicchat", "beavertails", "labelled"):
        if all(column in record for column in REQUIRED_COLUMNS[source]):
            return source
    expected = "; ".join(f"{s}: {', '.join(c)}" for s, c in REQUIRED_COLUMNS.items())
    found = ", ".join(map(str, record)) or "none"
    raise AidsafeError(f"{where}: unknown columns ({found}); expected one of: {expected}")


def aegis_vote(labels: Iterable[Any]) -> str | None:
    """Request from Aegis annotators' labels: the strict majority, None on a tie (or no votes)."""
    votes = [str(v).strip() for v in labels if _text(v) is not None]
    unsafe = sum(v != "Safe" for v in votes)
    safe = len(votes) - unsafe
    if unsafe == safe:
        return None
    return "harmful" if unsafe > safe else "unharmful"


# ----------------------------------------------------------------------------------------------


def _convert(source: str, records: list[tuple[str, dict[str, Any]]]) -> SourceRows:
    out = SourceRows(source, [])
    seen: set[str] = set()
    for where, record in records:
        missing = [c for c in REQUIRED_COLUMNS[source] if c not in record]
        if missing:
            raise AidsafeError(_columns_error(where, record, source, missing))
        mapped = _MAPPERS[source](record, where)
        if isinstance(mapped, str):  # a reason to skip the row
            out.skipped[mapped] += 1
            continue
        prompt, response, gold = mapped
        text = guardreasoner_input(prompt, response)
        key = input_digest(GUARDREASONER_INSTRUCTION + "\n" + text)[:16]
        if key in seen:
            out.repeats += 1
            continue
        seen.add(key)
        out.rows.append(LabelledRow(key, GUARDREASONER_INSTRUCTION, text, prompt, response, gold, where))
    return out


Mapped = tuple[str, str | None, tuple[str | None, str | None, str | None]] | str


def _wildguardmix(record: dict[str, Any], where: str) -> Mapped:
    prompt, response = _prompt(record, "prompt", where), _text(record.get("response"))
    gold = (
        _label(record, "prompt_harm_label", ("harmful", "unharmful"), where),
        _label(record, "response_refusal_label", ("refusal", "compliance"), where) if response else "None",
        _label(record, "response_harm_label", ("harmful", "unharmful"), where) if response else "None",
    )
    return prompt, response, gold


def _aegis(record: dict[str, Any], where: str) -> Mapped:
    if record["text_type"] not in ("user_message", "llm_response"):  # fail loudly, not skip everything
        raise AidsafeError(f"{where}: text_type: expected user_message or llm_response, got {record['text_type']!r}")
    if record["text_type"] == "llm_response":
        return "aegis_dialog"
    request = aegis_vote(record.get(f"labels_{i}") for i in range(_AEGIS_ANNOTATORS))
    if request is None:
        return "aegis_tie"
    return _prompt(record, "text", where), None, (request, "None", "None")


def _toxicchat(record: dict[str, Any], where: str) -> Mapped:
    human = record["human_annotation"]
    if isinstance(human, str):  # the released CSV writes True / False
        human = {"true": True, "false": False}.get(human.strip().lower(), human)
    if not isinstance(human, bool):
        raise AidsafeError(f"{where}: human_annotation: expected true or false, got {record['human_annotation']!r}")
    if not human:
        return "toxicchat_not_human"
    toxicity = _integer(record, "toxicity", where)
    return _prompt(record, "user_input", where), None, ("harmful" if toxicity == 1 else "unharmful", "None", "None")


def _beavertails(record: dict[str, Any], where: str) -> Mapped:
    is_safe = record["is_safe"]
    if isinstance(is_safe, str):
        is_safe = {"true": True, "false": False}.get(is_safe.strip().lower(), is_safe)
    if not isinstance(is_safe, bool):
        raise AidsafeError(f"{where}: is_safe: expected true or false, got {record['is_safe']!r}")
    response = _text(record.get("response"))
    if response is None:
        raise AidsafeError(f"{where}: response: expected a non-empty string (BeaverTails judges the response)")
    # Request and Completion: None = no gold, the teacher decides (traces.trace_schema).
    return _prompt(record, "prompt", where), response, (None, None, "unharmful" if is_safe else "harmful")


_MAPPERS = {"wildguardmix": _wildguardmix, "aegis": _aegis, "toxicchat": _toxicchat, "beavertails": _beavertails}


def _text(value: Any) -> str | None:
    """A cell as text; empty, blank, null or NaN (a CSV / pandas hole) is None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def _prompt(record: dict[str, Any], column: str, where: str) -> str:
    value = record.get(column)
    if not isinstance(value, str) or not value.strip():
        raise AidsafeError(f"{where}: {column}: expected a non-empty string")
    return value


def _label(record: dict[str, Any], column: str, allowed: tuple[str, str], where: str) -> str:
    value = _text(record.get(column))
    if value is None:
        return "None"
    if value not in allowed:
        raise AidsafeError(f"{where}: {column}: expected {' or '.join(allowed)} (or empty), got {value!r}")
    return value


def _integer(record: dict[str, Any], column: str, where: str) -> int:
    value = record[column]
    try:
        number = int(str(value).strip()) if not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number not in (0, 1):
        raise AidsafeError(f"{where}: {column}: expected 0 or 1, got {value!r}")
    return number


def _columns_error(where: str, record: dict[str, Any], source: str, missing: list[str]) -> str:
    found = ", ".join(map(str, record)) or "none"
    return (
        f"{where}: missing column(s) {', '.join(missing)} for source {source} "
        f"(expected {', '.join(REQUIRED_COLUMNS[source])}; found {found})"
    )


def hub_reference(ref: str) -> tuple[str | None, str, str | None, str]:
    """(source or None, name, config, split) of `owner/name[:config]:split`, with the known
    sources' defaults (their training split) where the id gives none."""
    source, config, split = HUB_DEFAULTS.get(ref.split(":", 1)[0].lower(), (None, None, "train"))
    return (source, *hub_parts(ref, config, split))
