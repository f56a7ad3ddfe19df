"""Export formats: one finished sample (a line of samples.jsonl) as one dataset row. Pure functions.

- `sft`: TRL's conversational `messages`, the answer rendered with the chain-of-thought template
  by `cot_answer`, the function `aidsafe train` uses on a run directory too, so a model trained
  from the export and one trained from the run see the same text.
- `aidsafe`: the record as it is, structured: `prompt`, `intents`, `thoughts` (each with the
  policy ids it cites: the policy-embedded part), `response`, `removed` (each dropped thought
  with its stage and reason), `deliberation_log` (the turns as JSON text).
- `dpo`: TRL's preference columns. A pairs run's pair through `preference_row` (conversational,
  both sides in the CoT template; `aidsafe train dpo` reads a pairs run with it too); a
  hard-sample pair as its raw GuardReasoner texts with its `weight`.
- `guardreasoner`: a traces run's `instruction` / `input` / `output`, byte for byte.
- `thinkguard` / `thinkguard-label-only` (runs of `aidsafe generate thinkguard`): plain-text
  `prompt` (the Llama Guard 3 prompt) and `completion` (the critique target, or the label-only
  one), what `train sft thinkguard` reads from the run directory too (`thinkguard_example`).
- `policy-guard` / `policy-guard-rationale` / `policy-guard-verdict` (runs of `aidsafe generate
  policy-guard`): TRL `messages` (the policy as the system message, the content, the answer) with
  the full reasoning, the one-sentence rationale or no reasoning before the verdict
  (`policy_format.target_messages`, what `train sft` reads from the run directory too), and the
  record's structured columns: `source_id`, `verdict`, `rules`, `gold`, `label_source`,
  `policy_set`, `rule_ids`, `variant` (null for an original).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from aidsafe.guard.policy_bench import is_heldout
from aidsafe.guard.policy_format import target_messages

__all__ = [
    "DEFAULT_COT_TEMPLATE",
    "FORMATS",
    "POLICY_GUARD_FORMATS",
    "aidsafe_row",
    "cot_answer",
    "dpo_row",
    "features_of",
    "guardreasoner_row",
    "in_test_split",
    "joined_thoughts",
    "policy_guard_row",
    "preference_row",
    "record_in_test_split",
    "sft_row",
    "thinkguard_example",
    "thinkguard_label_only_row",
    "thinkguard_row",
]

# How thoughts and response become one assistant answer unless a train recipe says otherwise
# (`cot_template`). Exports always use it, so an exported dataset reads like the trainer's default.
DEFAULT_COT_TEMPLATE = "<think>\n{thoughts}\n</think>\n\n{response}"


def joined_thoughts(record: dict[str, Any]) -> str:
    """The refined thoughts as text, one per line (records hold {id, text, policies} objects)."""
    return "\n".join(str(t["text"]) if isinstance(t, dict) else str(t) for t in record["thoughts"])


def cot_answer(record: dict[str, Any], cot_template: str) -> str:
    """The assistant's answer: thoughts and response in the template (`{thoughts}`, `{response}`)."""
    return cot_template.format(thoughts=joined_thoughts(record), response=record["response"])


def sft_row(record: dict[str, Any], cot_template: str) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": record["prompt"]},
            {"role": "assistant", "content": cot_answer(record, cot_template)},
        ]
    }


def aidsafe_row(record: dict[str, Any], cot_template: str) -> dict[str, Any]:
    # Structured as the record is, so a reviewer can trace each thought to the policies it cites
    # and each dropped thought to why it went. The log stays one JSON text field: its turns nest
    # thoughts of their own; json.loads gives agent, round, thoughts, response, complete.
    return {
        "prompt": record["prompt"],
        "intents": [_pick(i, ("text", "kind", "nature")) for i in record.get("intents") or []],
        "thoughts": [_thought(t) for t in record["thoughts"]],
        "response": record["response"],
        "removed": [_pick(t, ("id", "text", "stage", "reason")) for t in record.get("removed") or []],
        "deliberation_log": json.dumps(record.get("deliberation", []), ensure_ascii=False),
    }


def _thought(thought: Any) -> dict[str, Any]:
    if not isinstance(thought, dict):  # runs written before thoughts carried ids and policies
        return {"id": "", "text": str(thought), "policies": []}
    return {"id": str(thought.get("id", "")), "text": str(thought["text"]),
            "policies": [str(p) for p in thought.get("policies") or []]}  # fmt: skip


def _pick(item: Any, keys: tuple[str, ...]) -> dict[str, str]:
    item = item if isinstance(item, dict) else {"text": str(item)}
    return {key: "" if item.get(key) is None else str(item.get(key)) for key in keys}


def thinkguard_example(record: dict[str, Any], target: str) -> dict[str, str]:
    """A ThinkGuard record as plain-text prompt/completion: `target` "critique" (verdict,
    categories, explanation) or "label_only" (the paper's ablation: no explanation). Plain text,
    not chat turns: the Llama Guard 3 prompt already holds its special tokens."""
    completion = record["output"] if target == "critique" else record["output_label_only"]
    return {"prompt": record["input"], "completion": completion}


def thinkguard_row(record: dict[str, Any], cot_template: str) -> dict[str, str]:
    return thinkguard_example(record, "critique")


def thinkguard_label_only_row(record: dict[str, Any], cot_template: str) -> dict[str, str]:
    return thinkguard_example(record, "label_only")


