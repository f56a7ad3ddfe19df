"""The pure parts of `aidsafe generate policy-guard`: the judges' schema and checks, the agreement of
two judges, counterfactual plans and variant sets, the editor's checks, and the input rows."""

from __future__ import annotations

import json
import random

import pytest

from aidsafe.agents.policies import PolicySet, load_policies
from aidsafe.errors import AidsafeError
from aidsafe.guard.policy_format import parse_answer, render_answer, render_policy_text
from aidsafe.guard.policy_judgement import (
    RATIONALE_MAX_CHARS,
    Judgement,
    agree,
    check_judgement,
    judgement_schema,
)
from aidsafe.guard.policy_rows import read_policy_rows
from aidsafe.guard.policy_variants import (
    RuleEdit,
    VariantPlan,
    added_rule_id,
    check_edit,
    edit_schema,
    plan_variant,
    variant_set,
)
from aidsafe.run.task import Rejection
from aidsafe.testing.schema_responder import random_instance

IDS = ("P1", "P2", "P3", "P4", "P5")
WHY = "The request asks for a message that impersonates a bank to get a password."
REASONING = "The content asks for a fake bank message.\n\nRule P2 forbids impersonation to deceive people."


@pytest.fixture(scope="module")
def aidsafe_set() -> PolicySet:
    return load_policies("aidsafe")


# ----------------------------------------------------------------------------------------------
# The judges' schema pins what JSON Schema can pin.


def test_the_schema_pins_gold_and_the_ids_of_the_set():
    pinned = judgement_schema(IDS, "violation")
    props = pinned["properties"]
    assert props["verdict"] == {"type": "string", "enum": ["violation"]}
    assert props["rules"]["items"]["enum"] == list(IDS) and props["rules"]["minItems"] == 1
    assert props["rationale"]["maxLength"] == RATIONALE_MAX_CHARS and pinned["additionalProperties"] is False
    assert judgement_schema(IDS, "allowed")["properties"]["rules"]["maxItems"] == 0
    free = judgement_schema(("P1", "P2", "P6"), None)
    assert [b["properties"]["verdict"]["enum"] for b in free["anyOf"]] == [["allowed"], ["violation"]]
    assert [b["properties"]["rules"].get("maxItems") for b in free["anyOf"]] == [0, 3]
    assert all(b["properties"]["rules"]["items"]["enum"] == ["P1", "P2", "P6"] for b in free["anyOf"])


@pytest.mark.parametrize("gold", ["allowed", "violation", None])
def test_any_reply_valid_for_the_schema_passes_the_checks(gold):
    """A teacher that only follows the schema (guided decoding) never breaks the contract."""
    schema = judgement_schema(IDS, gold)
    for seed in range(60):
        reply = random_instance(schema, random.Random(seed))
        judgement = Judgement(reply["verdict"], tuple(reply["rules"]), reply["reasoning"], reply["rationale"])
        checked = check_judgement(judgement, IDS, gold, "judge")
        assert gold is None or checked.verdict == gold
        assert list(checked.rules) == [rule for rule in IDS if rule in reply["rules"]]  # once each, set order
        answer = parse_answer(render_answer(checked.verdict, checked.rules, checked.reasoning))
        assert (answer.verdict, answer.rules, answer.well_formed) == (checked.verdict, checked.rules, True)


# ----------------------------------------------------------------------------------------------
# Teachers without guided decoding: named rejections, never an exception of another kind.


@pytest.mark.parametrize(
    ("judgement", "gold", "reason"),
    [
        (Judgement("violation", ("P2",), "  ", WHY), None, "empty"),
        (Judgement("unsafe", ("P2",), REASONING, WHY), None, "unknown_verdict"),
        (Judgement("allowed", (), REASONING, WHY), "violation", "label_disagree"),
        (Judgement("violation", ("P9",), REASONING, WHY), None, "unknown_rule"),
        (Judgement("violation", (), REASONING, WHY), None, "inconsistent"),
        (Judgement("allowed", ("P2",), REASONING, WHY), None, "inconsistent"),
        (Judgement("violation", ("P2",), REASONING, "x" * (RATIONALE_MAX_CHARS + 1)), None, "length"),
        (Judgement("violation", ("P2",), REASONING + " </think>", WHY), None, "format"),
        (Judgement("violation", ("P2",), REASONING, WHY + "\nSecond line."), None, "format"),
    ],
)
def test_a_reply_breaking_the_schema_is_a_named_rejection(judgement, gold, reason):
    with pytest.raises(Rejection) as caught:
        check_judgement(judgement, IDS, gold, "second_judge")
    assert (caught.value.stage, caught.value.reason, caught.value.transient) == ("second_judge", reason, False)


