"""What the guard-data stages share: a teacher card, a recipe with a `kind`, one teacher call per
row, and their part of stats.json.

`aidsafe generate guardreasoner` (aidsafe.guard.traces) and `aidsafe generate thinkguard`
(aidsafe.guard.critiques) differ in their input rows, their schema and the text they render; the
recipe loading, the recipe hash and the teacher call are the same, and live here once. The run
itself is every stage's (aidsafe.run.stage.run_stage).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from aidsafe.agents.cards import template_fields
from aidsafe.agents.settings import TeacherSettings, semantic_teacher
from aidsafe.config.resources import resolve_resource
from aidsafe.config.yamlio import load_yaml, register_config_model, validate_model
from aidsafe.errors import AidsafeError
from aidsafe.run.executor import RecipeJournal
from aidsafe.run.identity import run_hash
from aidsafe.run.journal import RunDirectory
from aidsafe.run.stats import StageCounts
from aidsafe.run.task import rejection_for
from aidsafe.teacher.types import Endpoint, Teacher, TeacherError

__all__ = [
    "GuardRecipe",
    "LoadedGuardRecipe",
    "TeacherCard",
    "ask_teacher",
    "load_guard_recipe",
    "load_teacher_card",
    "guard_counts",
]

R = TypeVar("R", bound="GuardRecipe")


@register_config_model
class TeacherCard(BaseModel):
    """agents/guard/*.yaml: a guard teacher's prompts and sampling defaults."""

    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    sampling: dict[str, Any] = Field(default_factory=dict)
    system: str
    user: str


class GuardRecipe(BaseModel):
    """The keys every guard-data recipe has; each stage adds its `kind` (and its own keys)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    teacher: TeacherSettings
    agent: str = Field(description="Built-in card name or a card path (relative to the recipe).")
    sampling: dict[str, Any] = Field(default_factory=dict, description="Overrides the card's sampling.")
    seed: int = 0


@dataclass(frozen=True)
class LoadedGuardRecipe:
    recipe: Any  # a GuardRecipe subclass
    card: TeacherCard
    recipe_hash: str

    @property
    def endpoint(self) -> Endpoint:
        return self.recipe.teacher.endpoint()

    @property
    def sampling(self) -> dict[str, Any]:
        return {**self.card.sampling, **self.recipe.sampling}

    def resolved(self) -> dict[str, Any]:
        resolved = {"recipe_hash": self.recipe_hash, "card": self.card.model_dump(mode="json")}
        return {**self.recipe.model_dump(mode="json"), "resolved": resolved}

    def journal(self, output: str | Path) -> RecipeJournal:
        """The run directory `output`, bound to this recipe (a run of another is refused)."""
        return RecipeJournal(RunDirectory(Path(output)), self.recipe_hash, self.resolved(), self.recipe.kind)


def load_teacher_card(ref: str, recipe_dir: Path, card_fields: frozenset[str]) -> TeacherCard:
    """The card `ref` names (a path relative to the recipe's folder, else a built-in name in
    agents/guard/), checked: its templates may use only `card_fields`."""
    candidate = recipe_dir / ref
    # Built-in guard cards live in agents/guard/: they fill no AIDSAFE graph role.
    card_path = resolve_resource(candidate if candidate.is_file() else ref, "agents", "guard")
    card_data, card_lines = load_yaml(card_path)
    card = validate_model(TeacherCard, card_data, str(card_path), card_lines)
    for part in ("system", "user"):
        try:
            unknown = template_fields(getattr(card, part)) - card_fields
        except ValueError as exc:
            raise AidsafeError(f"{card_path}: {part}: {exc}") from None
        if unknown:
            raise AidsafeError(
                f"{card_path}: {part}: unknown field(s) {', '.join(sorted(unknown))}; "
                f"expected some of {', '.join(sorted(card_fields))}"
            )
    return card


def load_guard_recipe(
    ref: str,
    model: type[R],
    card_fields: frozenset[str],
    overrides: list[str] | None = None,
    resources: Callable[[R, Path], Mapping[str, Any]] | None = None,
) -> LoadedGuardRecipe:
    """The recipe validated as `model`, its card (whose templates may use only `card_fields`) and
    the recipe hash: recipe, card and what `resources(recipe, recipe_path)` returns (the content of
    other files the recipe names, e.g. a policy set), not where or how fast the teacher runs."""
    path = resolve_resource(ref, "recipes")
    data, lines = load_yaml(path)
    if overrides:
        from aidsafe.config.overrides import apply_overrides

        data = apply_overrides(data, overrides)
    recipe = validate_model(model, data, str(path), lines, overrides or ())
    card = load_teacher_card(recipe.agent, path.parent, card_fields)
    body = recipe.model_dump(mode="json")
    body["teacher"] = semantic_teacher(body["teacher"])  # where and how fast it runs changes no output
    extra = dict(resources(recipe, path)) if resources is not None else {}
    payload = {"recipe": body, "card": card.model_dump(mode="json"), **extra}
    return LoadedGuardRecipe(recipe, card, run_hash(payload, ensure_ascii=True))  # as it always was


async def ask_teacher(
    teacher: Teacher,
    loaded: Any,
    role: str,
    messages: list[dict[str, str]],
    schema: type[BaseModel],
    stage: str,
) -> tuple[Any, Any]:
    """One structured call; the teacher's failures become named rejections of `stage`. `loaded`
    is what says who answers: its `card`, `endpoint` and `sampling` (a `LoadedGuardRecipe`, or
    one agent slot of a policy-guard recipe)."""
    try:
        return await teacher.generate(
            agent=loaded.card.name,
            role=role,
            messages=messages,
            schema=schema,
            endpoint=loaded.endpoint,
            sampling=loaded.sampling,
        )
    except TeacherError as exc:
        raise rejection_for(stage, exc) from exc


def guard_counts(inputs: int, repeats: int, skipped: Mapping[str, int] | None = None) -> StageCounts:
    """The guard-data stages' part of stats.json (aidsafe.run.stats): input rows repeated, and
    `skipped`: source rows left out before the teacher (no usable gold), by reason."""
    before: dict[str, Any] = {"repeated_inputs": repeats}
    if skipped is not None:
        before["skipped_by_reason"] = dict(sorted(skipped.items()))
    return StageCounts(inputs, before)
