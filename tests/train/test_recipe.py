"""Training recipes: the built-ins load, paper values are where they should be, errors name the key."""

from __future__ import annotations

import pytest

from aidsafe.errors import AidsafeError
from aidsafe.train import TrainRecipe, load_train_recipe
from aidsafe.train.config import build_trainer_config

BUILTINS = [
    "sft", "dpo", "guardreasoner-rsft", "guardreasoner-hsdpo", "thinkguard",
    "policy-guard-sft", "policy-guard-grpo", "guardreasoner-grpo",
]  # fmt: skip


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_recipes_build_trl_configs(name, tmp_path):
    recipe = load_train_recipe(name)
    config = build_trainer_config(recipe, tmp_path)
    assert type(config).__name__ == {"sft": "SFTConfig", "dpo": "DPOConfig", "grpo": "GRPOConfig"}[recipe.mode]
    assert config.report_to in ("none", [], ["none"])
    assert config.bf16 is False  # no GPU here: plain fp32 on CPU, no flag needed
    assert config.dataloader_pin_memory is False


def test_guardreasoner_values_are_the_papers(tmp_path):
    rsft = build_trainer_config(load_train_recipe("guardreasoner-rsft"), tmp_path)
    assert (rsft.learning_rate, rsft.num_train_epochs, rsft.max_length) == (5e-5, 3, 2048)
    assert rsft.per_device_train_batch_size * rsft.gradient_accumulation_steps * 4 == 384
    assert load_train_recipe("guardreasoner-rsft").lora is None  # full fine-tuning
    hsdpo = build_trainer_config(load_train_recipe("guardreasoner-hsdpo"), tmp_path)
    assert (hsdpo.beta, hsdpo.loss_type, hsdpo.loss_weights) == (0.01, ["sigmoid", "sft"], [1.0, 2.0])
    assert (hsdpo.learning_rate, hsdpo.num_train_epochs) == (5e-6, 2)
    assert hsdpo.per_device_train_batch_size * hsdpo.gradient_accumulation_steps * 4 == 256


def test_set_overrides_reach_trl(tmp_path):
    recipe = load_train_recipe(
        "sft", ["trainer.max_steps=5", "trainer.learning_rate=1e-3", "lora.r=4", 'cot_template="A: {response}"']
    )
    config = build_trainer_config(recipe, tmp_path)
    assert config.max_steps == 5 and config.learning_rate == 0.001  # YAML 1.1 reads 1e-3 as text
    assert recipe.lora.r == 4 and recipe.cot_template == "A: {response}"


def test_full_fine_tuning_by_removing_lora():
    assert load_train_recipe("sft", ["lora=null"]).lora is None


def _write(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_trainer_key_names_file_line_and_config(tmp_path):
    path = _write(tmp_path, "mode: sft\ntrainer:\n  max_steps: 3\n  learnin_rate: 1.0e-4\n")
    with pytest.raises(AidsafeError) as error:
        load_train_recipe(path)
    assert str(error.value) == f"{path}:4: trainer.learnin_rate: not a field of TRL's SFTConfig"


def test_dpo_field_in_an_sft_recipe_is_rejected(tmp_path):
    path = _write(tmp_path, "mode: sft\ntrainer:\n  beta: 0.1\n")
    with pytest.raises(AidsafeError, match=r"recipe.yaml:3: trainer.beta: not a field of TRL's SFTConfig"):
        load_train_recipe(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mode: sft\nlora:\n  rank: 8\n", r"recipe.yaml:3: lora.rank: unknown key; expected one of: alpha, dropout, r"),
        ("mode: ppo\n", r"recipe.yaml:1: mode: "),
        ("mode: sft\ncot_template: '{thoughts} {answer}'\n", r"unknown placeholder \{answer\}"),
        ("mode: sft\ncot_template: '{thoughts}'\n", r"must contain \{response\}"),
        ("mode: sft\nquantization: 4bit\n", r"add a lora: section"),
        ("mode: dpo\nlabel_weight: 2.0\n", r"label_weight applies to SFT only"),
        ("mode: sft\nlabel_weight: 2.0\ntrainer:\n  packing: true\n", r"cannot be combined with trainer.packing"),
        ("mode: sft\nlabel_pattern: '(['\n", r"label_pattern: .*not a valid regular expression"),
        (
            "mode: sft\nlabel_weight: 2.0\ntrainer:\n  label_smoothing_factor: 0.1\n",
            r"cannot be combined with trainer.label_smoothing_factor",
        ),
        ("mode: sft\ntrainer:\n  output_dir: x\n", r"trainer.output_dir: set the output folder with --output"),
    ],
)
def test_recipe_errors_are_one_line(tmp_path, text, message):
    with pytest.raises(AidsafeError, match=message) as error:
        load_train_recipe(_write(tmp_path, text))
    assert "\n" not in str(error.value)


def test_mode_must_match_the_command():
    with pytest.raises(AidsafeError, match=r"this is a dpo recipe; run `aidsafe train dpo` with it"):
        load_train_recipe("dpo", mode="sft")


def test_unknown_recipe_lists_builtins():
    builtins = "dpo, guardreasoner-grpo, guardreasoner-hsdpo, guardreasoner-rsft, policy-guard-grpo, policy-guard-sft"
    with pytest.raises(AidsafeError, match=rf"built-ins: {builtins}, sft, thinkguard"):
        load_train_recipe("nope")


def test_trl_rejection_becomes_one_line(tmp_path):
    recipe = TrainRecipe(mode="dpo", trainer={"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0]})
    with pytest.raises(AidsafeError, match=r"^trainer: TRL's DPOConfig rejected the settings: `loss_weights` must"):
        build_trainer_config(recipe, tmp_path)


def test_importing_the_train_command_stays_light():
    """`aidsafe --help` must not pay for torch, transformers or TRL."""
    import subprocess
    import sys

    heavy = "{'torch', 'trl', 'transformers', 'datasets'}"
    code = f"import sys, aidsafe.cli.train, aidsafe.train; print(sorted({heavy} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
