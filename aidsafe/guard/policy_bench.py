"""Policy-conditioned benchmarks: rows that each bring the policy they are judged under.

Every source becomes the same evaluation row (the policy-guard contract): `id`, `policy_text`,
`prompt`, `response` (or None), `gold` (`allowed` / `violation`), `gold_rules` (the violated rule
ids, None where the benchmark has none), `variant` (judged under a counterfactual policy) and
`rule_ids` (the ids the policy defines, None where unknown). `load_policy_benchmark(ref)` reads:

- `dynabench`: DynaGuard's DynaBench test set, Hub `tomg-group-umd/DynaBench`, config
  `DynaBench`, split `test` (the defaults of DynaGuard's own `eval.py`, github.com/montehoover/
  DynaGuard). Columns, as that script reads them: `policy` (the numbered rules), `transcript` (the
  dialogue, turns tagged `User:` / `Agent:`, possibly quoted `'User':`) and `label`, `PASS` or
  `FAIL` (`FAIL` is the violation; the script also accepts it inside `<answer>...</answer>`). The
  script scores PASS/FAIL only, so there are no gold rule ids. The content is split at the last
  agent turn: the conversation before it is the prompt, that turn the response.
- `cosapien`: CoSApien (CoSA, ICLR 2025), Hub `microsoft/CoSApien` (the link in the README of
  github.com/microsoft/controllable-safety-alignment; first published as `jackzhang/CoSApien`),
  one split per scenario (`game_development`, `public_prosecutor`, `book_publisher_arab`,
  `language_learning`, `film_production`, 40 prompts each). Columns, from its dataset card:
  `prompt` (the test prompt), `scenario` (the safety config, meant as the system prompt: here the
  policy) and `type` (fully allowed, fully disallowed or partially allowed, the paper's section
  3.1). CoSApien has no responses and no rule ids. Our reading of `type` as a verdict (the card
  gives none): fully allowed is `allowed`; fully disallowed and partially allowed are `violation`
  (a request that is only partly allowed still asks for something the config forbids). The loader
  accepts the three types however they are spelled (`allowed`, `fully_allowed`, `partial`, ...)
  and refuses any other value, naming it.
- a policy-guard run directory (`aidsafe generate policy-guard --output RUN`): the held-out share
  of its records (`is_heldout`: a fixed hash of `source_id`, so a row and its counterfactual
  variants are always on the same side), each judged under the policy text it carries.
- any `.jsonl/.json/.csv/.parquet` file or Hub id (`owner/name[:config][:split]`, default split
  `test`) whose rows are in one of these shapes: DynaBench's, CoSApien's, or evaluation rows.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aidsafe.errors import AidsafeError
from aidsafe.guard.policy_format import VERDICTS
from aidsafe.run.jsonl import read_jsonl
from aidsafe.sources import read_rows

__all__ = [
    "COSAPIEN_SPLITS",
    "HOLDOUT_SHARE",
    "POLICY_BENCHMARKS",
    "PolicyExample",
    "cosapien_verdict",
    "is_heldout",
    "load_policy_benchmark",
    "split_transcript",
]

COSAPIEN_SPLITS = ("game_development", "public_prosecutor", "book_publisher_arab", "language_learning",
                   "film_production")  # fmt: skip
POLICY_BENCHMARKS: dict[str, tuple[str, ...]] = {
    "dynabench": ("tomg-group-umd/DynaBench:DynaBench:test",),
    "cosapien": tuple(f"microsoft/CoSApien:{split}" for split in COSAPIEN_SPLITS),
}
HOLDOUT_SHARE = 0.1  # of a policy-guard run's source rows, with all their variants

_AGENT_TURN = re.compile(r"^[ \t]*'?Agent'?:[ \t]*", re.MULTILINE)
_ANSWER = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)
_DYNABENCH = {"PASS": "allowed", "FAIL": "violation"}


@dataclass(frozen=True)
class PolicyExample:
    """One evaluation row (the policy-guard contract's), and where it was read (for messages)."""

    id: str
    policy_text: str
    prompt: str
    response: str | None
    gold: str
    gold_rules: tuple[str, ...] | None = None
    variant: bool = False
    rule_ids: tuple[str, ...] | None = None
    where: str = ""

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        del row["where"]
        for key in ("gold_rules", "rule_ids"):
            row[key] = None if row[key] is None else list(row[key])
        return row


def load_policy_benchmark(ref: str) -> list[PolicyExample]:
    """Every row of `ref` (a name above, a run directory, a file or a Hub id) as an evaluation row;
    one AidsafeError line naming the row for anything that does not fit."""
    if ref.lower() in POLICY_BENCHMARKS:
        return [example for hub in POLICY_BENCHMARKS[ref.lower()] for example in _read(hub)]
    path = Path(ref).expanduser()
    if path.is_dir():
        return _heldout(path)
    return _read(ref)


def is_heldout(source_id: str, share: float = HOLDOUT_SHARE) -> bool:
    """Whether a policy-guard source row is held out for evaluation: a fixed hash of its id, so the
    same rows are held out on every machine and every rerun (training leaves these out)."""
    digest = hashlib.sha256(source_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") < share * 2**64


def split_transcript(transcript: str) -> tuple[str, str | None]:
    """(prompt, response) of a DynaBench transcript: the dialogue before its last agent turn, and
    that turn (None without one)."""
    turns = list(_AGENT_TURN.finditer(transcript))
    if not turns:
        return transcript.strip(), None
    last = turns[-1]
    return transcript[: last.start()].strip(), transcript[last.end() :].strip()


def cosapien_verdict(kind: str) -> str | None:
    """A CoSApien `type` as a verdict (the module docstring says why partial is a violation);
    None for a value that is none of the three types."""
    words = re.sub(r"[^a-z]+", " ", kind.lower()).split()
    if any(word.startswith("partial") for word in words):
        return "violation"
    if any(word.startswith("disallow") for word in words) or ("not" in words and "allowed" in words):
        return "violation"
    return "allowed" if any(word.startswith("allow") for word in words) else None


def _read(ref: str) -> list[PolicyExample]:
    return [_example(i, where, row, ref) for i, (where, row) in enumerate(read_rows(ref, split="test"), 1)]


def _example(number: int, where: str, row: Mapping[str, Any], ref: str) -> PolicyExample:
    if "policy_text" in row:
        return _evaluation_row(number, where, row)
    if {"policy", "transcript", "label"} <= row.keys():
        return _dynabench(number, where, row)
    if {"prompt", "scenario", "type"} <= row.keys():
        return _cosapien(number, where, row, ref)
    fields = ", ".join(map(str, row)) or "none"
    raise AidsafeError(
        f"{where}: expected policy_text/prompt/gold (evaluation rows), policy/transcript/label (DynaBench) "
        f"or prompt/scenario/type (CoSApien); found {fields}"
    )


def _dynabench(number: int, where: str, row: Mapping[str, Any]) -> PolicyExample:
    label = str(row["label"]).strip()
    answer = _ANSWER.search(label)
    label = answer.group(1) if answer else label
    if label not in _DYNABENCH:
        raise AidsafeError(f"{where}: label: {label[:40]!r}; expected PASS or FAIL")
    policy, transcript = _text(where, row, "policy"), _text(where, row, "transcript")
    prompt, response = split_transcript(transcript)
    return PolicyExample(str(row.get("id") or f"dynabench-{number}"), policy, prompt, response, _DYNABENCH[label],
                         where=where)  # fmt: skip


def _cosapien(number: int, where: str, row: Mapping[str, Any], ref: str) -> PolicyExample:
    verdict = cosapien_verdict(str(row["type"]))
    if verdict is None:
        raise AidsafeError(
            f"{where}: type: {str(row['type'])[:40]!r}; expected fully allowed, fully disallowed or partially allowed"
        )
    split = ref.rsplit(":", 1)[-1] if ref.startswith("microsoft/CoSApien:") else "cosapien"
    return PolicyExample(str(row.get("id") or f"{split}-{number}"), _text(where, row, "scenario"),
                         _text(where, row, "prompt"), None, verdict, where=where)  # fmt: skip


def _evaluation_row(number: int, where: str, row: Mapping[str, Any]) -> PolicyExample:
    gold = row.get("gold")
    if gold not in VERDICTS:
        raise AidsafeError(f"{where}: gold: {gold!r}; expected one of {', '.join(VERDICTS)}")
    response = row.get("response")
    if response is not None and not isinstance(response, str):
        raise AidsafeError(f"{where}: response: expected a string or null")
    variant = row.get("variant", False)
    if not isinstance(variant, bool):
        raise AidsafeError(f"{where}: variant: expected true or false")
    return PolicyExample(
        str(row.get("id") or f"row-{number}"), _text(where, row, "policy_text"), _text(where, row, "prompt"),
        response, gold, _ids(where, row, "gold_rules"), variant, _ids(where, row, "rule_ids"), where,
    )  # fmt: skip


def _heldout(run: Path) -> list[PolicyExample]:
    samples = run / "samples.jsonl"
    if not samples.is_file():
        raise AidsafeError(f"{run}: no samples.jsonl (expected a policy-guard run directory)")
    examples = []
    for number, record in read_jsonl(samples, skip_partial_tail=True):
        where = f"{samples}:{number}"
        policy = record.get("policy")
        if not isinstance(policy, dict) or not isinstance(record.get("source_id"), str):
            raise AidsafeError(f"{where}: expected a policy-guard record (source_id, policy: {{text, rule_ids}})")
        if not is_heldout(record["source_id"]):
            continue
        row = {"id": record.get("id"), "policy_text": policy.get("text"), "prompt": record.get("prompt"),
               "response": record.get("response"), "gold": record.get("verdict"), "gold_rules": record.get("rules"),
               "variant": policy.get("variant") is not None, "rule_ids": policy.get("rule_ids")}  # fmt: skip
        examples.append(_evaluation_row(number, where, row))
    if not examples:
        raise AidsafeError(
            f"{samples}: none of its source rows is in the held-out share ({HOLDOUT_SHARE:.0%}); the run is too small"
        )
    return examples


def _text(where: str, row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise AidsafeError(f"{where}: {key}: expected non-empty text")
    return value


def _ids(where: str, row: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    value = row.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AidsafeError(f"{where}: {key}: expected a list of rule ids or null")
    return tuple(value)
