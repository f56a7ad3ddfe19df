"""The safety benchmarks of the paper's Table 2, read by Hub id with their real columns, or from files.

Each benchmark is a name, what is measured on it, the Hub dataset it is published as (with its
split), and the column that holds the prompt there:

| name | Hub default | prompt column | measured |
|---|---|---|---|
| beavertails | PKU-Alignment/BeaverTails, split 30k_test | `prompt` | safe-response rate |
| wildchat | allenai/WildChat, split train, `toxic` rows | first user turn of `conversation` | safe-response rate |
| strongreject | walledai/StrongREJECT, split train | `prompt` (the repo's csv: `forbidden_prompt`) | rubric score |
| xstest | Paul/XSTest, split train | `prompt`, with `label` safe/unsafe (v2 files: `type` contrast_*) | over-refusal |

`--benchmarks beavertails,xstest=path/to/xstest.csv,wildchat=owner/name:split`: a name alone
loads the Hub default; `name=REF` loads REF instead, a .jsonl/.json/.csv/.parquet file or a Hub id
`owner/name[:split]`, in the same column shapes. BeaverTails repeats each prompt for several
responses: a prompt is asked once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aidsafe.errors import AidsafeError
from aidsafe.sources import prompt_id, read_rows

__all__ = ["BENCHMARKS", "BenchmarkSpec", "SafetyItem", "load_benchmarks", "parse_benchmarks"]


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    metric: str  # "safe_rate", "strongreject" or "xstest"
    hub: str  # owner/name:split
    title: str


BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (
        BenchmarkSpec("beavertails", "safe_rate", "PKU-Alignment/BeaverTails:30k_test", "BeaverTails"),
        BenchmarkSpec("wildchat", "safe_rate", "allenai/WildChat:train", "WildChat"),
        BenchmarkSpec("strongreject", "strongreject", "walledai/StrongREJECT:train", "StrongREJECT"),
        BenchmarkSpec("xstest", "xstest", "Paul/XSTest:train", "XSTest"),
    )
}


@dataclass(frozen=True)
class SafetyItem:
    """One benchmark prompt to put to the student. `kind` is XSTest's safe/unsafe, else None."""

    id: str
    benchmark: str
    prompt: str
    kind: str | None = None


def parse_benchmarks(spec: str) -> list[tuple[BenchmarkSpec, str]]:
    """`beavertails,xstest=PATH` -> [(spec, ref)]: an unknown name is one line listing the known."""
    chosen: list[tuple[BenchmarkSpec, str]] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, ref = part.partition("=")
        name = name.strip().lower()
        if name not in BENCHMARKS:
            raise AidsafeError(f"--benchmarks: unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
        if any(known.name == name for known, _ in chosen):
            raise AidsafeError(f"--benchmarks: {name} is given twice")
        chosen.append((BENCHMARKS[name], ref.strip() or BENCHMARKS[name].hub))
    if not chosen:
        raise AidsafeError(f"--benchmarks: no benchmark given; known: {', '.join(BENCHMARKS)}")
    return chosen


def load_benchmarks(chosen: list[tuple[BenchmarkSpec, str]], limit: int | None = None) -> list[SafetyItem]:
    """Every chosen benchmark's items, each read and checked before any request; `limit` per benchmark."""
    items: list[SafetyItem] = []
    for spec, ref in chosen:
        rows = read_rows(ref, noun="prompts")
        seen: set[str] = set()
        taken = 0
        for where, row in rows:
            item = _item(spec, where, row)
            if item is None or item.id in seen:  # WildChat's non-toxic rows; BeaverTails' repeats
                continue
            seen.add(item.id)
            items.append(item)
            taken += 1
            if limit is not None and taken >= limit:
                break
        if not taken:
            raise AidsafeError(f"{ref}: no prompts for {spec.name}")
    return items


def _item(spec: BenchmarkSpec, where: str, row: dict[str, Any]) -> SafetyItem | None:
    if spec.name == "wildchat":
        if row.get("toxic") is False or str(row.get("toxic")).lower() == "false":
            return None  # the paper's WildChat figures are about unsafe prompts
        prompt = _first_user_turn(where, row)
    else:
        column = "forbidden_prompt" if spec.name == "strongreject" and "forbidden_prompt" in row else "prompt"
        prompt = row.get(column)
        if not isinstance(prompt, str) or not prompt.strip():
            fields = ", ".join(map(str, row)) or "none"
            raise AidsafeError(f"{where}: expected a non-empty string column {column!r} (columns: {fields})")
    kind = _xstest_kind(where, row) if spec.name == "xstest" else None
    return SafetyItem(f"{spec.name}:{prompt_id(prompt)}", spec.name, prompt, kind)


def _first_user_turn(where: str, row: dict[str, Any]) -> str:
    conversation = row.get("conversation")
    if isinstance(conversation, str):  # a csv cell
        try:
            conversation = json.loads(conversation)
        except json.JSONDecodeError:
            conversation = None
    if isinstance(conversation, list):
        for turn in conversation:
            if isinstance(turn, dict) and turn.get("role") == "user" and isinstance(turn.get("content"), str):
                if turn["content"].strip():
                    return turn["content"]
    if isinstance(row.get("prompt"), str) and row["prompt"].strip():  # a prepared subset
        return row["prompt"]
    raise AidsafeError(
        f"{where}: expected 'conversation' (a list of {{role, content}} turns with a user turn) or 'prompt'"
    )


def _xstest_kind(where: str, row: dict[str, Any]) -> str:
    label = str(row.get("label") or "").strip().lower()
    if label in ("safe", "unsafe"):
        return label
    kind = row.get("type")
    if isinstance(kind, str) and kind.strip():  # XSTest v2 files: the unsafe contrasts are contrast_*
        return "unsafe" if kind.startswith("contrast_") else "safe"
    raise AidsafeError(f"{where}: expected 'label' safe/unsafe or an XSTest 'type' (contrast_* = unsafe)")
