"""Resolving agents: names belong to slots (never to shared user objects); errors by type."""

from __future__ import annotations

import asyncio

import pytest

from aidsafe.config.resources import ResourceNotFoundError, resolve_resource
from aidsafe.errors import AidsafeError
from aidsafe.generation.graph import GraphDeps, build_graph
from aidsafe.generation.pipeline import load_pipeline
from aidsafe.testing import FakeTeacher

AGENT_FILE = """
from aidsafe.agents.schemas import DeliberationTurn

class Reviewer:
    def __init__(self):
        self.name = "reviewer"
        self.seen = []

    async def __call__(self, state, ctx):
        self.seen.append((ctx.agent_name, ctx.rng.random()))
        return await ctx.generate(self.name, [{"role": "user", "content": "review"}], state)

shared = Reviewer()
"""


def _recipe(tmp_path, deliberators: str) -> str:
    (tmp_path / "agent.py").write_text(AGENT_FILE)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "name: t\npolicies: aidsafe\nteacher: {model: m}\ndedup: {enabled: false}\n"
        "agents:\n  intent_decomposer: intent_decomposer\n  initial_cot: initial_cot\n"
        f"  deliberators: {deliberators}\n  refiner: refiner\n"
    )
    return str(recipe)


def test_one_python_agent_in_two_slots_keeps_its_name_and_gets_two(tmp_path):
    pipeline = load_pipeline(_recipe(tmp_path, "[agent.py:shared, agent.py:shared]"))
    first, second = pipeline.agents["deliberator"]
    assert (first.name, second.name) == ("reviewer", "reviewer_2")
    assert first.agent is second.agent and first.agent.name == "reviewer"  # the user's object untouched

    teacher = FakeTeacher({"deliberator": lambda call: {"thoughts": [], "response": "Some answer.", "complete": False}})
    deps = GraphDeps.from_pipeline(pipeline, teacher)
    state = asyncio.run(build_graph().ainvoke({"id": "s", "prompt": "p"}, context=deps))
    assert [t["agent"] for t in state["deliberation"]] == ["reviewer", "reviewer_2", "reviewer", "reviewer_2"]
    calls = [c["agent"] for c in state["calls"] if c["role"] == "deliberator"]
    assert calls == ["reviewer", "reviewer_2", "reviewer", "reviewer_2"]
    names = [name for name, _ in first.agent.seen]
    draws = [draw for _, draw in first.agent.seen]
    assert names == calls and len(set(draws)) == 4  # each slot and round has its own RNG stream


def test_a_slot_name_does_not_rename_the_python_agent(tmp_path):
    pipeline = load_pipeline(_recipe(tmp_path, "[{agent: agent.py:shared, name: critic}, agent.py:shared]"))
    first, second = pipeline.agents["deliberator"]
    assert (first.name, second.name) == ("critic", "reviewer") and first.agent.name == "reviewer"


def test_a_missing_resource_is_its_own_error_type():
    with pytest.raises(ResourceNotFoundError, match="no such file and no built-in agents"):
        resolve_resource("no_such_card", "agents")


def test_an_unknown_agent_lists_the_built_ins_and_a_broken_card_names_its_file(tmp_path):
    with pytest.raises(
        AidsafeError, match=r"agents.refiner: agent 'nope' is not a card path, a built-in agent \(.*\bdeliberator\b"
    ):
        load_pipeline(_recipe(tmp_path, "[deliberator]"), ["agents.refiner=nope"])
    broken = tmp_path / "no such file.yaml"  # the old wording check took this for a missing card
    broken.write_text("name: x\nrole: refiner\noutput_schema: Refinement\nsystem: a\n")
    with pytest.raises(AidsafeError, match="user") as caught:
        load_pipeline(_recipe(tmp_path, "[deliberator]"), [f"agents.refiner={broken}"])
    assert "is not a card path" not in str(caught.value)
