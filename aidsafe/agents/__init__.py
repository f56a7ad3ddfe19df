"""What every stage's agents share: policy sets, agent cards, structured outputs, the per-call
agent context, the one slot resolver, and teacher settings.

generation/, pairs/, guard/ and eval/ build on this package and never on each other's agent code.
A Python agent (docs/agents.md) needs only the names below:

    from aidsafe.agents import AgentContext, DeliberationTurn
"""

from __future__ import annotations

from aidsafe.agents.context import Agent, AgentContext, CardAgent, ResolvedAgent, agent_rng, run_agent
from aidsafe.agents.policies import Policy, PolicySet, load_policies, render_policies
from aidsafe.agents.schemas import DeliberationTurn, InitialCoT, IntentList, Refinement

__all__ = [
    "Agent",
    "AgentContext",
    "CardAgent",
    "DeliberationTurn",
    "InitialCoT",
    "IntentList",
    "Policy",
    "PolicySet",
    "Refinement",
    "ResolvedAgent",
    "agent_rng",
    "load_policies",
    "render_policies",
    "run_agent",
]