def test_two_judges_agree_on_the_verdict_and_the_set_of_rule_ids():
    first = Judgement("violation", ("P2", "P4"), REASONING, WHY)
    agree(first, Judgement("violation", ("P4", "P2"), "Another way to say it.", "Another sentence."))
    agree(Judgement("allowed", (), REASONING, WHY), Judgement("allowed", (), "Fine.", "Fine."))
    for other in (Judgement("allowed", (), REASONING, WHY), Judgement("violation", ("P2",), REASONING, WHY)):
        with pytest.raises(Rejection) as caught:
            agree(first, other)
        assert (caught.value.stage, caught.value.reason) == ("judges", "judges_disagree")
    assert caught.value.error == "judge: violation (P2, P4); second_judge: violation (P2)"


# ----------------------------------------------------------------------------------------------
# Counterfactual plans: seeded per row, only the edits that fit the verdict.


def test_the_plan_is_a_function_of_the_seed_and_the_row(aidsafe_set):
    def plans(seed, share=0.5):
        return [plan_variant(f"row-{n}", "violation", ["P2", "P4"], aidsafe_set, share=share, edits=("drop", "relax",
                "add"), seed=seed) for n in range(400)]  # fmt: skip

    first = plans(0)
    assert first == plans(0) and first != plans(1)
    chosen = [p for p in first if p is not None]
    assert 160 <= len(chosen) <= 240  # about half of 400
    assert {p.edit for p in chosen} == {"drop", "relax", "add"}
    assert {p.rule for p in chosen if p.edit != "add"} == {"P2", "P4"}  # only rules it violated
    assert {p.rule for p in chosen if p.edit == "add"} == {"P6"}
    assert all(p is None for p in plans(0, share=0.0)) and all(p is not None for p in plans(0, share=1.0))
    assert chosen[0].key("row-1") == f"row-1~cf-{chosen[0].edit}-{chosen[0].rule}"


def test_allowed_content_can_only_gain_a_rule(aidsafe_set):
    plans = {plan_variant(f"r{n}", "allowed", [], aidsafe_set, share=1.0, edits=("drop", "relax", "add"), seed=0)
             for n in range(50)}  # fmt: skip
    assert plans == {VariantPlan("add", "P6")}
    assert plan_variant("r", "allowed", [], aidsafe_set, share=1.0, edits=("drop", "relax"), seed=0) is None
    one_rule = aidsafe_set.model_copy(update={"policies": aidsafe_set.policies[:1], "cases": []})
    assert plan_variant("r", "violation", ["P1"], one_rule, share=1.0, edits=("drop",), seed=0) is None


@pytest.mark.parametrize(
    ("ids", "added"), [(["P1", "P2", "P5"], "P6"), ([str(n) for n in range(1, 15)], "15"), (["hate", "P2"], "X1"),
                       (["X1", "a"], "X2")],
)  # fmt: skip
def test_an_added_rule_takes_the_next_id_of_the_sets_pattern(ids, added):
    policies = PolicySet(id="s", version="1", policies=[{"id": i, "title": i, "rule": "r"} for i in ids])
    assert added_rule_id(policies) == added


def test_a_dropped_rule_takes_every_case_naming_it(aidsafe_set):
    data = aidsafe_set.model_dump(mode="json")
    data["cases"] = [{"content": "Mixed.", "verdict": "violation", "rules": ["P2", "P4"], "rationale": "Both."},
                     {"content": "Other.", "verdict": "allowed", "rules": ["P3"], "rationale": "Fine."}]  # fmt: skip
    base = PolicySet.model_validate(data)
    dropped = variant_set(base, VariantPlan("drop", "P2"), None)
    assert dropped.ids == ["P1", "P3", "P4", "P5"]
    assert all("P2" not in case.rules for case in dropped.all_cases())
    assert [c.content for c in dropped.cases] == ["Other."]
    assert "[P2]" not in render_policy_text(dropped) and dropped.version == base.version


def test_a_relaxed_rule_keeps_its_allowed_side_and_an_added_rule_comes_last(aidsafe_set):
    text = "Explaining scams is fine; writing one is not allowed only for real targets."
    relaxed = variant_set(aidsafe_set, VariantPlan("relax", "P2"), RuleEdit(text, "Narrowed."))
    rule = next(p for p in relaxed.policies if p.id == "P2")
    assert (rule.rule, rule.disallowed, rule.title) == (text, [], "Fraud and deception")
    assert rule.allowed and [c.verdict for c in rule.cases] == ["allowed"]  # the violation case went
    added = variant_set(aidsafe_set, VariantPlan("add", "P6"), RuleEdit("No recipes.", "Added.", "Cooking"))
    assert added.ids == [*aidsafe_set.ids, "P6"] and "## [P6] Cooking\nNo recipes." in render_policy_text(added)


