"""ThinkGuard critiques: label-conditioned critiques of BeaverTails conversations (methods.md section 3).

`aidsafe generate thinkguard --input BEAVERTAILS_LIKE --output DIR`: one teacher call per row.
The teacher sees the conversation, its gold verdict and harm categories, and explains them. It
answers JSON whose schema pins what it must not choose: `assessment` is a `const` of the gold
verdict, `categories` a `const` of the gold codes (items from the BeaverTails-14 enum, exactly as
many as gold, no repeats; empty when safe), and `explanation` one trimmed line of bounded length.
The target text is rendered from the JSON (`render_critique`) in the format
aidsafe.guard.formats parses:

    - Safety Assessment: unsafe\\n- Categories: S3, S7\\n- Explanation: ...

(no `- Categories:` line when safe), under the Llama Guard 3 prompt with the BeaverTails-14
policy set (`thinkguard_prompt`). Records also hold the label-only target (the same text without
the explanation), the paper's key ablation, chosen at training (`thinkguard_target`) or export
(`--format thinkguard-label-only`).

Rejections, for a teacher without guided decoding: `empty` (a blank explanation),
`label_disagree`, `categories_disagree`, `length` (explanation outside the bounds) and `format`
(an explanation that is not one trimmed line, or repeats the format's own keys).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from aidsafe.agents.cards import render_template
from aidsafe.agents.policies import PolicySet, load_policies
from aidsafe.config.yamlio import register_config_model
from aidsafe.errors import AidsafeError
from aidsafe.guard.formats import BEAVERTAILS_CATEGORIES, parse_thinkguard, thinkguard_prompt
from aidsafe.guard.synthesis import (
    GuardRecipe,
    LoadedGuardRecipe,
    ask_teacher,
    guard_counts,
    load_guard_recipe,
    recipe_kind,
)
from aidsafe.run.journal import input_digest
from aidsafe.run.loop import run_async
from aidsafe.run.stage import StageRequest, run_stage
from aidsafe.run.task import Rejection, RunContext, Task
from aidsafe.sources import read_rows
from aidsafe.teacher.types import Teacher

__all__ = [
    "CARD_FIELDS",
    "CATEGORY_CODES",
    "EXPLANATION_PATTERN",
    "RECIPE_KIND",
    "Conversation",
    "Critique",
    "CritiqueRecipe",
    "CritiqueTask",
    "ExplanationBounds",
    "LoadedCritiqueRecipe",
    "check_critique",
    "critique_schema",
    "generate_critiques",
    "generate_critiques_async",
    "is_critique_recipe",
    "load_critique_recipe",
    "read_conversations",
    "render_critique",
    "render_label_only",
]

RECIPE_KIND = "thinkguard"
# S1..S14 in the order of formats.BEAVERTAILS_CATEGORIES (ThinkGuard's numbering).
CATEGORY_CODES = tuple(f"S{i}" for i in range(1, len(BEAVERTAILS_CATEGORIES) + 1))
CODE_OF = dict(zip(BEAVERTAILS_CATEGORIES, CATEGORY_CODES, strict=True))
# One trimmed line: a newline could start a line the parser reads as a verdict or categories.
# Only ASCII classes (llama.cpp's converter has no \S).
EXPLANATION_PATTERN = r"^[^ \t\n\r]([^\n\r]*[^ \t\n\r])?$"
CARD_FIELDS = frozenset({"prompt", "response", "assessment", "categories", "policies"})
# The format's own keys inside the explanation would be read as a second verdict or categories line.
_FORMAT_KEYS = re.compile(r"safety assessment:|categories:", re.IGNORECASE)


# ----------------------------------------------------------------------------------------------
# The text: rendered from the critique, and read back by formats.parse_thinkguard.


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


# ----------------------------------------------------------------------------------------------
# The schema the teacher answers, and the checks for teachers that do not follow it.


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
def _reply_model(assessment: str, categories: tuple[str, ...], bounds: ExplanationBounds) -> type[_CritiqueReply]:
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


# ----------------------------------------------------------------------------------------------
# Input: BeaverTails-shaped rows.


@dataclass(frozen=True)
class Conversation:
    id: str
    prompt: str
    response: str | None  # None: the prompt alone is judged (the User is the last turn)
    assessment: str  # "safe" or "unsafe"
    categories: tuple[str, ...]  # S-codes in S1..S14 order
    source: str


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
    codes = tuple(CODE_OF[key] for key in BEAVERTAILS_CATEGORIES if category[key])
    # BeaverTails: a pair is safe exactly when it falls in no category; a row saying otherwise
    # would make the teacher explain a contradiction.
    if is_safe == bool(codes):
        flagged = ", ".join(codes) or "none"
        raise AidsafeError(f"{where}: is_safe is {str(is_safe).lower()} but the categories flagged are {flagged}")
    response = response or None  # an empty response: the prompt alone is judged
    key = input_digest(json.dumps([prompt, response]))[:16]
    return Conversation(key, prompt, response, "safe" if is_safe else "unsafe", codes, where)


# ----------------------------------------------------------------------------------------------
# The recipe.


class CritiqueRecipe(GuardRecipe):
    kind: Literal["thinkguard"]
    policies: str = "beavertails"  # the category block of the prompt: S1..S14, BeaverTails' order
    explanation_min_chars: int = 40
    explanation_max_chars: int = 2000


register_config_model(CritiqueRecipe)


@dataclass(frozen=True)
class LoadedCritiqueRecipe:
    loaded: LoadedGuardRecipe
    policies: PolicySet

    @property
    def bounds(self) -> ExplanationBounds:
        r = self.loaded.recipe
        return ExplanationBounds(r.explanation_min_chars, r.explanation_max_chars)


def is_critique_recipe(ref: str) -> bool:
    return recipe_kind(ref) == RECIPE_KIND


def load_critique_recipe(ref: str, overrides: list[str] | None = None) -> LoadedCritiqueRecipe:
    found: list[PolicySet] = []

    def policy_set(recipe: CritiqueRecipe, path: Path) -> dict[str, Any]:
        if not 1 <= recipe.explanation_min_chars <= recipe.explanation_max_chars:
            raise AidsafeError(f"{path}: explanation_min_chars: expected 1 to explanation_max_chars")
        candidate = path.parent / recipe.policies
        policies = load_policies(candidate if candidate.is_file() else recipe.policies)
        ids = tuple(p.id for p in policies.policies)
        if ids != CATEGORY_CODES:
            raise AidsafeError(
                f"{path}: policies: {recipe.policies} has ids {', '.join(ids)}; ThinkGuard needs S1..S14 in "
                "BeaverTails order (policies/beavertails.yaml)"
            )
        found.append(policies)
        return {"policies": policies.model_dump(mode="json")}  # the category block is part of the prompt

    loaded = load_guard_recipe(ref, CritiqueRecipe, CARD_FIELDS, overrides, resources=policy_set)
    return LoadedCritiqueRecipe(loaded, found[0])


# ----------------------------------------------------------------------------------------------
# The task on the executor.


class CritiqueTask(Task[Conversation]):
    """One conversation, one teacher call, one critique (or a named rejection)."""

    noun = "critiques"
    stage = "critique"

    def __init__(self, loaded: LoadedCritiqueRecipe, teacher: Teacher, check_endpoint: bool = True) -> None:
        self.loaded = loaded
        self.teacher = teacher
        self.check_endpoint = check_endpoint
        self.titles = {p.id: p.title for p in loaded.policies.policies}

    def key(self, row: Conversation) -> str:
        return row.id

    def digest(self, row: Conversation) -> str:
        return input_digest(json.dumps([row.prompt, row.response, row.assessment, row.categories]))

    def describe(self, row: Conversation) -> dict[str, Any]:
        return {"source": row.source, "label": row.assessment, "categories": list(row.categories)}

    async def preflight(self) -> None:
        if self.check_endpoint:
            await self.teacher.check_reachable(self.loaded.loaded.endpoint)

    async def run(self, row: Conversation, ctx: RunContext) -> dict[str, Any]:
        policies = self.loaded.policies
        values = {
            "prompt": row.prompt,
            "response": "None" if row.response is None else row.response,
            "assessment": row.assessment,
            "categories": "\n".join(f"{code}: {self.titles[code]}" for code in row.categories) or "none",
            "policies": "\n".join(f"{p.id}: {p.title}. {' '.join(p.rule.split())}" for p in policies.policies),
        }
        loaded = self.loaded.loaded
        messages = [
            {"role": "system", "content": render_template(loaded.card.system, values)},
            {"role": "user", "content": render_template(loaded.card.user, values)},
        ]
        bounds = self.loaded.bounds
        schema = _reply_model(row.assessment, row.categories, bounds)
        reply, call = await ask_teacher(self.teacher, loaded, "thinkguard_teacher", messages, schema, self.stage)
        gold = Critique(row.assessment, row.categories, "")
        critique = check_critique(reply.to_critique(), gold, bounds)
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
            "teacher": {"agent": loaded.card.name, "model": loaded.endpoint.model, "call": call.to_dict()},
            "recipe_hash": loaded.recipe_hash,
        }


async def generate_critiques_async(
    request: StageRequest, env: Mapping[str, str], teacher: Teacher | None = None
) -> dict[str, Any]:
    """`aidsafe generate thinkguard`: `request` is the CLI's `GenerateRequest`."""
    loaded = load_critique_recipe(request.recipe, request.recipe_overrides())
    rows, repeats = read_conversations(request.input)
    rows = rows[: request.limit]
    recipe = loaded.loaded.recipe
    _, stats = await run_stage(
        lambda client, owns: CritiqueTask(loaded, client, check_endpoint=owns), rows,
        loaded.loaded.journal(request.output), settings=recipe.teacher, seed=recipe.seed, env=env, teacher=teacher,
        workers=recipe.teacher.most_in_flight, counts=lambda _: guard_counts(len(rows), repeats),
        retry_rejected=request.retry_rejected, progress=request.progress,
    )  # fmt: skip
    return stats


def generate_critiques(request: StageRequest, env: Mapping[str, str], teacher: Teacher | None = None) -> dict[str, Any]:
    return run_async(generate_critiques_async(request, env, teacher))
