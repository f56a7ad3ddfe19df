"""A policy judge's reply, pure: the JSON it answers, the checks for a teacher that does not follow
that JSON, and the agreement of two judges. The stage that asks is aidsafe.guard.policy_guard.

The schema of one call pins what JSON Schema can pin:

- `verdict`: `allowed` or `violation`; a one-value enum of the gold verdict where the row has one
  (the judge explains it: label-conditioned, as GuardReasoner's teacher);
- `rules`: the violated rule ids, items an enum of the ids of the policy set judged under (of the
  variant set, for a counterfactual), no repeats; empty exactly when allowed, at least one when
  a violation. Without gold the two shapes are the two branches of an `anyOf`, so a
  guided-decoding teacher cannot answer `allowed` with rules, nor `violation` without;
- `reasoning`: the full reasoning, trimmed, no `<` (nothing in it can close the `<think>` block
  it is rendered in); `rationale`: one sentence on one trimmed line, at most
  `RATIONALE_MAX_CHARS`.

`check_judgement` checks the same after parsing (the reply is parsed loosely on purpose), so a
teacher without guided decoding gets a named rejection: `empty`, `unknown_verdict`,
`label_disagree` (not the gold verdict), `unknown_rule` (an id outside the set), `inconsistent`
(rules with `allowed`, none with `violation`), `length`, `format` (a text breaking its pattern, or
an answer that would not parse back through policy_format). `agree` rejects two judgements
whose verdict or rule-id set differ: `judges_disagree`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict

from aidsafe.guard.policy_format import VERDICTS, content_block, parse_answer, render_answer
from aidsafe.run.task import Rejection

__all__ = [
    "LINE_PATTERN",
    "RATIONALE_MAX_CHARS",
    "TEXT_PATTERN",
    "Judgement",
    "agree",
    "check_judgement",
    "judge_values",
    "judgement_model",
    "judgement_schema",
]

# One trimmed line, not opening with `#` (a rendered policy's heading) and without `<` (a tag).
# Only ASCII classes: llama.cpp's grammar converter has no \S.
LINE_PATTERN = r"^[^ \t\n\r#<]([^\n\r<]*[^ \t\n\r<])?$"
# Trimmed text over any number of lines, without `<`.
TEXT_PATTERN = r"^[^ \t\n\r<]([^<]*[^ \t\n\r<])?$"
RATIONALE_MAX_CHARS = 400  # ours: one sentence; the three targets' shortest reasoning
_LINE, _TEXT = re.compile(LINE_PATTERN), re.compile(TEXT_PATTERN)


_NO_GOLD = "not given: decide allowed or violation yourself"


def judge_values(policy_text: str, prompt: str, response: str | None, gold: str | None) -> dict[str, str]:
    """A judge card's fields: the policy, the content, the gold verdict or what to decide."""
    return {"policy": policy_text, "content": content_block(prompt, response), "verdict": gold or _NO_GOLD}


@dataclass(frozen=True)
class Judgement:
    verdict: str
    rules: tuple[str, ...]  # in the order of the set's rules
    reasoning: str
    rationale: str


class _JudgementReply(BaseModel):
    """Parsed loosely on purpose: what the schema pins is checked after parsing (`check_judgement`)."""

    model_config = ConfigDict(extra="forbid")
    reasoning: str
    verdict: str
    rules: list[str]
    rationale: str

    def to_judgement(self) -> Judgement:
        return Judgement(self.verdict, tuple(self.rules), self.reasoning, self.rationale)


def _shape(rule_ids: Sequence[str], verdict: str) -> dict[str, Any]:
    """The object of one verdict: its rules empty when allowed, one to all of the ids when a violation."""
    rules: dict[str, Any] = {
        "type": "array",
        "description": "The ids of the rules the content violates; empty when allowed.",
        "items": {"type": "string", "enum": list(rule_ids)},
        "uniqueItems": True,
    }
    rules.update({"maxItems": 0} if verdict == "allowed" else {"minItems": 1, "maxItems": len(rule_ids)})
    return {
        "type": "object",
        "properties": {
            "reasoning": {
                "type": "string",
                "description": "The full reasoning: what the content is, which rules bear on it and why.",
                "pattern": TEXT_PATTERN,
            },
            "verdict": {"type": "string", "enum": [verdict]},
            "rules": rules,
            "rationale": {
                "type": "string",
                "description": "One sentence: why the content is allowed or violates the rules named.",
                "maxLength": RATIONALE_MAX_CHARS,
                "pattern": LINE_PATTERN,
            },
        },
        "required": ["reasoning", "verdict", "rules", "rationale"],
        "additionalProperties": False,
    }


