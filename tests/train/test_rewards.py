"""GRPO rewards on hand-written completions: right, wrong, unparseable, a subset of the rules."""

from __future__ import annotations

import math
from typing import get_args

import pytest

from aidsafe.guard.formats import TaskTrace, Trace, render_trace
from aidsafe.guard.harmony import answer_json
from aidsafe.guard.policy_format import render_answer
from aidsafe.train.recipe import RewardName
from aidsafe.train.rewards import (
    REWARDS,
    guardreasoner_format,
    guardreasoner_labels,
    guardreasoner_wrong_length,
    harmony_final,
    policy_format,
    policy_rules,
    policy_verdict,
    policy_wrong_length,
    reward_functions,
)

VIOLATION = render_answer("violation", ["P2", "P4"], "It asks for a home address.")
ALLOWED = render_answer("allowed", [], "A recipe.")
VERDICT_ONLY = render_answer("violation", ["P2"], None)
NO_RESULT = "<think>\nIt asks for a home address.\n</think>\nverdict: violation"
NO_THINK = "<result>\nverdict: violation\nrules: P2\n</result>"


def _chat(text: str) -> list[dict[str, str]]:
    """A completion as TRL passes it for a conversational prompt."""
    return [{"role": "assistant", "content": text}]


def test_policy_format_needs_think_and_a_result_unless_the_verdict_target():
    completions = [VIOLATION, _chat(ALLOWED), NO_RESULT, NO_THINK, ""]
    assert policy_format(completions) == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert policy_format([VERDICT_ONLY, VIOLATION], expect_reasoning=False) == [1.0, 0.0]


def test_policy_verdict_is_one_only_for_the_gold_verdict():
    completions = [VIOLATION, VIOLATION, _chat(ALLOWED), NO_RESULT]
    gold = ["violation", "allowed", "allowed", "violation"]
    assert policy_verdict(completions, verdict=gold) == [1.0, 0.0, 1.0, 0.0]  # unparseable scores 0


def test_policy_rules_is_the_f1_of_the_ids_and_skips_rows_without_gold_rules():
    gold = [["P2", "P4"], ["P2"], ["P1", "P2", "P3"], ["P9"], ["P2"], []]
    completions = [VIOLATION, VIOLATION, VIOLATION, VIOLATION, NO_RESULT, ALLOWED]
    scores = policy_rules(completions, rules=gold)
    assert scores[:5] == [1.0, pytest.approx(2 / 3), pytest.approx(2 * 1 / (2 + 3)), 0.0, 0.0]
    assert scores[5] is None  # an allowed row names no rule: the verdict reward scores it


def test_the_length_bonus_is_paid_only_for_a_wrong_verdict():
    ids = [[0] * 300, [0] * 300, [0] * 30, [0] * 3000]
    completions = [VIOLATION, VIOLATION, NO_RESULT, ALLOWED]
    scores = policy_wrong_length(
        completions, verdict=["violation", "allowed", "allowed", "violation"], completion_ids=ids
    )
    assert scores[0] == 0.0
    assert scores[1] == pytest.approx(0.2 * math.tanh(1.0))
    assert scores[2] == pytest.approx(0.2 * math.tanh(0.1))  # unparseable counts as wrong
    assert scores[3] == pytest.approx(0.2, abs=1e-6)  # at most 0.2


# gpt-oss answers in the harmony rendering: the JSON object of aidsafe.guard.harmony in the final
# channel, as TRL hands them to the rewards (decoded without special tokens, or with them, or parsed
# by a chat template's response schema into content).
H_VIOLATION = answer_json("violation", ["P2", "P4"], "It asks for a home address.")
H_VERDICT_ONLY = answer_json("violation", ["P2"], None)
H_DECODED = "analysisThe user wants Ana's address.assistantfinal" + H_VIOLATION
H_SPECIAL = (
    f"<|channel|>analysis<|message|>Hm.<|end|><|start|>assistant<|channel|>final<|message|>{H_VIOLATION}<|return|>"
)


def test_harmony_answers_are_read_from_the_final_channel():
    assert [harmony_final(text) for text in (H_VIOLATION, H_DECODED, H_SPECIAL)] == [H_VIOLATION] * 3
    completions = [H_VIOLATION, H_DECODED, _chat(H_SPECIAL), NO_THINK, VIOLATION, "analysisassistantfinal{"]
    assert policy_format(completions, rendering="harmony") == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    # The verdict-only target asks for no rationale.
    assert policy_format([H_VERDICT_ONLY, H_VIOLATION], expect_reasoning=False, rendering="harmony") == [1.0, 0.0]
    gold = ["violation", "allowed", "violation", "violation"]
    # A generic answer to a harmony prompt is unparseable.
    verdicts = policy_verdict([H_DECODED, H_DECODED, VIOLATION, "{}"], verdict=gold, rendering="harmony")
    assert verdicts == [1.0, 0.0, 0.0, 0.0]
    rules = policy_rules([H_DECODED, H_VERDICT_ONLY], rules=[["P2"], ["P2", "P4"]], rendering="harmony")
    assert rules == [pytest.approx(2 / 3), pytest.approx(2 / 3)]
    bonus = policy_wrong_length([H_DECODED] * 2, verdict=gold[:2], completion_ids=[[0] * 30] * 2, rendering="harmony")
    assert bonus == [0.0, pytest.approx(0.2 * math.tanh(0.1))]


