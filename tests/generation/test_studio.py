"""langgraph.json's graph: the module LangGraph Studio loads builds the AIDSAFE graph offline, and
a sample run through it (no context passed, as Studio passes none) goes node by node to the end."""

from __future__ import annotations

import importlib.util
import json

from aidsafe.generation.graph import build_graph
from aidsafe.testing import ScriptedServer, aidsafe_responder
from tests.conftest import REPO


def _studio_factory():
    """The graph path of langgraph.json, loaded the way `langgraph dev` loads it (a file path)."""
    config = json.loads((REPO / "langgraph.json").read_text())
    assert config["dependencies"] == ["."]
    path, _, attr = config["graphs"]["aidsafe"].partition(":")
    spec = importlib.util.spec_from_file_location("studio_graph", REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, attr)


def test_studio_builds_the_recipe_graph_without_network():
    env = {"AIDSAFE_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "unused"}  # port 9: nothing listens
    graph = _studio_factory()(None, env)
    assert set(graph.get_graph().nodes) == set(build_graph(dedup=True).get_graph().nodes)  # the built-in has dedup
    assert "dedup" in graph.get_graph().nodes and graph.bound_context.max_rounds >= 1
    assert graph.with_config({"tags": ["studio"]}).bound_context is graph.bound_context  # the server's copies
    disabled = _studio_factory()(None, {**env, "AIDSAFE_SET": "dedup.enabled=false"})
    assert "dedup" not in disabled.get_graph().nodes


async def test_a_sample_steps_through_the_studio_graph():
    with ScriptedServer(aidsafe_responder(), models=["teacher-s"]) as server:
        env = {"AIDSAFE_BASE_URL": server.base_url, "AIDSAFE_MODEL": "teacher-s", "OPENAI_API_KEY": "k",
               "AIDSAFE_SET": "dedup.enabled=false deliberation.max_rounds=3"}  # fmt: skip
        graph = _studio_factory()(None, env)
        try:
            steps = [list(step) async for step in graph.astream({"id": "s1", "prompt": "How do I bake bread?"})]
        finally:
            await graph.bound_context.teacher.aclose()
    nodes = [name for step in steps for name in step]
    assert nodes[:2] == ["decompose", "initial_cot"] and nodes[-1] == "refine" and "deliberate" in nodes
    assert len(server.requests) == len(nodes)  # one teacher call per node, all to the configured model
    assert {r.json["model"] for r in server.requests} == {"teacher-s"}
