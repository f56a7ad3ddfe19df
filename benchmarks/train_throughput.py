"""Training throughput (tokens/s) and peak memory of one model under one training recipe.

    python benchmarks/train_throughput.py --model Qwen/Qwen2.5-7B-Instruct --recipe sft --steps 20
    python benchmarks/train_throughput.py --tiny /tmp/tiny --recipe guardreasoner-hsdpo --steps 10

It builds the same trainer `aidsafe train` builds (recipe, LoRA/QLoRA, loss variant), on `--data`
or on synthetic samples of a fixed length, runs `--steps` optimizer steps and reports tokens per
second over the steps after `--warmup` (the first steps allocate and warm caches). Tokens are
TRL's `num_tokens`: non-padding tokens seen, summed over processes, so under `accelerate launch`
the figure is for the whole job. Peak memory is the GPU's max allocated memory, or the process's
peak resident memory on CPU. `--tiny DIR` writes a small random Llama and tokenizer there first,
for a run with nothing to download.
"""

from __future__ import annotations

import argparse
import platform
import resource
import tempfile
import time
from pathlib import Path

WORDS = [
    "safety", "policy", "reasoning", "step", "the", "user", "asks", "for", "help", "with", "a", "recipe", "and",
    "answer", "follows",
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="Model folder or Hub id (or use --tiny).")
    parser.add_argument("--tiny", type=Path, help="Write a tiny random model to this folder and use it.")
    parser.add_argument("--recipe", default="sft", help="Training recipe: built-in name or YAML path.")
    parser.add_argument("--data", help="Training data as for `aidsafe train`; default: synthetic samples.")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2, help="Steps left out of the measurement (at least 1).")
    parser.add_argument("--samples", type=int, default=256, help="Synthetic samples.")
    parser.add_argument("--words", type=int, default=200, help="Words per synthetic answer.")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="Recipe override key=value.")
    args = parser.parse_args()
    if (args.model is None) == (args.tiny is None):
        parser.error("give exactly one of --model and --tiny")
    if not 1 <= args.warmup < args.steps:
        parser.error("need 1 <= --warmup < --steps")

    from transformers import TrainerCallback

    from aidsafe.train import build_trainer, load_train_data, load_train_recipe

    model = str(build_tiny_model(args.tiny) if args.tiny else args.model)
    fixed = [f"trainer.max_steps={args.steps}", "trainer.save_strategy=no", "trainer.logging_steps=1"]
    recipe = load_train_recipe(args.recipe, [*args.overrides, *fixed])
    if recipe.mode == "grpo" and not args.data:
        parser.error(f"--recipe {args.recipe} is a GRPO recipe: give --data (prompts and the gold columns it reads)")
    dataset = load_train_data(args.data, recipe) if args.data else synthetic(recipe.mode, args.samples, args.words)
    ends: list[float] = []  # when each optimizer step finished
    tokens: list[float] = []  # TRL's running token count, logged right after each step

    class Clock(TrainerCallback):
        def on_step_end(self, _args, state, control, **kwargs):
            ends.append(time.perf_counter())

        def on_log(self, _args, state, control, logs=None, **kwargs):
            if logs and "num_tokens" in logs:
                tokens.append(float(logs["num_tokens"]))

    with tempfile.TemporaryDirectory() as output:
        trainer = build_trainer(recipe, model, dataset, Path(output))
        trainer.add_callback(Clock())
        trainer.train()
    if not trainer.accelerator.is_main_process:
        return
    # From the end of the last warm-up step to the end of the last step.
    t0, t1 = ends[args.warmup - 1], ends[-1]
    n0, n1 = tokens[args.warmup - 1], tokens[-1]
    measured = len(ends) - args.warmup
    print(f"device: {device_name()}")
    print(f"model: {model}  recipe: {args.recipe} ({recipe.mode}, {'LoRA' if recipe.lora else 'full'})")
    print(f"steps measured: {measured}  tokens: {int(n1 - n0)}  time: {t1 - t0:.2f} s")
    print(f"throughput: {(n1 - n0) / (t1 - t0):,.0f} tokens/s")
    print(f"peak memory: {peak_memory()}")


def synthetic(mode: str, samples: int, words: int):
    """Conversational samples with `words`-word answers (the rejected answer is half as long)."""
    from datasets import Dataset

    def text(n: int, shift: int) -> str:
        return " ".join(WORDS[(i + shift) % len(WORDS)] for i in range(n))

    rows = []
    for i in range(samples):
        prompt = [{"role": "user", "content": f"Question {i}: " + text(24, i)}]
        answer = [{"role": "assistant", "content": text(words, i + 1)}]
        if mode == "sft":
            rows.append({"prompt": prompt, "completion": answer})
        else:
            rejected = [{"role": "assistant", "content": text(words // 2, i + 2)}]
            rows.append({"prompt": prompt, "chosen": answer, "rejected": rejected})
    return Dataset.from_list(rows)


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    model_name = next(
        (line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), platform.processor()
    )
    return f"CPU {model_name}, {torch.get_num_threads()} threads"


def peak_memory() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB GPU (max allocated)"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB CPU (peak resident, whole process)"


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []


def build_tiny_model(folder: Path) -> Path:
    """aidsafe's tiny random Llama, wider (hidden 64) and with a longer context than the tests'."""
    from aidsafe.testing.tiny_model import build_tiny_model as build

    return build(folder, hidden_size=64, vocab_size=512, max_positions=4096, corpus=[" ".join(WORDS)] * 8)


if __name__ == "__main__":
    main()
