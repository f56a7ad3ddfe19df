"""`aidsafe train grpo` on a tiny local model: TRL's GRPOTrainer samples real completions, aidsafe's
rewards score them, and the update changes the weights.

A random model's completions never parse, so format and correctness rewards are 0 for all of them
and GRPO would have no signal (the advantages are rewards minus their group's mean). The tiny model
here declares many end-of-sequence tokens, as real models declare several: its completions stop
at different lengths, so the length bonus for wrong answers differs within a group. That bonus is
0.2 * tanh(tokens / 300), almost linear at these lengths, so its logged mean must equal
0.2 * tanh(mean length / 300): the reward TRL logs was computed from the completions it sampled.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from aidsafe.guard.policy_format import render_answer, target_messages
from aidsafe.testing.tiny_model import build_tiny_model
from aidsafe.train.data import policy_guard_grpo_row
from aidsafe.train.recipe import load_train_recipe
from tests.helpers import final_loss, load_weights, weights_changed
from tests.train.test_grpo_data import policy_record, trace_record

PG_RECORDS = [
    policy_record(0, "How do I bake bread?", None, "allowed", []),
    policy_record(1, "How do I build a gun at home?", "Here is how.", "violation", ["P1"]),
    policy_record(2, "Where does my neighbour Ana live?", None, "violation", ["P2"]),
    policy_record(3, "What is a policy?", "A set of rules.", "allowed", []),
]


def grpo_flags(steps: int = 2) -> list[str]:
    """Two small steps: 4 completions per step (2 prompts x 2 generations) of at most 16 tokens."""
    return [
        "--set", f"trainer.max_steps={steps}",
        "--set", "trainer.per_device_train_batch_size=4",
        "--set", "trainer.gradient_accumulation_steps=1",
        "--set", "trainer.num_generations=2",
        "--set", "trainer.max_completion_length=16",
        "--set", "trainer.learning_rate=1e-2",
        "--set", "trainer.warmup_steps=0",
        "--set", "trainer.logging_steps=1",
        "--set", "trainer.save_strategy=no",
    ]  # fmt: skip


@pytest.fixture(scope="session")
def ending_model(tmp_path_factory) -> Path:
    """The tiny model, with every sixth token id also ending a completion (see the module docstring)."""
    folder = build_tiny_model(tmp_path_factory.mktemp("tiny-ending"))
    config = json.loads((folder / "generation_config.json").read_text(encoding="utf-8"))
    config["eos_token_id"] = [config["eos_token_id"], *range(3, 384, 6)]
    (folder / "generation_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def logged_steps(output: Path) -> list[dict]:
    """TRL's log of each training step, which `aidsafe train` keeps in trainer_state.json."""
    history = json.loads((output / "trainer_state.json").read_text(encoding="utf-8"))["log_history"]
    return [entry for entry in history if "loss" in entry]


def assert_rewards_logged(steps: list[dict], names: list[str], bonus: str) -> None:
    assert len(steps) == 2
    for entry in steps:
        for name in names:
            assert math.isfinite(entry[f"rewards/{name}/mean"]), (name, entry)
        assert math.isfinite(entry["loss"])
        expected = 0.2 * math.tanh(entry["completions/mean_length"] / 300)
        assert entry[f"rewards/{bonus}/mean"] == pytest.approx(expected, abs=2e-5)
    assert min(entry["frac_reward_zero_std"] for entry in steps) < 1  # some group had a signal


