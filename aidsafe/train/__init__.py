"""Fine-tune models on generated corpora with TRL: SFT, DPO, and the papers' loss variants.

Heavy libraries (torch, transformers, trl, peft) load inside the functions that need them, so
importing this package stays cheap. The trainer subclasses live in `aidsafe.train.losses`.
"""

from aidsafe.export.formats import DEFAULT_COT_TEMPLATE
from aidsafe.train.data import format_sample, load_train_data, read_run_samples
from aidsafe.train.recipe import LoraSettings, TrainRecipe, load_train_recipe
from aidsafe.train.run import TrainResult, build_trainer, merge_adapter, train_model

__all__ = [
    "DEFAULT_COT_TEMPLATE",
    "LoraSettings",
    "TrainRecipe",
    "TrainResult",
    "build_trainer",
    "format_sample",
    "load_train_data",
    "load_train_recipe",
    "merge_adapter",
    "read_run_samples",
    "train_model",
]
