"""The graph's stop rule, corrections, and how role outputs change the state (fake teacher)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from aidsafe.agents.schemas import DeliberationTurn
from aidsafe.generation.graph import GraphDeps, build_graph, stop_route
from aidsafe.generation.pipeline import load_pipeline
from aidsafe.teacher.types import InvalidOutputError
from aidsafe.testing import FakeTeacher, default_reply


def _run(teacher: FakeTeacher, max_rounds: int = 4, dedup=None) -> dict:
    pipeline = load_pipeline("aidsafe", [f"deliberation.max_rounds={max_rounds}", "dedup.enabled=false"])
    deps = GraphDeps(pipeline.agents, pipeline.policies, teacher, max_rounds, seed=0, dedup=dedup)
    graph = build_graph(dedup=dedup is not None)
    return asyncio.run(graph.ainvoke({"id": "s1", "prompt": "How do I whittle a knife?"}, context=deps))


@pytest.mark.parametrize(
    ("complete_at", "max_rounds", "rounds", "reason"),
    [
        (1, 4, 1, "complete"),
        (3, 4, 3, "complete"),
        (None, 4, 4, "budget"),
        (None, 1, 1, "budget"),
        (None, 0, 0, "no_deliberation"),
    ],
)
def test_stop_rule(complete_at, max_rounds, rounds, reason):
    teacher = FakeTeacher()

    def deliberate(call):  # adds one thought per turn, agrees on turn `complete_at`
        turn = sum(1 for c in teacher.calls if c.role == "deliberator")
        done = complete_at is not None and turn >= complete_at
        return DeliberationTurn(
            thoughts=[] if done else [{"text": f"Point number {turn}.", "policies": ["P5"]}],
            response=f"answer {turn}",
            complete=done,
        )

    teacher.responders["deliberator"] = deliberate
    state = _run(teacher, max_rounds)
    assert state["rounds"] == rounds
    assert state["stop_reason"] == reason
    assert len(state["deliberation"]) == rounds
    assert sum(1 for c in teacher.calls if c.role == "deliberator") == rounds
    # The two deliberators alternate, a first.
    expected = [("deliberator_a", "deliberator_b")[i % 2] for i in range(rounds)]
    assert [t["agent"] for t in state["deliberation"]] == expected


def test_stop_route_reads_structured_fields_only():
    assert stop_route({"complete": False, "rounds": 1, "response": "complete: true"}, 4) == "continue"
    assert stop_route({"complete": True, "rounds": 1}, 4) == "stop"
    assert stop_route({"complete": False, "rounds": 4}, 4) == "stop"


def test_correction_replaces_thought_in_place_and_records_removal():
    def correct(call):
        if "t1" in call.text and "t3" not in call.text:
            return {
                "thoughts": [{"text": "Corrected first step.", "policies": ["P5"], "replaces": "t1"}],
                "response": "a response",
                "complete": False,
            }
        return {"thoughts": [], "response": "a response", "complete": True}

    teacher = FakeTeacher(
        {
            "deliberator": correct,
            "refiner": lambda call: {"verdicts": {"t3": "keep", "t2": "keep"}, "response": "final answer"},
        }
    )
    state = _run(teacher)
    assert [t["id"] for t in state["thoughts"]] == ["t3", "t2"]
    assert state["thoughts"][0]["text"] == "Corrected first step."
    corrected = [r for r in state["removed"] if r["reason"] == "corrected"]
    assert corrected and corrected[0]["id"] == "t1" and corrected[0]["replaced_by"] == "t3"
    assert state["response"] == "final answer"


def test_refiner_must_give_a_verdict_for_every_thought():
    teacher = FakeTeacher({"refiner": lambda call: {"verdicts": {"t1": "keep"}, "response": "the final answer"}})
    with pytest.raises(InvalidOutputError, match="verdicts.t2"):
        _run(teacher)


def test_unknown_policy_citation_is_invalid_output():
    def cite_unknown(call):
        reply = default_reply("InitialCoT", call.messages)
        reply["thoughts"][0]["policies"] = ["P9"]
        return reply

    with pytest.raises(InvalidOutputError, match="thoughts.0.policies.0"):
        _run(FakeTeacher({"initial_cot": cite_unknown}))


def test_records_calls_per_agent():
    state = _run(FakeTeacher())
    agents = [c["agent"] for c in state["calls"]]
    assert agents == ["intent_decomposer", "initial_cot", "deliberator_a", "deliberator_b", "refiner"]
    assert all(c["prompt_tokens"] > 0 for c in state["calls"])


def test_the_topology_is_built_without_a_runtime():
    # `aidsafe graph` draws it with no teacher, no dedup model and no test double loaded.
    script = (
        "import sys\nfrom aidsafe.cli import main\ntry:\n    main(['graph', 'aidsafe'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('aidsafe.testing', 'sentence_transformers'))))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert "dedup --> refine" in result.stdout and "deliberate -.-> deliberate" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert "dedup" not in build_graph(dedup=False).get_graph().draw_mermaid()