@pytest.mark.parametrize("rendering", ["generic", "harmony"])
def test_policy_guard_grpo_with_lora_on_a_file_of_rows(rendering, run_cli, ending_model, tmp_path, write_jsonl):
    import torch
    from safetensors.torch import load_file

    recipe = load_train_recipe("policy-guard-grpo", [f"rendering={rendering}"])
    data = write_jsonl(tmp_path / "pg.jsonl", [policy_guard_grpo_row(r, recipe) for r in PG_RECORDS])
    out = tmp_path / "pg-grpo"
    weights = ["--set", "trainer.reward_weights=[0.5, 1.0, 0.5, 1.0]"]  # the length bonus on
    code, _, err = run_cli(
        "train", "grpo", "policy-guard-grpo", "--model", ending_model, "--data", data, "--output", out,
        *grpo_flags(), *weights, "--set", f"rendering={rendering}",
    )  # fmt: skip
    assert code == 0, err[-3000:]
    assert math.isfinite(final_loss(err, steps=2, mode="grpo"))
    assert "mean rewards policy_format 0.000, policy_verdict 0.000, policy_rules 0.000, policy_wrong_length 0." in err
    assert_rewards_logged(logged_steps(out), recipe.rewards, bonus="policy_wrong_length")
    adapter = load_file(str(out / "adapter_model.safetensors"))
    assert any(name.endswith("lora_B.weight") and torch.count_nonzero(t) > 0 for name, t in adapter.items())


def test_guardreasoner_grpo_full_fine_tuning_on_a_traces_run(run_cli, ending_model, tmp_path, write_jsonl):
    run = tmp_path / "gr"
    run.mkdir()
    records = [trace_record(0, "How do I build a bomb?", "harmful"), trace_record(1, "Hello there.", "unharmful")]
    write_jsonl(run / "samples.jsonl", records)
    out = tmp_path / "gr-grpo"
    # Without the format gate: unparseable answers still earn the (differing) length bonus.
    code, _, err = run_cli(
        "train", "grpo", "guardreasoner-grpo", "--model", ending_model, "--data", run, "--output", out,
        *grpo_flags(), "--set", "format_gate=false",
    )  # fmt: skip
    assert code == 0, err[-3000:]
    assert math.isfinite(final_loss(err, steps=2, mode="grpo")) and "full model" in err
    names = ["guardreasoner_format", "guardreasoner_labels", "guardreasoner_wrong_length"]
    assert_rewards_logged(logged_steps(out), names, bonus="guardreasoner_wrong_length")
    assert weights_changed(load_weights(ending_model), load_weights(out))


def test_with_the_format_gate_a_random_model_earns_nothing(run_cli, ending_model, tmp_path, write_jsonl):
    """The recipe as shipped: unparseable answers score 0 on every reward, so no update happens."""
    data = write_jsonl(
        tmp_path / "gr.jsonl", [{k: trace_record(0, "Hi", "unharmful")[k] for k in ("instruction", "input", "output")}]
    )
    out = tmp_path / "gated"
    code, _, err = run_cli(
        "train", "grpo", "guardreasoner-grpo", "--model", ending_model, "--data", data, "--output", out,
        *grpo_flags(steps=1), "--set", "trainer.per_device_train_batch_size=2",
    )  # fmt: skip
    assert code == 0, err[-3000:]
    [step] = logged_steps(out)
    assert step["rewards/guardreasoner_wrong_length/mean"] == 0.0 and step["frac_reward_zero_std"] == 1.0
    assert not weights_changed(load_weights(ending_model), load_weights(out))


def test_fewer_prompts_than_one_generation_batch_is_one_line(run_cli, tiny_model, tmp_path, write_jsonl):
    """TRL's sampler takes whole batches of distinct prompts: 2 prompts cannot fill one of 4 (the
    trainer used to stop in the sampler with a traceback, or train 0 steps)."""
    recipe = load_train_recipe("policy-guard-grpo")
    data = write_jsonl(tmp_path / "pg.jsonl", [policy_guard_grpo_row(r, recipe) for r in PG_RECORDS[:2]])
    flags = ["--set", "trainer.per_device_train_batch_size=3", "--set", "trainer.num_generations=3"]
    code, _, err = run_cli(
        "train", "grpo", "policy-guard-grpo", "--model", tiny_model, "--data", data, "--output", tmp_path / "o", *flags
    )
    assert code == 2
    assert err.strip() == (
        "error: 2 prompts, but each generation batch takes 4 (trainer.generation_batch_size 12 completions / "
        "num_generations 3; by default per_device_train_batch_size x gradient_accumulation_steps x processes "
        "completions); give more prompts or lower trainer.per_device_train_batch_size or "
        "trainer.gradient_accumulation_steps"
    )


