"""What `aidsafe validate` prints and `aidsafe graph` draws for each kind of recipe.

The registry (aidsafe.kinds) names these per kind; each takes the recipe as the kind's loader
returned it. A kind that names no `describe` gets `describe_recipe`, which fits any loaded recipe
with a `recipe.name` and a `recipe_hash` (the one-call stages').
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "describe_critiques",
    "describe_generation",
    "describe_pairs",
    "describe_recipe",
    "describe_traces",
    "describe_train",
    "generation_graph",
    "pairs_graph",
]


def describe_recipe(loaded: Any, kind: str) -> str:
    return f"recipe {loaded.recipe.name} ({loaded.recipe_hash}); {kind}"


def describe_generation(pipeline: Any) -> str:
    policies = pipeline.policies
    roles = ", ".join(
        f"{role}: {'/'.join(a.name for a in agents)}" for role, agents in pipeline.agents.items() if agents
    )
    return (
        f"recipe {pipeline.recipe.name} ({pipeline.recipe_hash}); policies {policies.id} "
        f"v{policies.version} ({len(policies.policies)}); {roles}"
    )


def describe_pairs(pipeline: Any) -> str:
    roles = ", ".join(f"{role}: {agent.name}" for role, agent in pipeline.agents.items())
    return f"recipe {pipeline.recipe.name} ({pipeline.recipe_hash}); pairs, policies {pipeline.policies.id}; {roles}"


def describe_traces(loaded: Any) -> str:
    return f"recipe {loaded.recipe.name} ({loaded.recipe_hash}); guardreasoner traces, card {loaded.card.name}"


def describe_critiques(critiques: Any) -> str:
    loaded, policies = critiques.loaded, critiques.policies
    return (
        f"recipe {loaded.recipe.name} ({loaded.recipe_hash}); thinkguard critiques, card {loaded.card.name}, "
        f"policies {policies.id} ({len(policies.policies)})"
    )


def describe_policy_guard(loaded: Any) -> str:
    policies, cards = loaded.policies, {key: slot.card.name for key, slot in loaded.slots.items()}
    counterfactuals = loaded.recipe.counterfactuals
    return (
        f"recipe {loaded.recipe.name} ({loaded.recipe_hash}); policy-guard, policies {policies.id} "
        f"v{policies.version} ({len(policies.policies)} rules, {len(policies.all_cases())} cases), judges "
        f"{cards['judge']} and {cards['second_judge']}, editor {cards['editor']}; counterfactual policies for "
        f"{counterfactuals.share:.0%} of the rows ({', '.join(counterfactuals.edits)})"
    )


def describe_train(recipe: Any) -> str:
    how = f"LoRA r{recipe.lora.r}" if recipe.lora is not None else "full fine-tuning"
    if recipe.quantization == "4bit":
        how += ", 4-bit base (QLoRA)"
    return f"training recipe ({recipe.mode}, {how}); {len(recipe.trainer)} trainer settings checked against TRL"


def generation_graph(pipeline: Any) -> Any:
    from aidsafe.generation.graph import build_graph

    roles = [role for role, agents in pipeline.agents.items() if agents]
    return build_graph(dedup=pipeline.recipe.dedup.enabled, roles=roles)


def pairs_graph(pipeline: Any) -> Any:
    from aidsafe.pairs.graph import build_pairs_graph

    return build_pairs_graph()  # one topology: the recipe picks the agents and the judge, not the loop
