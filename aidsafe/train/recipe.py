"""Training recipes: what to train (SFT or DPO), how (LoRA, QLoRA or full), and TRL's settings.

Everything under `trainer:` goes straight to TRL's SFTConfig / DPOConfig, so any TRL option works
and none is re-declared here. The fields here are the ones TRL does not have: the chain-of-thought
template for run directories, the adapter, quantization, and ThinkGuard's label weight.
"""

from __future__ import annotations

import dataclasses
import re
import string
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aidsafe.config.resources import resolve_resource
from aidsafe.config.yamlio import blamed_override, load_yaml, register_config_model, validate_model
from aidsafe.errors import AidsafeError
from aidsafe.export.formats import DEFAULT_COT_TEMPLATE

__all__ = ["LoraSettings", "TrainRecipe", "load_train_recipe", "trainer_config_class"]

_TEMPLATE_FIELDS = {"thoughts", "response"}


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
    mode: Literal["sft", "dpo"]
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


def trainer_config_class(mode: str) -> type:
    """TRL's config class that a `mode` recipe's `trainer:` section goes to (and is checked against)."""
    from trl import DPOConfig, SFTConfig  # here: importing the recipe model (CLI help, schemas) needs no TRL

    return SFTConfig if mode == "sft" else DPOConfig


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
    for key in recipe.trainer:
        if key not in known:
            override = blamed_override(("trainer", key), overrides)
            line = lines.get(("trainer", key))
            where = f"--set {override[0]}" if override else f"{source}:{line}" if line else source
            raise AidsafeError(f"{where}: trainer.{key}: not a field of TRL's {config_class.__name__}")
        if key == "output_dir":
            raise AidsafeError(f"{source}: trainer.output_dir: set the output folder with --output instead")
