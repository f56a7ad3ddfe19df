"""The longest request each slot of a pairs recipe sends, for `aidsafe check` (aidsafe.teacher.calls
says how it is counted).

The input is a generation run's finished sample: its prompt, intents, thoughts and response are
each counted at the input allowance. The ear-whisperer's longest call is its last iteration,
which also lists every earlier belief with the judge's rationale; the rejected-CoT writer sees the
current belief; the judge both answers, the steered one at most the rejected-CoT writer's
max_tokens. A guard judge scores each side alone in its own raw-completion format.
"""

from __future__ import annotations

from typing import Any

from aidsafe.agents.context import CardAgent, ResolvedAgent
from aidsafe.guard.judge import JUDGE_MAX_TOKENS, render_judge_prompt
from aidsafe.pairs.recipe import PairPipeline
from aidsafe.pairs.roles import pair_template_values
from aidsafe.teacher.calls import LongestCall, RecipeCalls, SlotCall, max_reply_tokens

__all__ = ["slot_calls"]


def slot_calls(pipeline: PairPipeline, input_tokens: int) -> RecipeCalls:
    """The three slots, in recipe order, with their longest calls; each text from the input
    counted at `input_tokens`."""
    recipe = pipeline.recipe
    agents = pipeline.agents
    iterations = recipe.pairs.max_iterations
    caps = {role: max_reply_tokens(agent.sampling) for role, agent in agents.items()}
    chosen = [("the prompt", input_tokens), ("the intents", input_tokens), ("the chosen thoughts", input_tokens),
              ("the chosen response", input_tokens)]  # fmt: skip
    earlier = iterations - 1
    plans: dict[str, tuple[str, dict[str, Any], list[tuple[str, int | None]]]] = {
        "ear_whisperer": (
            f"iteration {iterations} of {iterations}",
            {"attempts": [_attempt(number) for number in range(1, iterations)]},
            [*chosen, *_times(earlier, "earlier belief", caps["ear_whisperer"])]
            + ([] if recipe.pairs.judge == "guard" else _times(earlier, "judge's rationale", caps["judge"])),
        ),
        "rejected_cot": ("one call per iteration", {}, [*chosen[:2], ("the belief", caps["ear_whisperer"])]),
        "judge": ("one call per iteration", {}, [*chosen, ("the steered answer", caps["rejected_cot"])]),
    }
    slots = []
    for role, agent in agents.items():
        step, state, filled = plans[role]
        if role == "judge" and recipe.pairs.judge == "guard":
            slots.append(_guard_slot(agent, filled, input_tokens, caps["rejected_cot"]))
        else:
            slots.append(_card_slot(pipeline, agent, f"agents.{role}", step, state, filled))
    return RecipeCalls(recipe.teacher, recipe.seed, slots)


def _card_slot(pipeline: PairPipeline, agent: ResolvedAgent, key: str, step: str, state: dict[str, Any],
               filled: list[tuple[str, int | None]]) -> SlotCall:  # fmt: skip
    if not isinstance(agent.agent, CardAgent):
        return SlotCall(key, agent.name, agent.endpoint, unknown="a Python agent writes its own messages")
    recipe, policies = pipeline.recipe, pipeline.policies
    empty = {"prompt": "", "chosen": {"thoughts": [], "response": ""}, "rejected": {}, "belief": {}, **state}
    messages = agent.agent.build_messages(_values(pipeline, agent, empty))
    schema = agent.role.call_model(empty, policies, recipe.min_text_chars)
    longest = LongestCall(step, tuple(messages), filled=tuple(filled), max_tokens=max_reply_tokens(agent.sampling),
                          schema=schema, reasks=recipe.teacher.max_parse_retries)  # fmt: skip
    systems = tuple(agent.agent.build_messages(_values(pipeline, agent, _sample(which, state)))[0]["content"]
                    for which in ("first", "second"))  # fmt: skip
    return SlotCall(key, agent.name, agent.endpoint, longest=longest, systems=systems)


def _guard_slot(agent: ResolvedAgent, filled: list, input_tokens: int, rejected_cap: int | None) -> SlotCall:
    """The guard judge: one raw completion per side; the longer side is the chosen one (its
    thoughts and response from the input) or the steered one (the rejected-CoT writer's reply)."""
    judge = agent.agent
    prompt = render_judge_prompt(judge.fmt, "", "", judge.policies)
    side = ("the chosen side", 2 * input_tokens)
    if rejected_cap is None or rejected_cap > side[1]:
        side = ("the steered side", rejected_cap)
    longest = LongestCall("one call per side", prompt=prompt, filled=(filled[0], side), max_tokens=JUDGE_MAX_TOKENS)
    return SlotCall("pairs.guard_judge", agent.name, agent.endpoint, structured=False, longest=longest)


def _values(pipeline: PairPipeline, agent: ResolvedAgent, state: dict[str, Any]) -> dict[str, str]:
    return pair_template_values(state, pipeline.policies, agent.name, pipeline.recipe.pairs.max_iterations)


def _sample(which: str, state: dict[str, Any]) -> dict[str, Any]:
    """A made-up sample at the same step, every input text its own."""
    side = {"thoughts": [{"text": f"The {which} thought.", "policies": []}], "response": f"The {which} response."}
    return {**state, "prompt": f"The {which} user prompt.", "chosen": side, "rejected": side,
            "intents": [{"kind": "explicit", "nature": "benign", "text": f"The {which} intent."}],
            "belief": {"text": f"The {which} belief."}}  # fmt: skip


def _attempt(number: int) -> dict[str, Any]:
    """An earlier attempt as the ear-whisperer's log shows it, its texts left empty."""
    side = {"violates": False, "faithfulness": 5, "rationale": ""}
    return {"iteration": number, "belief": {"target_policy": "", "text": ""}, "gap": 0,
            "chosen": side, "rejected": side}  # fmt: skip


def _times(count: int, what: str, cap: int | None) -> list[tuple[str, int | None]]:
    return [(f"{what} {number}", cap) for number in range(1, count + 1)]
