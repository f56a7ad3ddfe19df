"""Hard-sample mining for GuardReasoner HS-DPO (Liu et al., 2025, HS-DPO).

Input: sampled prediction files, one row per training input with its K sampled outputs:

    {"prompt": instruction + "\\n" + input, "label": the training target (its answers block is the
     gold), "predicts": [K outputs], "index": i}

(`predict guard --samples K` writes this; a row with a single `predict` string counts as K=1.)

The rule, exactly:
- each sample is parsed per task with the published parser (`parse_guardreasoner`, last 300
  characters); a sample whose label for a task does not parse is dropped for that task;
- an input is hard for a task when its parsed samples are mixed (at least one right, one wrong);
  tasks are checked Request, then Response, then Completion, the last two only where the gold
  label and the conversation's response are not None; the first hard task gives the input's only
  pair;
- chosen = the longest correct sample, rejected = the longest wrong one (length in characters;
  among equally long samples the first in the row's order);
- raw weight = #wrong - #right among that task's parsed samples, min-max scaled into [0.8, 1.2]
  over the pairs mined from one file (one dataset x model); 1.0 when they are all equal;
- pairs from several files for the same input (the prompt text) are deduplicated, first file wins;
  scaling happens per file before that, so a pair keeps the weight its own file gave it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aidsafe.errors import AidsafeError
from aidsafe.guard.formats import (
    GUARDREASONER_INSTRUCTION,
    TASKS,
    UNPARSEABLE,
    parse_gold,
    parse_guardreasoner,
    split_guardreasoner_input,
)
from aidsafe.run.jsonl import read_jsonl, write_atomic

__all__ = [
    "MINING_ORDER",
    "WEIGHT_RANGE",
    "HardPair",
    "mine_file",
    "mine_files",
    "mine_row",
    "scale_weights",
    "write_pairs",
]

# Request, then Response, then Completion: the order the released mining script checks them.
MINING_ORDER = ("prompt", "response", "refusal")
WEIGHT_RANGE = (0.8, 1.2)


@dataclass(frozen=True)
class HardPair:
    prompt: str
    chosen: str
    rejected: str
    task: str  # "prompt", "response" or "refusal" (formats.TASKS)
    gold: str
    raw_weight: int  # #wrong - #right among the task's parsed samples
    right: int
    wrong: int
    source: str  # "file:line"
    weight: float = 1.0

    def to_record(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "chosen": self.chosen,
            "rejected": self.rejected,
            "weight": self.weight,
            "task": self.task,
            "gold": self.gold,
            "raw_weight": self.raw_weight,
            "right": self.right,
            "wrong": self.wrong,
            "source": self.source,
        }


def mine_row(
    prompt: str, gold: dict[str, str | None], response: str | None, samples: Sequence[str], source: str = ""
) -> HardPair | None:
    """The input's pair, or None when no task is hard. `gold` maps task -> label or None."""
    for task in MINING_ORDER:
        if gold.get(task) is None or (task != "prompt" and response is None):
            continue
        labelled = [(text, parse_guardreasoner(text, task)) for text in samples]
        right = [text for text, label in labelled if label == gold[task]]
        wrong = [text for text, label in labelled if label not in (gold[task], UNPARSEABLE)]
        if right and wrong:
            return HardPair(
                prompt=prompt,
                chosen=_longest(right),
                rejected=_longest(wrong),
                task=task,
                gold=gold[task],
                raw_weight=len(wrong) - len(right),
                right=len(right),
                wrong=len(wrong),
                source=source,
            )
    return None


def scale_weights(pairs: list[HardPair]) -> list[HardPair]:
    """Min-max scale the raw weights of one file's pairs into WEIGHT_RANGE (1.0 if all equal)."""
    if not pairs:
        return []
    low, high = min(p.raw_weight for p in pairs), max(p.raw_weight for p in pairs)
    if low == high:
        return [_with_weight(p, 1.0) for p in pairs]
    start, end = WEIGHT_RANGE
    return [_with_weight(p, start + (end - start) * (p.raw_weight - low) / (high - low)) for p in pairs]


