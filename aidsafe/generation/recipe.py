"""Generation recipes: which agents fill which graph roles, the teacher, budgets and dedup."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aidsafe.agents.settings import AgentSlot, TeacherSettings, semantic_slot, semantic_teacher
from aidsafe.config.resources import resolve_resource
from aidsafe.config.yamlio import load_yaml, register_config_model, validate_model
from aidsafe.run.identity import run_hash

__all__ = [
    "AgentRoles",
    "Deliberation",
    "Dedup",
    "Recipe",
    "load_recipe",
    "semantic_hash",
]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


@register_config_model
class AgentRoles(_Config):
    """Only initial_cot is required: a recipe that leaves out the other roles runs a shorter graph
    (recipes/llm-zs.yaml, the paper's zero-shot baseline, has initial_cot alone)."""

    intent_decomposer: AgentSlot | None = None
    initial_cot: AgentSlot
    deliberators: list[AgentSlot] = Field(default_factory=list)
    refiner: AgentSlot | None = None


@register_config_model
class Deliberation(_Config):
    # Not published in the paper; 4 turns lets two alternating agents each review twice.
    max_rounds: int = Field(default=4, ge=0, description="Deliberation turns at most; one agent speaks per turn.")


@register_config_model
class Dedup(_Config):
    enabled: bool = True
    model: str = "all-MiniLM-L6-v2"
    threshold: float = Field(default=0.9, gt=0, le=1)
    # Where the embedding model runs: a torch device ("cpu", "cuda", "cuda:1", "mps"); unset lets
    # sentence-transformers pick (CUDA when there is one). Not part of the recipe hash: it changes
    # speed, not which thoughts go.
    device: str | None = None


@register_config_model
class Recipe(_Config):
    # The recipe's kind (aidsafe.kinds), optional here: a recipe without one is a generation recipe.
    # Not dumped, so neither the recipe hash nor the run's recipe.yaml changes with it.
    kind: Literal["generation"] = Field(default="generation", exclude=True)
    name: str
    description: str = ""
    policies: str = Field(description="Built-in policy set name or a path (relative to the recipe).")
    teacher: TeacherSettings
    agents: AgentRoles
    deliberation: Deliberation = Field(default_factory=Deliberation)
    dedup: Dedup = Field(default_factory=Dedup)
    # The content floor (docs/agents.md): a thought, intent or response shorter than this after
    # trimming is re-asked; the schema sent to the teacher says so too.
    min_text_chars: int = Field(default=8, ge=1)
    seed: int = 0
    # The corpus's license as a Hub license id (e.g. cc-by-4.0), for `aidsafe export`'s card;
    # never guessed when absent. It does not change a sample, so it is not in the recipe hash.
    license: str | None = None

    # Where relative paths in the recipe resolve; not part of the YAML.
    base_dir: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _deliberators_for_rounds(self) -> Recipe:
        if self.deliberation.max_rounds > 0 and not self.agents.deliberators:
            raise ValueError(
                f"deliberation.max_rounds is {self.deliberation.max_rounds} but agents.deliberators is empty; "
                "list deliberators or set deliberation.max_rounds: 0"
            )
        return self


def load_recipe(ref: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Load a recipe by path or built-in name, apply `key=value` overrides, validate."""
    path = resolve_resource(ref, "recipes")
    data, lines = load_yaml(path)
    if overrides:
        from aidsafe.config.overrides import apply_overrides

        data = apply_overrides(data, overrides)
    recipe = validate_model(Recipe, data, str(path), lines, overrides or ())
    return recipe.model_copy(update={"base_dir": path.parent})


def semantic_hash(recipe: Recipe, extra: dict[str, Any]) -> str:
    """Hash of everything that changes the output: recipe fields plus resolved policies and agents."""
    body = recipe.model_dump(mode="json")
    body["teacher"] = semantic_teacher(body["teacher"])
    body["dedup"].pop("device", None)
    body.pop("license", None)
    agents = body["agents"]
    for role, found in agents.items():  # roles a recipe leaves out have no slot
        if isinstance(found, list):
            agents[role] = [semantic_slot(slot) for slot in found]
        elif found is not None:
            agents[role] = semantic_slot(found)
    return run_hash({"recipe": body, **extra})