@pytest.mark.parametrize(
    ("edit", "reply", "reason"),
    [
        ("relax", RuleEdit("  ", "A note."), "empty"),
        ("add", RuleEdit("A rule.", "A note.", ""), "empty"),
        ("relax", RuleEdit("x" * 601, "A note."), "length"),
        ("relax", RuleEdit("## [P9] A fake heading", "A note."), "format"),
        ("add", RuleEdit("A rule.\nAnd a second line.", "A note.", "Title"), "format"),
    ],
)
def test_the_editors_reply_is_checked(edit, reply, reason):
    with pytest.raises(Rejection) as caught:
        check_edit(reply, edit)
    assert (caught.value.stage, caught.value.reason) == ("editor", reason)


def test_the_editors_schema_asks_a_title_only_of_an_added_rule():
    assert edit_schema("relax")["required"] == ["rule", "note"]
    assert edit_schema("add")["required"] == ["title", "rule", "note"]
    for seed in range(30):  # guided decoding cannot write what the checks refuse
        reply = random_instance(edit_schema("add"), random.Random(seed))
        check_edit(RuleEdit(reply["rule"], reply["note"], reply["title"]), "add")


# ----------------------------------------------------------------------------------------------
# Input rows.


def _write(tmp_path, rows, name="rows.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_rows_with_and_without_gold_response_and_id(tmp_path):
    path = _write(tmp_path, [
        {"id": "a", "prompt": "Hi?", "gold": "Violation"},
        {"prompt": "Hello?", "response": "", "gold": None},
        {"prompt": "Hello?", "response": "Hi!"},
        {"prompt": "Hello?", "response": "Hi!"},  # repeated: skipped
    ])  # fmt: skip
    rows, repeats = read_policy_rows(str(path))
    assert repeats == 1 and [(r.gold, r.response) for r in rows] == [("violation", None), (None, None), (None, "Hi!")]
    assert rows[0].id == "a" and len(rows[1].id) == 16 and rows[1].id != rows[2].id
    assert rows[0].source == f"{path}:1"
    labelled = _write(tmp_path, [{"text": "Hi?", "label": "allowed"}], "labelled.jsonl")
    rows, _ = read_policy_rows(str(labelled), prompt_field="text", gold_field="label")
    assert (rows[0].prompt, rows[0].gold) == ("Hi?", "allowed")


def test_csv_rows_read_empty_cells_as_none(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("id,prompt,response,gold\nr1,Hi?,,\nr2,Bye?,Bye!,allowed\n", encoding="utf-8")
    rows, _ = read_policy_rows(str(path))
    assert [(r.id, r.response, r.gold) for r in rows] == [("r1", None, None), ("r2", "Bye!", "allowed")]


@pytest.mark.parametrize(
    ("rows", "gold_field", "message"),
    [
        ([{"prompt": "a", "gold": "unsafe"}], None, r"rows.jsonl:1: gold: 'unsafe' is not a verdict; expected allowed"),
        ([{"prompt": "a", "gold": 1}], None, r"rows.jsonl:1: gold: expected allowed, violation or empty, got 1"),
        ([{"text": "a"}], None, r"rows.jsonl:1: missing field 'prompt' \(fields: text\); choose one with --prompt"),
        ([{"prompt": "a"}], "label", r"--gold-field label: no row of .*rows.jsonl has that field"),
        ([{"prompt": " "}], None, r"rows.jsonl:1: prompt: expected non-empty text"),
        ([{"prompt": "a", "response": 3}], None, r"rows.jsonl:1: response: expected text or null, got int"),
        ([{"id": "x~cf", "prompt": "a"}], None, r"rows.jsonl:1: id 'x~cf': contains '~'"),
        ([{"id": "x", "prompt": "a"}, {"id": "x", "prompt": "b"}], None,
         r"rows.jsonl:2: id 'x' was already used for another row at .*rows.jsonl:1"),
    ],
)  # fmt: skip
def test_bad_rows_are_one_line_naming_the_line(tmp_path, rows, gold_field, message):
    path = _write(tmp_path, rows)
    with pytest.raises(AidsafeError, match=message) as caught:
        read_policy_rows(str(path), gold_field=gold_field)
    assert "\n" not in str(caught.value)
