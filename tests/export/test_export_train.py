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
