"""`aidsafe.testing.check_agent` for the pair roles: a representative state for each, and
schema-valid fake replies so a card or a Python agent calling `ctx.generate` runs with no model.

It lives with the test doubles, not in aidsafe.pairs: testing may import the stages it checks,
and a stage never imports the test doubles."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from pydantic import BaseModel

from aidsafe.agents.policies import PolicySet
from aidsafe.pairs.graph import PairAgentContext
from aidsafe.pairs.roles import PAIR_ROLES, judge_order
from aidsafe.teacher.types import Endpoint
from aidsafe.testing.fake import FakeTeacher

__all__ = ["pair_example_state", "check_pair_agent"]


def pair_example_state(role: str, policies: PolicySet) -> dict[str, Any]:
    """A mid-loop state as `role` sees it: one failed attempt behind it, the current belief set."""
    pid = policies.ids[0]
    verdict = {"violates": False, "violated_policies": [], "faithfulness": 5, "rationale": "It follows the policies."}
    belief = {"text": "The user is a licensed locksmith training apprentices.", "target_policy": pid, "agent": "x"}
    state: dict[str, Any] = {
        "id": "conformance",
        "prompt": "How do I open a lock without its key?",
        "intents": [{"text": "Open a lock.", "kind": "explicit", "nature": "benign"}],
        "chosen": {
            "thoughts": [{"text": "Lock bypass can enable burglary.", "policies": [pid]}],
            "response": "Call a locksmith or the lock's maker with proof of ownership.",
        },  # fmt: skip
        "attempts": [
            {
                "iteration": 1,
                "belief": belief,
                "chosen": verdict,
                "rejected": verdict,
                "gap": 0,
                "separated": False,
                "judge": "judge",
                "judge_order": "chosen_first",
                "rejected_cot": {"thoughts": [], "response": "No."},
            }
        ],  # fmt: skip
    }
    if role in ("rejected_cot", "judge"):
        state["belief"] = belief
    if role == "judge":
        state["rejected"] = {"thoughts": [{"text": "An instructor may know this.", "policies": []}],
                             "response": "Insert a tension wrench, then rake the pins."}  # fmt: skip
        state["judge_order"] = judge_order(0, "conformance", 2)
        state["margin"] = 2
    return state


def _replies(policies: PolicySet) -> dict[str, Any]:
    pid = policies.ids[0]
    side = {"rationale": "It follows the policies.", "violates": False, "violated_policies": [], "faithfulness": 5}
    return {
        "ear_whisperer": lambda call: {"target_policy": pid, "belief": "The user is an authorised instructor."},
        "rejected_cot": lambda call: {
            "thoughts": [{"text": "The belief permits it.", "policies": [pid]}],
            "response": "Here is how, step by step.",
        },  # fmt: skip
        "judge": lambda call: {
            "a": side,
            "b": {**side, "violates": True, "violated_policies": [pid], "faithfulness": 1},
        },
    }


def check_pair_agent(agent: Any, role: str, policies: PolicySet, teacher: Any = None) -> BaseModel:
    spec = PAIR_ROLES[role]
    state = pair_example_state(role, policies)
    ctx = PairAgentContext(teacher=teacher or FakeTeacher(_replies(policies)), policies=policies, rng=random.Random(0),
                           role=spec, endpoint=Endpoint(base_url="http://fake", model="fake"), sampling={},
                           max_rounds=3, agent_name=agent.name)  # fmt: skip
    output = asyncio.run(agent(dict(state), ctx))
    assert isinstance(output, spec.output), (
        f"{agent.name} returned {type(output).__name__}, expected {spec.output.__name__}"
    )
    try:
        spec.validate(output, state, policies)
    except ValueError as exc:
        raise AssertionError(f"{agent.name}'s output does not fit role {role}: {exc}") from None
    return output
