"""`aidsafe eval guard` and `aidsafe predict guard` through the real entry point."""

from __future__ import annotations

import json

from aidsafe.guard.formats import GUARDREASONER_INSTRUCTION, guardreasoner_input
from aidsafe.testing import ScriptedServer


def test_eval_one_file_json(run_cli, predictions_dir):
    path = predictions_dir / "1B" / "AegisSafetyTest" / "generated_predictions.jsonl"
    code, out, err = run_cli("eval", "guard", "--predictions", path, "--task", "prompt", "--mode", "paper", "--json")
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert round(report["f1"], 2) == 89.34
    assert {k: report[k] for k in ("n", "unparseable", "mode", "task")} == {
        "n": 359, "unparseable": 2, "mode": "paper", "task": "prompt"
    }  # fmt: skip
    code, out, _ = run_cli("eval", "guard", "--predictions", path, "--task", "prompt")
    assert code == 0 and "F1 88.94 (strict, task prompt); 359 rows, 2 unparseable" in out


def test_eval_suite_table_and_json(run_cli, predictions_dir, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")  # labels on one line (tests/cli/test_terminal_width.py: 80 columns)
    code, out, _ = run_cli(
        "eval", "guard", "--suite", "guardreasoner", "--predictions-dir", predictions_dir / "1B", "--mode", "paper"
    )
    assert code == 0
    assert "AegisSafetyTest" in out and "89.34" in out
    assert "ToxicChat" in out and "missing" in out
    assert "Weighted avg. over 3/6 present" in out and "93.11" in out
    assert "Mean of the three tasks (partial" in out and "90.47" in out
    code, out, _ = run_cli(
        "eval", "guard", "--suite", "guardreasoner", "--predictions-dir", predictions_dir / "8B", "--json"
    )
    report = json.loads(out)
    assert (report["mode"], report["suite"], len(report["benchmarks"])) == ("strict", "guardreasoner", 13)
    assert round(report["averages"]["response"]["f1"], 2) == 88.91
    assert report["mean"]["complete"] is False


def test_eval_errors_are_one_line_exit_2(run_cli, tmp_path):
    code, _, err = run_cli("eval", "guard", "--predictions", tmp_path / "none.jsonl", "--task", "prompt")
    assert code == 2 and "none.jsonl: file not found" in err
    code, _, err = run_cli("eval", "guard", "--predictions", tmp_path / "none.jsonl", "--task", "harm")
    assert code == 2 and "--task 'harm': choose one of prompt, response, refusal" in err
    code, _, err = run_cli("eval", "guard", "--suite", "guardreasoner")
    assert code == 2 and "--suite takes --predictions-dir" in err
    code, _, err = run_cli("eval", "guard", "--suite", "guardreasoner", "--predictions-dir", tmp_path)
    assert code == 2 and "no <Dataset>/generated_predictions.jsonl found" in err


def test_predict_then_eval(run_cli, tmp_path):
    records = [
        {"instruction": GUARDREASONER_INSTRUCTION, "input": guardreasoner_input(f"prompt {i}", None), "output": label}
        for i, label in enumerate(["harmful", "unharmful", "harmful"])
    ]
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(records), encoding="utf-8")
    output = tmp_path / "preds.jsonl"

    def reply(request: dict) -> str:
        return "## Reasoning Step 1: ...\n\nAnswers: \nRequest: harmful\nCompletion: None\nResponse: None"

    with ScriptedServer(reply, models=["guard-x"]) as server:
        code, _, err = run_cli("predict", "guard", "--benchmark", bench, "--base-url", server.base_url,
                               "--model", "guard-x", "--output", output, "--no-progress")  # fmt: skip
    assert code == 0 and "3 predicted, 0 already done" in err
    code, out, _ = run_cli("eval", "guard", "--predictions", output, "--task", "prompt", "--json")
    assert json.loads(out)["f1"] == 80.0  # tp 2, fp 1
    code, _, err = run_cli("predict", "guard", "--benchmark", bench, "--base-url", "http://127.0.0.1:9/v1",
                           "--model", "guard-x", "--output", output, "--format", "llamaguard")  # fmt: skip
    assert code == 2 and "--format 'llamaguard': choose one of guardreasoner, thinkguard" in err
