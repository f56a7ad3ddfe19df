"""The AIDSAFE graph for one prompt (one LangGraph thread per sample).

decompose -> initial_cot -> deliberate (loop) -> dedup -> refine. Each node runs one agent and
applies its output through the role's rules; routing reads the structured `complete` field and
the round counter, never the text.
"""

from __future__ import annotations

import hashlib
import operator
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from aidsafe.generation.agents import AgentContext, ResolvedAgent
from aidsafe.generation.policies import PolicySet
from aidsafe.teacher.types import InvalidOutputError, Teacher

__all__ = ["SampleState", "GraphDeps", "build_graph", "stop_route"]


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
    """Everything the nodes need, passed in (no globals): agents, policies, teacher, dedup."""

    agents: dict[str, list[ResolvedAgent]]
    policies: PolicySet
    teacher: Teacher
    max_rounds: int
    seed: int
    dedup: Callable[[list[dict]], Awaitable[list[dict]]] | None

    async def run(self, agent: ResolvedAgent, state: SampleState) -> tuple[Any, list[dict]]:
        """Run one agent with a per-sample seeded RNG; return its output and call records."""
        key = f"{self.seed}:{state['id']}:{state.get('rounds', 0)}:{agent.name}"
        digest = hashlib.sha256(key.encode()).digest()
        ctx = AgentContext(
            teacher=self.teacher,
            policies=self.policies,
            rng=random.Random(int.from_bytes(digest[:8], "big")),
            role=agent.role,
            endpoint=agent.endpoint,
            sampling=agent.sampling,
            max_rounds=self.max_rounds,
        )
        output = await agent.agent(dict(state), ctx)
        if not isinstance(output, agent.role.output):
            raise TypeError(
                f"agent {agent.name} returned {type(output).__name__}; "
                f"role {agent.role.name} needs {agent.role.output.__name__}"
            )
        try:  # teacher outputs were checked already; Python agents may build outputs themselves
            agent.role.check(output, dict(state), self.policies)
        except ValueError as exc:
            raise InvalidOutputError(f"agent {agent.name} ({agent.role.name}): {exc}") from None
        return output, [call.to_dict() for call in ctx.calls]


def _new_thoughts(drafts: list, state: SampleState, author: str, round_no: int) -> tuple[list[dict], int]:
    """Number the drafts t<n> after the ids used so far; a correction keeps which id it replaces."""
    counter = state.get("next_thought", 1)
    made = []
    for draft in drafts:
        thought = {"id": f"t{counter}", "text": draft.text.strip(), "policies": list(draft.policies),
                   "author": author, "round": round_no}  # fmt: skip
        if getattr(draft, "replaces", None):
            thought["replaces"] = draft.replaces
        made.append(thought)
        counter += 1
    return made, counter


def _apply_corrections(thoughts: list[dict], made: list[dict]) -> tuple[list[dict], list[dict]]:
    """New thoughts are appended; a correction takes the place of the thought it replaces,
    which is kept in `removed` with reason `corrected`."""
    thoughts = list(thoughts)
    corrected = []
    for thought in made:
        target = thought.get("replaces")
        if target is None:
            thoughts.append(thought)
            continue
        position = next(i for i, t in enumerate(thoughts) if t["id"] == target)
        corrected.append(
            {**thoughts[position], "stage": "deliberation", "reason": "corrected", "replaced_by": thought["id"]}
        )
        thoughts[position] = thought
    return thoughts, corrected


def build_graph(deps: GraphDeps, checkpointer: Any = None) -> Any:
    """Compile the graph; `checkpointer` persists each step under thread_id = sample id."""
    from langgraph.graph import END, START, StateGraph

    async def decompose(state: SampleState) -> dict:
        output, calls = await deps.run(deps.agents["intent_decomposer"][0], state)
        return {"intents": [i.model_dump() for i in output.intents], "calls": calls}

    async def initial_cot(state: SampleState) -> dict:
        agent = deps.agents["initial_cot"][0]
        output, calls = await deps.run(agent, state)
        thoughts, counter = _new_thoughts(output.thoughts, state, agent.name, 0)
        return {
            "thoughts": thoughts,
            "next_thought": counter,
            "response": output.response.strip(),
            "rounds": 0,
            "complete": False,
            "calls": calls,
        }

    async def deliberate(state: SampleState) -> dict:
        rounds = state.get("rounds", 0) + 1
        agents = deps.agents["deliberator"]
        agent = agents[(rounds - 1) % len(agents)]  # agents take turns in recipe order
        output, calls = await deps.run(agent, state)
        made, counter = _new_thoughts(output.thoughts, state, agent.name, rounds)
        thoughts, corrected = _apply_corrections(state.get("thoughts", []), made)
        response = output.response.strip()
        turn = {
            "agent": agent.name,
            "round": rounds,
            "thoughts": made,
            "response": response,
            "complete": output.complete,
        }
        return {
            "thoughts": thoughts,
            "next_thought": counter,
            "response": response,
            "rounds": rounds,
            "complete": output.complete,
            "deliberation": [turn],
            "removed": corrected,
            "calls": calls,
            "stop_reason": stop_reason(output.complete, rounds, deps.max_rounds),
        }

    async def dedup(state: SampleState) -> dict:
        thoughts = state.get("thoughts", [])
        removed = await deps.dedup(thoughts)
        dropped = {r["id"] for r in removed}
        return {"thoughts": [t for t in thoughts if t["id"] not in dropped], "removed": removed}

    async def refine(state: SampleState) -> dict:
        output, calls = await deps.run(deps.agents["refiner"][0], state)
        by_id = {t["id"]: t for t in state.get("thoughts", [])}
        removed = [{**by_id[r.id], "stage": "refine", "reason": r.reason} for r in output.removed]
        update = {
            "thoughts": [by_id[i] for i in output.kept],
            "response": output.response.strip(),
            "removed": removed,
            "calls": calls,
        }
        if not state.get("stop_reason"):
            update["stop_reason"] = "no_deliberation"
        return update

    graph = StateGraph(SampleState)
    graph.add_node("decompose", decompose)
    graph.add_node("initial_cot", initial_cot)
    graph.add_node("deliberate", deliberate)
    graph.add_node("refine", refine)
    after_deliberation = "refine"
    if deps.dedup is not None:
        graph.add_node("dedup", dedup)
        graph.add_edge("dedup", "refine")
        after_deliberation = "dedup"
    graph.add_edge(START, "decompose")
    graph.add_edge("decompose", "initial_cot")

    def route(state: SampleState) -> str:
        return "deliberate" if stop_route(state, deps.max_rounds) == "continue" else after_deliberation

    graph.add_conditional_edges("initial_cot", route, ["deliberate", after_deliberation])
    graph.add_conditional_edges("deliberate", route, ["deliberate", after_deliberation])
    graph.add_edge("refine", END)
    return graph.compile(checkpointer=checkpointer)


def stop_reason(complete: bool, rounds: int, max_rounds: int) -> str:
    """Why deliberation ends after this turn ("complete", "budget"), or "" if it goes on."""
    if complete:
        return "complete"
    if rounds >= max_rounds:
        return "budget"
    return ""


def stop_route(state: SampleState, max_rounds: int) -> str:
    """`continue` while no agent has marked the CoT complete and the round budget is not spent."""
    return "stop" if stop_reason(bool(state.get("complete")), state.get("rounds", 0), max_rounds) else "continue"
