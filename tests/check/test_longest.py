"""What `aidsafe check` weighs, with no server: the longest call of each slot (the deliberation
at max_rounds, turn by turn, with each earlier reply at its agent's max_tokens), and the verdicts
the table shows for what the endpoints answered."""

from __future__ import annotations

import pytest

from aidsafe.check.report import CheckReport, SlotReport, context_part, endpoint_parts, prefix_part
from aidsafe.errors import TeacherUnreachable
from aidsafe.generation.longest import slot_calls
from aidsafe.generation.pipeline import load_pipeline
from aidsafe.kinds import KINDS, load_object, recipe_kind
from aidsafe.teacher.calls import SlotCall, max_reply_tokens, reask_tokens
from aidsafe.teacher.types import Endpoint
from tests.conftest import REPO

THREE = (
    "agents.deliberators=[{agent: deliberator, name: a}, {agent: deliberator, name: b}, {agent: deliberator, name: c}]"
)


def slots(recipe: str = "aidsafe", *overrides: str) -> dict[str, SlotCall]:
    return {slot.slot: slot for slot in slot_calls(load_pipeline(recipe, list(overrides)), 100).slots}


def test_each_deliberator_is_weighed_at_its_last_turn_within_max_rounds():
    found = slots("aidsafe", THREE, "deliberation.max_rounds=4", "agents.deliberators.1.sampling={max_tokens: 300}")
    steps = {key: slot.longest.step for key, slot in found.items() if slot.longest}
    assert steps == {
        "agents.intent_decomposer": "one call", "agents.initial_cot": "one call",
        "agents.deliberators.0": "round 4 of 4", "agents.deliberators.1": "round 2 of 4",
        "agents.deliberators.2": "round 3 of 4", "agents.refiner": "after round 4",
    }  # fmt: skip
    a_at_round_4 = dict(found["agents.deliberators.0"].longest.filled)
    assert a_at_round_4 == {
        "the prompt": 100, "intent_decomposer's intents": 1024, "initial_cot's chain of thought": 2048,
        "round 1 reply of a": 2048, "round 2 reply of b": 300, "round 3 reply of c": 2048,
    }  # fmt: skip
    assert "round 4 of at most 4" in found["agents.deliberators.0"].longest.messages[1]["content"]
    refiner = found["agents.refiner"].longest
    assert refiner.filled_tokens() == 100 + 1024 + 2048 + 3 * 2048 + 300
    assert "Round 4 (a): added t4; not complete" in refiner.messages[1]["content"]  # the log, in its own text


def test_a_deliberator_that_never_speaks_and_a_python_agent_are_not_weighed():
    found = slots(str(REPO / "examples" / "custom_recipe.yaml"), "deliberation.max_rounds=1")
    assert found["agents.deliberators.1"].longest is None
    assert found["agents.deliberators.1"].unknown == "a Python agent writes its own messages"
    found = slots("aidsafe", "deliberation.max_rounds=1")
    assert found["agents.deliberators.1"].unknown == "never speaks: deliberation.max_rounds is 1"


def test_a_reply_without_max_tokens_leaves_the_size_of_what_follows_unknown():
    found = slots("aidsafe", "agents.initial_cot={agent: initial_cot, sampling: {max_tokens: null}}")
    assert found["agents.initial_cot"].longest.max_tokens is None
    assert found["agents.refiner"].longest.unbounded() == ["initial_cot's chain of thought"]
    numbers = {"prompt_tokens": 1, "max_tokens": 1, "context_length": 10}
    assert context_part(numbers, "", ["initial_cot's chain of thought"]).shown == (
        "not known: initial_cot's chain of thought has no max_tokens"
    )


