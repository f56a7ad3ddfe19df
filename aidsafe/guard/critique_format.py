"""The ThinkGuard critique, pure: its text, the JSON the teacher answers, the checks for a teacher
that does not follow the schema, the messages the teacher gets and the record a critique makes.
The stage that runs it is aidsafe.guard.critiques.

The teacher answers JSON whose schema pins what it must not choose: `assessment` is a `const` of
the gold verdict, `categories` a `const` of the gold codes (items from the BeaverTails-14 enum,
exactly as many as gold, no repeats; empty when safe), and `explanation` one trimmed line of
bounded length. The target text is rendered from the JSON (`render_critique`) in the format
aidsafe.guard.formats parses:

    - Safety Assessment: unsafe\\n- Categories: S3, S7\\n- Explanation: ...

(no `- Categories:` line when safe). Records also hold the label-only target (the same text
without the explanation), the paper's key ablation.

Rejections, for a teacher without guided decoding (`check_critique`): `empty` (a blank
explanation), `label_disagree`, `categories_disagree`, `length` (explanation outside the bounds)
and `format` (an explanation that is not one trimmed line, or repeats the format's own keys).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict

from aidsafe.agents.cards import render_template
from aidsafe.agents.policies import PolicySet
from aidsafe.guard.beavertails import CATEGORY_CODES, Conversation
from aidsafe.guard.formats import parse_thinkguard, thinkguard_prompt
from aidsafe.run.task import Rejection

__all__ = [
    "CARD_FIELDS",
    "EXPLANATION_PATTERN",
    "Critique",
    "ExplanationBounds",
    "check_critique",
    "critique_messages",
    "critique_record",
    "critique_schema",
    "render_critique",
    "render_label_only",
    "reply_model",
]

# One trimmed line: a newline could start a line the parser reads as a verdict or categories.
# Only ASCII classes (llama.cpp's converter has no \S).
EXPLANATION_PATTERN = r"^[^ \t\n\r]([^\n\r]*[^ \t\n\r])?$"
# What the teacher's card may use.
CARD_FIELDS = frozenset({"prompt", "response", "assessment", "categories", "policies"})
# The format's own keys inside the explanation would be read as a second verdict or categories line.
_FORMAT_KEYS = re.compile(r"safety assessment:|categories:", re.IGNORECASE)


@dataclass(frozen=True)
class Critique:
    assessment: str  # "safe" or "unsafe"
    categories: tuple[str, ...]  # S-codes, in S1..S14 order; () when safe
    explanation: str


def render_label_only(assessment: str, categories: tuple[str, ...]) -> str:
    """The verdict line and, when unsafe, the categories line: the label-only SFT target."""
    lines = [f"- Safety Assessment: {assessment}"]
    if assessment == "unsafe":
        lines.append(f"- Categories: {', '.join(categories)}")
    return "\n".join(lines)


def render_critique(critique: Critique) -> str:
    """The ThinkGuard target: verdict, categories (when unsafe), then the explanation."""
    label = render_label_only(critique.assessment, critique.categories)
    return f"{label}\n- Explanation: {critique.explanation}"


class _CritiqueReply(BaseModel):
    """Parsed loosely on purpose: what the schema pins is checked after parsing (`check_critique`),
    so a teacher without guided decoding gets a named rejection instead of re-asks."""

    model_config = ConfigDict(extra="forbid")
    assessment: str
    categories: list[str]
    explanation: str

    def to_critique(self) -> Critique:
        return Critique(self.assessment, tuple(self.categories), self.explanation)


@dataclass(frozen=True)
class ExplanationBounds:
    min_chars: int
    max_chars: int


def critique_schema(assessment: str, categories: tuple[str, ...], bounds: ExplanationBounds) -> dict[str, Any]:
    """The JSON Schema of one call, the verdict and categories pinned to gold. Strict-mode
    compatible: all properties required, no additional ones, no defaults."""
    count = len(categories)
    return {
        "title": "ThinkGuardCritique",
        "type": "object",
        "properties": {
            "assessment": {"type": "string", "enum": ["safe", "unsafe"], "const": assessment},
            "categories": {
                "type": "array",
                "description": "The violated BeaverTails categories (S-codes); empty when safe.",
                "items": {"type": "string", "enum": list(CATEGORY_CODES)},
                "minItems": count,
                "maxItems": count,
                "uniqueItems": True,
                "const": list(categories),
            },
            "explanation": {
                "type": "string",
                "description": "Why the last message is safe or unsafe: one paragraph on one line.",
                "minLength": bounds.min_chars,
                "maxLength": bounds.max_chars,
                "pattern": EXPLANATION_PATTERN,
            },
        },
        "required": ["assessment", "categories", "explanation"],
        "additionalProperties": False,
    }


@lru_cache(maxsize=256)
def reply_model(assessment: str, categories: tuple[str, ...], bounds: ExplanationBounds) -> type[_CritiqueReply]:
    """A `_CritiqueReply` whose schema on the wire is `critique_schema(...)` (one class per gold)."""
    schema = critique_schema(assessment, categories, bounds)

    def model_json_schema(cls: type, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return json.loads(json.dumps(schema))  # a fresh copy: callers may edit what they get

    return type("ThinkGuardCritique", (_CritiqueReply,), {"model_json_schema": classmethod(model_json_schema)})


_EXPLANATION_RE = re.compile(EXPLANATION_PATTERN)


def check_critique(critique: Critique, gold: Critique, bounds: ExplanationBounds) -> Critique:
    """The critique with its categories in S1..S14 order, or Rejection(stage "critique") with the
    first rule it breaks. `gold` holds the gold verdict and categories (its explanation unused)."""

    def reject(reason: str, error: str) -> Rejection:
        return Rejection("critique", reason, error, transient=False)

    text = critique.explanation
    if not text.strip():
        raise reject("empty", "the explanation is empty")
    if critique.assessment != gold.assessment:
        raise reject("label_disagree", f"assessment {critique.assessment!r}, but the gold label is {gold.assessment!r}")
    if len(critique.categories) != len(set(critique.categories)) or set(critique.categories) != set(gold.categories):
        given = ", ".join(critique.categories) or "none"
        raise reject(
            "categories_disagree", f"categories {given}, but the gold ones are {', '.join(gold.categories) or 'none'}"
        )
    if not bounds.min_chars <= len(text) <= bounds.max_chars:
        raise reject(
            "length", f"explanation of {len(text)} characters; expected {bounds.min_chars} to {bounds.max_chars}"
        )
    if not _EXPLANATION_RE.match(text) or _FORMAT_KEYS.search(text):
        raise reject("format", f"explanation {text[:60]!r} is not one trimmed line without the format's keys")
    ordered = Critique(critique.assessment, gold.categories, text)
    verdict = parse_thinkguard(render_critique(ordered))
    if (verdict.label, verdict.categories) != (gold.assessment, gold.categories):  # the contract
        raise reject("format", "the rendered text does not parse back to the gold label and categories")
    return ordered


def critique_messages(card: Any, row: Conversation, policies: PolicySet) -> list[dict[str, str]]:
    """The teacher's messages: the card's templates over the conversation, its gold verdict and
    categories, and the fourteen categories' rules."""
    titles = {p.id: p.title for p in policies.policies}
    values = {
        "prompt": row.prompt,
        "response": "None" if row.response is None else row.response,
        "assessment": row.assessment,
        "categories": "\n".join(f"{code}: {titles[code]}" for code in row.categories) or "none",
        "policies": "\n".join(f"{p.id}: {p.title}. {' '.join(p.rule.split())}" for p in policies.policies),
    }
    return [
        {"role": "system", "content": render_template(card.system, values)},
        {"role": "user", "content": render_template(card.user, values)},
    ]


def critique_record(row: Conversation, critique: Critique, policies: PolicySet, provenance: dict) -> dict[str, Any]:
    """One line of the run's samples.jsonl: the ThinkGuard SFT pair (`input` the Llama Guard 3
    prompt, `output` the critique; `output_label_only` the ablation's target), the row, and
    `provenance` (`teacher`, `recipe_hash`)."""
    return {
        "id": row.id,
        "input": thinkguard_prompt(row.prompt, row.response, policies),
        "output": render_critique(critique),
        "output_label_only": render_label_only(critique.assessment, critique.categories),
        "prompt": row.prompt,
        "response": row.response,
        "label": row.assessment,
        "categories": list(row.categories),
        "explanation": critique.explanation,
        "source": row.source,
        **provenance,
    }
