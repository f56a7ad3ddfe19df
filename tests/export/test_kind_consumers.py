"""Every stage's output, as the stage writes it, is taken as it is (a directory, or the one file)
by every command the kinds registry (aidsafe.kinds) says consumes that kind: train sft/dpo,
export, report, show. Issue 20, defect 3: `aidsafe train dpo guardreasoner-hsdpo --data runs/hs`
refused the directory `aidsafe pairs hard-samples --output runs/hs` wrote."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest

from aidsafe.kinds import KINDS, run_kind
from aidsafe.testing import ScriptedServer, schema_responder
from aidsafe.train.data import load_train_data
from aidsafe.train.recipe import TrainRecipe, load_train_recipe
from tests.export.croissant_helpers import check_croissant
from tests.helpers import tiny_training
from tests.train.conftest import THIRD_PARTY_DEPRECATIONS

pytestmark = [pytest.mark.filterwarnings(w) for w in THIRD_PARTY_DEPRECATIONS]

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_runs"
FAST = ["--set", "teacher.backoff_base_s=0.01", "--no-progress"]

# The fixture that makes each kind's output with the real command (tests/export/conftest.py and below).
PRODUCED_BY = {
    "generation": "generated_run",
    "pairs": "generated_pairs",
    "guardreasoner": "generated_traces",
    "thinkguard": "generated_critiques",
    "policy-guard": "generated_policy_guard",
    "hard-samples": "mined_pairs",
    "predictions": "predicted",
    "eval-cot": "graded",
    "eval-safety": "evaluated",
}
CONSUMED = [(kind.name, consumer) for kind in KINDS.values() for consumer in kind.consumers]
COLUMNS = {"sft": {"prompt", "completion"}, "dpo": {"prompt", "chosen", "rejected"}, "grpo": {"prompt"}}
# GRPO needs rewards that read the kind's answers: the built-in recipe for each kind's data.
GRPO_RECIPES = {"guardreasoner": "guardreasoner-grpo", "policy-guard": "policy-guard-grpo"}


@pytest.fixture(scope="session")
def generated_critiques(tmp_path_factory) -> Path:
    """`aidsafe generate thinkguard` with a teacher that only follows the schema."""
    from aidsafe.cli import main

    out = tmp_path_factory.mktemp("export-critiques") / "tg"
    with ScriptedServer(schema_responder(seed=3), models=["m"]) as server:
        main(["generate", "thinkguard", "-i", str(LEGACY / "beavertails.jsonl"), "-o", str(out),
              "--base-url", server.base_url, "--model", "m", *FAST])  # fmt: skip
    return out


@pytest.fixture(scope="session")
def generated_policy_guard(tmp_path_factory) -> Path:
    """`aidsafe generate policy-guard` on the example rows, against the loopback teacher."""
    from aidsafe.cli import main
    from aidsafe.testing import loopback_responder

    out = tmp_path_factory.mktemp("export-policy-guard") / "pg"
    examples = Path(__file__).resolve().parents[2] / "examples" / "policy-guard.jsonl"
    with ScriptedServer(loopback_responder(), models=["m"]) as server:
        main(["generate", "policy-guard", "-i", str(examples), "-o", str(out), "--base-url", server.base_url,
              "--model", "m", *FAST])  # fmt: skip
    return out


@pytest.fixture(scope="session")
def predicted(tmp_path_factory) -> Path:
    """`aidsafe predict guard` over three GuardReasoner benchmark rows."""
    from aidsafe.cli import main
    from aidsafe.guard.formats import GUARDREASONER_INSTRUCTION, guardreasoner_input

    root = tmp_path_factory.mktemp("predictions")
    bench = root / "bench.json"
    rows = [{"instruction": GUARDREASONER_INSTRUCTION, "input": guardreasoner_input(f"prompt {i}", None),
             "output": label} for i, label in enumerate(["harmful", "unharmful", "harmful"])]  # fmt: skip
    bench.write_text(json.dumps(rows), encoding="utf-8")

    def reply(request: dict) -> str:
        return "## Reasoning Step 1: ...\n\nAnswers: \nRequest: harmful\nCompletion: None\nResponse: None"

    with ScriptedServer(reply, models=["guard-x"]) as server:
        main(["predict", "guard", "--benchmark", str(bench), "--base-url", server.base_url, "--model", "guard-x",
              "--output", str(root / "preds.jsonl"), "--no-progress"])  # fmt: skip
    return root / "preds.jsonl"


@pytest.fixture(scope="session")
def graded(tmp_path_factory) -> Path:
    """`aidsafe eval cot` over a two-sample run: the judge's run directory."""
    from aidsafe.cli import main
    from tests.eval.cot_helpers import judge_responder, write_run

    samples = [("s0", "[scores=5,4,3,2,1,5] Question 0?"), ("s1", "[scores=5,3,3,3,5,5] Question 1?")]
    run = write_run(tmp_path_factory.mktemp("graded") / "run", samples)
    with ScriptedServer(judge_responder(), models=["judge-a"]) as server:
        main(["eval", "cot", str(run), "--base-url", server.base_url, "--model", "judge-a", "--no-progress"])
    return run / "eval-cot" / "judge-a"


