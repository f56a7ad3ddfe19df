"""The four graph roles: what each sees, what it must return, and how its output changes the state.

Agents (cards or Python) only produce a role's output model; the functions here apply it to the
sample state. Keeping state changes in one place means a plugin cannot corrupt a sample, and the
validation `check_*` functions turn a teacher's inconsistent reply (an unknown policy id, a
refiner that forgot a thought) into a re-ask with the error message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from aidsafe.generation.policies import PolicySet, check_cited, render_policies
from aidsafe.generation.schemas import DeliberationTurn, InitialCoT, IntentList, Refinement

__all__ = ["RoleSpec", "ROLES", "template_values", "role_spec"]

_COMMON = {"prompt", "policies", "policy_ids", "agent_name"}


@dataclass(frozen=True)
class RoleSpec:
    name: str
    output: type[BaseModel]
    fields: frozenset[str]  # template placeholders available to this role
    check: Callable[[Any, dict, PolicySet], None]


def _check_citations(output: InitialCoT | DeliberationTurn, state: dict, policies: PolicySet) -> None:
    check_cited([pid for thought in output.thoughts for pid in thought.policies], policies)


def _check_turn(output: DeliberationTurn, state: dict, policies: PolicySet) -> None:
    _check_citations(output, state, policies)
    known = {thought["id"] for thought in state.get("thoughts", [])}
    wrong = sorted({t.replaces for t in output.thoughts if t.replaces and t.replaces not in known})
    if wrong:
        raise ValueError(f"'replaces' names unknown thought ids {wrong}; existing ids: {sorted(known)}")
    targets = [t.replaces for t in output.thoughts if t.replaces]
    if len(targets) != len(set(targets)):
        raise ValueError("each existing thought may be corrected at most once per turn")


def _check_refinement(output: Refinement, state: dict, policies: PolicySet) -> None:
    ids = [thought["id"] for thought in state.get("thoughts", [])]
    mentioned = list(output.kept) + [r.id for r in output.removed]
    unknown = sorted(set(mentioned) - set(ids))
    missing = [i for i in ids if i not in mentioned]
    twice = sorted({i for i in mentioned if mentioned.count(i) > 1})
    problems = []
    if unknown:
        problems.append(f"unknown thought ids {unknown}")
    if missing:
        problems.append(f"thought ids neither kept nor removed {missing}")
    if twice:
        problems.append(f"thought ids listed twice {twice}")
    if ids and not output.kept:
        problems.append("keep at least one thought")
    if problems:
        raise ValueError("; ".join(problems) + f"; every id in {ids} must be kept or removed exactly once")


def _no_check(output: Any, state: dict, policies: PolicySet) -> None:
    return None


ROLES: dict[str, RoleSpec] = {
    spec.name: spec
    for spec in (
        RoleSpec("intent_decomposer", IntentList, frozenset(_COMMON), _no_check),
        RoleSpec("initial_cot", InitialCoT, frozenset(_COMMON | {"intents"}), _check_citations),
        RoleSpec(
            "deliberator",
            DeliberationTurn,
            frozenset(_COMMON | {"intents", "thoughts", "response", "round", "max_rounds"}),
            _check_turn,
        ),
        RoleSpec(
            "refiner",
            Refinement,
            frozenset(_COMMON | {"intents", "thoughts", "response", "deliberation"}),
            _check_refinement,
        ),
    )
}


def role_spec(name: str) -> RoleSpec:
    try:
        return ROLES[name]
    except KeyError:
        raise ValueError(f"unknown role {name!r}; expected one of: {', '.join(ROLES)}") from None


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
