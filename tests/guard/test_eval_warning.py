"""`eval guard` on the wrong --task says so on stderr instead of a quiet F1 of 0.00."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def prompt_only_predictions(tmp_path):
    """A prompt-harm model's outputs: a Request verdict and nothing for the response task."""
    path = tmp_path / "p.jsonl"
    rows = [
        {"label": label, "predict": f"# Task 1\nreasoning\n---\nAnswers: \nRequest: {label}\n"}
        for label in ("harmful", "unharmful") * 3
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_wrong_task_warns_naming_the_option_and_count(run_cli, prompt_only_predictions):
    code, out, err = run_cli("eval", "guard", "--predictions", prompt_only_predictions, "--task", "response")
    assert code == 0 and "F1 0.00" in out
    assert err.startswith("warning: 6 of 6 rows have no response verdict") and "--task response" in err
    assert len(err.strip().splitlines()) == 1
    code, out, err = run_cli("eval", "guard", "--predictions", prompt_only_predictions, "--task", "response", "--json")
    assert json.loads(out)["unparseable"] == 6 and "warning: 6 of 6" in err


def test_right_task_has_no_warning(run_cli, prompt_only_predictions):
    code, out, err = run_cli("eval", "guard", "--predictions", prompt_only_predictions, "--task", "prompt")
    assert (code, err) == (0, "") and "F1 100.00" in out


def test_latin1_predictions_file_is_one_line(run_cli, tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes('{"label": "harmful", "predict": "caf\xe9"}\n'.encode("latin-1"))
    code, _, err = run_cli("eval", "guard", "--predictions", path, "--task", "prompt")
    assert code == 2 and err.startswith("error: ") and "p.jsonl:1: not UTF-8 text (byte 0xe9" in err