@pytest.mark.parametrize(
    "recipe", ["aidsafe", "aidsafe-pairs", "aidsafe-pairs-shieldgemma", "guardreasoner", "thinkguard", "policy-guard"]
)
def test_every_builtin_card_keeps_its_system_message_the_same_for_every_sample(recipe):
    kind = recipe_kind(recipe)
    for slot in load_object(kind.check)(load_object(kind.load)(recipe, []), 100).slots:
        if slot.structured:  # a guard judge's raw prompt has no system message
            first, second = slot.systems
            assert first == second and "{" not in first, slot.slot
        assert slot.longest is not None and slot.longest.messages or slot.longest.prompt


def test_every_kind_with_a_teacher_names_its_slots_for_check():
    with_teacher = {name for name, kind in KINDS.items() if kind.recipe and kind.name != "train"}
    assert {name for name, kind in KINDS.items() if kind.check} == with_teacher


def test_max_tokens_is_read_where_a_slot_may_set_it():
    assert max_reply_tokens({"max_tokens": 64}) == 64
    assert max_reply_tokens({"extra_body": {"max_completion_tokens": 32}}) == 32
    assert max_reply_tokens({"max_tokens": True}) is None and max_reply_tokens({}) is None
    assert reask_tokens(100, None) < reask_tokens(4096, None)  # the echo is the reply, at most


@pytest.mark.parametrize(
    ("failed", "cells"),
    [
        ("reachable", {"served": "unreachable", "key": "-", "answers": "-", "schema": "-"}),
        ("key", {"served": "-", "key": "refused", "answers": "-", "schema": "-"}),
        ("served", {"served": "not served", "key": "accepted", "answers": "-", "schema": "-"}),
        ("answers", {"served": "yes", "key": "accepted", "answers": "no", "schema": "-"}),
        ("mode", {"served": "yes", "key": "accepted", "answers": "yes", "schema": "mode refused"}),
        ("schema", {"served": "yes", "key": "accepted", "answers": "yes", "schema": "ignored"}),
    ],
)
def test_a_preflight_failure_shows_where_it_stopped(failed, cells):
    parts = endpoint_parts(TeacherUnreachable("the line", failed=failed), True, None)
    assert {name: part.shown for name, part in parts.items()} == cells
    assert [part.line for part in parts.values() if part.state == "failed"] == ["the line"]


def test_a_raw_text_slot_has_no_schema_to_probe_and_no_system_message():
    parts = endpoint_parts(None, False, None)
    assert parts["schema"].state == "n/a" and parts["answers"].state == "ok"
    assert prefix_part(None, "no system message").state == "n/a"


def test_the_context_fits_fails_or_is_not_known():
    numbers = {"step": "round 4 of 4", "counted_by": "estimate", "fixed_tokens": 1000, "filled": {"x": 500},
               "reask_tokens": 100, "max_tokens": 400, "prompt_tokens": 1600}  # fmt: skip
    assert context_part({**numbers, "context_length": 2000}, "").state == "ok"
    too_small = context_part({**numbers, "context_length": 1999}, "")
    assert too_small.state == "failed" and too_small.shown == "1,600 + 400 > 1,999"
    assert too_small.line.startswith(
        "round 4 of 4 needs 1,600 prompt tokens (1,000 of the recipe's own text, estimated; 500 for what fills it; "
        "100 for re-asks) + 400 max_tokens = 2,000, more than the 1,999 the served model takes (max_model_len)"
    )
    assert context_part({**numbers, "context_length": None}, "").state == "not known"


def test_slots_that_fail_alike_share_one_line_naming_each():
    line = TeacherUnreachable("teacher at u does not serve model 'x'", failed="served")

    def report(slot: str, agent: str) -> SlotReport:
        call = SlotCall(slot, agent, Endpoint(base_url="http://u/v1", model="x"))
        parts = {
            **endpoint_parts(line, True, None),
            "context": context_part(None, "?"),
            "prefix": prefix_part(None, ""),
        }
        return SlotReport(call, parts)

    checked = CheckReport("r", "generation", 100, [report("agents.initial_cot", "a"), report("agents.refiner", "b")])
    assert not checked.ok
    assert checked.failure_lines() == [
        "agents.initial_cot (a), agents.refiner (b): teacher at u does not serve model 'x'"
    ]
