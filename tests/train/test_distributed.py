"""The distributed path end to end: `accelerate launch`, 2 processes on CPU (DDP over gloo)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import free_port

# transformers picks gloo on CPU when ACCELERATE_USE_CPU is set; the MULTI_GPU launcher is the
# one that starts several local processes (accelerate's MULTI_CPU type expects mpirun).
CPU_DDP = """\
compute_environment: LOCAL_MACHINE
distributed_type: MULTI_GPU
num_machines: 1
num_processes: 2
machine_rank: 0
mixed_precision: 'no'
rdzv_backend: static
same_network: true
use_cpu: false
"""


@pytest.mark.slow
def test_two_processes_train_together(tiny_model, run_dir, tmp_path):
    config = tmp_path / "cpu-ddp.yaml"
    config.write_text(CPU_DDP, encoding="utf-8")
    out = tmp_path / "sft"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
        "--main_process_port", str(free_port()), "-m", "aidsafe", "train", "sft", "sft",
        "--model", str(tiny_model), "--data", str(run_dir), "--output", str(out),
        "--set", "trainer.max_steps=2", "--set", "trainer.per_device_train_batch_size=1",
        "--set", "trainer.gradient_accumulation_steps=1", "--set", "trainer.save_strategy=no",
        "--set", "trainer.warmup_steps=0",
    ]  # fmt: skip
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "sft: 2 steps on 2 processes, final train loss" in done.stderr, done.stderr[-4000:]
    assert done.stderr.count("final train loss") == 1  # only the main process reports
    assert (out / "adapter_model.safetensors").is_file()
