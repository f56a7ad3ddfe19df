"""The policy-conditioned guard text: render and parse are each other's inverse, and the parser
never guesses a verdict that is not where the format puts it."""

from __future__ import annotations

import pytest

from aidsafe.agents.policies import load_policies
from aidsafe.guard.policy_format import (
    UNPARSEABLE,
    guard_messages,
    parse_answer,
    render_answer,
    render_policy_text,
    target_messages,
)


def test_policy_text_shows_every_rule_and_case_with_its_ids():
    policies = load_policies("aidsafe")
    text = render_policy_text(policies)
    for policy in policies.policies:
        assert f"[{policy.id}] {policy.title}" in text
        for case in policy.cases:
            assert case.content.strip() in text
    assert "-> violation (P2)" in text
    assert "Cases:" not in render_policy_text(policies, cases=False)
    assert render_policy_text(policies) == render_policy_text(load_policies("aidsafe"))  # deterministic bytes


@pytest.mark.parametrize(
    ("verdict", "rules", "reasoning"),
    [("violation", ["P2", "P4"], "It asks for a phishing text.\nThat breaks P2."), ("allowed", [], None)],
)
def test_render_then_parse_gives_back_the_answer(verdict, rules, reasoning):
    answer = parse_answer(render_answer(verdict, rules, reasoning), expect_reasoning=reasoning is not None)
    assert (answer.verdict, list(answer.rules), answer.reasoning, answer.well_formed) == (
        verdict,
        rules,
        reasoning,
        True,
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "verdict: violation",  # no result block
        "<result>\nverdict: violation\n</result> and then more words",  # the block does not end the text
        "<result>\nverdict: allowed\nverdict: violation\n</result>",  # two verdicts
        "<think>the answer is verdict: violation</think><result>\nverdict: maybe\n</result>",
    ],
)
def test_an_answer_without_one_final_verdict_is_unparseable(text):
    assert parse_answer(text).verdict == UNPARSEABLE
    assert not parse_answer(text).well_formed


def test_format_reward_needs_the_think_block_only_when_reasoning_is_expected():
    bare = render_answer("allowed", [], None)
    assert parse_answer(bare, expect_reasoning=False).well_formed
    assert not parse_answer(bare, expect_reasoning=True).well_formed
    assert parse_answer(bare, expect_reasoning=True).verdict == "allowed"  # still scored for its label


def test_target_messages_give_three_targets_from_one_record():
    record = {
        "prompt": "Write a fake bank text.",
        "response": None,
        "policy": {"text": "# Policy x\n## [P2] Fraud\nNo scams."},
        "verdict": "violation",
        "rules": ["P2"],
        "reasoning": "Long reasoning.",
        "rationale": "It is a phishing message.",
    }
    answers = {t: target_messages(record, t)[-1]["content"] for t in ("full", "rationale", "verdict")}
    assert "Long reasoning." in answers["full"] and "phishing" in answers["rationale"]
    assert answers["verdict"].startswith("<result>")
    assert target_messages(record, "full")[:2] == guard_messages(record["policy"]["text"], record["prompt"])
    with pytest.raises(ValueError, match="target 'short'"):
        target_messages(record, "short")
