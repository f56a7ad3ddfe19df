"""TRL configs from a recipe's `trainer:` section, with defaults that fit the hardware present.

The recipe's values always win. What we add when a key is absent, and why:
- `report_to: none`: no experiment tracker is contacted unless asked for;
- `bf16` only when a GPU supports it (TRL turns it on everywhere, which on CPU is slow);
- `dataloader_pin_memory: false` without a GPU (pinning needs one and warns otherwise);
- `ddp_find_unused_parameters: false` with LoRA: every adapter weight is used in every forward,
  and transformers would otherwise ask DDP for an extra graph traversal per step;
- activation checkpointing on (TRL's default), under the name the installed transformers uses:
  5.x renamed `gradient_checkpointing` and warns on the old name;
- for model loading: bf16 weights under a LoRA adapter on a bf16 GPU (the frozen base does not
  need fp32), and FlashAttention 2 when the flash-attn package is installed.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from pathlib import Path
from typing import Any

from aidsafe.errors import AidsafeError
from aidsafe.train.recipe import TrainRecipe, trainer_config_class

__all__ = ["build_trainer_config", "gpu_supports_bf16"]

# PyYAML follows YAML 1.1, which reads `1e-5` (no dot) as a string; TRL's dataclasses do not
# convert it, and the optimizer would fail on a string learning rate mid-setup.
_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def gpu_supports_bf16() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def build_trainer_config(recipe: TrainRecipe, output_dir: Path) -> Any:
    """SFTConfig, DPOConfig or GRPOConfig: the recipe's `trainer:` section plus hardware-aware defaults."""
    import torch

    config_class = trainer_config_class(recipe.mode)
    fields = {f.name for f in dataclasses.fields(config_class)}
    kwargs: dict[str, Any] = {key: _as_number(value) for key, value in recipe.trainer.items()}
    bf16 = gpu_supports_bf16()
    kwargs.setdefault("report_to", "none")
    if "fp16" not in kwargs:
        kwargs.setdefault("bf16", bf16)
    if not torch.cuda.is_available():
        kwargs.setdefault("dataloader_pin_memory", False)
    if recipe.lora is not None:
        kwargs.setdefault("ddp_find_unused_parameters", False)
    checkpointing = "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"
    if "activation_checkpointing" not in kwargs and "gradient_checkpointing" not in kwargs:
        kwargs[checkpointing] = True

    model_kwargs = dict(kwargs.get("model_init_kwargs") or {})
    if bf16 and recipe.lora is not None:
        model_kwargs.setdefault("dtype", "bfloat16")
    if bf16 and importlib.util.find_spec("flash_attn") is not None:
        model_kwargs.setdefault("attn_implementation", "flash_attention_2")
    if model_kwargs:
        kwargs["model_init_kwargs"] = model_kwargs

    try:
        return config_class(output_dir=str(output_dir), **kwargs)
    except (TypeError, ValueError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AidsafeError(f"trainer: TRL's {config_class.__name__} rejected the settings: {message}") from None


def _as_number(value: Any) -> Any:
    if isinstance(value, list):
        return [_as_number(item) for item in value]
    if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        return float(value)
    return value
