"""Scores of a policy-conditioned guard (aidsafe.guard.policy_metrics): F1 with violation positive,
accuracy, parse rate and rule-id F1, each with its 95% interval, by original/counterfactual policy."""

from __future__ import annotations

import pytest

from aidsafe.errors import AidsafeError
from aidsafe.eval.intervals import bootstrap, bootstrap_mean
from aidsafe.guard.harmony import answer_json
from aidsafe.guard.policy_format import render_answer
from aidsafe.guard.policy_metrics import Scored, evaluate_policy_predictions, policy_summary, score_policy
from tests.helpers import write_jsonl


def _row(gold, predict, rendering="generic", gold_rules=None, variant=False):
    return {"id": "x", "gold": gold, "gold_rules": gold_rules, "variant": variant, "rule_ids": None,
            "rendering": rendering, "predict": predict, "prompt": "[]", "index": 0}  # fmt: skip


def test_scores_by_hand(tmp_path):
    rows = [
        _row("violation", render_answer("violation", ["P1"], "r"), gold_rules=["P1"]),  # tp, rules right
        _row("violation", answer_json("violation", ["P1", "P2"], "r"), "harmony", ["P2"], True),  # tp, 1 right 1 wrong
        _row("allowed", render_answer("violation", ["P3"], "r"), gold_rules=[]),  # fp
        _row("allowed", answer_json("allowed", [], None), "harmony", [], True),  # tn
        _row("violation", "I think it is fine.", gold_rules=["P1"]),  # unparseable: counted as allowed (fn)
        _row("allowed", "<result>\nverdict: allowed\n</result>"),  # tn (no think block: parsed, not well formed)
    ]
    path = write_jsonl(tmp_path / "preds.jsonl", rows)
    report = evaluate_policy_predictions(path)
    assert (report["file"], report["format"], report["n"], report["unparseable"]) == (str(path), "policy", 6, 1)
    # tp 2, fp 1, fn 1: F1 = 4 / 6; accuracy 4/6; 5 of 6 parsed.
    assert report["f1"]["value"] == pytest.approx(100 * 4 / 6)
    assert report["accuracy"]["value"] == pytest.approx(100 * 4 / 6)
    assert report["parse_rate"]["value"] == pytest.approx(100 * 5 / 6)
    # rule ids over the five rows that give them: tp 2 (P1, P2), fp 2 (P1 in row 2, P3), fn 1 (P1 in row 5).
    assert report["rule_f1"]["value"] == pytest.approx(100 * 4 / 7) and report["rule_f1"]["n"] == 5
    for key in ("f1", "accuracy", "parse_rate", "rule_f1"):
        metric = report[key]
        assert metric["low"] <= metric["value"] <= metric["high"] and metric["low"] < metric["high"]
    original, counterfactual = report["by_policy"]["original"], report["by_policy"]["counterfactual"]
    assert (original["n"], counterfactual["n"]) == (4, 2)
    assert counterfactual["accuracy"]["value"] == 100.0 and counterfactual["f1"]["value"] == 100.0
    assert original["f1"]["value"] == pytest.approx(100 * 2 / 4)  # tp 1, fp 1, fn 1
    summary = policy_summary(report)
    assert summary.splitlines()[0] == f"{path}: 6 rows (policy format, strict)"
    assert "  original (4 rows): f1 50.0 [" in summary and "rule-id F1 " in summary


def test_no_rule_ids_no_rule_f1_and_one_group():
    rows = [
        Scored("violation", "violation", None, frozenset(), False),
        Scored("allowed", None, None, frozenset(), False),
    ]
    report = score_policy(rows)
    assert report["rule_f1"] is None and list(report["by_policy"]) == ["original"]
    assert report["f1"]["value"] == pytest.approx(100 * 2 / 3)  # the unparseable allowed row counts as a false alarm
    assert report["parse_rate"]["value"] == 50.0


def test_bootstrap_mean_is_bootstrap_of_the_mean():
    values = [0.0, 1.0, 1.0, 0.5, 0.25]
    assert bootstrap_mean(values) == bootstrap(values, lambda sample: sum(sample) / len(sample))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"gold": "allowed"}, r"preds.jsonl:1: expected an object with a string 'predict'"),
        ({"gold": "safe", "predict": ""}, r"preds.jsonl:1: gold: 'safe'; expected one of allowed, violation"),
        ({"gold": "allowed", "predict": "", "rendering": "chatml"}, r"preds.jsonl:1: rendering: 'chatml'"),
        ({"gold": "allowed", "predict": "", "gold_rules": "P1"}, r"preds.jsonl:1: gold_rules: expected a list"),
    ],
)
def test_bad_prediction_rows_are_one_line(tmp_path, row, message):
    path = write_jsonl(tmp_path / "preds.jsonl", [row])
    with pytest.raises(AidsafeError, match=message):
        evaluate_policy_predictions(path)
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(AidsafeError, match="no predictions"):
        evaluate_policy_predictions(tmp_path / "empty.jsonl")