def judgement_schema(rule_ids: Sequence[str], gold: str | None) -> dict[str, Any]:
    """The JSON Schema of one judge call under a set with `rule_ids`; `gold` pins the verdict."""
    if gold is not None:
        return {"title": "PolicyJudgement", **_shape(rule_ids, gold)}
    return {"title": "PolicyJudgement", "type": "object", "anyOf": [_shape(rule_ids, v) for v in VERDICTS]}


@lru_cache(maxsize=256)
def judgement_model(rule_ids: tuple[str, ...], gold: str | None) -> type[_JudgementReply]:
    """A reply model whose schema on the wire is `judgement_schema(rule_ids, gold)`."""
    schema = judgement_schema(rule_ids, gold)

    def model_json_schema(cls: type, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return json.loads(json.dumps(schema))  # a fresh copy: callers may edit what they get

    return type("PolicyJudgement", (_JudgementReply,), {"model_json_schema": classmethod(model_json_schema)})


def check_judgement(judgement: Judgement, rule_ids: Sequence[str], gold: str | None, stage: str) -> Judgement:
    """The judgement with its rules once each, in the set's order; or Rejection(`stage`) naming
    the first rule of the schema the reply breaks."""

    def reject(reason: str, error: str) -> Rejection:
        return Rejection(stage, reason, error, transient=False)

    if not judgement.reasoning.strip() or not judgement.rationale.strip():
        raise reject("empty", "an empty reasoning or rationale")
    if judgement.verdict not in VERDICTS:
        raise reject("unknown_verdict", f"verdict {judgement.verdict[:40]!r}; expected {' or '.join(VERDICTS)}")
    if gold is not None and judgement.verdict != gold:
        raise reject("label_disagree", f"verdict {judgement.verdict!r}, but the gold verdict is {gold!r}")
    unknown = [rule for rule in judgement.rules if rule not in rule_ids]
    if unknown:
        raise reject("unknown_rule", f"rule id {unknown[0][:40]!r} is not in the set ({', '.join(rule_ids)})")
    if (judgement.verdict == "violation") != bool(judgement.rules):
        named = ", ".join(judgement.rules) or "none"
        raise reject("inconsistent", f"verdict {judgement.verdict} with rules {named}")
    if len(judgement.rationale) > RATIONALE_MAX_CHARS:
        raise reject("length", f"a rationale of {len(judgement.rationale)} characters; at most {RATIONALE_MAX_CHARS}")
    if not _TEXT.fullmatch(judgement.reasoning) or not _LINE.fullmatch(judgement.rationale):
        raise reject("format", "the reasoning is not trimmed text without '<', or the rationale not one such line")
    rules = tuple(rule for rule in rule_ids if rule in judgement.rules)
    for reasoning in (judgement.reasoning, judgement.rationale, None):  # the three targets parse back
        answer = parse_answer(render_answer(judgement.verdict, rules, reasoning), expect_reasoning=bool(reasoning))
        if (answer.verdict, answer.rules, answer.reasoning, answer.well_formed) != (
            judgement.verdict, rules, reasoning, True
        ):  # fmt: skip
            raise reject("format", "the rendered answer does not parse back to the same verdict, rules and text")
    return Judgement(judgement.verdict, rules, judgement.reasoning, judgement.rationale)


def agree(first: Judgement, second: Judgement, names: tuple[str, str] = ("judge", "second_judge")) -> None:
    """Two checked judgements of one content agree on the verdict and the set of rule ids, or
    Rejection("judges", "judges_disagree") says how they differ."""
    if (first.verdict, set(first.rules)) != (second.verdict, set(second.rules)):
        said = "; ".join(
            f"{name}: {j.verdict}" + (f" ({', '.join(j.rules)})" if j.rules else "")
            for name, j in zip(names, (first, second), strict=True)
        )
        raise Rejection("judges", "judges_disagree", said, transient=False)