def policy_guard_row(record: dict[str, Any], target: str) -> dict[str, Any]:
    """A policy-guard record as TRL `messages` for `target` (full, rationale or verdict), and the
    columns that say what it is: a filter for originals or variants, gold or judged labels."""
    policy, variant = record["policy"], record["policy"].get("variant")
    return {
        "messages": target_messages(record, target),
        "source_id": str(record["source_id"]),
        "verdict": record["verdict"],
        "rules": [str(rule) for rule in record["rules"]],
        "gold": record.get("gold"),
        "label_source": str(record.get("label_source", "")),
        "policy_set": str(policy.get("set_id", "")),
        "rule_ids": [str(rule) for rule in policy["rule_ids"]],
        "variant": None if variant is None else {key: str(variant.get(key, "")) for key in ("edit", "rule", "note")},
    }


def preference_row(record: dict[str, Any], cot_template: str) -> dict[str, list[dict[str, str]]]:
    """A pairs run's pair in TRL's conversational preference format, both sides in `cot_template`.
    The ear-whisperer's belief is never in the prompt: the model learns to refuse the steered
    reasoning from the plain request."""

    def answer(side: dict[str, Any]) -> list[dict[str, str]]:
        return [{"role": "assistant", "content": cot_answer(side, cot_template)}]

    return {
        "prompt": [{"role": "user", "content": record["prompt"]}],
        "chosen": answer(record["chosen"]),
        "rejected": answer(record["rejected"]),
    }


def dpo_row(record: dict[str, Any], cot_template: str, keep_beliefs: bool = False) -> dict[str, Any]:
    if isinstance(record["chosen"], str):
        # A hard-sample pair (HS-DPO): the texts are already the guard model's prompt and outputs,
        # the standard (not conversational) format `train dpo guardreasoner-hsdpo` reads.
        return {k: record[k] for k in ("prompt", "chosen", "rejected")} | {"weight": float(record["weight"])}
    row: dict[str, Any] = preference_row(record, cot_template)
    if keep_beliefs:  # for audit only: sensitive, see the card's dual-use note
        row["belief"] = {k: str(record["belief"][k]) for k in ("text", "target_policy")}
    return row


def guardreasoner_row(record: dict[str, Any], cot_template: str) -> dict[str, Any]:
    # Byte-identical: the released GuardReasoner models were trained on this exact instruction.
    return {k: record[k] for k in ("instruction", "input", "output")}


# The policy-guard export's configs, one per training target (policy_format.TARGETS).
POLICY_GUARD_FORMATS = {
    "policy-guard": "full",
    "policy-guard-rationale": "rationale",
    "policy-guard-verdict": "verdict",
}


def _with_id(row: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Every exported row opens with its sample's `id`, so it joins back to samples.jsonl,
    filtered.jsonl and the report (TRL's trainers ignore a column they do not read)."""

    @wraps(row)
    def with_id(record: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {"id": str(record["id"]), **row(record, *args, **kwargs)}

    return with_id


FORMATS: dict[str, Callable[..., dict[str, Any]]] = {
    name: _with_id(row)
    for name, row in {
        "sft": sft_row,
        "aidsafe": aidsafe_row,
        "dpo": dpo_row,
        "guardreasoner": guardreasoner_row,
        "thinkguard": thinkguard_row,
        "thinkguard-label-only": thinkguard_label_only_row,
        **{
            name: lambda record, cot_template, target=target: policy_guard_row(record, target)
            for name, target in POLICY_GUARD_FORMATS.items()
        },
    }.items()
}


def features_of(name: str, kind: str = "generation", keep_beliefs: bool = False) -> Any:
    """The Arrow schema of a format (of a run of `kind`), fixed so that every shard and split agree."""
    from datasets import Features, List, Value

    text = Value("string")
    turns = List({"role": text, "content": text})
    return Features({"id": text} | _columns(name, kind, keep_beliefs, text, turns, List))


def _columns(name: str, kind: str, keep_beliefs: bool, text: Any, turns: Any, List: Any) -> dict[str, Any]:  # noqa: N803
    from datasets import Value

    if name == "sft":
        return {"messages": turns}
    if name == "dpo" and kind == "hard-samples":
        return {k: text for k in ("prompt", "chosen", "rejected")} | {"weight": Value("float64")}
    if name == "dpo":
        belief = {"belief": {"text": text, "target_policy": text}} if keep_beliefs else {}
        return {"prompt": turns, "chosen": turns, "rejected": turns} | belief
    if name == "guardreasoner":
        return {key: text for key in ("instruction", "input", "output")}
    if name in ("thinkguard", "thinkguard-label-only"):
        return {"prompt": text, "completion": text}
    if name in POLICY_GUARD_FORMATS:
        return {"messages": turns, "source_id": text, "verdict": text, "rules": List(text), "gold": text,
                "label_source": text, "policy_set": text, "rule_ids": List(text),
                "variant": {"edit": text, "rule": text, "note": text}}  # fmt: skip
    return {
        "prompt": text,
        "intents": List({"text": text, "kind": text, "nature": text}),
        "thoughts": List({"id": text, "text": text, "policies": List(text)}),
        "response": text,
        "removed": List({"id": text, "text": text, "stage": text, "reason": text}),
        "deliberation_log": text,
    }


def record_in_test_split(record: dict[str, Any], kind: str, test_size: float) -> bool:
    """Whether a record of a `kind` run goes to the test split. A policy-guard record goes by its
    `source_id`, so a row and its counterfactual variants are on one side, and the share held out
    for evaluation (`policy_bench.is_heldout`, what `aidsafe eval guard RUN` scores) is always
    test, whatever `test_size`, so nothing trained on the train split is scored."""
    if kind == "policy-guard":
        source = str(record["source_id"])
        return is_heldout(source) or in_test_split(source, test_size)
    return in_test_split(record["id"], test_size)


def in_test_split(sample_id: str, test_size: float) -> bool:
    """Whether a sample goes to the test split: a hash of its id, so the split is the same in
    every format, on every rerun and whatever order the samples were written in."""
    digest = hashlib.sha256(sample_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < test_size
