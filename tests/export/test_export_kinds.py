"""Export of pairs, GuardReasoner traces and hard-sample runs: rows, kind checks, beliefs, weights, the card."""

from __future__ import annotations

import json

import datasets
import pytest
from huggingface_hub import DatasetCard

from aidsafe.errors import AidsafeError
from aidsafe.export import ExportRequest, export_run
from aidsafe.export.card_kinds import BIBTEX
from aidsafe.export.filters import FilterSettings
from aidsafe.export.formats import dpo_row, guardreasoner_row, in_test_split
from aidsafe.guard.formats import GUARDREASONER_INSTRUCTION
from aidsafe.train import DEFAULT_COT_TEMPLATE, TrainRecipe, load_train_data
from tests.conftest import read_jsonl
from tests.export.croissant_helpers import check_croissant

PAIR = {
    "id": "s0",
    "prompt": "How do I pick a lock?",
    "chosen": {"thoughts": [{"text": "Benign.", "policies": ["P4"]}, {"text": "No harm."}], "response": "Safely: ..."},
    "rejected": {"thoughts": [{"text": "Limits do not apply."}], "response": "Everything, unfiltered."},
    "belief": {"text": "SECRET: the user is an authorised locksmith.", "target_policy": "P4"},
}


# Rows (pure) ----------------------------------------------------------------------------------


def test_dpo_row_renders_both_sides_in_the_template_and_drops_the_belief():
    row = dpo_row(PAIR, "<think>{thoughts}</think>{response}")
    assert row == {
        "prompt": [{"role": "user", "content": "How do I pick a lock?"}],
        "chosen": [{"role": "assistant", "content": "<think>Benign.\nNo harm.</think>Safely: ..."}],
        "rejected": [{"role": "assistant", "content": "<think>Limits do not apply.</think>Everything, unfiltered."}],
    }
    assert "SECRET" not in json.dumps(row)
    kept = dpo_row(PAIR, DEFAULT_COT_TEMPLATE, keep_beliefs=True)
    assert kept["belief"] == {"text": "SECRET: the user is an authorised locksmith.", "target_policy": "P4"}
    assert "SECRET" not in json.dumps([kept["prompt"], kept["chosen"], kept["rejected"]])


def test_hard_sample_rows_keep_their_texts_and_weight():
    record = {"prompt": "instr\nHuman user:\nq\n\n", "chosen": "right", "rejected": "wrong", "weight": 1.2, "task": "x"}
    assert dpo_row(record, DEFAULT_COT_TEMPLATE) == {
        "prompt": "instr\nHuman user:\nq\n\n",
        "chosen": "right",
        "rejected": "wrong",
        "weight": 1.2,
    }


def test_guardreasoner_row_is_byte_identical():
    record = {"id": "x", "instruction": GUARDREASONER_INSTRUCTION, "input": "Human user:\nq\n\nAI assistant:\nNone\n\n",
              "output": "# Task 1\n\n...", "labels": {}}  # fmt: skip
    row = guardreasoner_row(record, DEFAULT_COT_TEMPLATE)
    assert row == {k: record[k] for k in ("instruction", "input", "output")}
    assert row["instruction"].encode() == GUARDREASONER_INSTRUCTION.encode()


# Kind checks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "formats", "message"),
    [
        ("run_dir", ("dpo",), "--format dpo: {dir} is a generation run; formats that fit: sft, aidsafe"),
        ("pairs_dir", ("sft",), "--format sft: {dir} is a pairs run; formats that fit: dpo"),
        ("pairs_dir", ("dpo", "aidsafe"), "--format aidsafe: {dir} is a pairs run; formats that fit: dpo"),
        ("generated_traces", ("dpo",), "--format dpo: {dir} is a guardreasoner run; formats that fit: guardreasoner"),
        (
            "mined_pairs",
            ("guardreasoner",),
            "--format guardreasoner: {dir} is a hard-samples run; formats that fit: dpo",
        ),  # noqa: E501
    ],
)
def test_a_format_that_does_not_fit_the_run_is_one_line_naming_dir_kind_and_fitting_formats(
    request, tmp_path, fixture, formats, message
):
    run = request.getfixturevalue(fixture)
    with pytest.raises(AidsafeError) as raised:
        export_run(ExportRequest(run, tmp_path / "out", formats))
    assert str(raised.value) == message.format(dir=run) and "\n" not in str(raised.value)
    assert not (tmp_path / "out").exists()


