"""`aidsafe train sft`, `aidsafe train dpo` and `aidsafe train grpo`.

Many GPUs: `accelerate launch --config_file recipes/accelerate/ddp.yaml -m aidsafe train sft ...`
runs this same command in every process (see docs/training.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aidsafe.terminal import say

__all__ = ["app"]

app = typer.Typer(help="Fine-tune a model with TRL: SFT, DPO or GRPO, LoRA or full.", no_args_is_help=True)

RecipeArg = Annotated[
    str,
    typer.Argument(
        metavar="RECIPE", help="Built-in training recipe (sft, dpo, guardreasoner-rsft, ...) or a YAML path."
    ),
]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Base model: a local folder or a Hugging Face model id.")]


def _data_option(mode: str) -> typer.Option:
    """--data, naming the commands whose output trains in `mode` (aidsafe.kinds says which)."""
    from aidsafe.kinds import KINDS

    makers = ", ".join(dict.fromkeys(f"`{kind.command}`" for kind in KINDS.values() if mode in kind.train))
    return typer.Option(
        "--data", "-d", help=f"The output of {makers}, a .jsonl/.parquet file, a saved dataset or a Hub id."
    )


OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="Folder for the adapter or model and its tokenizer.")]
SetOpt = Annotated[list[str], typer.Option("--set", help="Override a recipe field: key.path=value (repeatable).")]
MergeOpt = Annotated[
    bool, typer.Option("--merge", help="LoRA: write the merged full model to --output (adapter in adapter/).")
]
VerboseOpt = Annotated[
    bool,
    typer.Option("--verbose", "-v", help="Also show the libraries' deprecation warnings and data-preparation bars."),
]


def _train(
    mode: str, recipe: str, model: str, data: str, output: Path, overrides: list[str], merge: bool, verbose: bool
) -> None:

    from aidsafe.kinds import recipe_for
    from aidsafe.train import load_train_recipe, train_model

    recipe_for(recipe, "aidsafe train sft|dpo|grpo")  # a generation or pairs recipe here names its own command
    result = train_model(
        load_train_recipe(recipe, overrides, mode=mode),
        model=model,
        data=data,
        output=output,
        merge=merge,
        verbose=verbose,
    )
    if result.main_process:
        on = f" on {result.processes} processes" if result.processes > 1 else ""
        summary = f"{mode}: {result.steps} steps{on}, final train loss {result.train_loss:.4f}; {result.data_summary}"
        rewards = f"; {result.rewards_summary}" if result.rewards else ""
        say(f"{summary}{rewards}; {result.saved} -> {result.output_dir}")


@app.command("sft")
def sft(
    recipe: RecipeArg,
    model: ModelOpt,
    data: Annotated[str, _data_option("sft")],
    output: OutputOpt,
    set_: SetOpt = [],  # noqa: B006 (typer reads the default)
    merge: MergeOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Supervised fine-tuning (TRL SFTTrainer) on a generated corpus or prompt/completion data."""
    _train("sft", recipe, model, data, output, set_, merge, verbose)


@app.command("dpo")
def dpo(
    recipe: RecipeArg,
    model: ModelOpt,
    data: Annotated[str, _data_option("dpo")],
    output: OutputOpt,
    set_: SetOpt = [],  # noqa: B006
    merge: MergeOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Preference tuning (TRL DPOTrainer) on prompt/chosen/rejected pairs, optionally weighted."""
    _train("dpo", recipe, model, data, output, set_, merge, verbose)


@app.command("grpo")
def grpo(
    recipe: RecipeArg,
    model: ModelOpt,
    data: Annotated[str, _data_option("grpo")],
    output: OutputOpt,
    set_: SetOpt = [],  # noqa: B006
    merge: MergeOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Reinforcement learning (TRL GRPOTrainer) on guard prompts, rewarded by parsing the answers (no judge)."""
    _train("grpo", recipe, model, data, output, set_, merge, verbose)
