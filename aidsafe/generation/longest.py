"""The longest request each slot of a generation recipe sends, for `aidsafe check`
(aidsafe.teacher.calls says how it is counted).

Every agent sees the prompt and the policy block; the initial CoT writer also the intents; a
deliberator at its last turn within `max_rounds` the intents, the initial CoT and every earlier
turn (thoughts accumulate, each turn's reply is cut off at its agent's max_tokens); the refiner
all of that after the last round, and the deliberation log. Deliberators take turns in recipe
order, so slot i speaks at turns i+1, i+1+n, ... (aidsafe.generation.graph).
"""

from __future__ import annotations

from typing import Any

from aidsafe.agents.context import CardAgent, ResolvedAgent
from aidsafe.generation.pipeline import Pipeline
from aidsafe.generation.roles import ROLES, template_values
from aidsafe.teacher.calls import LongestCall, RecipeCalls, SlotCall, max_reply_tokens

__all__ = ["slot_calls"]


def slot_calls(pipeline: Pipeline, input_tokens: int) -> RecipeCalls:
    """Every slot of the recipe, in recipe order, with its longest call; each text from the input
    (the prompt) counted at `input_tokens`."""
    recipe = pipeline.recipe
    slots = []
    for role, spec in ROLES.items():
        for index, agent in enumerate(pipeline.agents.get(role, [])):
            key = f"agents.{spec.slot}.{index}" if spec.slot == "deliberators" else f"agents.{spec.slot}"
            plan = _plan(pipeline, role, index, input_tokens)
            slots.append(_slot(pipeline, agent, key, plan))
    return RecipeCalls(recipe.teacher, recipe.seed, slots)


def _plan(pipeline: Pipeline, role: str, index: int, input_tokens: int) -> tuple[str, dict, list] | str:
    """(which call, its state, what fills it) for the slot's longest call, or why it makes none."""
    rounds = pipeline.recipe.deliberation.max_rounds
    before: list[tuple[str, int | None]] = [("the prompt", input_tokens)]
    if role == "intent_decomposer":
        return "one call", {"rounds": 0}, before
    before += [(f"{a.name}'s intents", _cap(a)) for a in pipeline.agents.get("intent_decomposer", [])]
    if role == "initial_cot":
        return "one call", {"rounds": 0}, before
    before += [(f"{a.name}'s chain of thought", _cap(a)) for a in pipeline.agents["initial_cot"]]
    turns = _turns(pipeline.agents.get("deliberator", []), rounds)
    if role == "deliberator":
        mine = [turn for turn, (speaker, _) in enumerate(turns, start=1) if speaker == index]
        if not mine:
            return f"never speaks: deliberation.max_rounds is {rounds}"
        last = mine[-1]
        return f"round {last} of {rounds}", {"rounds": last - 1}, before + _replies(turns[: last - 1])
    log = [{"agent": agent.name, "round": turn, "thoughts": [{"id": f"t{turn}"}], "complete": False}
           for turn, (_, agent) in enumerate(turns, start=1)]  # fmt: skip
    return f"after round {rounds}", {"rounds": rounds, "deliberation": log}, before + _replies(turns)


def _turns(deliberators: list[ResolvedAgent], rounds: int) -> list[tuple[int, ResolvedAgent]]:
    """(slot index, agent) of who speaks at each turn 1..rounds: they take turns in recipe order."""
    return [(turn % len(deliberators), deliberators[turn % len(deliberators)]) for turn in range(rounds)]


def _replies(turns: list[tuple[int, ResolvedAgent]]) -> list[tuple[str, int | None]]:
    return [(f"round {turn} reply of {agent.name}", _cap(agent)) for turn, (_, agent) in enumerate(turns, start=1)]


def _slot(pipeline: Pipeline, agent: ResolvedAgent, key: str, plan: tuple[str, dict, list] | str) -> SlotCall:
    if not isinstance(agent.agent, CardAgent):
        return SlotCall(key, agent.name, agent.endpoint, unknown="a Python agent writes its own messages")
    if isinstance(plan, str):
        return SlotCall(key, agent.name, agent.endpoint, unknown=plan)
    step, state, filled = plan
    recipe, policies = pipeline.recipe, pipeline.policies
    values = template_values({"prompt": "", **state}, policies, agent.name, recipe.deliberation.max_rounds)
    messages = agent.agent.build_messages(values)
    schema = agent.role.call_model(state, policies, recipe.min_text_chars)
    longest = LongestCall(step, tuple(messages), filled=tuple(filled), max_tokens=_cap(agent), schema=schema,
                          reasks=recipe.teacher.max_parse_retries)  # fmt: skip
    systems = tuple(agent.agent.build_messages(_sample(which, state, pipeline, agent))[0]["content"]
                    for which in ("first", "second"))  # fmt: skip
    return SlotCall(key, agent.name, agent.endpoint, longest=longest, systems=systems)


def _sample(which: str, state: dict[str, Any], pipeline: Pipeline, agent: ResolvedAgent) -> dict[str, str]:
    """The template values of one made-up sample at the same step, every input text its own."""
    thought = {"id": "t1", "text": f"The {which} thought.", "policies": []}
    sample = {**state, "prompt": f"The {which} user prompt.", "response": f"The {which} response.",
              "intents": [{"kind": "explicit", "nature": "benign", "text": f"The {which} intent."}],
              "thoughts": [thought]}  # fmt: skip
    return template_values(sample, pipeline.policies, agent.name, pipeline.recipe.deliberation.max_rounds)


def _cap(agent: ResolvedAgent) -> int | None:
    return max_reply_tokens(agent.sampling)
