"""The pair graph for one chosen sample (one LangGraph thread, thread id = the sample's id).

whisper -> rejected_cot -> judge -> (whisper again | END). Each node runs its role's one agent
and applies its output through the role's registry entry (aidsafe.pairs.roles); the loop reads
the judge's structured verdicts (`loop_route`), never text. Like the generation graph, the
topology needs no runtime; `PairDeps` arrives per invoke as LangGraph's context.
"""

from __future__ import annotations

import operator
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from aidsafe.agents.context import AgentContext, ResolvedAgent, agent_rng, run_agent
from aidsafe.agents.policies import PolicySet
from aidsafe.agents.roles import Turn
from aidsafe.agents.schemas import DEFAULT_MIN_CHARS
from aidsafe.pairs.roles import PAIR_ROLES, PairRoleSpec, judge_order, loop_route, pair_template_values
from aidsafe.teacher.types import Teacher

__all__ = ["PairState", "PairDeps", "PairAgentContext", "build_pairs_graph"]


class PairState(TypedDict, total=False):
    id: str
    prompt: str
    intents: list[dict]
    chosen: dict  # {"thoughts": [...], "response": ...}: the generation run's sample
    belief: dict  # the current attempt's {"text", "target_policy", "agent"}
    rejected: dict  # the current attempt's {"thoughts", "response", "agent"}
    attempts: Annotated[list[dict], operator.add]  # one per judged belief (aidsafe.pairs.roles.apply_verdict)
    calls: Annotated[list[dict], operator.add]


@dataclass
class PairAgentContext(AgentContext):
    """An AgentContext whose templates are the pair roles' (`max_rounds` carries max_iterations)."""

    def template_values(self, state: dict, agent_name: str | None = None) -> dict[str, str]:
        return pair_template_values(state, self.policies, self.agent_name or agent_name or "", self.max_rounds)


@dataclass
class PairDeps:
    """The graph's runtime context: the three agents, policies, teacher and the loop's budget."""

    agents: dict[str, ResolvedAgent]
    policies: PolicySet
    teacher: Teacher
    margin: float
    max_iterations: int
    seed: int
    min_chars: int = DEFAULT_MIN_CHARS

    async def run(self, agent: ResolvedAgent, state: dict) -> tuple[Any, list[dict]]:
        """Run one agent with a per-sample, per-iteration seeded RNG; return its output and calls."""
        iteration = len(state.get("attempts", [])) + 1
        ctx = PairAgentContext(
            teacher=self.teacher,
            policies=self.policies,
            rng=agent_rng(self.seed, state["id"], iteration, agent.name),
            role=agent.role,
            endpoint=agent.endpoint,
            sampling=agent.sampling,
            max_rounds=self.max_iterations,
            agent_name=agent.name,
            min_chars=self.min_chars,
        )
        return await run_agent(agent, state, ctx)


def _role_node(spec: PairRoleSpec) -> Callable[..., Awaitable[dict]]:
    async def node(state: PairState, runtime: Any) -> dict:
        deps: PairDeps = runtime.context
        agent = deps.agents[spec.name]
        seen = dict(state)
        if spec.name == "judge":  # what the judge's A/B and the stop rule need, fixed per iteration
            seen["judge_order"] = judge_order(deps.seed, state["id"], len(state.get("attempts", [])) + 1)
            seen["margin"] = deps.margin
        output, calls = await deps.run(agent, seen)
        # The agent's own role entry applies: a guard judge fills the judge role with its own.
        return {**agent.role.apply(output, seen, Turn(agent.name, deps.max_iterations)), "calls": calls}

    node.__name__ = spec.node
    return node


def build_pairs_graph(*, checkpointer: Any = None) -> Any:
    """Compile the loop's topology; `checkpointer` persists each step under thread_id = sample id."""
    from langgraph.graph import END, START, StateGraph

    def route(state: PairState, runtime: Any) -> str:
        return "whisper" if loop_route(state, runtime.context.max_iterations) == "whisper" else END

    graph = StateGraph(PairState, context_schema=PairDeps)
    for spec in PAIR_ROLES.values():
        graph.add_node(spec.node, _role_node(spec))
    graph.add_edge(START, "whisper")
    graph.add_edge("whisper", "rejected_cot")
    graph.add_edge("rejected_cot", "judge")
    graph.add_conditional_edges("judge", route, ["whisper", END])
    return graph.compile(checkpointer=checkpointer)