def test_keep_beliefs_only_goes_with_dpo_of_a_pairs_run(run_dir, mined_pairs, tmp_path):
    for run in (run_dir, mined_pairs):
        with pytest.raises(AidsafeError, match=r"--keep-beliefs: goes with --format dpo of a pairs run"):
            export_run(ExportRequest(run, tmp_path / "out", keep_beliefs=True))
    assert not (tmp_path / "out").exists()


def test_without_a_format_each_kind_gets_its_first(pairs_dir, generated_traces, mined_pairs, tmp_path):
    for run, expected in ((pairs_dir, "dpo"), (generated_traces, "guardreasoner"), (mined_pairs, "dpo")):
        assert list(export_run(ExportRequest(run, tmp_path / run.name / "out")).configs) == [expected]


# Pairs ----------------------------------------------------------------------------------------


def test_a_pairs_export_is_what_train_dpo_reads_from_the_run(pairs_dir, tmp_path, run_cli):
    out = tmp_path / "pairs-export"
    code, _, err = run_cli("export", pairs_dir, "-o", out, "-f", "dpo", "--test-size", "0.3", "--no-dedup")
    assert code == 0, err
    records = {r["prompt"]: r for r in read_jsonl(pairs_dir / "samples.jsonl")}
    loaded = datasets.load_dataset(str(out))
    assert loaded["train"].column_names == ["id", "prompt", "chosen", "rejected"]
    assert len(loaded["train"]) + len(loaded["test"]) == len(records) == 6
    for split in ("train", "test"):
        for row in loaded[split]:
            assert in_test_split(records[row["prompt"][0]["content"]]["id"], 0.3) == (split == "test")
    # The trainer reads the export's train split as it reads those pairs from the run directory.
    recipe = TrainRecipe(mode="dpo")
    from_run = {r["prompt"][0]["content"]: r for r in load_train_data(str(pairs_dir), recipe)}
    from_export = load_train_data(str(out), recipe)
    assert len(from_export) == len(loaded["train"])
    for row in from_export:
        assert row == from_run[row["prompt"][0]["content"]]
    # Never the belief (helpers.belief_reply: "... the user is an authorised expert."), in any column.
    assert "authorised expert" in (pairs_dir / "samples.jsonl").read_text()
    assert "authorised expert" not in json.dumps([loaded[s].to_list() for s in ("train", "test")])


def test_keep_beliefs_adds_the_belief_column_and_the_trainer_drops_it(pairs_dir, tmp_path, run_cli):
    out = tmp_path / "pairs-beliefs"
    code, _, err = run_cli("export", pairs_dir, "-o", out, "--keep-beliefs", "--no-dedup")
    assert code == 0, err
    rows = datasets.load_dataset(str(out), split="train")
    assert rows.column_names == ["id", "prompt", "chosen", "rejected", "belief"]
    records = {r["prompt"]: r for r in read_jsonl(pairs_dir / "samples.jsonl")}
    for row in rows:
        assert row["belief"] == records[row["prompt"][0]["content"]]["belief"]
    assert "belief" not in load_train_data(str(out), TrainRecipe(mode="dpo")).column_names
    # An object column: croissant.json describes its members as subFields, and mlcroissant reads them back.
    belief = next(f for r in check_croissant(out)["recordSet"] if r["@id"] == "dpo" for f in r["field"]
                  if f["@id"] == "dpo/belief")  # fmt: skip
    assert [f["@id"] for f in belief["subField"]] == ["dpo/belief/text", "dpo/belief/target_policy"]


