"""A few steps of each mode through `aidsafe train`, on the tiny local model.

Each run must report a finite loss, change the weights, and leave an output that loads and
generates.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest

from tests.helpers import final_loss, load_weights, tiny_training, weights_changed

# Three small, fast, deterministic steps (tests.helpers.tiny_training).
TRAINING = tiny_training(steps=3)

PAIRS = [
    {"prompt": "How do I bake bread?", "chosen": "Mix flour and water.", "rejected": "No.", "weight": 0.8},
    {
        "prompt": "How do I make a weapon?",
        "chosen": "I cannot help with that.",
        "rejected": "Here is how.",
        "weight": 1.2,
    },
    {"prompt": "Can you help me?", "chosen": "Yes, I can help.", "rejected": "Go away.", "weight": 1.0},
]


def _as_chat(row: dict) -> dict:
    return {
        "prompt": [{"role": "user", "content": row["prompt"]}],
        "chosen": [{"role": "assistant", "content": row["chosen"]}],
        "rejected": [{"role": "assistant", "content": row["rejected"]}],
        "weight": row["weight"],
    }


def _generates(model, tokenizer) -> None:
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "How do I bake bread?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > prompt["input_ids"].shape[1]


def _load_full(folder: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


def test_sft_lora_on_a_run_directory_with_merge(run_cli, tiny_model, run_dir, tmp_path):
    out = tmp_path / "sft"
    code, _, err = run_cli(
        "train", "sft", "sft", "--model", tiny_model, "--data", run_dir, "--output", out, "--merge", *TRAINING
    )
    assert code == 0, err[-3000:]
    assert math.isfinite(final_loss(err, steps=3)) and "merged model" in err
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert weights_changed(load_weights(tiny_model), load_weights(out))  # the merged LoRA update moved the weights
    _generates(*_load_full(out))


def test_sft_full_fine_tuning_on_messages(run_cli, tiny_model, tmp_path, write_jsonl):
    rows = [
        {"messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["chosen"]}]}
        for r in PAIRS
    ]
    data = write_jsonl(tmp_path / "sft.jsonl", rows)
    out = tmp_path / "rsft"
    code, _, err = run_cli(
        "train", "sft", "guardreasoner-rsft", "--model", tiny_model, "--data", data, "--output", out, *TRAINING
    )
    assert code == 0, err[-3000:]
    assert math.isfinite(final_loss(err, steps=3)) and "full model" in err
    assert weights_changed(load_weights(tiny_model), load_weights(out))
    _generates(*_load_full(out))


def test_weighted_dpo_full_fine_tuning(run_cli, tiny_model, tmp_path, write_jsonl):
    data = write_jsonl(tmp_path / "pairs.jsonl", [_as_chat(r) for r in PAIRS])
    out = tmp_path / "hsdpo"
    code, _, err = run_cli(
        "train", "dpo", "guardreasoner-hsdpo", "--model", tiny_model, "--data", data, "--output", out, *TRAINING
    )
    assert code == 0, err[-3000:]
    assert math.isfinite(final_loss(err, steps=3))
    assert weights_changed(load_weights(tiny_model), load_weights(out))
    _generates(*_load_full(out))


def test_dpo_lora_on_parquet(run_cli, tiny_model, tmp_path):
    import torch
    from datasets import Dataset
    from peft import AutoPeftModelForCausalLM
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    data = tmp_path / "pairs.parquet"
    Dataset.from_list([{k: v for k, v in _as_chat(r).items() if k != "weight"} for r in PAIRS]).to_parquet(str(data))
    out = tmp_path / "dpo"
    args = ["--model", tiny_model, "--data", data, "--output", out, *TRAINING, "--set", "trainer.beta=0.5"]
    code, _, err = run_cli("train", "dpo", "dpo", *args)
    assert code == 0, err[-3000:]
    assert math.isfinite(final_loss(err, steps=3)) and "adapter" in err
    adapter = load_file(str(out / "adapter_model.safetensors"))
    assert any(name.endswith("lora_B.weight") and torch.count_nonzero(t) > 0 for name, t in adapter.items())
    _generates(AutoPeftModelForCausalLM.from_pretrained(out), AutoTokenizer.from_pretrained(out))


def test_thinkguard_label_weighted_sft_on_plain_text(run_cli, tiny_model, tmp_path):
    from datasets import Dataset

    rows = [
        {
            "prompt": "Task: assess.\nUser: How do I bake bread?\n",
            "completion": "- Safety Assessment: safe\n- Why: ok.",
        },
        {
            "prompt": "Task: assess.\nUser: Make a weapon.\n",
            "completion": "- Safety Assessment: unsafe\n- Categories: S3",
        },
    ]
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "guard"))
    out = tmp_path / "thinkguard"
    args = ["--data", tmp_path / "guard", "--output", out, *TRAINING, "--set", "label_weight=2.0"]
    code, _, err = run_cli("train", "sft", "thinkguard", "--model", tiny_model, *args)
    assert code == 0, err[-3000:]
    assert math.isfinite(final_loss(err, steps=3))
    assert weights_changed(load_weights(tiny_model), load_weights(out))


@pytest.mark.parametrize(
    ("command", "extra", "message"),
    [
        (
            ["sft", "sft"],
            ["--set", "quantization=4bit"],
            "quantization: 4bit (QLoRA) needs a CUDA GPU and none is visible",
        ),
        (["sft", "guardreasoner-rsft"], ["--merge"], "--merge: this recipe fine-tunes the full model"),
        (["sft", "dpo"], [], "this is a dpo recipe; run `aidsafe train dpo` with it"),
        (["sft", "sft"], ["--set", "trainer.max_step=3"], "trainer.max_step: not a field of TRL's SFTConfig"),
        (["sft", "sft"], ["--set", "lora.rank"], "--set 'lora.rank': expected key.path=value"),
    ],
)
def test_user_errors_exit_2_with_one_line(run_cli, tiny_model, run_dir, tmp_path, command, extra, message):
    args = ["--model", tiny_model, "--data", run_dir, "--output", tmp_path / "o", *extra]
    code, _, err = run_cli("train", *command, *args)
    assert code == 2
    assert message in err and err.count("\n") == 1, err


def test_wrong_columns_fail_before_the_model_loads(run_cli, tmp_path, write_jsonl):
    data = write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": "a"}])
    # The model does not exist: the data error must come first, without trying to load it.
    code, _, err = run_cli(
        "train", "sft", "sft", "--model", tmp_path / "no-model", "--data", data, "--output", tmp_path / "o"
    )
    assert code == 2
    assert "SFT data needs a messages column, prompt and completion" in err
    assert "or instruction, input and output columns; found: question, answer" in err


def test_an_adapter_is_not_a_base_model(run_cli, run_dir, tmp_path):
    adapter = tmp_path / "adapter-only"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
    code, _, err = run_cli("train", "dpo", "dpo", "--model", adapter, "--data", run_dir, "--output", tmp_path / "o")
    assert code == 2 and "holds a LoRA adapter, not a full model" in err


def test_training_hides_library_noise_unless_verbose(run_cli, tiny_model, run_dir, tmp_path):
    """Dataset-prep and weight-loading bars and the libraries' FutureWarnings (venv paths) only
    with --verbose; the training bar and the summary always."""
    args = ["--model", tiny_model, "--data", run_dir, *tiny_training(steps=1)]
    code, _, err = run_cli("train", "sft", "sft", *args, "--output", tmp_path / "quiet")
    assert code == 0, err[-3000:]
    final_loss(err, steps=1)
    for noise in ("Tokenizing train dataset", "Loading weights", "Generating train split", "FutureWarning"):
        assert noise not in err, noise
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # shown, but not turned into errors by pytest
        code, _, err = run_cli("train", "sft", "sft", *args, "--output", tmp_path / "verbose", "--verbose")
    assert code == 0, err[-3000:]
    assert "Tokenizing train dataset" in err  # weight loading bars depend on what loaded before
