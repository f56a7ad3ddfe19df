"""Load and check everything a generation run needs, with no LLM call.

`aidsafe validate` stops here; `aidsafe generate` continues into the runner.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aidsafe.generation.agents import ResolvedAgent, resolve_agents
from aidsafe.generation.policies import PolicySet, load_policies
from aidsafe.generation.recipe import Recipe, load_recipe, semantic_hash
from aidsafe.teacher.types import Endpoint

__all__ = ["Pipeline", "load_pipeline", "cli_overrides"]


@dataclass
class Pipeline:
    recipe: Recipe
    policies: PolicySet
    agents: dict[str, list[ResolvedAgent]]
    recipe_hash: str

    @property
    def endpoints(self) -> list[Endpoint]:
        unique: dict[tuple[str, str], Endpoint] = {}
        for agents in self.agents.values():
            for agent in agents:
                unique.setdefault((agent.endpoint.base_url, agent.endpoint.model), agent.endpoint)
        return list(unique.values())

    def resolved_recipe(self) -> dict[str, Any]:
        """The recipe as run, with the agents' resolved names and endpoints, for the run directory."""
        data = self.recipe.model_dump(mode="json")
        data["resolved"] = {
            "recipe_hash": self.recipe_hash,
            "policy_set": {"id": self.policies.id, "version": self.policies.version},
            "agents": {
                role: [
                    {"name": a.name, "model": a.endpoint.model, "base_url": a.endpoint.base_url, "sampling": a.sampling}
                    for a in agents
                ]
                for role, agents in self.agents.items()
            },
        }
        return data


def cli_overrides(base_url: str | None, model: str | None, concurrency: int | None, sets: list[str]) -> list[str]:
    """CLI flags as recipe overrides; explicit --set values come last and win."""
    flags = []
    if base_url:
        flags.append(f"teacher.base_url={base_url}")
    if model:
        flags.append(f"teacher.model={model}")
    if concurrency:
        flags.append(f"teacher.concurrency={concurrency}")
    return flags + list(sets)


def load_pipeline(recipe_ref: str | Path, overrides: list[str] | None = None) -> Pipeline:
    recipe = load_recipe(recipe_ref, overrides)
    policy_path = recipe.base_dir / recipe.policies
    policies = load_policies(policy_path if policy_path.is_file() else recipe.policies)
    agents = resolve_agents(recipe)
    fingerprints = {role: [a.fingerprint for a in found] for role, found in agents.items()}
    recipe_hash = semantic_hash(recipe, {"policies": policies.model_dump(mode="json"), "agents": fingerprints})
    return Pipeline(recipe, policies, agents, recipe_hash)
