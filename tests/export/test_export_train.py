"""`aidsafe generate -> aidsafe export -> aidsafe train --data EXPORT_DIR` on the tiny local model."""

from __future__ import annotations

import math
import re

import pytest

from tests.train.conftest import THIRD_PARTY_DEPRECATIONS

pytestmark = [pytest.mark.filterwarnings(w) for w in THIRD_PARTY_DEPRECATIONS]


def test_aidsafe_train_reads_an_export_folder(run_dir, tmp_path, run_cli, tiny_model):
    data = tmp_path / "dataset"
    code, _, err = run_cli("export", run_dir, "-o", data, "-f", "aidsafe", "-f", "sft", "--test-size", "0.25")
    assert code == 0, err
    steps = ["--set", "trainer.max_steps=2", "--set", "trainer.per_device_train_batch_size=2"]
    steps += [
        "--set",
        "trainer.save_strategy=no",
        "--set",
        "trainer.logging_steps=1",
        "--set",
        "trainer.warmup_steps=0",
    ]
    args = ["train", "sft", "sft", "--model", tiny_model, "--data", data, "--output", tmp_path / "model", *steps]
    code, _, err = run_cli(*args)
    assert code == 0, err[-3000:]
    # The default config is sft whatever the --format order, so the trainer gets `messages`.
    match = re.search(r"sft: (\d+) steps, final train loss (\S+);", err)
    assert match and int(match.group(1)) == 2 and math.isfinite(float(match.group(2))), err[-2000:]


FAST_DPO = [
    "--set", "trainer.max_steps=2", "--set", "trainer.per_device_train_batch_size=2",
    "--set", "trainer.gradient_accumulation_steps=1", "--set", "trainer.learning_rate=1e-3",
    "--set", "trainer.warmup_steps=0", "--set", "trainer.save_strategy=no", "--set", "trainer.logging_steps=1",
    "--set", "trainer.max_length=256",
]  # fmt: skip


def _final_loss(err: str, mode: str) -> float:
    match = re.search(rf"{mode}: (\d+) steps, final train loss (\S+);", err)
    assert match and int(match.group(1)) == 2, err[-2000:]
    return float(match.group(2))


def test_export_of_pairs_trains_with_train_dpo(pairs_dir, tmp_path, run_cli, tiny_model):
    data = tmp_path / "pairs-dataset"
    code, _, err = run_cli("export", pairs_dir, "-o", data, "-f", "dpo", "--keep-beliefs", "--no-dedup")
    assert code == 0, err
    out = tmp_path / "dpo"
    code, _, err = run_cli("train", "dpo", "dpo", "--model", tiny_model, "--data", data, "--output", out, *FAST_DPO)
    assert code == 0, err[-3000:]
    assert math.isfinite(_final_loss(err, "dpo"))
    import torch
    from safetensors.torch import load_file

    adapter = load_file(str(out / "adapter_model.safetensors"))  # LoRA B starts at zero: it moved
    assert any(name.endswith("lora_B.weight") and torch.count_nonzero(t) > 0 for name, t in adapter.items())


def test_export_of_traces_trains_with_train_sft_guardreasoner_rsft(generated_traces, tmp_path, run_cli, tiny_model):
    data = tmp_path / "traces-dataset"
    code, _, err = run_cli("export", generated_traces, "-o", data, "-f", "guardreasoner")
    assert code == 0, err
    out = tmp_path / "rsft"
    args = ["train", "sft", "guardreasoner-rsft", "--model", tiny_model, "--data", data, "--output", out]
    code, _, err = run_cli(*args, *FAST_DPO[:-2], "--set", "trainer.max_length=1024")
    assert code == 0, err[-3000:]
    assert math.isfinite(_final_loss(err, "sft"))
