"""The four graph roles, in one registry: for each, the recipe slot that names its agents, the
graph node that runs it, its output model and the per-call schema sent to the teacher, the
template fields its cards may use, and how its output changes the sample state.

Agents (cards or Python) only produce a role's output; the `apply_*` functions here change the
state. Keeping state changes in one place means a plugin cannot corrupt a sample.

The rule for outputs: any reply that validates against the schema that was sent is usable
(docs/agents.md). The schema says what it can (aidsafe.agents.schemas.call_model); where a
valid reply could still be read two ways, the rule for applying it is lenient and fixed here:

- deliberation: two corrections of one thought in a turn: the last wins (the others are dropped);
  a policy cited twice by one thought counts once.
- refinement: every thought has its own verdict key, so none can be left out or named twice (a
  JSON object that repeats a key keeps the last value, as every JSON parser does); a refiner that
  removes every thought is overruled and all are kept, since a chain of thought needs a step and
  the refiner cannot write new ones. Kept thoughts stay in their order.
"""

from __future__ import annotations

from aidsafe.agents.context import AgentContext
from aidsafe.agents.policies import PolicySet, render_policies
from aidsafe.agents.roles import RoleSpec, Turn, thought_ids
from aidsafe.agents.schemas import (
    DeliberationTurn,
    InitialCoT,
    IntentList,
    Refinement,
)

__all__ = [
    "GraphAgentContext",
    "ROLES",
    "role_spec",
    "template_values",
    "stop_reason",
    "apply_intents",
    "apply_initial_cot",
    "apply_turn",
    "apply_refinement",
]


# How outputs change the state ------------------------------------------------------------------


def apply_intents(output: IntentList, state: dict, turn: Turn) -> dict:
    return {"intents": [intent.model_dump() for intent in output.intents]}


def apply_initial_cot(output: InitialCoT, state: dict, turn: Turn) -> dict:
    thoughts, counter = _new_thoughts(output.thoughts, state, turn.agent, 0)
    update = {"thoughts": thoughts, "next_thought": counter, "response": output.response, "rounds": 0}
    update["complete"] = False
    return update


def apply_turn(output: DeliberationTurn, state: dict, turn: Turn) -> dict:
    rounds = state.get("rounds", 0) + 1
    made, counter = _new_thoughts(_last_correction_wins(output.thoughts), state, turn.agent, rounds)
    thoughts, corrected = _apply_corrections(state.get("thoughts", []), made)
    log = {"agent": turn.agent, "round": rounds, "thoughts": made, "response": output.response}
    log["complete"] = output.complete
    return {
        "thoughts": thoughts,
        "next_thought": counter,
        "response": output.response,
        "rounds": rounds,
        "complete": output.complete,
        "deliberation": [log],
        "removed": corrected,
        "stop_reason": stop_reason(output.complete, rounds, turn.max_rounds),
    }


def apply_refinement(output: Refinement, state: dict, turn: Turn) -> dict:
    thoughts = state.get("thoughts", [])
    verdicts = {tid: output.verdicts.get(tid, "keep") for tid in thought_ids(state)}
    if thoughts and all(verdict != "keep" for verdict in verdicts.values()):
        verdicts = dict.fromkeys(verdicts, "keep")  # overruled: see the module docstring
    removed = [{**t, "stage": "refine", "reason": verdicts[t["id"]]} for t in thoughts if verdicts[t["id"]] != "keep"]
    update = {
        "thoughts": [t for t in thoughts if verdicts[t["id"]] == "keep"],
        "response": output.response,
        "removed": removed,
    }
    if not state.get("stop_reason"):  # a checkpoint from before initial_cot set it
        update["stop_reason"] = "no_deliberation"
    return update


def stop_reason(complete: bool, rounds: int, max_rounds: int) -> str:
    """Why deliberation ends after this turn ("complete", "budget"), or "" if it goes on."""
    if complete:
        return "complete"
    if rounds >= max_rounds:
        return "budget"
    return ""


