"""The AIDSAFE graph for LangGraph Studio (`langgraph dev` reads ./langgraph.json, which points here).

`make_graph` loads a recipe (AIDSAFE_RECIPE, default `aidsafe`; AIDSAFE_BASE_URL, AIDSAFE_MODEL
and AIDSAFE_SET, space-separated key=value overrides, as `aidsafe generate` takes them) and
returns the same compiled graph `aidsafe generate` runs, with its context (agents, policies,
teacher client, dedup) bound, so a run started from Studio with the input {"id", "prompt"} steps
through one sample node by node. Building it makes no network call: the teacher is reached only
when a node runs, and the dedup model loads on its first use. Persistence is the server's own
(a graph handed to `langgraph dev` must not carry a checkpointer).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

__all__ = ["make_graph", "RECIPE_ENV"]

RECIPE_ENV = "AIDSAFE_RECIPE"


def make_graph(config: Any = None, env: Mapping[str, str] | None = None) -> Any:
    """The compiled graph with its context bound; `config` is what the LangGraph server passes (unused)."""
    from langgraph._internal._constants import CONFIG_KEY_RUNTIME
    from langgraph.runtime import Runtime

    from aidsafe.config.overrides import cli_overrides
    from aidsafe.generation.graph import GraphDeps, build_graph
    from aidsafe.generation.pipeline import load_pipeline
    from aidsafe.teacher.client import TeacherClient

    env = os.environ if env is None else env
    sets = env.get("AIDSAFE_SET", "").split()
    pipeline = load_pipeline(
        env.get(RECIPE_ENV, "aidsafe"), cli_overrides(env.get("AIDSAFE_BASE_URL"), env.get("AIDSAFE_MODEL"), None, sets)
    )
    recipe = pipeline.recipe
    dedup = None
    if recipe.dedup.enabled:
        from aidsafe.generation.dedup import ThoughtDeduplicator

        dedup = ThoughtDeduplicator(recipe.dedup.model, recipe.dedup.threshold, recipe.dedup.device)
    teacher = TeacherClient.from_settings(recipe.teacher, env, recipe.seed)
    deps = GraphDeps.from_pipeline(pipeline, teacher, dedup)
    # Studio sends no context (GraphDeps holds live objects, not JSON): bind it as the parent runtime,
    # which LangGraph merges under each run's own (Runtime.merge keeps a context the run lacks).
    graph = build_graph(dedup=dedup is not None)
    return graph.with_config({"configurable": {CONFIG_KEY_RUNTIME: Runtime(context=deps)}})