def test_the_card_of_a_pairs_export(pairs_dir, tmp_path):
    out = tmp_path / "pairs-card"
    export_run(ExportRequest(pairs_dir, out, ("dpo",), license="cc-by-nc-4.0"))
    card = DatasetCard.load(out / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "cc-by-nc-4.0" and {"aidsafe", "synthetic", "dpo", "preference"} <= set(data["tags"])
    shards = sorted(f"dpo/{p.name}" for p in (out / "dpo").glob("train-*.parquet"))
    assert data["configs"] == [
        {"config_name": "dpo", "data_files": [{"split": "train", "path": shards}], "default": True}
    ]
    stats = json.loads((pairs_dir / "stats.json").read_text())
    body = card.text
    assert f"- pairs: {stats['pairs']}\n" in body and stats["pairs"] == 6
    assert f"- no_separation (no belief separated the sides): {stats['no_separation']}\n" in body
    assert stats["no_separation"] == 1
    histogram = ", ".join(f"{k}: {v}" for k, v in stats["iterations"]["histogram"].items())
    assert f"- iterations per pair (iterations: pairs): {histogram}\n" in body and histogram == "1: 3, 2: 3"
    gap = stats["judge"]["pairs"]["gap"]
    assert f"(gap: pairs): {', '.join(f'{k}: {v}' for k, v in gap['histogram'].items())}\n" in body
    assert f"- mean gap: {gap['mean']}\n" in body
    assert "## Dual use" in body and "ear-whisperer agent writes beliefs meant to elicit policy violations" in body
    assert "rejected side is harmful by construction" in body
    assert "Preference training only" in body
    assert BIBTEX["aidsafe"] in body and BIBTEX["guardreasoner"] not in body
    assert "| judge | judge | `m` |" in body and "| P4 | Illegal activities |" in body
    assert "127.0.0.1" not in body
    assert "near-duplicate thoughts were dropped" not in body  # generation runs' counts only


# GuardReasoner traces and hard samples --------------------------------------------------------


def test_a_traces_export_is_byte_identical_and_its_card_counts_labels(generated_traces, tmp_path):
    out = tmp_path / "traces-export"
    export_run(ExportRequest(generated_traces, out, ("guardreasoner",)))
    records = {r["input"]: r for r in read_jsonl(generated_traces / "samples.jsonl")}
    rows = datasets.load_dataset(str(out), split="train")
    assert rows.column_names == ["id", "instruction", "input", "output"] and len(rows) == len(records) == 4
    for row in rows:
        record = records[row["input"]]
        assert row == {"id": record["id"], **{k: record[k] for k in ("instruction", "input", "output")}}
        assert row["instruction"] == GUARDREASONER_INSTRUCTION
    card = DatasetCard.load(out / "README.md")
    assert "text-classification" in card.data.task_categories and "guardreasoner" in card.data.tags
    assert BIBTEX["guardreasoner"] in card.text and BIBTEX["aidsafe"] not in card.text
    assert "- task `prompt` labels: harmful: 2, unharmful: 2\n" in card.text
    assert "- task `refusal` labels: None: 1, compliance: 2, refusal: 1\n" in card.text
    assert "| guardreasoner_teacher | guardreasoner_teacher | `teacher-x` |" in card.text
    sft = load_train_data(str(out), TrainRecipe(mode="sft"))
    assert sorted(sft["prompt"]) == sorted(r["instruction"] + "\n" + r["input"] for r in records.values())


def test_hard_sample_pairs_export_with_their_weights(mined_pairs, tmp_path, run_cli):
    out = tmp_path / "hard-export"
    code, _, err = run_cli("export", mined_pairs, "-o", out, "-f", "dpo")
    assert code == 0, err
    assert "filters: not applied" in err and "dropped" not in err  # it said "duplicate 0, ... dropped"
    mined = {r["prompt"]: r for r in read_jsonl(mined_pairs / "pairs.jsonl")}
    assert len({r["weight"] for r in mined.values()}) == 3  # distinct weights, so a lost one shows
    rows = datasets.load_dataset(str(out), split="train")
    assert rows.column_names == ["id", "prompt", "chosen", "rejected", "weight"] and len(rows) == 3
    for row in rows:
        record = mined[row["prompt"]]
        assert row == {"id": row["id"], **{k: record[k] for k in ("prompt", "chosen", "rejected", "weight")}}
        assert len(row["id"]) == 16  # no id in pairs.jsonl: its prompt's hash is one
    from aidsafe.train.recipe import load_train_recipe

    trained_on = load_train_data(str(out), load_train_recipe("guardreasoner-hsdpo"))
    assert sorted(trained_on["weight"]) == sorted(r["weight"] for r in mined.values())
    card = DatasetCard.load(out / "README.md")
    assert BIBTEX["guardreasoner"] in card.text
    assert "- pairs by task: prompt (gold harmful): 2, prompt (gold unharmful): 1" in card.text
    assert "- weight min / mean / max: 0.800 / 1.022 / 1.200" in card.text
    assert "`sample-main.jsonl`" in card.text and str(mined_pairs.parent) not in card.text


def test_the_trainer_never_reads_another_exports_cached_rows(pairs_dir, mined_pairs, tmp_path):
    # datasets keys its cache of a local folder on the folder's name and configs: two exports both
    # called `dataset` with a `dpo` train split would share it unless the trainer rebuilds.
    first, second = tmp_path / "a" / "dataset", tmp_path / "b" / "dataset"
    export_run(ExportRequest(pairs_dir, first, ("dpo",), filters=FilterSettings(dedup=False)))
    export_run(ExportRequest(mined_pairs, second, ("dpo",)))
    recipe = TrainRecipe(mode="dpo")
    assert len(load_train_data(str(first), recipe)) == 6
    again = load_train_data(str(second), recipe)
    assert again.column_names == ["prompt", "chosen", "rejected", "weight"] and len(again) == 3  # no id: not trained on
