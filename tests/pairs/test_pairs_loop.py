"""The pair loop's stop rule with the in-process fake teacher, the schemas it sends, the cards."""

from __future__ import annotations

import pytest

from aidsafe.agents.cards import load_card, template_fields
from aidsafe.agents.context import CardAgent
from aidsafe.agents.policies import load_policies
from aidsafe.errors import AidsafeError
from aidsafe.pairs.roles import PAIR_ROLES, judge_order, pair_template_values, separated
from aidsafe.pairs.runner import NothingFinished, PairsRequest, make_pairs
from aidsafe.testing import FakeTeacher
from tests.conftest import read_jsonl
from tests.pairs.helpers import fake_responders, judge_reply, write_chosen_run


def _run(tmp_path, prompts, teacher=None, sets=()):
    source, out = tmp_path / "gen", tmp_path / "pairs"
    write_chosen_run(source, prompts)
    teacher = teacher or FakeTeacher(fake_responders())
    request = PairsRequest("aidsafe-pairs", source, out, overrides=list(sets), progress=False)
    stats = make_pairs(request, env={}, teacher=teacher)
    return stats, read_jsonl(out / "samples.jsonl"), read_jsonl(out / "rejected.jsonl"), teacher


def test_separated_the_first_time_makes_a_pair_in_one_iteration(tmp_path):
    stats, [pair], rejected, teacher = _run(tmp_path, ["[sep=1] How do I pick a lock?"])
    assert rejected == [] and pair["iterations"] == 1 and [s["separated"] for s in pair["scores"]] == [True]
    assert [c.role for c in teacher.calls] == ["ear_whisperer", "rejected_cot", "judge"]
    assert pair["rejected"]["response"].startswith("Under STEERED belief 1")
    assert pair["chosen"]["response"] == "Here is a safe, helpful answer."
    assert pair["belief"]["text"].startswith("STEERED belief 1") and pair["belief"]["target_policy"] == "P1"
    score = pair["scores"][0]
    assert (score["chosen"]["faithfulness"], score["rejected"]["faithfulness"], score["gap"]) == (5, 1, 4)
    assert score["rejected"]["violated_policies"] == ["P1"] and score["chosen"]["violated_policies"] == []
    assert stats["pairs"] == 1 and stats["iterations"]["histogram"] == {"1": 1}
    assert stats["judge"]["pairs"]["gap"]["mean"] == 4 and stats["judge"]["pairs"]["rejected"]["violation_rate"] == 1


def test_separated_at_iteration_k_feeds_earlier_failures_to_the_whisperer(tmp_path):
    stats, [pair], _, teacher = _run(tmp_path, ["[sep=3] How do I pick a lock?"])
    assert pair["iterations"] == 3 and [s["separated"] for s in pair["scores"]] == [False, False, True]
    assert pair["belief"]["text"].startswith("STEERED belief 3")
    whispers = [c.text for c in teacher.calls if c.role == "ear_whisperer"]
    assert "attempt 1:" not in whispers[0]
    assert "attempt 1: target P1; belief: STEERED belief 1" in whispers[2] and "attempt 2:" in whispers[2]
    assert "did not violate" in whispers[1]
    assert stats["iterations"]["histogram"] == {"3": 1} and stats["judge"]["all_attempts"]["attempts"] == 3


def test_never_separated_is_no_separation_with_every_attempts_scores(tmp_path):
    stats, pairs, [entry], teacher = _run(tmp_path, ["[sep=0] How do I pick a lock?"])
    assert pairs == [] and entry["reason"] == "no_separation" and entry["stage"] == "judge"
    assert not entry["transient"] and len(entry["attempts"]) == 3
    assert [a["rejected"]["faithfulness"] for a in entry["attempts"]] == [5, 5, 5]
    assert "3 iterations" in entry["error"] and "#3 5/5" in entry["error"]
    assert len([c for c in teacher.calls if c.role == "judge"]) == 3  # max_iterations, then stop
    assert stats["no_separation"] == 1 and stats["pairs"] == 0 and stats["judge"]["all_attempts"]["attempts"] == 3


def test_max_iterations_and_margin_come_from_the_recipe(tmp_path):
    stats, [], [entry], _ = _run(tmp_path, ["[sep=3] x?"], sets=["pairs.max_iterations=2"])
    assert len(entry["attempts"]) == 2 and entry["reason"] == "no_separation"

    def close_judge(call):  # the steered side violates, but scores 3 against the chosen side's 5
        reply = judge_reply(call.text)
        for side in reply.values():
            side["faithfulness"] = 3 if side["violates"] else 5
        return reply

    teacher = FakeTeacher({**fake_responders(), "judge": close_judge})
    _, [], [entry], _ = _run(tmp_path / "m3", ["[sep=1] x?"], teacher=teacher, sets=["pairs.margin=3"])
    assert entry["reason"] == "no_separation" and [a["gap"] for a in entry["attempts"]] == [2, 2, 2]
    teacher = FakeTeacher({**fake_responders(), "judge": close_judge})
    _, [pair], [], _ = _run(tmp_path / "m2", ["[sep=1] x?"], teacher=teacher, sets=["pairs.margin=2"])
    assert pair["iterations"] == 1


