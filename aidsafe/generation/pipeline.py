"""Load and check everything a generation run needs, with no LLM call.

`aidsafe validate` stops here; `aidsafe generate` continues into the runner.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aidsafe.agents.context import ResolvedAgent
from aidsafe.agents.policies import PolicySet, load_policies
from aidsafe.agents.resolve import resolve_agent
from aidsafe.generation.recipe import Recipe, load_recipe, semantic_hash
from aidsafe.generation.roles import ROLES
from aidsafe.teacher.types import Endpoint

__all__ = ["Pipeline", "load_pipeline", "resolve_agents"]


@dataclass
class Pipeline:
    recipe: Recipe
    policies: PolicySet
    agents: dict[str, list[ResolvedAgent]]
    recipe_hash: str

    @property
    def endpoints(self) -> list[Endpoint]:
        unique: dict[tuple[Any, ...], Endpoint] = {}
        for agents in self.agents.values():
            for agent in agents:
                found = agent.endpoint
                unique.setdefault((found.base_url, found.model, found.chat_model), found)
        return list(unique.values())

    def resolved_recipe(self) -> dict[str, Any]:
        """The recipe as run, with the agents' resolved names and endpoints, for the run directory."""
        data = self.recipe.model_dump(mode="json")
        data["resolved"] = {
            "recipe_hash": self.recipe_hash,
            "policy_set": {"id": self.policies.id, "version": self.policies.version},
            # The policy texts as run: `P3` keeps its meaning after a release rewords the built-ins.
            "policies": self.policies.model_dump(mode="json"),
            "agents": {role: [a.provenance() for a in agents] for role, agents in self.agents.items()},
        }
        return data


def load_pipeline(recipe_ref: str | Path, overrides: list[str] | None = None) -> Pipeline:
    recipe = load_recipe(recipe_ref, overrides)
    policy_path = recipe.base_dir / recipe.policies
    # The AIDSAFE roles read rules only: a set's `cases:` (for the policy-guard stage) change neither
    # their prompts nor this hash.
    policies = load_policies(policy_path if policy_path.is_file() else recipe.policies).without_cases()
    agents = resolve_agents(recipe)
    fingerprints = {role: [a.fingerprint for a in found] for role, found in agents.items()}
    recipe_hash = semantic_hash(recipe, {"policies": policies.model_dump(mode="json"), "agents": fingerprints})
    return Pipeline(recipe, policies, agents, recipe_hash)


def resolve_agents(recipe: Recipe) -> dict[str, list[ResolvedAgent]]:
    """Resolve every slot of the recipe, naming duplicates apart (deliberator, deliberator_2)."""
    seen: dict[str, int] = {}
    resolved: dict[str, list[ResolvedAgent]] = {}
    for role, spec in ROLES.items():
        found = getattr(recipe.agents, spec.slot)
        slots = found if isinstance(found, list) else [] if found is None else [found]  # None: role left out
        resolved[role] = []
        for index, slot in enumerate(slots):
            key = f"agents.{spec.slot}.{index}" if isinstance(found, list) else f"agents.{spec.slot}"
            agent = resolve_agent(slot, spec, recipe, key)
            seen[agent.name] = seen.get(agent.name, 0) + 1
            if seen[agent.name] > 1:
                agent = replace(agent, name=f"{agent.name}_{seen[agent.name]}")
            resolved[role].append(agent)
    return resolved
