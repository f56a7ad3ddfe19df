"""A real `aidsafe generate thinkguard` run, exported in both targets and trained on by
`aidsafe train sft thinkguard` from the run directory (tiny local model, CPU)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from aidsafe.cli import main
from aidsafe.guard.formats import BEAVERTAILS_CATEGORIES, parse_thinkguard
from aidsafe.testing import ScriptedServer, schema_responder
from aidsafe.train import load_train_data, load_train_recipe
from tests.conftest import read_jsonl
from tests.guard.beavertails_rows import ROWS, beavertails_row
from tests.helpers import final_loss, load_weights, tiny_training, weights_changed

TRAIN = [*tiny_training(steps=3, max_length=2048), "--set", "trainer.report_to=none", "--set", "trainer.use_cpu=true"]


@pytest.fixture(scope="module")
def critique_run(tmp_path_factory) -> Path:
    """A ThinkGuard run over ROWS with a short S1..S14 policy file, so that the Llama Guard 3
    prompt fits the tiny model's context."""
    root = tmp_path_factory.mktemp("thinkguard-run")
    policies = {
        "id": "beavertails-short",
        "version": "1",
        "policies": [
            {"id": f"S{i}", "title": key.replace("_", " "), "rule": "Do not."}
            for i, key in enumerate(BEAVERTAILS_CATEGORIES, start=1)
        ],
    }
    (root / "short.yaml").write_text(yaml.safe_dump(policies), encoding="utf-8")
    source = root / "beavertails.jsonl"
    source.write_text("".join(json.dumps(beavertails_row(*r)) + "\n" for r in ROWS), encoding="utf-8")
    out = root / "run"
    with ScriptedServer(schema_responder(seed=7), models=["teacher-x"]) as server:
        args = ["generate", "thinkguard", "--input", str(source), "--output", str(out), "--no-progress"]
        sets = ["--set", f"policies={root / 'short.yaml'}", "--set", "explanation_max_chars=200"]
        try:
            main([*args, *sets, "--base-url", server.base_url, "--model", "teacher-x"])
        except SystemExit as exc:
            assert exc.code in (0, None)
    return out


def _records(run: Path) -> list[dict]:
    return read_jsonl(run / "samples.jsonl")


def test_export_writes_both_targets_as_prompt_completion(critique_run, tmp_path, run_cli):
    from datasets import load_dataset

    out = tmp_path / "export"
    code, _, err = run_cli("export", critique_run, "--output", out, "-f", "thinkguard", "-f", "thinkguard-label-only")
    assert code == 0, err
    by_input = {r["input"]: r for r in _records(critique_run)}
    full = load_dataset(str(out), "thinkguard", split="train")
    label_only = load_dataset(str(out), "thinkguard-label-only", split="train")
    assert full.column_names == label_only.column_names == ["id", "prompt", "completion"]
    assert len(full) == len(label_only) == len(ROWS)
    for row in full:
        assert row["completion"] == by_input[row["prompt"]]["output"] and "- Explanation: " in row["completion"]
    for row in label_only:
        record = by_input[row["prompt"]]
        assert row["completion"] == record["output_label_only"] and "Explanation" not in row["completion"]
        assert parse_thinkguard(row["completion"]).label == record["label"]
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "`thinkguard-label-only`" in card and "label-only SFT ablation" in card


def test_the_training_target_is_chosen_by_the_recipe(critique_run):
    records = {r["input"]: r for r in _records(critique_run)}
    critique = load_train_data(str(critique_run), load_train_recipe("thinkguard", mode="sft"))
    label_only = load_train_data(
        str(critique_run), load_train_recipe("thinkguard", ["thinkguard_target=label_only"], mode="sft")
    )
    assert [r["completion"] for r in critique] == [records[r["prompt"]]["output"] for r in critique]
    assert [r["completion"] for r in label_only] == [records[r["prompt"]]["output_label_only"] for r in label_only]
    assert all(isinstance(r["prompt"], str) for r in critique)  # plain text: the prompt holds its special tokens


def test_a_thinkguard_run_is_not_dpo_data(critique_run):
    from aidsafe.errors import AidsafeError

    with pytest.raises(AidsafeError, match="a ThinkGuard run directory holds SFT targets"):
        load_train_data(str(critique_run), load_train_recipe("dpo"))


def test_train_sft_thinkguard_reads_the_run_directory(critique_run, tmp_path, run_cli):
    from aidsafe.testing.tiny_model import build_tiny_model

    model = build_tiny_model(tmp_path / "tiny", max_positions=2048)
    out = tmp_path / "thinkguard"
    args = ["--model", model, "--data", critique_run, "--output", out, *TRAIN, "--set", "label_weight=2.0"]
    code, _, err = run_cli("train", "sft", "thinkguard", *args)
    assert code == 0, err[-3000:]
    assert math.isfinite(final_loss(err, steps=3)), err[-2000:]
    assert weights_changed(load_weights(model), load_weights(out))