def mine_file(path: Path) -> tuple[list[HardPair], Counter]:
    """The scaled pairs of one predictions file and its counts (rows, samples, unparseable, ...)."""
    counts: Counter = Counter()
    pairs = []
    for number, row in read_jsonl(path):
        where = f"{path}:{number}"
        prompt, response, gold, samples = _read_row(row, where)
        counts["inputs"] += 1
        counts["samples"] += len(samples)
        counts["unparseable_samples"] += sum(
            any(parse_guardreasoner(s, t) == UNPARSEABLE for t in TASKS if gold.get(t) is not None) for s in samples
        )
        pair = mine_row(prompt, gold, response, samples, where)
        if pair is not None:
            pairs.append(pair)
            counts[f"pairs_{pair.task}"] += 1
    return scale_weights(pairs), counts


def mine_files(paths: Sequence[Path]) -> tuple[list[HardPair], dict[str, Any]]:
    """Pairs from every file, each file scaled on its own, deduplicated on the prompt (first wins)."""
    if not paths:
        raise AidsafeError("no predictions files given")
    seen: set[str] = set()
    kept: list[HardPair] = []
    per_file = {}
    for path in paths:
        if not path.is_file():
            raise AidsafeError(f"{path}: predictions file not found")
        pairs, counts = mine_file(path)
        before = len(kept)
        for pair in pairs:
            if pair.prompt not in seen:  # an earlier file (or row) already gave this input's pair
                seen.add(pair.prompt)
                kept.append(pair)
        counts["pairs_kept"] = len(kept) - before
        counts["duplicates_dropped"] = len(pairs) - counts["pairs_kept"]
        per_file[str(path)] = dict(sorted(counts.items()))
    if not kept:  # nothing to train on: say why, write nothing, fail (a 0-pair folder looks like success)
        rows, samples, unparseable = (sum(c.get(key, 0) for c in per_file.values())
                                      for key in ("inputs", "samples", "unparseable_samples"))  # fmt: skip
        raise AidsafeError(
            f"no hard-sample pairs in {len(paths)} file(s): {rows} rows, {samples} sampled outputs, {unparseable} of "
            "them unparseable; a pair needs a row whose samples both agree and disagree with its gold label "
            "(sample more, e.g. `aidsafe predict guard --samples 4 --temperature 0.7`)"
        )
    return kept, {"pairs": len(kept), "files": per_file}


def write_pairs(pairs: list[HardPair], stats: dict[str, Any], output: Path) -> Path:
    """`pairs.jsonl` (prompt/chosen/rejected/weight: `train dpo guardreasoner-hsdpo` reads it) and
    `stats.json` in `output`; returns the pairs file."""
    if output.exists() and not output.is_dir():
        raise AidsafeError(f"{output}: exists and is not a directory; expected the output directory")
    output.mkdir(parents=True, exist_ok=True)
    target = output / "pairs.jsonl"
    write_atomic(target, "".join(json.dumps(p.to_record(), ensure_ascii=False) + "\n" for p in pairs))
    write_atomic(output / "stats.json", json.dumps(stats, indent=2, ensure_ascii=False) + "\n")
    return target


def _read_row(row: dict[str, Any], where: str) -> tuple[str, str | None, dict[str, str | None], list[str]]:
    prompt = row.get("prompt")
    if not isinstance(prompt, str):
        raise AidsafeError(f"{where}: prompt: expected the GuardReasoner prompt text (instruction + input)")
    samples = row.get("predicts", [row["predict"]] if "predict" in row else None)
    if not isinstance(samples, list) or not all(isinstance(s, str) for s in samples):
        raise AidsafeError(f"{where}: predicts: expected a list of sampled outputs (strings)")
    label = row.get("label")
    if not isinstance(label, str) or "answers:" not in label.lower():
        raise AidsafeError(f"{where}: label: expected the training target with its Answers: block")
    block = label[label.lower().rfind("answers:") :]  # the gold is the block, not the reasoning above it
    try:
        gold = {task: parse_gold(block, task) for task in TASKS}
    except ValueError as exc:
        raise AidsafeError(f"{where}: label: {exc}") from None
    text = prompt[len(GUARDREASONER_INSTRUCTION) + 1 :] if prompt.startswith(GUARDREASONER_INSTRUCTION) else prompt
    try:
        _, response = split_guardreasoner_input(text)
    except ValueError as exc:
        raise AidsafeError(f"{where}: prompt: {exc}") from None
    return prompt, response, gold, samples


def _longest(texts: list[str]) -> str:
    return max(texts, key=len)  # max keeps the first of equally long ones


def _with_weight(pair: HardPair, weight: float) -> HardPair:
    return replace(pair, weight=weight)
