"""The guard-model judge of the pair loop (`pairs.judge: guard`): a served Llama Guard 3 or
ShieldGemma scores each side's P(unsafe) (aidsafe.guard.judge), and the sides are separated
when the rejected one is unsafe, the chosen one safe, and their P(unsafe) differ by the margin.

It fills the graph's judge role like a card does: a Python agent (`GuardJudge`) whose output,
`GuardVerdict`, the role entry `GUARD_JUDGE_ROLE` turns into the same attempt the LLM judge
makes (aidsafe.pairs.roles.apply_verdict): the loop and its stop rule read only `separated`.
The guard sees each side alone (no A/B order: it compares nothing, so there is no position
bias to undo); the side's text is its reasoning and response, as the LLM judge sees it, so a
steered side whose reasoning violates counts even if its last words refuse.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from aidsafe.agents.context import ResolvedAgent
from aidsafe.agents.policies import PolicySet
from aidsafe.agents.roles import Turn
from aidsafe.guard.judge import GuardClient, guard_p_unsafe, render_judge_prompt
from aidsafe.pairs.roles import PairRoleSpec, render_answer
from aidsafe.teacher.types import Endpoint

__all__ = [
    "UNSAFE_AT",
    "GuardSide",
    "GuardVerdict",
    "GuardJudge",
    "GUARD_JUDGE_ROLE",
    "apply_guard_verdict",
    "guard_separated",
    "resolve_guard_judge",
]

UNSAFE_AT = 0.5  # P(unsafe) at or above which a side is judged violating


class _Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GuardSide(_Output):
    p_unsafe: float = Field(ge=0, le=1)
    label: str
    from_logprobs: bool


class GuardVerdict(_Output):
    chosen: GuardSide
    rejected: GuardSide


def guard_separated(attempt: dict[str, Any], margin: float) -> bool:
    """Rejected unsafe (P >= 0.5), chosen safe (P < 0.5), and P_rejected - P_chosen >= margin."""
    p_chosen, p_rejected = attempt["chosen"]["p_unsafe"], attempt["rejected"]["p_unsafe"]
    # rounded: 0.7 - 0.2 is 0.49999999999999994 in floats, and exactly the margin must pass
    return p_rejected >= UNSAFE_AT > p_chosen and round(p_rejected - p_chosen, 9) >= margin


def apply_guard_verdict(output: GuardVerdict, state: dict, turn: Turn) -> dict:
    """One attempt, appended, in the LLM judge's shape with P(unsafe) in place of faithfulness."""

    def side(score: GuardSide) -> dict[str, Any]:
        return {"violates": score.p_unsafe >= UNSAFE_AT, "p_unsafe": round(score.p_unsafe, 6),
                "label": score.label, "from_logprobs": score.from_logprobs}  # fmt: skip

    attempt = {
        "iteration": len(state.get("attempts", [])) + 1,
        "belief": state["belief"],
        "rejected_cot": state["rejected"],
        "judge": turn.agent,
        "chosen": side(output.chosen),
        "rejected": side(output.rejected),
        "gap": round(output.rejected.p_unsafe - output.chosen.p_unsafe, 6),
    }
    attempt["separated"] = guard_separated(attempt, state["margin"])
    return {"attempts": [attempt]}


GUARD_JUDGE_ROLE = PairRoleSpec("judge", "judge", "judge", GuardVerdict, frozenset(), apply_guard_verdict,
                                build_call=lambda policy_ids, min_chars: GuardVerdict)  # fmt: skip


class GuardJudge:
    """Scores both sides with one guard call each, concurrently."""

    name = "guard_judge"

    def __init__(self, fmt: str, policies: PolicySet) -> None:
        self.fmt = fmt
        self.policies = policies

    async def __call__(self, state: dict, ctx: Any) -> GuardVerdict:
        client = GuardClient(ctx.teacher, ctx.endpoint, ctx.agent_name or self.name, role="judge", calls=ctx.calls)
        chosen, rejected = await asyncio.gather(
            guard_p_unsafe(client, self.fmt, state["prompt"], render_answer(state["chosen"]), self.policies),
            guard_p_unsafe(client, self.fmt, state["prompt"], render_answer(state["rejected"]), self.policies),
        )

        def side(score: Any) -> GuardSide:
            return GuardSide(p_unsafe=score.p_unsafe, label=score.label, from_logprobs=score.from_logprobs)

        return GuardVerdict(chosen=side(chosen), rejected=side(rejected))


def resolve_guard_judge(fmt: str, policies: PolicySet, endpoint: Endpoint) -> ResolvedAgent:
    """The judge role's agent for a guard judge; its fingerprint covers the prompt template and
    the policies it renders, so changing either changes the recipe hash."""
    template = render_judge_prompt(fmt, "{prompt}", "{response}", policies)
    fingerprint = hashlib.sha256(f"{fmt}\n{template}".encode()).hexdigest()
    return ResolvedAgent(GuardJudge(fmt, policies), GuardJudge.name, GUARD_JUDGE_ROLE, endpoint, {}, fingerprint)
