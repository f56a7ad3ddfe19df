"""The `policy-guard` recipe: the policy set, the teacher, three agent slots and the share of rows
that get a counterfactual policy. Loaded and checked (the set, each slot's card and its template
fields) with no teacher call; its hash covers what changes the records (the recipe's semantic
fields, the policy set with its cases, the cards), not where or how fast the teacher runs.

The slots (each a card in agents/guard/ or a card path, with the usual per-slot `model`,
`base_url`, `sampling` ...):

- `judge`: judges every row and writes the record's reasoning and rationale;
- `second_judge`: judges the rows without gold, and every variant, on its own; the two must
  agree on the verdict and the rule ids. It may be another model; its built-in card goes through
  the rules one by one where the first reads the content as a whole, so the same model asked
  twice is still asked two ways;
- `editor`: writes the relaxed or the added rule of a counterfactual policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aidsafe.agents.policies import PolicySet, load_policies
from aidsafe.agents.settings import NON_SEMANTIC_SLOT, AgentSlot, TeacherSettings, semantic_teacher
from aidsafe.config.resources import resolve_resource
from aidsafe.config.yamlio import load_yaml, register_config_model, validate_model
from aidsafe.guard.policy_variants import EDITS
from aidsafe.guard.synthesis import TeacherCard, load_teacher_card
from aidsafe.run.executor import RecipeJournal
from aidsafe.run.identity import run_hash
from aidsafe.run.journal import RunDirectory
from aidsafe.teacher.types import Endpoint

__all__ = [
    "EDITOR_FIELDS",
    "JUDGE_FIELDS",
    "Counterfactuals",
    "LoadedPolicyGuardRecipe",
    "PolicyGuardAgents",
    "PolicyGuardRecipe",
    "Slot",
    "load_policy_guard_recipe",
]

# What each slot's card may use: the policy text, the content block, the verdict (gold, or what to
# decide); the editor also the edit, the rule's id and (relax) its current text.
JUDGE_FIELDS = frozenset({"policy", "content", "verdict"})
EDITOR_FIELDS = frozenset({"policy", "content", "verdict", "edit", "rule_id", "rule_text"})
_SLOT_FIELDS = {"judge": JUDGE_FIELDS, "second_judge": JUDGE_FIELDS, "editor": EDITOR_FIELDS}


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


@register_config_model
class PolicyGuardAgents(_Config):
    judge: AgentSlot = Field(description="Judges every row; its reasoning and rationale are the record's.")
    second_judge: AgentSlot = Field(description="Judges rows without gold and every variant; must agree.")
    editor: AgentSlot = Field(description="Writes the relaxed or added rule of a counterfactual policy.")


@register_config_model
class Counterfactuals(_Config):
    share: float = Field(default=0.5, ge=0, le=1, description="Share of rows judged again under a variant policy.")
    edits: list[Literal["drop", "relax", "add"]] = Field(
        default_factory=lambda: list(EDITS), min_length=1, description="The edits a variant may make."
    )

    @field_validator("edits")
    @classmethod
    def _once_each(cls, edits: list[str]) -> list[str]:
        if len(set(edits)) != len(edits):
            raise ValueError("an edit is listed twice")
        return edits


@register_config_model
class PolicyGuardRecipe(_Config):
    kind: Literal["policy-guard"]
    name: str
    description: str = ""
    policies: str = Field(default="aidsafe", description="Built-in policy set name or a path (cases included).")
    teacher: TeacherSettings
    agents: PolicyGuardAgents
    counterfactuals: Counterfactuals = Field(default_factory=Counterfactuals)
    seed: int = 0


@dataclass(frozen=True)
class Slot:
    """One resolved agent slot: what `synthesis.ask_teacher` needs to call it."""

    key: str  # judge, second_judge, editor
    card: TeacherCard
    endpoint: Endpoint
    sampling: dict[str, Any]

    def provenance(self) -> dict[str, Any]:
        return {"name": self.card.name, "model": self.endpoint.model, "sampling": self.sampling}


@dataclass(frozen=True)
class LoadedPolicyGuardRecipe:
    recipe: PolicyGuardRecipe
    policies: PolicySet
    slots: dict[str, Slot]
    recipe_hash: str

    def resolved(self) -> dict[str, Any]:
        """recipe.yaml: the recipe, and what it resolved to (the policy texts and cards as run)."""
        resolved = {
            "recipe_hash": self.recipe_hash,
            "policy_set": {"id": self.policies.id, "version": self.policies.version},
            "policies": self.policies.model_dump(mode="json"),
            "agents": {key: slot.provenance() for key, slot in self.slots.items()},
            "cards": {key: slot.card.model_dump(mode="json") for key, slot in self.slots.items()},
        }
        return {**self.recipe.model_dump(mode="json"), "resolved": resolved}

    def journal(self, output: str | Path) -> RecipeJournal:
        return RecipeJournal(RunDirectory(Path(output)), self.recipe_hash, self.resolved(), self.recipe.kind)


def load_policy_guard_recipe(ref: str, overrides: list[str] | None = None) -> LoadedPolicyGuardRecipe:
    path = resolve_resource(ref, "recipes")
    data, lines = load_yaml(path)
    if overrides:
        from aidsafe.config.overrides import apply_overrides

        data = apply_overrides(data, overrides)
    recipe = validate_model(PolicyGuardRecipe, data, str(path), lines, overrides or ())
    policy_path = path.parent / recipe.policies
    policies = load_policies(policy_path if policy_path.is_file() else recipe.policies)
    slots = {}
    for key, fields in _SLOT_FIELDS.items():
        slot: AgentSlot = getattr(recipe.agents, key)
        card = load_teacher_card(slot.agent, path.parent, fields)
        endpoint = recipe.teacher.endpoint(slot.base_url, model=slot.model, api_key_env=slot.api_key_env,
                                           structured_output=slot.structured_output)  # fmt: skip
        slots[key] = Slot(key, card, endpoint, {**card.sampling, **slot.sampling})
    body = recipe.model_dump(mode="json")
    body["teacher"] = semantic_teacher(body["teacher"])
    for slot_body in body["agents"].values():
        for key in NON_SEMANTIC_SLOT:  # where a slot's agent runs, not what it says
            slot_body.pop(key, None)
    payload = {"recipe": body, "policies": policies.model_dump(mode="json"),
               "cards": {key: slot.card.model_dump(mode="json") for key, slot in slots.items()}}  # fmt: skip
    return LoadedPolicyGuardRecipe(recipe, policies, slots, run_hash(payload))