def _last_correction_wins(drafts: list) -> list:
    last = {d.replaces: i for i, d in enumerate(drafts) if getattr(d, "replaces", None)}
    return [d for i, d in enumerate(drafts) if not getattr(d, "replaces", None) or last[d.replaces] == i]


def _new_thoughts(drafts: list, state: dict, author: str, round_no: int) -> tuple[list[dict], int]:
    """Number the drafts t<n> after the ids used so far; a correction keeps which id it replaces."""
    counter = state.get("next_thought", 1)
    made = []
    for draft in drafts:
        thought = {"id": f"t{counter}", "text": draft.text, "policies": list(dict.fromkeys(draft.policies)),
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
        position = next((i for i, t in enumerate(thoughts) if t["id"] == target), None) if target else None
        if position is None:
            thoughts.append(thought)
            continue
        corrected.append(
            {**thoughts[position], "stage": "deliberation", "reason": "corrected", "replaced_by": thought["id"]}
        )
        thoughts[position] = thought
    return thoughts, corrected


# The registry ----------------------------------------------------------------------------------

_COMMON = {"prompt", "policies", "policy_ids", "agent_name"}

ROLES: dict[str, RoleSpec] = {
    spec.name: spec
    for spec in (
        RoleSpec("intent_decomposer", "intent_decomposer", "decompose", IntentList, frozenset(_COMMON), apply_intents),
        RoleSpec(
            "initial_cot", "initial_cot", "initial_cot", InitialCoT, frozenset(_COMMON | {"intents"}), apply_initial_cot
        ),
        RoleSpec(
            "deliberator",
            "deliberators",
            "deliberate",
            DeliberationTurn,
            frozenset(_COMMON | {"intents", "thoughts", "response", "round", "max_rounds"}),
            apply_turn,
            sees_thoughts=True,
        ),
        RoleSpec(
            "refiner",
            "refiner",
            "refine",
            Refinement,
            frozenset(_COMMON | {"intents", "thoughts", "response", "deliberation"}),
            apply_refinement,
            sees_thoughts=True,
        ),
    )
}


def role_spec(name: str) -> RoleSpec:
    try:
        return ROLES[name]
    except KeyError:
        raise ValueError(f"unknown role {name!r}; expected one of: {', '.join(ROLES)}") from None


# Template rendering ----------------------------------------------------------------------------


def template_values(state: dict, policies: PolicySet, agent_name: str, max_rounds: int) -> dict[str, str]:
    """Everything a template may reference, rendered as text for the teacher."""
    return {
        "prompt": state["prompt"],
        "policies": render_policies(policies),
        "policy_ids": ", ".join(policies.ids),
        "agent_name": agent_name,
        "intents": _render_intents(state.get("intents", [])),
        "thoughts": _render_thoughts(state.get("thoughts", [])),
        "response": state.get("response", ""),
        "round": str(state.get("rounds", 0) + 1),
        "max_rounds": str(max_rounds),
        "deliberation": _render_log(state.get("deliberation", [])),
    }


class GraphAgentContext(AgentContext):
    """The AgentContext of the AIDSAFE graph's agents: their templates are `template_values`."""

    def template_values(self, state: dict, agent_name: str | None = None) -> dict[str, str]:
        return template_values(state, self.policies, self.agent_name or agent_name or "", self.max_rounds)


def _render_intents(intents: list[dict]) -> str:
    return "\n".join(f"- ({i['kind']}, {i['nature']}) {i['text']}" for i in intents) or "(none)"


def _render_thoughts(thoughts: list[dict]) -> str:
    lines = []
    for thought in thoughts:
        cited = f" [{', '.join(thought['policies'])}]" if thought["policies"] else ""
        lines.append(f"{thought['id']}{cited}: {thought['text']}")
    return "\n".join(lines) or "(none yet)"


def _render_log(turns: list[dict]) -> str:
    lines = []
    for turn in turns:
        added = ", ".join(t["id"] for t in turn["thoughts"]) or "nothing"
        verdict = "agreed, complete" if turn["complete"] else "not complete"
        lines.append(f"Round {turn['round']} ({turn['agent']}): added {added}; {verdict}")
    return "\n".join(lines) or "(no deliberation)"
