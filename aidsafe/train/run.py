"""Train: check everything that can be checked cheaply, build TRL's trainer, train, save, merge.

Order matters for the user's time: recipe, environment (GPU for QLoRA), data columns and the
tokenizer are checked before the model loads, so mistakes fail in seconds, not after minutes of
loading weights. Under `accelerate launch` every process runs this same function; TRL and
accelerate split the batches, and only the main process writes the merged model.
"""

from __future__ import annotations

import importlib.util
import math
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aidsafe.errors import AidsafeError
from aidsafe.train.config import build_trainer_config, gpu_supports_bf16
from aidsafe.train.data import load_train_data
from aidsafe.train.recipe import TrainRecipe

__all__ = ["TrainResult", "build_trainer", "merge_adapter", "train_model"]


@dataclass(frozen=True)
class TrainResult:
    output_dir: Path
    steps: int
    train_loss: float
    saved: str  # "adapter", "full model" or "merged model"
    processes: int  # how many processes trained together (accelerate launch)
    main_process: bool  # only the main process should report
    examples: int = 0  # examples given
    dropped: int = 0  # of them, dropped by TRL for max_length (see `_check_kept`)
    max_length: int | None = None
    # GRPO: each reward's mean over the logged steps (TRL's `rewards/NAME/mean`), in the recipe's order
    rewards: dict[str, float] = field(default_factory=dict)

    @property
    def rewards_summary(self) -> str:
        """GRPO's rewards for the summary line ("" for SFT and DPO)."""
        if not self.rewards:
            return ""
        shown = (f"{value:.3f}" if math.isfinite(value) else "n/a" for value in self.rewards.values())
        return "mean rewards " + ", ".join(f"{name} {value}" for name, value in zip(self.rewards, shown, strict=True))

    @property
    def data_summary(self) -> str:
        """The kept/dropped count, for the summary line."""
        if not self.dropped:
            return f"{self.examples} examples"
        return (
            f"{self.examples - self.dropped} of {self.examples} examples "
            f"({self.dropped} longer than max_length {self.max_length} dropped)"
        )


def train_model(
    recipe: TrainRecipe, model: str, data: str, output: Path, merge: bool = False, verbose: bool = False
) -> TrainResult:
    """Fine-tune `model` on `data` with `recipe`; write the result to `output`.

    A LoRA run writes the adapter and tokenizer to `output`; with `merge`, `output` gets the merged
    full model instead and the adapter goes to `output/adapter`. Full fine-tuning writes the model.
    Unless `verbose`, only the training bar and TRL's metrics show (see `_quiet`).
    """
    with _quiet(not verbose):
        return _train(recipe, model, data, output, merge)


@contextmanager
def _quiet(quiet: bool) -> Iterator[None]:
    """Hide what says nothing to the user: the libraries' FutureWarnings (deprecations inside
    transformers and TRL, printed with the path of a file in the venv) and the progress bars of
    dataset preparation, weight loading and saving ("Tokenizing train dataset", "Loading
    weights"). The training bar (transformers' ProgressCallback, plain tqdm) and the metrics stay.
    Everything is restored afterwards: a library caller's own settings are not changed."""
    if not quiet:
        yield
        return
    import datasets
    from transformers.utils import logging as transformers_logging

    datasets_bars = datasets.is_progress_bar_enabled()
    transformers_bars = transformers_logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    transformers_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        if datasets_bars:
            datasets.enable_progress_bars()
        if transformers_bars:
            transformers_logging.enable_progress_bar()