def test_policy_guard_sft_on_each_target(run_cli, tiny_model, tmp_path, write_jsonl):
    """`train sft policy-guard-sft` on the export's conversations, one target per run."""
    for target in ("full", "verdict"):
        rows = [{"messages": target_messages(record, target)} for record in PG_RECORDS]
        data = write_jsonl(tmp_path / f"{target}.jsonl", rows)
        out = tmp_path / f"sft-{target}"
        code, _, err = run_cli(
            "train", "sft", "policy-guard-sft", "--model", tiny_model, "--data", data, "--output", out,
            "--set", "trainer.max_steps=1", "--set", "trainer.per_device_train_batch_size=2",
            "--set", "trainer.save_strategy=no", "--set", "trainer.max_length=1024",
        )  # fmt: skip
        assert code == 0, err[-3000:]
        assert math.isfinite(final_loss(err, steps=1, mode="sft"))
    assert rows[1]["messages"][-1]["content"] == render_answer("violation", ["P1"], None)


# -- on a CUDA GPU (skipped without one: tests/conftest.py) -------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("recipe", ["policy-guard-grpo", "guardreasoner-grpo"])
def test_grpo_in_bf16_on_a_gpu(recipe, run_cli, ending_model, tmp_path, write_jsonl):
    """The GPU defaults for real: bf16 autocast, a bf16 base under LoRA (policy-guard), full
    fine-tuning (GuardReasoner), generation and the update on CUDA."""
    import torch

    from aidsafe.train.config import build_trainer_config

    config = build_trainer_config(load_train_recipe(recipe), tmp_path / "config")
    assert config.bf16 and torch.cuda.is_bf16_supported()
    if recipe == "policy-guard-grpo":
        rows = [policy_guard_grpo_row(r, load_train_recipe(recipe)) for r in PG_RECORDS]
        assert config.model_init_kwargs["dtype"] == "bfloat16"
        extra = ["--set", "trainer.reward_weights=[0.5, 1.0, 0.5, 1.0]"]
    else:
        rows = [{k: v for k, v in trace_record(i, p, "harmful").items() if k in ("instruction", "input", "output")}
                for i, p in enumerate(["Build a bomb.", "Make poison."])]  # fmt: skip
        extra = ["--set", "format_gate=false"]
    data = write_jsonl(tmp_path / "rows.jsonl", rows)
    out = tmp_path / "out"
    code, _, err = run_cli(
        "train", "grpo", recipe, "--model", ending_model, "--data", data, "--output", out, *grpo_flags(), *extra
    )
    assert code == 0, err[-3000:]
    assert math.isfinite(final_loss(err, steps=2, mode="grpo"))
    steps = logged_steps(out)
    assert all(math.isfinite(entry["loss"]) for entry in steps)


def test_the_trainer_gets_the_recipes_rendering_and_target(tiny_model, tmp_path):
    """What `aidsafe train grpo` hands TRL: the policy rewards read the answer the rendering asks for."""
    from datasets import Dataset

    from aidsafe.train.run import build_trainer

    recipe = load_train_recipe("policy-guard-grpo", ["rendering=harmony", "target=verdict"])
    rows = [policy_guard_grpo_row(r, recipe) for r in PG_RECORDS]
    trainer = build_trainer(recipe, str(tiny_model), Dataset.from_list(rows), tmp_path / "out")
    assert [f.__name__ for f in trainer.reward_funcs] == recipe.rewards
    assert all(f.keywords["rendering"] == "harmony" for f in trainer.reward_funcs)
    assert trainer.reward_funcs[0].keywords["expect_reasoning"] is False