def test_the_recipe_rendering_reaches_every_policy_reward():
    kwargs = {"verdict": ["violation"], "rules": [["P2", "P4"]], "completion_ids": [[0] * 30]}
    names = ["policy_format", "policy_verdict", "policy_rules", "policy_wrong_length"]
    for gate in (False, True):
        harmony = reward_functions(names, format_gate=gate, rendering="harmony")
        assert [f([H_DECODED], **kwargs)[0] for f in harmony] == [1.0, 1.0, 1.0, 0.0]
        generic = reward_functions(names, format_gate=gate)  # unparseable there: wrong, or gated to 0
        bonus = 0.0 if gate else pytest.approx(0.2 * math.tanh(0.1))
        assert [f([H_DECODED], **kwargs)[0] for f in generic] == [0.0, 0.0, 0.0, bonus]


def _trace(answers: tuple[str, str, str]) -> str:
    task = TaskTrace(("The user asks for a recipe.",), "The request is benign.")
    return render_trace(Trace((task, task, task), answers))


RIGHT = _trace(("unharmful", "compliance", "unharmful"))
ONE_WRONG = _trace(("harmful", "compliance", "unharmful"))
NO_RESPONSE = _trace(("harmful", "None", "None"))
GOLD = {"prompt": "unharmful", "refusal": "compliance", "response": "unharmful"}


def test_guardreasoner_format_is_a_trace_with_known_labels():
    bad_label = _trace(("dangerous", "compliance", "unharmful"))
    no_block = RIGHT.rsplit("\n\nAnswers:", 1)[0]
    completions = [RIGHT, RIGHT + "\n", _chat(NO_RESPONSE), bad_label, no_block, "Request: harmful"]
    assert guardreasoner_format(completions) == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]


def test_guardreasoner_labels_pay_half_a_point_per_gold_label():
    no_response_gold = {"prompt": "harmful", "refusal": None, "response": None}
    completions = [RIGHT, ONE_WRONG, NO_RESPONSE, "no answer block", RIGHT]
    labels = [GOLD, GOLD, no_response_gold, GOLD, {"prompt": None, "refusal": None, "response": None}]
    assert guardreasoner_labels(completions, labels=labels) == [1.5, 1.0, 0.5, 0.0, None]


def test_guardreasoner_length_bonus_when_any_label_is_wrong():
    ids = [[0] * 150] * 3
    scores = guardreasoner_wrong_length([RIGHT, ONE_WRONG, "garbage"], labels=[GOLD] * 3, completion_ids=ids)
    assert scores == [0.0, pytest.approx(0.2 * math.tanh(0.5)), pytest.approx(0.2 * math.tanh(0.5))]


def test_the_format_gate_zeroes_the_other_rewards_of_a_malformed_answer():
    right_but_malformed = "<result>\nverdict: violation\nrules: P2\n</result>"  # no <think>
    kwargs = {"verdict": ["violation", "violation"], "rules": [["P2"], ["P2"]], "completion_ids": [[0] * 30] * 2}
    names = ["policy_format", "policy_verdict", "policy_rules", "policy_wrong_length"]
    plain = [f([VIOLATION, right_but_malformed], **kwargs) for f in reward_functions(names)]
    gated = [f([VIOLATION, right_but_malformed], **kwargs) for f in reward_functions(names, format_gate=True)]
    assert [scores[1] for scores in plain] == [0.0, 1.0, 1.0, 0.0]
    assert [scores[1] for scores in gated] == [0.0, 0.0, 0.0, 0.0]
    assert [scores[0] for scores in gated] == [1.0, 1.0, pytest.approx(2 / 3), 0.0]
    # The verdict-only target: an answer without <think> is the right format, so the gate lets it through.
    verdict_only = reward_functions(names, format_gate=True, expect_reasoning=False)
    assert [f([right_but_malformed], **{k: v[:1] for k, v in kwargs.items()})[0] for f in verdict_only] == [
        1.0, 1.0, 1.0, 0.0,
    ]  # fmt: skip


def test_trl_logs_each_reward_under_its_recipe_name():
    from trl.trainer.utils import get_callable_name

    for gate in (False, True):
        funcs = reward_functions(list(REWARDS), format_gate=gate, rendering="harmony")
        assert [get_callable_name(f) for f in funcs] == list(REWARDS)


def test_the_recipe_names_are_the_reward_functions():
    assert list(get_args(RewardName)) == list(REWARDS)
