"""Pair recipes: the teacher, which agents fill the three pair roles, and the loop's budget.

Loaded and checked (cards, templates, Python agents) before any teacher call, as generation
recipes are; the semantic hash leaves out what changes speed, not output (aidsafe.generation.recipe).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aidsafe.config.resources import resolve_resource
from aidsafe.config.yamlio import load_yaml, register_config_model, validate_model
from aidsafe.errors import AidsafeError
from aidsafe.generation.agents import ResolvedAgent, resolve_agent
from aidsafe.generation.policies import PolicySet, load_policies
from aidsafe.generation.recipe import _NON_SEMANTIC_TEACHER, AgentSlot, TeacherSettings
from aidsafe.pairs.roles import PAIR_ROLES
from aidsafe.teacher.types import Endpoint

__all__ = ["PairAgents", "PairSettings", "PairsRecipe", "PairPipeline", "is_pairs_recipe", "load_pairs_pipeline"]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


@register_config_model
class PairAgents(_Config):
    ear_whisperer: AgentSlot
    rejected_cot: AgentSlot
    judge: AgentSlot


@register_config_model
class PairSettings(_Config):
    # Only the LLM judge card for now; a guard-model judge (Llama Guard / ShieldGemma P(unsafe)) is to come.
    judge: Literal["llm"] = "llm"
    # Ours (the paper publishes none): on the 1-5 faithfulness scale a violating answer should
    # score clearly below a policy-following one; 2 points keeps only pairs the judge tells apart.
    margin: float = Field(default=2, ge=0, le=4, description="Chosen minus rejected faithfulness, at least.")
    # Ours: the paper improves the belief over "a few" in-context iterations.
    max_iterations: int = Field(default=3, ge=1, description="Beliefs tried per sample at most.")


@register_config_model
class PairsRecipe(_Config):
    name: str
    description: str = ""
    policies: str = Field(description="Built-in policy set name or a path; the generation run's own set.")
    teacher: TeacherSettings
    agents: PairAgents
    pairs: PairSettings = Field(default_factory=PairSettings)
    min_text_chars: int = Field(default=8, ge=1)
    seed: int = 0

    base_dir: Path = Field(default=Path("."), exclude=True)


@dataclass
class PairPipeline:
    recipe: PairsRecipe
    policies: PolicySet
    agents: dict[str, ResolvedAgent]  # role -> its one agent
    recipe_hash: str

    @property
    def endpoints(self) -> list[Endpoint]:
        unique = {(a.endpoint.base_url, a.endpoint.model): a.endpoint for a in self.agents.values()}
        return list(unique.values())

    def resolved_recipe(self) -> dict[str, Any]:
        data = self.recipe.model_dump(mode="json")
        data["resolved"] = {
            "recipe_hash": self.recipe_hash,
            "policy_set": {"id": self.policies.id, "version": self.policies.version},
            "agents": {
                role: {
                    "name": a.name,
                    "model": a.endpoint.model,
                    "base_url": a.endpoint.base_url,
                    "sampling": a.sampling,
                }
                for role, a in self.agents.items()
            },
        }
        return data


def is_pairs_recipe(ref: str) -> bool:
    """Whether `ref` names a pairs recipe (it has a `pairs:` section; generation recipes have none)."""
    try:
        data, _ = load_yaml(resolve_resource(ref, "recipes"))
    except AidsafeError:
        return False  # the generation loader reports the missing or broken file
    return isinstance(data, dict) and "pairs" in data


def load_pairs_pipeline(ref: str | Path, overrides: list[str] | None = None) -> PairPipeline:
    path = resolve_resource(ref, "recipes")
    data, lines = load_yaml(path)
    if overrides:
        from aidsafe.config.overrides import apply_overrides

        data = apply_overrides(data, overrides)
    recipe = validate_model(PairsRecipe, data, str(path), lines, overrides or ())
    recipe = recipe.model_copy(update={"base_dir": path.parent})
    policy_path = recipe.base_dir / recipe.policies
    policies = load_policies(policy_path if policy_path.is_file() else recipe.policies)
    agents = {
        role: resolve_agent(getattr(recipe.agents, spec.slot), role, recipe, f"agents.{spec.slot}", spec)
        for role, spec in PAIR_ROLES.items()
    }
    fingerprints = {role: a.fingerprint for role, a in agents.items()}
    return PairPipeline(recipe, policies, agents, _semantic_hash(recipe, policies, fingerprints))


def _semantic_hash(recipe: PairsRecipe, policies: PolicySet, fingerprints: dict[str, str]) -> str:
    body = recipe.model_dump(mode="json")
    for key in _NON_SEMANTIC_TEACHER:
        body["teacher"].pop(key, None)
    for slot in body["agents"].values():
        slot.pop("base_url", None)
        slot.pop("api_key_env", None)
    extra = {"policies": policies.model_dump(mode="json"), "agents": fingerprints}
    payload = json.dumps({"recipe": body, **extra}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]
