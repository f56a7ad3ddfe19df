"""`aidsafe train sft` and `aidsafe train dpo`.

Many GPUs: `accelerate launch --config_file recipes/accelerate/ddp.yaml -m aidsafe train sft ...`
runs this same command in every process (see docs/training.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(help="Fine-tune a model with TRL: SFT or DPO, LoRA or full.", no_args_is_help=True)

RecipeArg = Annotated[
    str,
    typer.Argument(
        metavar="RECIPE", help="Built-in training recipe (sft, dpo, guardreasoner-rsft, ...) or a YAML path."
    ),
]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Base model: a local folder or a Hugging Face model id.")]
DataOpt = Annotated[
    str,
    typer.Option(
        "--data",
        "-d",
        help="A run directory from `aidsafe generate`, a .jsonl/.parquet file, a saved dataset or a Hub id.",
    ),
]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="Folder for the adapter or model and its tokenizer.")]
SetOpt = Annotated[list[str], typer.Option("--set", help="Override a recipe field: key.path=value (repeatable).")]
MergeOpt = Annotated[
    bool, typer.Option("--merge", help="LoRA: write the merged full model to --output (adapter in adapter/).")
]


def _train(mode: str, recipe: str, model: str, data: str, output: Path, overrides: list[str], merge: bool) -> None:
    from rich.console import Console

    from aidsafe.train import load_train_recipe, train_model

    result = train_model(
        load_train_recipe(recipe, overrides, mode=mode), model=model, data=data, output=output, merge=merge
    )
    if result.main_process:
        on = f" on {result.processes} processes" if result.processes > 1 else ""
        summary = f"{mode}: {result.steps} steps{on}, final train loss {result.train_loss:.4f}; {result.data_summary}"
        Console(stderr=True).print(f"{summary}; {result.saved} -> {result.output_dir}", soft_wrap=True)


@app.command("sft")
def sft(
    recipe: RecipeArg,
    model: ModelOpt,
    data: DataOpt,
    output: OutputOpt,
    set_: SetOpt = [],  # noqa: B006 (typer reads the default)
    merge: MergeOpt = False,
) -> None:
    """Supervised fine-tuning (TRL SFTTrainer) on a generated corpus or prompt/completion data."""
    _train("sft", recipe, model, data, output, set_, merge)


@app.command("dpo")
def dpo(
    recipe: RecipeArg,
    model: ModelOpt,
    data: DataOpt,
    output: OutputOpt,
    set_: SetOpt = [],  # noqa: B006
    merge: MergeOpt = False,
) -> None:
    """Preference tuning (TRL DPOTrainer) on prompt/chosen/rejected pairs, optionally weighted."""
    _train("dpo", recipe, model, data, output, set_, merge)
