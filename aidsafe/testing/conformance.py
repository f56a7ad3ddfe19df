"""Check that a custom agent fits a graph role before plugging it into a recipe.

    from aidsafe.testing import check_agent
    output = check_agent(MyDeliberator(), "deliberator")

Runs the agent once on a representative state for the role, with a FakeTeacher behind
`ctx.generate`, and checks that it returns the role's output model and that the output is valid
for the schema of that call (known policy and thought ids, the content floor).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from pydantic import BaseModel

from aidsafe.agents.policies import PolicySet, load_policies
from aidsafe.generation.roles import role_spec
from aidsafe.teacher.types import Endpoint
from aidsafe.testing.fake import FakeTeacher

__all__ = ["check_agent", "example_state"]


def example_state(role: str, policies: PolicySet) -> dict[str, Any]:
    """A mid-run sample state as the given role would see it."""
    state: dict[str, Any] = {"id": "conformance", "prompt": "How do I store kitchen knives safely?"}
    if role in ("initial_cot", "deliberator", "refiner"):
        state["intents"] = [{"text": "Store knives safely.", "kind": "explicit", "nature": "benign"}]
    if role in ("deliberator", "refiner"):
        pid = policies.ids[0]
        state.update(
            thoughts=[
                {
                    "id": "t1",
                    "text": "Knife storage is a benign safety question.",
                    "policies": [pid],
                    "author": "x",
                    "round": 0,
                },
                {
                    "id": "t2",
                    "text": "A block or magnetic strip keeps blades covered.",
                    "policies": [],
                    "author": "x",
                    "round": 0,
                },
            ],
            next_thought=3,
            response="Use a knife block or a magnetic strip.",
            rounds=1,
            complete=False,
            deliberation=[],
        )
    return state


def check_agent(agent: Any, role: str, policies: PolicySet | str = "aidsafe", teacher: Any = None) -> BaseModel:
    """Run `agent` once in `role`; raise AssertionError with the reason if it does not conform."""
    from aidsafe.generation.roles import GraphAgentContext

    policy_set = load_policies(policies) if isinstance(policies, str) else policies
    assert isinstance(getattr(agent, "name", None), str), "an agent needs a string `name`"
    if role in ("ear_whisperer", "rejected_cot", "judge"):  # the pair stage's roles (aidsafe.pairs.roles)
        from aidsafe.testing.pair_conformance import check_pair_agent

        return check_pair_agent(agent, role, policy_set, teacher)
    spec = role_spec(role)
    state = example_state(role, policy_set)
    ctx = GraphAgentContext(
        teacher=teacher or FakeTeacher(),
        policies=policy_set,
        rng=random.Random(0),
        role=spec,
        endpoint=Endpoint(base_url="http://fake", model="fake"),
        sampling={},
        max_rounds=4,
        agent_name=agent.name,
    )
    output = asyncio.run(agent(dict(state), ctx))
    assert isinstance(output, spec.output), (
        f"{agent.name} returned {type(output).__name__}, expected {spec.output.__name__}"
    )
    try:
        spec.validate(output, state, policy_set)
    except ValueError as exc:
        raise AssertionError(f"{agent.name}'s output does not fit role {role}: {exc}") from None
    return output
