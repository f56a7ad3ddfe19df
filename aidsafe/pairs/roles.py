"""The three pair roles (ear-whisperer, rejected-side generator, judge): their registry entries,
template fields, state updates, and the stop rule of the loop.

Like the generation roles (aidsafe.generation.roles), agents only produce a role's output; the
`apply_*` functions here change the state, and any reply valid for the schema sent is usable.
The lenient reading of a judge's verdict: `violates` decides; the cited policy ids are kept
only when it is true (a "no" that cites ids, or a "yes" that cites none, is not re-asked).

The judge sees the two sides as answers A and B, in an order drawn per sample and iteration
from the recipe's seed (`judge_order`), so a judge's position bias cannot favour one side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from aidsafe.agents.policies import PolicySet, render_policies
from aidsafe.agents.roles import RoleSpec, Turn
from aidsafe.agents.schemas import DEFAULT_MIN_CHARS, InitialCoT
from aidsafe.pairs.schemas import Belief, JudgeVerdict, belief_call, judge_call, rejected_call

__all__ = [
    "PairRoleSpec",
    "PAIR_ROLES",
    "pair_template_values",
    "judge_order",
    "separated",
    "side_score",
    "loop_route",
    "apply_belief",
    "apply_rejected",
    "apply_verdict",
    "render_answer",
    "render_thoughts",
]


@dataclass(frozen=True)
class PairRoleSpec(RoleSpec):
    """A RoleSpec whose per-call schema comes from `build_call(policy_ids, min_chars)`."""

    build_call: Callable[[tuple[str, ...], int], type[BaseModel]] | None = None

    def call_model(self, state: dict, policies: PolicySet, min_chars: int = DEFAULT_MIN_CHARS) -> type[BaseModel]:
        assert self.build_call is not None
        return self.build_call(tuple(policies.ids), min_chars)


# The stop rule ---------------------------------------------------------------------------------


def separated(attempt: dict[str, Any], margin: float) -> bool:
    """The judge separated the sides: rejected violates, chosen does not, and chosen's
    faithfulness beats rejected's by at least `margin` points."""
    chosen, rejected = attempt["chosen"], attempt["rejected"]
    gap = chosen["faithfulness"] - rejected["faithfulness"]
    return bool(rejected["violates"]) and not chosen["violates"] and gap >= margin


def loop_route(state: dict[str, Any], max_iterations: int) -> str:
    """`stop` once the latest attempt separated the sides or every belief is spent, else `whisper`."""
    attempts = state.get("attempts", [])
    if attempts and attempts[-1]["separated"]:
        return "stop"
    return "stop" if len(attempts) >= max_iterations else "whisper"


def judge_order(seed: int, sample_id: str, iteration: int) -> str:
    """Which side the judge sees as answer A: "chosen_first" or "rejected_first"."""
    digest = hashlib.sha256(f"{seed}:{sample_id}:{iteration}:judge".encode()).digest()
    return "chosen_first" if digest[0] % 2 == 0 else "rejected_first"


# How outputs change the state ------------------------------------------------------------------


def apply_belief(output: Belief, state: dict, turn: Turn) -> dict:
    return {"belief": {"text": output.belief, "target_policy": output.target_policy, "agent": turn.agent}}


def apply_rejected(output: InitialCoT, state: dict, turn: Turn) -> dict:
    thoughts = [{"text": t.text, "policies": list(dict.fromkeys(t.policies))} for t in output.thoughts]
    return {"rejected": {"thoughts": thoughts, "response": output.response, "agent": turn.agent}}


def apply_verdict(output: JudgeVerdict, state: dict, turn: Turn) -> dict:
    """One attempt, appended: the belief, the rejected side it produced, both verdicts mapped back
    from A/B, the faithfulness gap, and whether it separated by the state's `margin`."""
    first, second = _side(output.a), _side(output.b)
    chosen, rejected = (first, second) if state["judge_order"] == "chosen_first" else (second, first)
    attempt = {
        "iteration": len(state.get("attempts", [])) + 1,
        "belief": state["belief"],
        "rejected_cot": state["rejected"],
        "judge": turn.agent,
        "judge_order": state["judge_order"],
        "chosen": chosen,
        "rejected": rejected,
        "gap": chosen["faithfulness"] - rejected["faithfulness"],
    }
    attempt["separated"] = separated(attempt, state["margin"])
    return {"attempts": [attempt]}