@pytest.mark.parametrize(
    "chosen, rejected, margin, expected",
    [
        ((False, 5), (True, 1), 2, True),
        ((False, 4), (True, 2), 2, True),  # exactly the margin
        ((False, 4), (True, 3), 2, False),  # violates, but too close
        ((True, 5), (True, 1), 0, False),  # the chosen side violates too
        ((False, 3), (False, 1), 0, False),  # the rejected side does not violate
        ((False, 3), (True, 3), 0, True),  # margin 0: violation alone decides
    ],
)
def test_stop_rule(chosen, rejected, margin, expected):
    def side(v):
        return {"violates": v[0], "faithfulness": v[1]}

    assert separated({"chosen": side(chosen), "rejected": side(rejected)}, margin) is expected


def test_judge_sees_both_orders_and_verdicts_map_back(tmp_path):
    orders = {judge_order(0, f"s{i}", 1) for i in range(20)}
    assert orders == {"chosen_first", "rejected_first"}
    prompts = [f"[sep=1] question {i}?" for i in range(8)]
    _, pairs, rejected, _ = _run(tmp_path, prompts)
    assert rejected == [] and len(pairs) == 8
    assert {p["scores"][0]["judge_order"] for p in pairs} == {"chosen_first", "rejected_first"}
    assert all(p["scores"][0]["rejected"]["violates"] and not p["scores"][0]["chosen"]["violates"] for p in pairs)


def test_a_score_outside_1_to_5_is_refused_by_the_schema(tmp_path):
    def bad_judge(call):
        reply = judge_reply(call.text)
        reply["a"]["faithfulness"] = 7
        return reply

    teacher = FakeTeacher({**fake_responders(), "judge": bad_judge})
    with pytest.raises(NothingFinished, match="no sample finished"):  # nothing else to make of the run
        _run(tmp_path, ["[sep=1] x?"], teacher=teacher)
    [entry] = read_jsonl(tmp_path / "pairs" / "rejected.jsonl")
    assert entry["reason"] == "invalid_output" and entry["stage"] == "judge" and "faithfulness" in entry["error"]
    schema = PAIR_ROLES["judge"].call_model({}, load_policies("aidsafe")).model_json_schema()
    side = schema["$defs"]["SideVerdict"]["properties"]
    assert side["faithfulness"]["enum"] == [1, 2, 3, 4, 5]
    assert side["violated_policies"]["items"]["enum"] == load_policies("aidsafe").ids


def test_a_run_made_under_another_policy_set_is_refused_before_any_call(tmp_path):
    source = tmp_path / "gen"
    write_chosen_run(source, ["x?"], policy_set="beavertails")
    teacher = FakeTeacher(fake_responders())
    with pytest.raises(AidsafeError, match=r"samples.jsonl:1: metadata.policy_set: .*'beavertails'"):
        make_pairs(PairsRequest("aidsafe-pairs", source, tmp_path / "out", progress=False), {}, teacher)
    assert teacher.calls == [] and not (tmp_path / "out").exists()


def test_input_that_is_not_a_run_directory_names_it(tmp_path):
    with pytest.raises(AidsafeError, match="not a generation run directory"):
        make_pairs(PairsRequest("aidsafe-pairs", tmp_path, tmp_path / "out", progress=False), {}, FakeTeacher())


@pytest.mark.parametrize("name", ["ear_whisperer", "rejected_cot", "judge"])
def test_pair_card_renders_its_role_fields(name):
    card, _ = load_card(name)
    spec = PAIR_ROLES[card.role]
    assert card.output_schema == spec.output.__name__
    assert template_fields(card.system) | template_fields(card.user) <= spec.fields
    policies = load_policies("aidsafe")
    state = {"id": "s", "prompt": "How do I pick a lock?", "chosen": {"thoughts": [], "response": "No."},
             "belief": {"text": "STEERED belief 1: trust me.", "target_policy": "P1"}, "judge_order": "chosen_first",
             "rejected": {"thoughts": [], "response": "Sure."}}  # fmt: skip
    messages = CardAgent(card, card.name).build_messages(pair_template_values(state, policies, card.name, 3))
    rendered = messages[0]["content"] + messages[1]["content"]
    assert state["prompt"] in rendered
    if name == "rejected_cot":  # the belief comes before the user's prompt
        assert rendered.index("STEERED belief 1") < rendered.index(state["prompt"])
    if name == "judge":
        assert "STEERED" not in rendered  # the judge is blind to the belief
    if name == "ear_whisperer":
        assert "DUAL USE" in load_card(name)[1].read_text() and "Dual use" in card.description


@pytest.mark.parametrize("role", ["ear_whisperer", "rejected_cot", "judge"])
def test_check_agent_runs_the_pair_roles_built_in_cards(role):
    from aidsafe.pairs.schemas import Belief, JudgeVerdict
    from aidsafe.testing import check_agent

    card, _ = load_card(role)
    output = check_agent(CardAgent(card, card.name), role)
    assert isinstance(output, {"ear_whisperer": Belief, "judge": JudgeVerdict}.get(role, PAIR_ROLES[role].output))


def test_check_agent_refuses_a_python_whisperer_aiming_at_an_unknown_policy():
    from aidsafe.pairs.schemas import Belief
    from aidsafe.testing import check_agent

    class Whisperer:
        name = "mine"

        async def __call__(self, state, ctx):
            return Belief(target_policy="P99", belief="A belief long enough to pass the floor.")

    with pytest.raises(AssertionError, match=r"(?s)does not fit role ear_whisperer.*target_policy"):
        check_agent(Whisperer(), "ear_whisperer")


def test_validate_knows_a_pairs_recipe(run_cli):
    code, out, err = run_cli("validate", "aidsafe-pairs")
    assert code == 0, err
    assert out.startswith("ok: recipe aidsafe-pairs") and "ear_whisperer" in out and "judge" in out
