"""The AIDSAFE graph for one prompt (one LangGraph thread per sample).

decompose -> initial_cot -> deliberate (loop) -> dedup -> refine; a recipe that leaves roles
out gets the graph without their nodes (initial_cot alone: the zero-shot baseline). The topology is built with no
runtime (`build_graph`), so it can be drawn with nothing loaded; what the nodes need (agents,
policies, teacher, dedup) arrives per run as LangGraph's context:

    graph = build_graph(dedup=deps.dedup is not None, checkpointer=saver)
    await graph.ainvoke(state, config, context=deps)

Each role node runs one agent and applies its output through the role's registry entry
(aidsafe.generation.roles); routing reads the structured `complete` field and the round counter,
never the text.
"""

from __future__ import annotations

import operator
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

from aidsafe.agents.context import ResolvedAgent, agent_rng, run_agent
from aidsafe.agents.policies import PolicySet
from aidsafe.agents.roles import RoleSpec, Turn
from aidsafe.agents.schemas import DEFAULT_MIN_CHARS
from aidsafe.generation.roles import ROLES, GraphAgentContext, stop_reason
from aidsafe.teacher.types import Teacher

if TYPE_CHECKING:
    from aidsafe.generation.pipeline import Pipeline

__all__ = ["SampleState", "GraphDeps", "build_graph", "stop_route", "stop_reason"]


class SampleState(TypedDict, total=False):
    id: str
    prompt: str
    intents: list[dict]
    thoughts: list[dict]  # {"id", "text", "policies", "author", "round"}
    response: str
    next_thought: int
    rounds: int
    complete: bool
    stop_reason: str
    deliberation: Annotated[list[dict], operator.add]
    removed: Annotated[list[dict], operator.add]
    calls: Annotated[list[dict], operator.add]


@dataclass
class GraphDeps:
    """The graph's runtime context: everything the nodes need, passed in (no globals)."""

    agents: dict[str, list[ResolvedAgent]]
    policies: PolicySet
    teacher: Teacher
    max_rounds: int
    seed: int
    dedup: Callable[[list[dict]], Awaitable[list[dict]]] | None
    min_chars: int = DEFAULT_MIN_CHARS  # the content floor (recipe: min_text_chars)

    @classmethod
    def from_pipeline(
        cls, pipeline: Pipeline, teacher: Teacher, dedup: Callable[[list[dict]], Awaitable[list[dict]]] | None = None
    ) -> GraphDeps:
        """The context for a loaded pipeline: its agents, policies, budget, seed and content floor."""
        recipe = pipeline.recipe
        return cls(
            pipeline.agents,
            pipeline.policies,
            teacher,
            recipe.deliberation.max_rounds,
            recipe.seed,
            dedup,
            recipe.min_text_chars,
        )

    async def run(self, agent: ResolvedAgent, state: SampleState) -> tuple[Any, list[dict]]:
        """Run one agent with a per-sample seeded RNG; return its output and call records."""
        ctx = GraphAgentContext(
            teacher=self.teacher,
            policies=self.policies,
            rng=agent_rng(self.seed, state["id"], state.get("rounds", 0), agent.name),
            role=agent.role,
            endpoint=agent.endpoint,
            sampling=agent.sampling,
            max_rounds=self.max_rounds,
            agent_name=agent.name,
            min_chars=self.min_chars,
        )
        return await run_agent(agent, state, ctx)


def _agent_for(spec: RoleSpec, deps: GraphDeps, state: SampleState) -> ResolvedAgent:
    agents = deps.agents[spec.name]
    return agents[state.get("rounds", 0) % len(agents)]  # deliberators take turns in recipe order


# Nodes and branches take LangGraph's `runtime` (a Runtime[GraphDeps]; LangGraph injects it by the
# parameter's name). Annotated `Any`: langgraph is imported lazily, and LangGraph resolves the
# annotations of branches at build time.


def _role_node(spec: RoleSpec) -> Callable[..., Awaitable[dict]]:
    async def node(state: SampleState, runtime: Any) -> dict:
        deps = runtime.context
        agent = _agent_for(spec, deps, state)
        output, calls = await deps.run(agent, state)
        return {**spec.apply(output, dict(state), Turn(agent.name, deps.max_rounds)), "calls": calls}

    node.__name__ = spec.node
    return node


async def _dedup(state: SampleState, runtime: Any) -> dict:
    thoughts = state.get("thoughts", [])
    removed = await runtime.context.dedup(thoughts)
    dropped = {r["id"] for r in removed}
    return {"thoughts": [t for t in thoughts if t["id"] not in dropped], "removed": removed}


def build_graph(*, dedup: bool = False, checkpointer: Any = None, roles: Iterable[str] | None = None) -> Any:
    """Compile the graph's topology; `checkpointer` persists each step under thread_id = sample id.

    Needs no runtime: the context (a GraphDeps) is given to each invoke. With `dedup`, a dedup node
    runs between deliberation and refinement (its context's `dedup` must then be set). `roles`:
    the roles the recipe fills (default all); a node is left out for each missing one, so a
    recipe with initial_cot alone is START -> initial_cot -> END (recipes/llm-zs.yaml)."""
    from langgraph.graph import END, START, StateGraph

    present = set(ROLES) if roles is None else set(roles)
    if "initial_cot" not in present:
        raise ValueError("a generation graph needs the initial_cot role")
    # Dedup only trims thoughts for the refiner, so it runs only where there is one.
    dedup = dedup and "refiner" in present
    after_deliberation = "dedup" if dedup else "refine" if "refiner" in present else END

    def route(state: SampleState, runtime: Any) -> str:
        going_on = stop_route(state, runtime.context.max_rounds) == "continue"
        return "deliberate" if going_on else after_deliberation

    graph = StateGraph(SampleState, context_schema=GraphDeps)
    for spec in ROLES.values():
        if spec.name in present:
            graph.add_node(spec.node, _role_node(spec))
    if dedup:
        graph.add_node("dedup", _dedup)
        graph.add_edge("dedup", "refine")
    if "intent_decomposer" in present:
        graph.add_edge(START, "decompose")
        graph.add_edge("decompose", "initial_cot")
    else:
        graph.add_edge(START, "initial_cot")
    if "deliberator" in present:
        graph.add_conditional_edges("initial_cot", route, ["deliberate", after_deliberation])
        graph.add_conditional_edges("deliberate", route, ["deliberate", after_deliberation])
    else:
        graph.add_edge("initial_cot", after_deliberation)
    if "refiner" in present:
        graph.add_edge("refine", END)
    return graph.compile(checkpointer=checkpointer)


def stop_route(state: SampleState, max_rounds: int) -> str:
    """`continue` while no agent has marked the CoT complete and the round budget is not spent."""
    return "stop" if stop_reason(bool(state.get("complete")), state.get("rounds", 0), max_rounds) else "continue"