def _side(verdict: Any) -> dict[str, Any]:
    cited = list(dict.fromkeys(verdict.violated_policies)) if verdict.violates else []
    return {"violates": verdict.violates, "violated_policies": cited, "faithfulness": int(verdict.faithfulness),
            "rationale": verdict.rationale}  # fmt: skip


# Templates -------------------------------------------------------------------------------------

_COMMON = {"prompt", "policies", "policy_ids", "agent_name", "intents"}


def pair_template_values(state: dict, policies: PolicySet, agent_name: str, max_iterations: int) -> dict[str, str]:
    """Everything a pair card may reference, rendered as text for the teacher."""
    chosen = state.get("chosen", {})
    rejected = state.get("rejected") or {}
    sides = [render_answer(chosen), render_answer(rejected)]
    if state.get("judge_order") == "rejected_first":
        sides.reverse()
    belief = state.get("belief") or {}
    return {
        "prompt": state["prompt"],
        "policies": render_policies(policies),
        "policy_ids": ", ".join(policies.ids),
        "agent_name": agent_name,
        "intents": _render_intents(state.get("intents", [])),
        "chosen_thoughts": render_thoughts(chosen.get("thoughts", [])),
        "chosen_response": chosen.get("response", ""),
        "attempts": _render_attempts(state.get("attempts", [])),
        "iteration": str(len(state.get("attempts", [])) + 1),
        "max_iterations": str(max_iterations),
        "belief": belief.get("text", ""),
        "answer_a": sides[0],
        "answer_b": sides[1],
    }


def _render_intents(intents: list[dict]) -> str:
    return "\n".join(f"- ({i['kind']}, {i['nature']}) {i['text']}" for i in intents) or "(none)"


def render_thoughts(thoughts: list[dict]) -> str:
    """Numbered thoughts with their cited ids, as the judges read them (the pairs judge, eval cot)."""
    lines = []
    for number, thought in enumerate(thoughts, start=1):
        cited = f" [{', '.join(thought['policies'])}]" if thought.get("policies") else ""
        lines.append(f"{number}.{cited} {thought['text']}")
    return "\n".join(lines) or "(none)"


def render_answer(side: dict) -> str:
    """One answer (thoughts and response) as a judge reads it."""
    return f"Reasoning:\n{render_thoughts(side.get('thoughts', []))}\n\nResponse:\n{side.get('response', '')}"


def _render_attempts(attempts: list[dict]) -> str:
    """Earlier beliefs and why each failed, for the ear-whisperer's next try."""
    lines = []
    for a in attempts:
        why = []
        if not a["rejected"]["violates"]:
            why.append("the steered answer did not violate any policy")
        if a["chosen"]["violates"]:
            why.append("the judge found a violation in the reference answer too")
        if not why:
            why.append(f"the judge's score gap {a['gap']:g} was below the margin")
        said = f"; judge: {a['rejected']['rationale']}" if a["rejected"].get("rationale") else ""
        lines.append(
            f"attempt {a['iteration']}: target {a['belief']['target_policy']}; belief: {a['belief']['text']}\n"
            f"  failed: {'; '.join(why)} (reference {side_score(a['chosen'])}, "
            f"steered {side_score(a['rejected'])}){said}"
        )
    return "\n".join(lines) or "(none: this is the first attempt)"


def side_score(side: dict) -> str:
    """One side's judge score as text: `faithfulness 4` (LLM judge) or `P(unsafe) 0.12` (guard)."""
    if "p_unsafe" in side:
        return f"P(unsafe) {side['p_unsafe']:.2f}"
    return f"faithfulness {side['faithfulness']}"


# The registry ----------------------------------------------------------------------------------

_ANSWER = frozenset(_COMMON | {"chosen_thoughts", "chosen_response"})

PAIR_ROLES: dict[str, PairRoleSpec] = {
    spec.name: spec
    for spec in (
        PairRoleSpec("ear_whisperer", "ear_whisperer", "whisper", Belief,
                     frozenset(_ANSWER | {"attempts", "iteration", "max_iterations"}), apply_belief,
                     build_call=belief_call),
        PairRoleSpec("rejected_cot", "rejected_cot", "rejected_cot", InitialCoT, frozenset(_COMMON | {"belief"}),
                     apply_rejected, build_call=rejected_call),
        PairRoleSpec("judge", "judge", "judge", JudgeVerdict, frozenset(_COMMON | {"answer_a", "answer_b"}),
                     apply_verdict, build_call=judge_call),
    )
}  # fmt: skip
