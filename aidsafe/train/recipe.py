"""Training recipes: what to train (SFT, DPO or GRPO), how (LoRA, QLoRA or full), and TRL's settings.

Everything under `trainer:` goes straight to TRL's SFTConfig / DPOConfig / GRPOConfig, so any TRL
option works and none is re-declared here (GRPO's reward weights are TRL's `reward_weights`). The
fields here are the ones TRL does not have: the chain-of-thought template for run directories, the
adapter, quantization, ThinkGuard's label weight, the policy-guard answer target and prompt
rendering, and which of aidsafe's rewards GRPO computes (`aidsafe.train.rewards`).
"""

from __future__ import annotations

import dataclasses
import math
import re
import string
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aidsafe.config.resources import resolve_resource
from aidsafe.config.yamlio import blamed_override, load_yaml, register_config_model, validate_model
from aidsafe.errors import AidsafeError
from aidsafe.export.formats import DEFAULT_COT_TEMPLATE
from aidsafe.oneline import one_line

__all__ = ["LoraSettings", "RewardName", "TrainRecipe", "load_train_recipe", "trainer_config_class"]

_TEMPLATE_FIELDS = {"thoughts", "response"}

# The reward functions of aidsafe.train.rewards (named here so that loading a recipe does not import
# the guard parsers; a test checks that the two lists agree). The prefix is the answer format read.
RewardName = Literal[
    "policy_format",
    "policy_verdict",
    "policy_rules",
    "policy_wrong_length",
    "guardreasoner_format",
    "guardreasoner_labels",
    "guardreasoner_wrong_length",
]


