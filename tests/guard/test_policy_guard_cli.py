"""`aidsafe predict guard --format policy` then `aidsafe eval guard --format policy`, end to end:
the real entry point and HTTP client against the loopback server's default replies, on small files
in DynaBench's and CoSApien's shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aidsafe.guard.harmony import HARMONY_HEADER
from aidsafe.guard.policy_format import GENERIC_INSTRUCTION
from aidsafe.testing import ScriptedServer, loopback_responder

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policy_bench"


@pytest.mark.parametrize(
    ("bench", "rendering", "header"),
    [("dynabench", "generic", GENERIC_INSTRUCTION), ("cosapien", "harmony", HARMONY_HEADER)],
)
def test_predict_then_eval(run_cli, tmp_path, bench, rendering, header):
    output = tmp_path / "preds.jsonl"
    args = ("predict", "guard", "--format", "policy", "--rendering", rendering, "--benchmark",
            FIXTURES / f"{bench}.jsonl", "--model", "guard-x", "--output", output, "--no-progress")  # fmt: skip
    with ScriptedServer(loopback_responder(), models=["guard-x"]) as server:
        code, _, err = run_cli(*args, "--base-url", server.base_url)
        assert (code, err.strip().splitlines()[-1]) == (0, f"6 predicted, 0 already done -> {output}")
        asked = [r for r in server.requests if r.path.endswith("/chat/completions")]
        assert len(asked) == 6
        system, user = asked[0].json["messages"]
        assert system["role"] == "system" and system["content"].startswith(header)
        assert user["content"].startswith("User request:\n")
        assert asked[0].json["temperature"] == 0 and "max_tokens" not in asked[0].json
        code, _, err = run_cli(*args, "--base-url", server.base_url)  # a rerun asks nothing
        assert code == 0 and "0 predicted, 6 already done" in err
        assert len([r for r in server.requests if r.path.endswith("/chat/completions")]) == 6

    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [r["index"] for r in rows] == list(range(6)) and {r["rendering"] for r in rows} == {rendering}
    assert json.loads(rows[0]["prompt"])[0]["content"].startswith(header)
    assert rows[0]["id"] == f"{bench}-1" and rows[0]["variant"] is False

    code, out, err = run_cli("eval", "guard", "--format", "policy", "--predictions", output, "--json")
    assert (code, err) == (0, "")
    report = json.loads(out)
    # The loopback guard flags harmful words: DynaBench's refund row passes it (fn), CoSApien's
    # allowed siege bomb trips it (fp); every answer parses.
    assert report["f1"]["value"] == pytest.approx(100 * 6 / 7)
    assert report["accuracy"]["value"] == pytest.approx(100 * 5 / 6)
    assert report["parse_rate"]["value"] == 100.0 and report["unparseable"] == 0
    assert report["rule_f1"] is None  # neither benchmark gives rule ids
    assert list(report["by_policy"]) == ["original"]
    code, out, _ = run_cli("eval", "guard", "--format", "policy", "--predictions", output)
    assert code == 0 and out.startswith(f"{output}: 6 rows (policy format, strict)\n  all (6 rows): f1 85.7 [")


def test_rendering_that_does_not_match_the_model_is_warned(run_cli, tmp_path):
    """A generic-rendering model's answers scored as harmony: nothing parses, and eval says why."""
    output = tmp_path / "preds.jsonl"
    with ScriptedServer(loopback_responder(), models=["guard-x"]) as server:
        run_cli("predict", "guard", "--format", "policy", "--benchmark", FIXTURES / "cosapien.jsonl", "--model",
                "guard-x", "--output", output, "--no-progress", "--base-url", server.base_url)  # fmt: skip
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    output.write_text("".join(json.dumps({**r, "rendering": "harmony"}) + "\n" for r in rows), encoding="utf-8")
    code, _, err = run_cli("eval", "guard", "--format", "policy", "--predictions", output, "--json")
    assert code == 0 and "warning: 6 of 6 answers have no verdict: check that predict guard's --rendering" in err


def test_policy_format_errors_are_one_line(run_cli, tmp_path):
    bench = FIXTURES / "dynabench.jsonl"
    base = ("predict", "guard", "--benchmark", bench, "--base-url", "http://127.0.0.1:9/v1", "--model", "m",
            "--output", tmp_path / "p.jsonl")  # fmt: skip
    code, _, err = run_cli(*base, "--rendering", "harmony")
    assert code == 2 and "--rendering is for --format policy" in err
    code, _, err = run_cli(*base, "--format", "policy", "--rendering", "chatml")
    assert code == 2 and "--rendering 'chatml': choose one of generic, harmony" in err
    code, _, err = run_cli(*base, "--format", "policy", "--samples", "4", "--temperature", "0.7")
    assert code == 2 and "--samples" in err
    code, _, err = run_cli("eval", "guard", "--format", "policy", "--predictions", bench, "--task", "prompt")
    assert code == 2 and "--format policy takes --predictions FILE" in err
    code, _, err = run_cli("eval", "guard", "--format", "policy", "--predictions", bench)
    assert code == 2 and "dynabench.jsonl:1: expected an object with a string 'predict'" in err
