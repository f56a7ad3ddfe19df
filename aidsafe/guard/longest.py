"""The longest request of the guard-data stages, for `aidsafe check` (aidsafe.teacher.calls says how
it is counted): one teacher call per row, whose conversation (the prompt and the response) comes
from the input. The longest labels are those the teacher is told to decide (GuardReasoner) or
every harm category at once (ThinkGuard). A policy-guard judge's longest call is under a policy
that gained an added rule (the editor's text at its longest), the verdict left to decide; the
editor's, relaxing the set's longest rule.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from aidsafe.agents.cards import render_template
from aidsafe.guard.beavertails import CATEGORY_CODES, Conversation
from aidsafe.guard.critique_format import ExplanationBounds, critique_messages, reply_model
from aidsafe.guard.formats import GUARDREASONER_INSTRUCTION
from aidsafe.guard.policy_format import render_policy_text
from aidsafe.guard.policy_judgement import judge_values, judgement_model
from aidsafe.guard.policy_variants import RULE_MAX_CHARS, TITLE_MAX_CHARS, added_rule_id, edit_model
from aidsafe.guard.synthesis import LoadedGuardRecipe
from aidsafe.guard.traces import _reply_model, label_values
from aidsafe.teacher.calls import LongestCall, RecipeCalls, SlotCall, max_reply_tokens
from aidsafe.teacher.tokens import CHARS_PER_TOKEN

__all__ = ["critique_calls", "policy_guard_calls", "trace_calls"]

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


def policy_guard_calls(loaded: Any, input_tokens: int) -> RecipeCalls:
    """A policy-guard recipe's three slots (`loaded`: a LoadedPolicyGuardRecipe)."""
    recipe, policies = loaded.recipe, loaded.policies
    text = render_policy_text(policies)
    counterfactuals = recipe.counterfactuals
    added = "add" in counterfactuals.edits and counterfactuals.share > 0
    content = (("the prompt", input_tokens), ("the response", input_tokens))
    # An added rule's heading, title and text, at the editor's longest (what the policy text gains).
    rule = (("an added rule", -(-(TITLE_MAX_CHARS + RULE_MAX_CHARS + 16) // CHARS_PER_TOKEN)),) if added else ()
    longest_rule = max(policies.policies, key=lambda p: len(p.title) + len(p.rule))

    def messages(key: str, prompt: str, response: str) -> list[dict[str, str]]:
        card, values = loaded.slots[key].card, judge_values(text, prompt, response, None)
        if key == "editor":
            values |= {"edit": "relax", "rule_id": longest_rule.id, "verdict": "violation",
                       "rule_text": f"{longest_rule.title}: {' '.join(longest_rule.rule.split())}"}  # fmt: skip
        return [{"role": part, "content": render_template(getattr(card, part), values)} for part in ("system", "user")]

    slots = []
    for key, slot in loaded.slots.items():
        schema = (
            edit_model("add") if key == "editor" else judgement_model((*policies.ids, added_rule_id(policies)), None)
        )
        longest = LongestCall("one call per example", tuple(messages(key, "", "")),
                              filled=content + (() if key == "editor" else rule),
                              max_tokens=max_reply_tokens(slot.sampling), schema=schema,
                              reasks=recipe.teacher.max_parse_retries)  # fmt: skip
        systems = tuple(messages(key, f"The {which} prompt.", f"The {which} response.")[0]["content"]
                        for which in ("first", "second"))  # fmt: skip
        slots.append(SlotCall(f"agents.{key}", slot.card.name, slot.endpoint, longest=longest, systems=systems))
    return RecipeCalls(recipe.teacher, recipe.seed, slots)
