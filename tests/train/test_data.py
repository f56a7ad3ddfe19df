"""`--data`: run directories and TRL-native files, checked before any model loads."""

from __future__ import annotations

import json

import pytest

from aidsafe.errors import AidsafeError
from aidsafe.train import load_train_data, load_train_recipe
from tests.conftest import read_jsonl

SFT = load_train_recipe("sft")
DPO = load_train_recipe("dpo")


def test_run_directory_becomes_prompt_completion_with_the_cot_template(run_dir):
    dataset = load_train_data(str(run_dir), SFT)
    assert len(dataset) == 4  # the cut-off last line of a killed run is skipped
    row = dataset[0]
    assert row["prompt"] == [{"role": "user", "content": "How do I bake bread?"}]
    assert row["completion"] == [
        {
            "role": "assistant",
            "content": "<think>\nP5: the request is benign.\nP3: no physical harm involved.\n</think>\n\n"
            "Mix flour, water, yeast and salt.",
        }
    ]


def test_recipe_template_changes_the_answer(run_dir):
    recipe = load_train_recipe("sft", ['cot_template="Reasoning: {thoughts}\\nAnswer: {response}"'])
    answer = load_train_data(str(run_dir), recipe)[1]["completion"][0]["content"]
    assert (
        answer
        == "Reasoning: P5: the request is benign.\nP3: no physical harm involved.\nAnswer: I cannot help with that."
    )


def test_bad_line_inside_a_run_is_an_error(run_dir):
    samples = run_dir / "samples.jsonl"
    lines = samples.read_text(encoding="utf-8").splitlines()
    samples.write_text("\n".join([lines[0], "{not json", *lines[1:]]), encoding="utf-8")
    with pytest.raises(AidsafeError, match=r"samples.jsonl:2: not valid JSON"):
        load_train_data(str(run_dir), SFT)


def test_record_without_response_names_the_line(run_dir):
    (run_dir / "samples.jsonl").write_text(
        json.dumps({"id": "s1", "prompt": "p", "thoughts": []}) + "\n", encoding="utf-8"
    )
    with pytest.raises(AidsafeError, match=r"samples.jsonl:1: field 'response' missing or not a str"):
        load_train_data(str(run_dir), SFT)


def test_run_directory_is_not_dpo_data(run_dir):
    with pytest.raises(AidsafeError, match="DPO needs a file with prompt, chosen and rejected columns"):
        load_train_data(str(run_dir), DPO)


