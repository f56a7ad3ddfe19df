"""ThinkGuard critiques (Wen et al., 2025): `aidsafe generate thinkguard --input ROWS --output
DIR`, one teacher call per BeaverTails conversation, on the stage contract: a recipe model, a
`Task`, and the entrance every stage takes (aidsafe.run.stage.run_stage). The teacher explains the
gold verdict and categories in JSON pinned to them. The text, schema, checks and record are pure
(aidsafe.guard.critique_format); the rows and the category policies, aidsafe.guard.beavertails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aidsafe.agents.policies import PolicySet
from aidsafe.config.yamlio import register_config_model
from aidsafe.errors import AidsafeError
from aidsafe.guard.beavertails import CATEGORY_CODES, Conversation, category_policies, read_conversations
from aidsafe.guard.critique_format import (
    CARD_FIELDS,
    EXPLANATION_PATTERN,
    Critique,
    ExplanationBounds,
    check_critique,
    critique_messages,
    critique_record,
    critique_schema,
    render_critique,
    render_label_only,
    reply_model,
)
from aidsafe.guard.synthesis import (
    GuardRecipe,
    LoadedGuardRecipe,
    ask_teacher,
    guard_counts,
    load_guard_recipe,
)
from aidsafe.run.loop import run_async
from aidsafe.run.stage import StageRequest, run_stage
from aidsafe.run.task import RunContext, Task
from aidsafe.teacher.types import Teacher

__all__ = [  # the stage's own names, then the pure parts it is read with (tests import them from here)
    "RECIPE_KIND", "CritiqueRecipe", "CritiqueTask", "LoadedCritiqueRecipe", "generate_critiques",
    "generate_critiques_async", "load_critique_recipe", "CARD_FIELDS", "CATEGORY_CODES",
    "EXPLANATION_PATTERN", "Conversation", "Critique", "ExplanationBounds", "check_critique", "critique_schema",
    "read_conversations", "render_critique", "render_label_only",
]  # fmt: skip

RECIPE_KIND = "thinkguard"


@register_config_model
class CritiqueRecipe(GuardRecipe):
    kind: Literal["thinkguard"]
    policies: str = "beavertails"  # the category block of the prompt: S1..S14, BeaverTails' order
    explanation_min_chars: int = 40
    explanation_max_chars: int = 2000


@dataclass(frozen=True)
class LoadedCritiqueRecipe:
    loaded: LoadedGuardRecipe
    policies: PolicySet


def load_critique_recipe(ref: str, overrides: list[str] | None = None) -> LoadedCritiqueRecipe:
    found: list[PolicySet] = []

    def policy_set(recipe: CritiqueRecipe, path: Path) -> dict[str, Any]:
        if not 1 <= recipe.explanation_min_chars <= recipe.explanation_max_chars:
            raise AidsafeError(f"{path}: explanation_min_chars: expected 1 to explanation_max_chars")
        found.append(category_policies(recipe.policies, path))
        return {"policies": found[-1].model_dump(mode="json")}  # the category block is part of the prompt

    return LoadedCritiqueRecipe(load_guard_recipe(ref, CritiqueRecipe, CARD_FIELDS, overrides, policy_set), found[-1])


class CritiqueTask(Task[Conversation]):
    """One conversation, one teacher call, one critique (or a named rejection)."""

    noun = "critiques"
    stage = "critique"

    def __init__(self, loaded: LoadedCritiqueRecipe, teacher: Teacher, check_endpoint: bool = True) -> None:
        self.loaded, self.teacher, self.check_endpoint = loaded, teacher, check_endpoint
        recipe = loaded.loaded.recipe
        self.bounds = ExplanationBounds(recipe.explanation_min_chars, recipe.explanation_max_chars)

    def key(self, row: Conversation) -> str:
        return row.id

    def digest(self, row: Conversation) -> str:
        return row.digest()

    def describe(self, row: Conversation) -> dict[str, Any]:
        return {"source": row.source, "label": row.assessment, "categories": list(row.categories)}

    async def preflight(self) -> None:
        if self.check_endpoint:
            await self.teacher.check_reachable(self.loaded.loaded.endpoint)

    async def run(self, row: Conversation, ctx: RunContext) -> dict[str, Any]:
        loaded, policies = self.loaded.loaded, self.loaded.policies
        messages = critique_messages(loaded.card, row, policies)
        schema = reply_model(row.assessment, row.categories, self.bounds)
        reply, call = await ask_teacher(self.teacher, loaded, "thinkguard_teacher", messages, schema, self.stage)
        critique = check_critique(reply.to_critique(), Critique(row.assessment, row.categories, ""), self.bounds)
        teacher = {"agent": loaded.card.name, "model": loaded.endpoint.model, "call": call.to_dict()}
        return critique_record(row, critique, policies, {"teacher": teacher, "recipe_hash": loaded.recipe_hash})


async def generate_critiques_async(
    request: StageRequest, env: Mapping[str, str], teacher: Teacher | None = None
) -> dict[str, Any]:
    """`aidsafe generate thinkguard`: `request` is the CLI's `GenerateRequest`."""
    loaded = load_critique_recipe(request.recipe, request.recipe_overrides())
    rows, repeats = read_conversations(request.input)
    rows, recipe = rows[: request.limit], loaded.loaded.recipe
    _, stats = await run_stage(
        lambda client, owns: CritiqueTask(loaded, client, check_endpoint=owns), rows,
        loaded.loaded.journal(request.output), settings=recipe.teacher, seed=recipe.seed, env=env, teacher=teacher,
        workers=recipe.teacher.most_in_flight, counts=lambda _: guard_counts(len(rows), repeats),
        retry_rejected=request.retry_rejected, progress=request.progress,
    )  # fmt: skip
    return stats


def generate_critiques(request: StageRequest, env: Mapping[str, str], teacher: Teacher | None = None) -> dict[str, Any]:
    return run_async(generate_critiques_async(request, env, teacher))
