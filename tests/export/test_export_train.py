"""`aidsafe generate -> aidsafe export -> aidsafe train --data EXPORT_DIR` on the tiny local model."""

from __future__ import annotations

import math

import pytest

from tests.helpers import THIRD_PARTY_DEPRECATIONS, final_loss, tiny_training

pytestmark = [pytest.mark.filterwarnings(w) for w in THIRD_PARTY_DEPRECATIONS]


def test_aidsafe_train_reads_an_export_folder(run_dir, tmp_path, run_cli, tiny_model):
    data = tmp_path / "dataset"
    code, _, err = run_cli("export", run_dir, "-o", data, "-f", "aidsafe", "-f", "sft", "--test-size", "0.25")
    assert code == 0, err
    args = ["train", "sft", "sft", "--model", tiny_model, "--data", data, "--output", tmp_path / "model"]
    code, _, err = run_cli(*args, *tiny_training(steps=2))
    assert code == 0, err[-3000:]
    # The default config is sft whatever the --format order, so the trainer gets `messages`.
    assert math.isfinite(final_loss(err, steps=2, mode="sft")), err[-2000:]


def test_export_of_pairs_trains_with_train_dpo(pairs_dir, tmp_path, run_cli, tiny_model):
    data = tmp_path / "pairs-dataset"
    code, _, err = run_cli("export", pairs_dir, "-o", data, "-f", "dpo", "--keep-beliefs", "--no-dedup")
    assert code == 0, err
    out = tmp_path / "dpo"
    args = ["train", "dpo", "dpo", "--model", tiny_model, "--data", data, "--output", out]
    code, _, err = run_cli(*args, *tiny_training(steps=2))
    assert code == 0, err[-3000:]
    assert math.isfinite(final_loss(err, steps=2, mode="dpo"))
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
    code, _, err = run_cli(*args, *tiny_training(steps=2, max_length=1024))
    assert code == 0, err[-3000:]
    assert math.isfinite(final_loss(err, steps=2, mode="sft"))