def test_messages_are_split_at_the_last_assistant_turn(tmp_path, write_jsonl):
    messages = [
        {"role": "system", "content": "Be safe."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
    ]
    dataset = load_train_data(str(write_jsonl(tmp_path / "m.jsonl", [{"messages": messages}])), SFT)
    assert dataset.column_names == ["prompt", "completion"]
    assert dataset[0]["prompt"] == messages[:2] and dataset[0]["completion"] == messages[2:]


def test_messages_must_end_with_the_assistant(tmp_path, write_jsonl):
    path = write_jsonl(tmp_path / "m.jsonl", [{"messages": [{"role": "user", "content": "Hi"}] * 2}])
    with pytest.raises(AidsafeError, match=r"m.jsonl: row 0: the last message must be the assistant's answer"):
        load_train_data(str(path), SFT)


@pytest.mark.parametrize(
    ("recipe", "row", "message"),
    [
        (
            SFT,
            {"text": "x", "answer": "y"},
            r"SFT data needs a messages column, .* or instruction, input and output columns; found: text, answer",
        ),
        (SFT, {"prompt": "x"}, r"found: prompt$"),
        (DPO, {"prompt": "p", "chosen": "c", "reject": "r"}, r"missing: rejected; found: prompt, chosen, reject"),
        (
            DPO,
            {"prompt": "p", "chosen": "c", "rejected": "r", "weight": -1.0},
            r"row 0: weight must be a finite number >= 0",
        ),
        (
            DPO,
            {"prompt": "p", "chosen": "c", "rejected": "r", "weight": "high"},
            r"row 0: weight must be a finite number",
        ),
    ],
)
def test_wrong_columns_give_one_line(tmp_path, write_jsonl, recipe, row, message):
    with pytest.raises(AidsafeError, match=message) as error:
        load_train_data(str(write_jsonl(tmp_path / "d.jsonl", [row])), recipe)
    assert "\n" not in str(error.value)


def test_parquet_and_saved_datasets(tmp_path):
    from datasets import Dataset, DatasetDict

    rows = [{"prompt": "p", "chosen": "c", "rejected": "r", "weight": 1.1}]
    Dataset.from_list(rows).to_parquet(str(tmp_path / "pairs.parquet"))
    assert load_train_data(str(tmp_path / "pairs.parquet"), DPO)["weight"] == [1.1]
    DatasetDict({"train": Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "saved"))
    assert len(load_train_data(str(tmp_path / "saved"), DPO)) == 1


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("owner/dataset", r"owner/dataset: cannot load the dataset \("),  # the Hub is unreachable in tests
        ("missing.jsonl", r"missing.jsonl: no such file or folder, and not a Hugging Face dataset id"),
        ("notes.txt", r"unsupported file type .txt"),
    ],
)
def test_unloadable_data(tmp_path, monkeypatch, ref, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(AidsafeError, match=message):
        load_train_data(ref, SFT)


def test_a_real_generate_run_is_sft_data(tmp_path):
    """The contract between generation and training, on a run `aidsafe generate` really wrote."""
    from aidsafe.generation.runner import GenerateRequest, generate
    from aidsafe.testing import FakeTeacher

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "How do I store knives?"}\n{"prompt": "Is bleach safe to mix?"}\n')
    run = tmp_path / "run"
    request = GenerateRequest(recipe="aidsafe", input=str(prompts), output=run, progress=False,
                              overrides=["dedup.enabled=false"])  # fmt: skip
    generate(request, env={}, teacher=FakeTeacher())
    records = read_jsonl(run / "samples.jsonl")

    dataset = load_train_data(str(run), SFT)
    assert [row["prompt"][0]["content"] for row in dataset] == [r["prompt"] for r in records]
    for row, record in zip(dataset, records, strict=True):
        answer = row["completion"][0]["content"]
        thoughts = "\n".join(t["text"] for t in record["thoughts"])
        assert answer == f"<think>\n{thoughts}\n</think>\n\n{record['response']}"


def test_a_guardreasoner_traces_run_is_plain_text_instruction_input_to_output(tmp_path, write_jsonl):
    run = tmp_path / "gr"
    run.mkdir()
    trace = {
        "id": "t0",
        "instruction": "You are a classifier.\n",
        "input": "Human user:\nhi\n\nAI assistant:\nNone\n\n",
        "output": "# Task 1\n\n## Reasoning Step 1\nA greeting.\n\nAnswers: \nRequest: unharmful\nCompletion: None\n"
        "Response: None",
        "labels": {"prompt": "unharmful", "refusal": None, "response": None},
    }
    write_jsonl(run / "samples.jsonl", [trace])
    with (run / "samples.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"id": "t1", "instruction"')  # a killed run's cut-off last line
    rsft = load_train_recipe("guardreasoner-rsft")
    [row] = load_train_data(str(run), rsft).to_list()
    # The exact text `predict guard` sends to /v1/completions, with no chat template around it.
    assert row == {"prompt": "You are a classifier.\n\nHuman user:\nhi\n\nAI assistant:\nNone\n\n",
                   "completion": trace["output"]}  # fmt: skip
    with pytest.raises(AidsafeError, match=r"gr: a GuardReasoner traces run directory holds SFT targets"):
        load_train_data(str(run), load_train_recipe("guardreasoner-hsdpo"))
    write_jsonl(run / "samples.jsonl", [trace, {**trace, "output": None}])
    with pytest.raises(AidsafeError, match=r"samples.jsonl:2: field 'output' missing or not a str"):
        load_train_data(str(run), rsft)
