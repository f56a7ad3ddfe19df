"""An 80-column terminal (issue 22, items 6 and 8): tables fit it without cutting a value or
dropping a column, `--help` never cuts an option name and names values, not Python types."""

from __future__ import annotations

import json
import re

import pytest

from aidsafe.guard.formats import GUARDREASONER_INSTRUCTION, guardreasoner_input
from aidsafe.testing import ScriptedServer
from tests.eval.cot_helpers import judge_responder, write_run
from tests.eval.safety_fixtures import judge_responder as safety_judge
from tests.eval.safety_fixtures import student_responder, write_fixtures

WIDTH = 80


@pytest.fixture
def narrow(monkeypatch):
    monkeypatch.setenv("COLUMNS", str(WIDTH))  # what rich and click read for the terminal's width


def _fits(text: str) -> None:
    long = [line for line in text.splitlines() if len(line) > WIDTH]
    assert not long, "\n".join(long)
    assert "…" not in text  # nothing cut short


def _commands(command=None, path=()):
    """Every (path, click command) of the CLI, groups included."""
    from aidsafe.cli import _command

    command = command or _command()
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_help_names_every_option_whole_at_80_columns(run_cli, narrow):
    for path, command in _commands():
        code, out, _ = run_cli(*path, "--help")
        assert code == 0, path
        _fits(out)
        assert not re.search(r"[a-z]\.\.\.$", out, re.M), out  # nor a command's description
        words = set(re.findall(r"--[\w-]+", out))
        for param in command.params:
            for name in [*param.opts, *param.secondary_opts]:
                if name.startswith("--"):
                    assert name in words, (path, name)


def test_help_names_values_not_python_types(run_cli, narrow):
    for path, _ in _commands():
        out = run_cli(*path, "--help")[1]
        assert not re.search(r"<(str|bool|int|float|path|list\[[^>]*\])[^>]*>", out), (path, out)
    out = run_cli("pairs", "make", "--help")[1]
    assert re.search(r"--set TEXT\b", out) and re.search(r"--limit INTEGER\b", out)
    assert re.search(r"^  RECIPE +Built-in", out, re.M)
    assert re.search(r"--help +Show", out)  # a flag takes no value


def test_version(run_cli):
    from aidsafe import __version__

    assert run_cli("--version") == (0, f"aidsafe {__version__}\n", "")


def test_train_data_help_names_what_each_mode_takes(run_cli, narrow):
    dpo = " ".join(run_cli("train", "dpo", "--help")[1].split())
    assert "aidsafe generate" not in dpo
    assert "`aidsafe pairs make`, `aidsafe pairs hard- samples`" in dpo or "`aidsafe pairs hard-samples`" in dpo
    sft = " ".join(run_cli("train", "sft", "--help")[1].split())
    assert "`aidsafe generate`" in sft and "pairs" not in sft.split("--data")[1].split("-o,")[0]
    assert "--verbose" in sft and "--verbose" in dpo


def test_guard_suite_table_fits_80_columns(run_cli, narrow, tmp_path):
    for folder in ("AegisSafetyTest", "HarmBenchPrompt"):
        rows = [{"label": "harmful", "predict": "Answers: \nRequest: harmful\nCompletion: None\nResponse: None"}]
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "generated_predictions.jsonl").write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    code, out, err = run_cli("eval", "guard", "--suite", "guardreasoner", "--predictions-dir", tmp_path)
    assert code == 0, err
    _fits(out)
    for header in ("Task", "Benchmark", "F1", "Rows", "Unparseable", "Weight", "AegisSafetyTest", "ToxicChat"):
        assert header in out


def test_eval_safety_table_fits_80_columns_and_says_where_it_went(run_cli, narrow, tmp_path):
    paths, replies = write_fixtures(tmp_path / "bench")
    benchmarks = ",".join(f"{name}={paths[name]}" for name in ("beavertails", "strongreject", "xstest"))
    out_dir = tmp_path / "o"
    with ScriptedServer(student_responder(replies), models=["student-x"]) as student:
        with ScriptedServer(safety_judge(), models=["judge-x"]) as judge:
            code, out, err = run_cli(
                "eval", "safety", "--base-url", student.base_url, "--model", "student-x", "--judge-base-url",
                judge.base_url, "--judge-model", "judge-x", "--benchmarks", benchmarks, "--output", out_dir,
            )  # fmt: skip
    assert code == 0, err
    _fits(out)
    for value in ("BeaverTails", "StrongREJECT", "XSTest", "strongreject_score", "compliance_safe", "70.0",
                  "bootstrap", "wilson"):  # fmt: skip
        assert value in out
    assert err.rstrip("\n").splitlines()[-1].endswith(f"-> {out_dir / 'report.json'}")


def test_eval_cot_compare_table_fits_80_columns_and_says_where_it_went(run_cli, narrow, tmp_path):
    prompts = [(f"p{i}", f"Question {i}?") for i in range(4)]
    run = write_run(tmp_path / "run", prompts, response="MARK: a safe, helpful answer.")
    other = write_run(tmp_path / "other", prompts, response="Plain answer.")
    with ScriptedServer(judge_responder(), models=["a-rather-long-judge-model-name", "another-judge"]) as server:
        code, out, err = run_cli("eval", "cot", run, "--compare", other, "--base-url", server.base_url,
                                 "--model", "a-rather-long-judge-model-name", "--model", "another-judge",
                                 "--no-progress")  # fmt: skip
    assert code == 0, err
    _fits(out)
    flat = "".join(out.split())
    for value in ("a-rather-long-judge-model-name", "another-judge", "Winrate[95%Wilson]", "Lossrate", "Samewinner"):
        assert value in flat
    assert err.rstrip("\n").splitlines()[-1].endswith(f"-> {run / 'eval-cot' / 'vs-other' / 'report.json'}")


def test_predict_guard_limit_takes_the_first_rows(run_cli, tmp_path):
    records = [
        {"instruction": GUARDREASONER_INSTRUCTION, "input": guardreasoner_input(f"prompt {i}", None), "output": label}
        for i, label in enumerate(["harmful"] * 5)
    ]
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(records), encoding="utf-8")
    output = tmp_path / "preds.jsonl"

    def reply(request: dict) -> str:
        return "Answers: \nRequest: harmful\nCompletion: None\nResponse: None"

    with ScriptedServer(reply, models=["guard-x"]) as server:
        code, _, err = run_cli("predict", "guard", "--benchmark", bench, "--base-url", server.base_url,
                               "--model", "guard-x", "--output", output, "--no-progress", "--limit", "2")  # fmt: skip
    assert code == 0 and "2 predicted, 0 already done" in err, err
    prompts = [json.loads(line)["prompt"] for line in output.read_text(encoding="utf-8").splitlines()]
    assert len(prompts) == 2 and "prompt 0" in prompts[0] and "prompt 1" in prompts[1]
