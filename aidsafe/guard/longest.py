"""The longest request of the guard-data stages, for `aidsafe check` (aidsafe.teacher.calls says how
it is counted): one teacher call per row, whose conversation (the prompt and the response) comes
from the input. The longest labels are those the teacher is told to decide (GuardReasoner) or
every harm category at once (ThinkGuard).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from aidsafe.agents.cards import render_template
from aidsafe.guard.beavertails import CATEGORY_CODES, Conversation
from aidsafe.guard.critique_format import ExplanationBounds, critique_messages, reply_model
from aidsafe.guard.formats import GUARDREASONER_INSTRUCTION
from aidsafe.guard.synthesis import LoadedGuardRecipe
from aidsafe.guard.traces import _reply_model, label_values
from aidsafe.teacher.calls import LongestCall, RecipeCalls, SlotCall, max_reply_tokens

__all__ = ["critique_calls", "trace_calls"]

_NO_GOLD = (None, None, None)  # every label left to the teacher: the longest label texts


def trace_calls(loaded: LoadedGuardRecipe, input_tokens: int) -> RecipeCalls:
    """The GuardReasoner teacher's one call per labelled row."""

    def messages(prompt: str, response: str) -> list[dict[str, str]]:
        values = {"instruction": GUARDREASONER_INSTRUCTION, "prompt": prompt, "response": response,
                  **label_values(_NO_GOLD)}  # fmt: skip
        card = loaded.card
        return [{"role": role, "content": render_template(getattr(card, role), values)} for role in ("system", "user")]

    return _one_call(loaded, messages, _reply_model(_NO_GOLD), input_tokens)


def critique_calls(critiques: Any, input_tokens: int) -> RecipeCalls:
    """The ThinkGuard teacher's one call per conversation (`critiques`: a LoadedCritiqueRecipe)."""
    loaded, policies = critiques.loaded, critiques.policies

    def messages(prompt: str, response: str) -> list[dict[str, str]]:
        row = Conversation("", prompt, response, "unsafe", CATEGORY_CODES, "")
        return critique_messages(loaded.card, row, policies)

    recipe = loaded.recipe
    bounds = ExplanationBounds(recipe.explanation_min_chars, recipe.explanation_max_chars)
    return _one_call(loaded, messages, reply_model("unsafe", CATEGORY_CODES, bounds), input_tokens)


def _one_call(loaded: LoadedGuardRecipe, messages: Any, schema: type[BaseModel], input_tokens: int) -> RecipeCalls:
    recipe = loaded.recipe
    filled = (("the prompt", input_tokens), ("the response", input_tokens))
    longest = LongestCall("one call per row", tuple(messages("", "")), filled=filled,
                          max_tokens=max_reply_tokens(loaded.sampling), schema=schema,
                          reasks=recipe.teacher.max_parse_retries)  # fmt: skip
    systems = tuple(messages(f"The {which} prompt.", f"The {which} response.")[0]["content"]
                    for which in ("first", "second"))  # fmt: skip
    slot = SlotCall("agent", loaded.card.name, loaded.endpoint, longest=longest, systems=systems)
    return RecipeCalls(recipe.teacher, recipe.seed, [slot])
