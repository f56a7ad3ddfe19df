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

from langgraph.graph.state import CompiledStateGraph

__all__ = ["RECIPE_ENV", "StudioGraph", "make_graph"]

RECIPE_ENV = "AIDSAFE_RECIPE"


class StudioGraph(CompiledStateGraph):
    """The compiled graph with its context bound. Studio sends no context (GraphDeps holds live
    objects, not JSON), so a run given none gets `bound_context`; one given a context keeps its own.
    LangGraph has no public way to bind a context to a compiled graph, so this fills the `context`
    argument of `stream` and `astream`, which `invoke`, `ainvoke` and the event streams go through."""

    def __init__(self, *, bound_context: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bound_context = bound_context

    def stream(self, input: Any, config: Any = None, *, context: Any = None, **kwargs: Any) -> Any:
        return super().stream(input, config, context=context or self.bound_context, **kwargs)

    def astream(self, input: Any, config: Any = None, *, context: Any = None, **kwargs: Any) -> Any:
        return super().astream(input, config, context=context or self.bound_context, **kwargs)


def _bind_context(graph: CompiledStateGraph, context: Any) -> StudioGraph:
    """`graph` as a StudioGraph with `context` bound."""
    # Built the way Pregel.copy (behind with_config) builds a copy: the class called with the
    # graph's attributes. Copies of a StudioGraph are then StudioGraphs with the same context.
    attributes = {key: value for key, value in vars(graph).items() if key != "__orig_class__"}
    return StudioGraph(bound_context=context, **attributes)


def make_graph(config: Any = None, env: Mapping[str, str] | None = None) -> StudioGraph:
    """The compiled graph with its context bound; `config` is what the LangGraph server passes (unused)."""
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
    return _bind_context(build_graph(dedup=dedup is not None), deps)
