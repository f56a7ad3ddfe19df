"""What the guard-data stages share: a teacher card, a recipe with a `kind`, one teacher call per
row on the executor, and stats.json.

`aidsafe generate guardreasoner` (aidsafe.guard.traces) and `aidsafe generate thinkguard`
(aidsafe.guard.critiques) differ in their input rows, their schema and the text they render; the
recipe loading, the recipe hash, the teacher's error mapping and the run itself are the same, and
live here once.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from aidsafe.agents.cards import template_fields
from aidsafe.agents.settings import NON_SEMANTIC_TEACHER, TeacherSettings
from aidsafe.config.resources import resolve_resource
from aidsafe.config.yamlio import load_yaml, register_config_model, validate_model
from aidsafe.errors import AidsafeError
from aidsafe.run.executor import RecipeJournal, check_something_finished
from aidsafe.run.journal import RunDirectory, input_digest
from aidsafe.run.jsonl import write_atomic
from aidsafe.run.stage import run_stage
from aidsafe.run.task import Rejection, Task
from aidsafe.teacher.types import Endpoint, InvalidOutputError, Teacher, TeacherError

__all__ = [
    "GuardRecipe",
    "LoadedGuardRecipe",
    "TeacherCard",
    "ask_teacher",
    "load_guard_recipe",
    "recipe_kind",
    "run_guard_stage",
    "write_stats",
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


def recipe_kind(ref: str) -> str | None:
    """The recipe's `kind` (None for an AIDSAFE recipe, which has none, or an unreadable file:
    the AIDSAFE loader then reports the missing or broken file)."""
    try:
        data, _ = load_yaml(resolve_resource(ref, "recipes"))
    except AidsafeError:
        return None
    kind = data.get("kind") if isinstance(data, dict) else None
    return kind if isinstance(kind, str) else None


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
    candidate = path.parent / recipe.agent
    # Built-in guard cards live in agents/guard/: they fill no AIDSAFE graph role.
    card_path = resolve_resource(candidate if candidate.is_file() else recipe.agent, "agents", "guard")
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
    body = recipe.model_dump(mode="json")
    for key in NON_SEMANTIC_TEACHER:  # where and how fast the teacher runs does not change an output
        body["teacher"].pop(key, None)
    extra = dict(resources(recipe, path)) if resources is not None else {}
    payload = json.dumps({"recipe": body, "card": card.model_dump(mode="json"), **extra}, sort_keys=True)
    return LoadedGuardRecipe(recipe, card, input_digest(payload)[:16])


async def ask_teacher(
    teacher: Teacher,
    loaded: LoadedGuardRecipe,
    role: str,
    messages: list[dict[str, str]],
    schema: type[BaseModel],
    stage: str,
) -> tuple[Any, Any]:
    """One structured call; the teacher's failures become named rejections of `stage`."""
    try:
        return await teacher.generate(
            agent=loaded.card.name,
            role=role,
            messages=messages,
            schema=schema,
            endpoint=loaded.endpoint,
            sampling=loaded.sampling,
        )
    except InvalidOutputError as exc:
        raise Rejection(stage, "invalid_output", str(exc), transient=False) from exc
    except TeacherError as exc:
        reason = "teacher_unavailable" if exc.transient else "teacher_error"
        raise Rejection(stage, reason, str(exc), transient=exc.transient) from exc


async def run_guard_stage(
    make_task: Callable[[Teacher, bool], Task[Any]],
    loaded: LoadedGuardRecipe,
    rows: list[Any],
    repeats: int,
    request: Any,
    env: Mapping[str, str],
    teacher: Teacher | None,
    noun: str,
    skipped: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Run `make_task(teacher, check_endpoint)` over `rows` into `request.output` (resumable),
    write stats.json, and fail when nothing finished. `request` is the CLI's `GenerateRequest`."""
    if request.limit is not None:
        rows = rows[: request.limit]
    run_dir = RunDirectory(Path(request.output))
    journal = RecipeJournal(run_dir, loaded.recipe_hash, loaded.resolved(), loaded.recipe.kind)
    outcome, stats = await run_stage(
        make_task,
        rows,
        journal,
        recipe=loaded.recipe,
        env=env,
        teacher=teacher,
        workers=loaded.recipe.teacher.most_in_flight,
        request=request,
        write_stats=lambda _teacher_stats, wall_s: write_stats(run_dir, len(rows), repeats, wall_s, skipped),
    )
    check_something_finished(outcome, run_dir.rejected_path, stats, noun=noun)
    return stats


def write_stats(
    run_dir: RunDirectory, inputs: int, repeats: int, wall_s: float, skipped: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """stats.json from the journals as they stand (this run and earlier ones); `skipped`: source
    rows left out before the teacher (no usable gold), by reason."""
    index = run_dir.index()
    reasons = Counter(info.reason for info in index.rejected.values())
    stats = {
        "inputs": inputs,
        "repeated_inputs": repeats,
        **({"skipped_by_reason": dict(sorted(skipped.items()))} if skipped is not None else {}),
        "samples": len(index.finished),
        "rejected": len(index.rejected),
        "rejected_by_reason": dict(sorted(reasons.items())),
        "pending": max(0, inputs - len(index.finished) - len(index.rejected)),
        "wall_s": round(wall_s, 3),
    }
    write_atomic(run_dir.path / "stats.json", json.dumps(stats, indent=2) + "\n")
    return stats