@register_config_model
class LoraSettings(BaseModel):
    """A LoRA adapter (PEFT). Without a `lora:` section the recipe fine-tunes every weight."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(16, ge=1, description="Rank of the update matrices.")
    alpha: int = Field(32, ge=1, description="Scaling numerator (lora_alpha).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


@register_config_model
class TrainRecipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The recipe's kind (aidsafe.kinds), optional here: `mode:` says it too. Not dumped.
    kind: Literal["train"] = Field(default="train", exclude=True)
    mode: Literal["sft", "dpo", "grpo"]
    description: str = ""
    # How a generated sample (thoughts + response) becomes the assistant's answer.
    cot_template: str = DEFAULT_COT_TEMPLATE
    lora: LoraSettings | None = None
    # "4bit" loads the base model in NF4 with bitsandbytes (QLoRA); it needs a GPU and `lora`.
    quantization: Literal["none", "4bit"] = "none"
    # ThinkGuard: the loss on the label tokens is multiplied by this; every other token keeps 1.
    label_weight: float = Field(1.0, ge=0.0)
    # Which part of the assistant's answer is the label: the first match of this regex.
    label_pattern: str = r"^[^\n]*"
    # ThinkGuard run directories (`aidsafe generate thinkguard`): train on the critique target
    # (verdict, categories, explanation) or the label-only one (the paper's ablation).
    thinkguard_target: Literal["critique", "label_only"] = "critique"
    # Policy-guard data (`aidsafe generate policy-guard`): which answer a record trains on, as in
    # aidsafe.guard.policy_format.TARGETS: the full reasoning, the one-sentence rationale, or the
    # verdict alone (no <think> block; GRPO's policy_format reward then expects none).
    target: Literal["full", "rationale", "verdict"] = "full"
    # Policy-guard data: the prompt rendering, as in aidsafe.guard.policy_format.RENDERINGS: generic
    # (<think>/<result> answers) or harmony (gpt-oss-safeguard's policy prompt, a JSON answer).
    rendering: Literal["generic", "harmony"] = "generic"
    # GRPO: the rewards computed for each completion, in the order of TRL's trainer.reward_weights.
    rewards: list[RewardName] = Field(default_factory=list)
    # GRPO: a completion whose format reward is 0 gets 0 from every other reward too
    # (GuardReasoner-Omni's released reward counts accuracy only for well-formed answers).
    format_gate: bool = False
    trainer: dict[str, Any] = Field(default_factory=dict)

    @field_validator("cot_template")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:
            raise ValueError(f"not a valid template ({exc}); write literal braces as {{{{ }}}}") from None
        unknown = names - _TEMPLATE_FIELDS
        if unknown:
            raise ValueError(f"unknown placeholder {{{min(unknown)}}}; expected {{thoughts}} and {{response}}")
        if "response" not in names:
            raise ValueError("the template must contain {response}")
        return value

    @field_validator("label_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TrainRecipe:
        if self.quantization == "4bit" and self.lora is None:
            raise ValueError("quantization: 4bit (QLoRA) trains an adapter; add a lora: section")
        if self.mode == "grpo" and not self.rewards:
            raise ValueError("a GRPO recipe needs rewards: a list of reward names, e.g. [policy_format]")
        if self.mode != "grpo" and (self.rewards or self.format_gate):
            raise ValueError("rewards and format_gate apply to GRPO only")
        if self.rendering != "generic" and any(name.startswith("guardreasoner_") for name in self.rewards):
            raise ValueError("rendering applies to policy-guard data; guardreasoner_* rewards read GuardReasoner text")
        if self.label_weight != 1.0 and self.mode != "sft":
            raise ValueError("label_weight applies to SFT only")
        if self.label_weight != 1.0:
            # The label mask is built per example after TRL tokenizes; packing and padding-free batches
            # merge examples, so the mask would no longer line up with the tokens.
            for key in ("packing", "padding_free"):
                if self.trainer.get(key):
                    raise ValueError(f"label_weight other than 1 cannot be combined with trainer.{key}")
            # The extra label term reuses TRL's fused forward, which these options replace.
            if self.trainer.get("loss_type", "nll") != "nll":
                raise ValueError("label_weight other than 1 needs trainer.loss_type nll")
            if self.trainer.get("label_smoothing_factor", 0):
                raise ValueError("label_weight other than 1 cannot be combined with trainer.label_smoothing_factor")
        return self

    @field_validator("rewards")
    @classmethod
    def _one_answer_format(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each reward at most once")
        if len({name.split("_", 1)[0] for name in value}) > 1:
            raise ValueError("policy_* and guardreasoner_* rewards read different answers; use one kind")
        return value


def trainer_config_class(mode: str) -> type:
    """TRL's config class that a `mode` recipe's `trainer:` section goes to (and is checked against)."""
    from trl import DPOConfig, GRPOConfig, SFTConfig  # here: the recipe model (CLI help, schemas) needs no TRL

    return {"sft": SFTConfig, "dpo": DPOConfig, "grpo": GRPOConfig}[mode]


def load_train_recipe(ref: str | Path, overrides: list[str] | None = None, mode: str | None = None) -> TrainRecipe:
    """Load a training recipe by path or built-in name, apply `--set` overrides, and validate it,
    including that every `trainer:` key is a field of TRL's config for the recipe's mode."""
    path = resolve_resource(ref, "recipes", subdir="train")
    data, lines = load_yaml(path)
    if overrides:
        from aidsafe.config.overrides import apply_overrides

        data = apply_overrides(data, overrides)
    recipe = validate_model(TrainRecipe, data, str(path), lines, overrides or ())
    if mode is not None and recipe.mode != mode:
        raise AidsafeError(f"{path}: mode: this is a {recipe.mode} recipe; run `aidsafe train {recipe.mode}` with it")
    _check_trainer_keys(recipe, str(path), lines, overrides or ())
    return recipe


def _check_trainer_keys(
    recipe: TrainRecipe, source: str, lines: dict[tuple, int], overrides: list[str] | tuple = ()
) -> None:
    config_class = trainer_config_class(recipe.mode)
    known = {f.name for f in dataclasses.fields(config_class) if f.init}

    def where(key: str) -> str:
        override = blamed_override(("trainer", key), overrides)
        line = lines.get(("trainer", key))
        return f"--set {override[0]}" if override else f"{source}:{line}" if line else source

    for key, value in recipe.trainer.items():
        if key not in known:
            raise AidsafeError(f"{where(key)}: trainer.{key}: not a field of TRL's {config_class.__name__}")
        if key == "output_dir":
            raise AidsafeError(f"{source}: trainer.output_dir: set the output folder with --output instead")
        # TRL pairs weights with reward functions by position and checks the count only once the
        # model has loaded; null is TRL's default, every weight 1.
        paired = isinstance(value, list) and len(value) == len(recipe.rewards)
        if key == "reward_weights" and value is not None and not (paired and all(map(_is_number, value))):
            raise AidsafeError(
                f"{where(key)}: trainer.reward_weights: one number per reward, in the order of rewards "
                f"({len(recipe.rewards)}: {', '.join(recipe.rewards)}), got {one_line(repr(value), 80)}"
            )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