def _train(recipe: TrainRecipe, model: str, data: str, output: Path, merge: bool) -> TrainResult:
    if merge and recipe.lora is None:
        raise AidsafeError("--merge: this recipe fine-tunes the full model (no lora: section); nothing to merge")
    _check_model_ref(model)
    dataset = load_train_data(data, recipe)
    _check_model_exists(model)  # after the data: its errors are the more common mistake
    trainer = build_trainer(recipe, model, dataset, output)
    dropped = _check_kept(len(dataset), trainer)

    result = trainer.train()
    adapter_dir = output / "adapter" if merge else output
    if trainer.is_fsdp_enabled:  # gather the shards into one state dict before writing
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(str(adapter_dir))
    trainer.save_state()  # trainer_state.json: every logged step (loss; for GRPO each reward's mean)
    trainer.accelerator.wait_for_everyone()
    saved = "adapter" if recipe.lora is not None else "full model"
    if merge:
        if trainer.accelerator.is_main_process:
            merge_adapter(adapter_dir, output, trust_remote_code=trainer.args.trust_remote_code)
        trainer.accelerator.wait_for_everyone()
        saved = "merged model"
    return TrainResult(
        output_dir=output,
        steps=int(result.global_step),
        train_loss=float(result.training_loss),
        saved=saved,
        processes=trainer.accelerator.num_processes,
        main_process=trainer.accelerator.is_main_process,
        examples=len(dataset),
        dropped=dropped,
        max_length=getattr(trainer.args, "max_length", None),
        rewards=_logged_rewards(trainer.state.log_history),
    )


_REWARD_KEY = re.compile(r"rewards/(?P<name>.+)/mean")


def _logged_rewards(log_history: list[dict[str, Any]]) -> dict[str, float]:
    """Each reward's mean over the steps TRL logged it; NaN for a reward that never applied (TRL
    logs NaN for a step where it applied to no completion, e.g. rule F1 on allowed rows only)."""
    values: dict[str, list[float]] = {}
    for entry in log_history:
        for key, value in entry.items():
            match = _REWARD_KEY.fullmatch(key)
            if match and isinstance(value, (int, float)):
                values.setdefault(match["name"], [])
                if math.isfinite(value):
                    values[match["name"]].append(float(value))
    return {name: sum(logged) / len(logged) if logged else math.nan for name, logged in values.items()}


def _check_kept(given: int, trainer: Any) -> int:
    """How many examples TRL dropped while preparing the data: with `max_length`, an example whose
    prompt alone fills it has no answer token left to learn from (SFT's completion-only loss, DPO),
    and is filtered out. None left is one line here, not a sampler's `num_samples=0` traceback."""
    try:
        kept = len(trainer.train_dataset)
    except TypeError:  # an iterable dataset: no count before it is read
        return 0
    dropped = given - kept
    if not kept and given:
        max_length = getattr(trainer.args, "max_length", None)
        raise AidsafeError(
            f"{dropped} of {given} examples are longer than max_length {max_length} and were dropped; "
            "raise trainer.max_length (e.g. --set trainer.max_length=4096)"
        )
    return dropped


def build_trainer(recipe: TrainRecipe, model: str, dataset: Any, output: Path) -> Any:
    """TRL's trainer for `recipe`: its config, the tokenizer, LoRA or QLoRA, and the loss variant
    the recipe and data ask for. The model loads inside the trainer, after every cheap check."""
    from peft import LoraConfig
    from trl import DPOTrainer, GRPOTrainer, SFTTrainer

    from aidsafe.train.losses import LabelWeightedSFTTrainer, WeightedDPOTrainer, check_weighted_dpo

    quantization = _quantization_config(recipe)
    config = build_trainer_config(recipe, output)
    weighted = recipe.mode == "dpo" and "weight" in dataset.column_names
    if weighted:
        check_weighted_dpo(config)
    tokenizer = _load_tokenizer(model, config, dataset)

    peft_config = None
    if recipe.lora is not None:
        peft_config = LoraConfig(
            r=recipe.lora.r,
            lora_alpha=recipe.lora.alpha,
            lora_dropout=recipe.lora.dropout,
            target_modules=recipe.lora.target_modules,
            task_type="CAUSAL_LM",
        )
    common: dict[str, Any] = {
        "model": model,
        "args": config,
        "train_dataset": dataset,
        "processing_class": tokenizer,
        "peft_config": peft_config,
        "quantization_config": quantization,
    }
    if recipe.mode == "grpo":
        from aidsafe.train.rewards import reward_functions

        _check_generation_batch(len(dataset), config)

        rewards = reward_functions(
            recipe.rewards,
            format_gate=recipe.format_gate,
            expect_reasoning=recipe.target != "verdict",
            rendering=recipe.rendering,
        )
        return GRPOTrainer(reward_funcs=rewards, **common)
    if recipe.mode == "sft":
        if recipe.label_weight != 1.0:
            return LabelWeightedSFTTrainer(
                label_weight=recipe.label_weight, label_pattern=recipe.label_pattern, **common
            )
        return SFTTrainer(**common)
    if weighted:
        return WeightedDPOTrainer(**common)
    return DPOTrainer(**common)


