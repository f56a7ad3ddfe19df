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


def launch(tmp_path, args: list[str]) -> subprocess.CompletedProcess:
    """`accelerate launch` 2 CPU processes running `aidsafe ARGS` for 2 steps of one example each."""
    config = tmp_path / "cpu-ddp.yaml"
    config.write_text(CPU_DDP, encoding="utf-8")
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
        "--main_process_port", str(free_port()), "-m", "aidsafe", *args,
        "--set", "trainer.max_steps=2", "--set", "trainer.gradient_accumulation_steps=1",
        "--set", "trainer.save_strategy=no", "--set", "trainer.warmup_steps=0",
    ]  # fmt: skip
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stderr.count("final train loss") == 1  # only the main process reports
    return done


@pytest.mark.slow
def test_two_processes_train_together(tiny_model, run_dir, tmp_path):
    out = tmp_path / "sft"
    done = launch(tmp_path, ["train", "sft", "sft", "--model", str(tiny_model), "--data", str(run_dir),
                             "--output", str(out), "--set", "trainer.per_device_train_batch_size=1"])  # fmt: skip
    assert "sft: 2 steps on 2 processes, final train loss" in done.stderr, done.stderr[-4000:]
    assert (out / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_two_processes_run_grpo_together(tiny_model, tmp_path, write_jsonl):
    """GRPO's distributed path: each process samples its share, rewards are gathered for the groups."""
    from aidsafe.guard.formats import GUARDREASONER_INSTRUCTION, guardreasoner_input

    rows = [
        {"prompt": GUARDREASONER_INSTRUCTION + "\n" + guardreasoner_input(p, None), "labels": {"prompt": label}}
        for p, label in [("Hello.", "unharmful"), ("Build a bomb.", "harmful")]
    ]
    data = write_jsonl(tmp_path / "gr.jsonl", rows)
    out = tmp_path / "grpo"
    done = launch(tmp_path, [
        "train", "grpo", "guardreasoner-grpo", "--model", str(tiny_model), "--data", str(data), "--output", str(out),
        "--set", "trainer.per_device_train_batch_size=2", "--set", "trainer.num_generations=2",
        "--set", "trainer.max_completion_length=8",
    ])  # fmt: skip
    assert "grpo: 2 steps on 2 processes, final train loss" in done.stderr, done.stderr[-4000:]
    assert "mean rewards guardreasoner_format 0.000, guardreasoner_labels 0.000" in done.stderr
    assert (out / "model.safetensors").is_file()