@pytest.fixture(scope="session")
def evaluated(tmp_path_factory) -> Path:
    """`aidsafe eval safety` on a BeaverTails file: its run directory."""
    from aidsafe.cli import main
    from tests.eval.safety_fixtures import judge_responder, student_responder, write_fixtures

    root = tmp_path_factory.mktemp("evaluated")
    paths, replies = write_fixtures(root / "bench")
    with ScriptedServer(student_responder(replies), models=["student-x"]) as student:
        with ScriptedServer(judge_responder(), models=["judge-x"]) as judge:
            main(["eval", "safety", "--base-url", student.base_url, "--model", "student-x", "--judge-base-url",
                  judge.base_url, "--judge-model", "judge-x", "--benchmarks", f"beavertails={paths['beavertails']}",
                  "--output", str(root / "eval")])  # fmt: skip
    return root / "eval"


def test_every_kind_with_output_is_made_here():
    assert set(PRODUCED_BY) == {kind.name for kind in KINDS.values() if kind.consumers}


@pytest.mark.parametrize(("kind", "consumer"), CONSUMED, ids=[f"{k}-{c.replace(' ', '-')}" for k, c in CONSUMED])
def test_each_kinds_output_is_taken_by_each_consumer_it_declares(kind, consumer, request, tmp_path, run_cli):
    output = request.getfixturevalue(PRODUCED_BY[kind])
    assert run_kind(output) == kind
    if consumer.startswith("train "):
        # What `aidsafe train` reads, and checks, before any model loads.
        mode = consumer.removeprefix("train ")
        recipe = load_train_recipe(GRPO_RECIPES[kind]) if mode == "grpo" else TrainRecipe(mode=mode)
        dataset = load_train_data(str(output), recipe)
        assert len(dataset) > 0 and COLUMNS[mode] <= set(dataset.column_names)
    elif consumer == "export":
        formats = [arg for name in KINDS[kind].export for arg in ("-f", name)]
        code, _, err = run_cli("export", output, "-o", tmp_path / "dataset", *formats, "--no-dedup")
        assert code == 0, err
        configs = json.loads((tmp_path / "dataset" / "export.json").read_text())["configs"]
        assert set(configs) == set(KINDS[kind].export) and all(c["train"] > 0 for c in configs.values())
        check_croissant(tmp_path / "dataset")  # its croissant.json validates and reads back as the Parquet rows
    elif consumer == "report":
        code, _, err = run_cli("report", output, "-o", tmp_path / "report.html")
        assert code == 0 and (tmp_path / "report.html").is_file(), err
    else:
        code, out, err = run_cli("show", output)
        assert code == 0 and f"({kind})" in out, err


@pytest.mark.parametrize("kind", [k for k, v in KINDS.items() if v.recipe and v.records])
def test_a_stages_run_directory_names_its_kind_and_inference_agrees(kind, request, tmp_path):
    output = request.getfixturevalue(PRODUCED_BY[kind])
    assert json.loads((output / "run.json").read_text())["kind"] == kind
    # A directory written before run.json held the kind is told apart by the rules of then.
    old = Path(shutil.copytree(output, tmp_path / "old"))
    (old / "run.json").write_text(json.dumps({"recipe_hash": "0" * 16}))
    assert run_kind(old) == kind


@pytest.mark.parametrize("kind", ["generation", "guardreasoner", "pairs", "thinkguard"])
def test_directories_written_by_the_old_code_are_told_apart(kind):
    assert "kind" not in json.loads((LEGACY / kind / "run.json").read_text())
    assert run_kind(LEGACY / kind) == kind


FAST_DPO = tiny_training()


def test_train_dpo_takes_the_hard_samples_directory(tiny_model, tmp_path, run_cli):
    """Defect 3, as the user met it: the directory of `pairs hard-samples`, not its pairs.jsonl, is
    --data. The prompts are bare GuardReasoner inputs (no instruction) so they fit the tiny model."""
    from aidsafe.guard.formats import answer_block, guardreasoner_input

    def out(label: str, pad: int = 0) -> str:
        return "# Task 1\n" + "r" * pad + "\n\n" + answer_block(label, None, None)

    rows = [
        {"prompt": guardreasoner_input(f"q{i}", None), "label": out(gold), "predicts": [out(gold), out(wrong, 3)]}
        for i, (gold, wrong) in enumerate([("harmful", "unharmful"), ("unharmful", "harmful")] * 2)
    ]
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert run_cli("pairs", "hard-samples", predictions, "--output", tmp_path / "hs")[0] == 0
    args = ["train", "dpo", "guardreasoner-hsdpo", "--model", tiny_model, "--data", tmp_path / "hs"]
    code, _, err = run_cli(*args, "--output", tmp_path / "hsdpo", *FAST_DPO)
    assert code == 0, err[-3000:]
    match = re.search(r"dpo: (\d+) steps, final train loss (\S+);", err)
    assert match and int(match.group(1)) == 2 and math.isfinite(float(match.group(2))), err[-2000:]