def _check_generation_batch(prompts: int, config: Any) -> None:
    """GRPO samples whole generation batches of distinct prompts and skips an epoch's remainder
    (TRL's RepeatSampler): fewer prompts than one batch would train 0 steps, or fail in the
    sampler, so say it before the model loads."""
    per_batch = config.generation_batch_size // config.num_generations
    if prompts < per_batch:
        raise AidsafeError(
            f"{prompts} prompts, but each generation batch takes {per_batch} (trainer.generation_batch_size "
            f"{config.generation_batch_size} completions / num_generations {config.num_generations}; by default "
            "per_device_train_batch_size x gradient_accumulation_steps x processes completions); give more "
            "prompts or lower trainer.per_device_train_batch_size or trainer.gradient_accumulation_steps"
        )


def merge_adapter(adapter_dir: Path, output: Path, trust_remote_code: bool = False) -> None:
    """Fold a LoRA adapter into a fresh copy of its base model and save model + tokenizer.

    The base is reloaded unquantized from its original path, so a QLoRA adapter merges into
    full-precision weights rather than into the 4-bit ones it was trained against.
    """
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    remote = {"trust_remote_code": trust_remote_code}
    model = AutoPeftModelForCausalLM.from_pretrained(str(adapter_dir), dtype="auto", **remote)
    model.merge_and_unload().save_pretrained(str(output))
    AutoTokenizer.from_pretrained(str(adapter_dir), **remote).save_pretrained(str(output))


def _check_model_ref(model: str) -> None:
    path = Path(model).expanduser()
    if (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
        raise AidsafeError(
            f"--model {model}: this folder holds a LoRA adapter, not a full model; train with --merge to "
            "write the merged model, and pass that folder"
        )


def _check_model_exists(model: str) -> None:
    """A missing path-like `--model` is "no such folder" now, not the Hub's "Repo id must use
    alphanumeric chars" after the trainer starts loading."""
    path_like = model.startswith((".", "/", "~")) or model.count("/") > 1
    if path_like and not Path(model).expanduser().exists():
        raise AidsafeError(f"--model {model}: no such folder (a local model folder, or a Hub id like owner/name)")


def _quantization_config(recipe: TrainRecipe) -> Any:
    if recipe.quantization != "4bit":
        return None
    import torch

    if not torch.cuda.is_available():
        raise AidsafeError("quantization: 4bit (QLoRA) needs a CUDA GPU and none is visible; set quantization: none")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise AidsafeError("quantization: 4bit (QLoRA) needs bitsandbytes: pip install bitsandbytes")
    from transformers import BitsAndBytesConfig

    # NF4 with double quantization, as in the QLoRA paper; compute in bf16 where the GPU has it.
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if gpu_supports_bf16() else torch.float16,
    )


def _load_tokenizer(model: str, config: Any, dataset: Any) -> Any:
    from transformers import AutoTokenizer
    from trl.data_utils import is_conversational

    init_kwargs = config.model_init_kwargs or {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            model, revision=init_kwargs.get("revision"), trust_remote_code=config.trust_remote_code
        )
    except (OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AidsafeError(f"--model {model}: cannot load its tokenizer ({first_line})") from None
    has_template = tokenizer.chat_template is not None or getattr(config, "chat_template_path", None)
    if is_conversational(dataset[0]) and not has_template:
        raise AidsafeError(
            f"--model {model}: the data is conversational but the tokenizer has no chat template; use an "
            "instruct model, or set trainer.chat_template_path (SFT)"
        )
    return tokenizer
