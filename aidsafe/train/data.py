"""Training data: a run directory from `aidsafe generate`, or a TRL-native dataset.

Accepted `--data`:
- a run directory (it holds samples.jsonl): each sample becomes a user prompt and an assistant
  answer rendered with the recipe's `cot_template` (SFT only);
- a GuardReasoner traces run directory (`aidsafe generate guardreasoner`; records hold
  `instruction`/`input`/`output`): plain-text prompt = instruction + "\n" + input, completion =
  output, no chat template, because `predict guard` sends exactly that text to /v1/completions
  (SFT only);
- a pairs run directory (`aidsafe pairs`): each pair becomes the user prompt and both sides
  rendered with `cot_template` (DPO only); the belief is never part of the prompt;
- a ThinkGuard run directory (`aidsafe generate thinkguard`): plain-text prompt/completion, the
  completion the critique or the label-only target by the recipe's `thinkguard_target` (SFT only);
- a .jsonl / .json / .parquet file, a folder written by `aidsafe export` (its default config's
  train split) or by `Dataset.save_to_disk`, or a Hub id
  `owner/name[:split]`, in TRL's own formats: `messages` or `prompt`/`completion` for SFT,
  `prompt`/`chosen`/`rejected` (plus an optional numeric `weight`) for DPO; for SFT also
  GuardReasoner's `instruction`/`input`/`output` (`aidsafe export --format guardreasoner`), read
  as prompt = instruction + "\n" + input and completion = output, the text the released models see.

Columns are checked here, before any model loads, so a wrong file fails in seconds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aidsafe.errors import AidsafeError
from aidsafe.export.formats import cot_answer, thinkguard_example
from aidsafe.export.formats import preference_row as format_pair  # one rendering for export and train
from aidsafe.export.kinds import iter_records
from aidsafe.run.jsonl import read_jsonl
from aidsafe.sources import looks_like_hub_id

if TYPE_CHECKING:
    from datasets import Dataset

    from aidsafe.train.recipe import TrainRecipe

__all__ = [
    "format_pair",
    "format_sample",
    "format_trace",
    "load_train_data",
    "read_run_critiques",
    "read_run_pairs",
    "read_run_samples",
    "read_run_traces",
]

_DPO_COLUMNS = ("prompt", "chosen", "rejected")
_TRACE_COLUMNS = ("instruction", "input", "output")


def load_train_data(ref: str, recipe: TrainRecipe) -> Dataset:
    """The training set for `recipe.mode`, in the columns TRL's trainer expects."""
    path = Path(ref).expanduser()
    if path.is_dir() and (path / "samples.jsonl").is_file() and _first_has(path / "samples.jsonl", "output_label_only"):
        if recipe.mode != "sft":
            raise AidsafeError(f"{ref}: a ThinkGuard run directory holds SFT targets; DPO needs pairs")
        from datasets import Dataset

        critiques = read_run_critiques(path / "samples.jsonl")
        return Dataset.from_list([thinkguard_example(c, recipe.thinkguard_target) for c in critiques])
    if path.is_dir() and (path / "samples.jsonl").is_file() and _holds_pairs(path / "samples.jsonl"):
        if recipe.mode != "dpo":
            raise AidsafeError(
                f"{ref}: a pairs run directory holds DPO pairs; SFT needs the generation run's directory"
            )
        from datasets import Dataset

        pairs = read_run_pairs(path / "samples.jsonl")
        return Dataset.from_list([format_pair(p, recipe.cot_template) for p in pairs])
    if path.is_dir() and (path / "samples.jsonl").is_file() and _holds_traces(path / "samples.jsonl"):
        if recipe.mode == "dpo":
            raise AidsafeError(
                f"{ref}: a GuardReasoner traces run directory holds SFT targets; DPO needs the pairs file "
                "of `aidsafe pairs hard-samples` (pairs.jsonl)"
            )
        from datasets import Dataset

        return Dataset.from_list([format_trace(t) for t in read_run_traces(path / "samples.jsonl")])
    if path.is_dir() and (path / "samples.jsonl").is_file():
        if recipe.mode == "dpo":
            raise AidsafeError(
                f"{ref}: a generation run directory holds SFT samples; DPO needs a file with prompt, chosen "
                "and rejected columns"
            )
        from datasets import Dataset

        samples = read_run_samples(path / "samples.jsonl")
        return Dataset.from_list([format_sample(s, recipe.cot_template) for s in samples])
    dataset = _load_native(ref, path)
    if len(dataset) == 0:
        raise AidsafeError(f"{ref}: the dataset has no rows")
    return _check_sft(dataset, ref) if recipe.mode == "sft" else _check_dpo(dataset, ref)


def read_run_samples(path: Path) -> list[dict[str, Any]]:
    """Records of a generation run's samples.jsonl (a cut-off last line from a killed run is skipped)."""
    return _read_run(path, "generation", "samples")


def _holds_traces(path: Path) -> bool:
    """Whether samples.jsonl is a `generate guardreasoner` run's (GuardReasonerTrain records)."""
    for _, record in read_jsonl(path, skip_partial_tail=True):
        return all(key in record for key in _TRACE_COLUMNS)
    return False


def read_run_traces(path: Path) -> list[dict[str, Any]]:
    """Records of a traces run's samples.jsonl, checked (a cut-off last line is skipped)."""
    return _read_run(path, "guardreasoner", "traces")


def format_trace(record: dict[str, Any]) -> dict[str, str]:
    """R-SFT's (instruction + input -> reasoning and answers), as the text the model will be sent."""
    return {"prompt": record["instruction"] + "\n" + record["input"], "completion": record["output"]}


def read_run_critiques(path: Path) -> list[dict[str, Any]]:
    """Records of a ThinkGuard run's samples.jsonl, both targets checked (a cut-off last line is skipped)."""
    return _read_run(path, "thinkguard", "critiques")


def _first_has(path: Path, key: str) -> bool:
    """Whether the first record of samples.jsonl has `key` (which stage wrote the run)."""
    for _, record in read_jsonl(path, skip_partial_tail=True):
        return key in record
    return False


def _holds_pairs(path: Path) -> bool:
    """Whether samples.jsonl is a pairs run's (its first record has chosen and rejected sides)."""
    for _, record in read_jsonl(path, skip_partial_tail=True):
        return "chosen" in record and "rejected" in record
    return False


def read_run_pairs(path: Path) -> list[dict[str, Any]]:
    """Records of a pairs run's samples.jsonl, each side checked (a cut-off last line is skipped)."""
    return _read_run(path, "pairs", "pairs")


def _read_run(path: Path, kind: str, noun: str) -> list[dict[str, Any]]:
    # The export reads every kind's records with the same checks (aidsafe.export.kinds).
    records = list(iter_records(path, kind))
    if not records:
        raise AidsafeError(f"{path}: no {noun} yet")
    return records


def format_sample(record: dict[str, Any], cot_template: str) -> dict[str, list[dict[str, str]]]:
    """One sample as a conversational prompt/completion pair: thoughts joined by newlines in the template."""
    # The same rendering `aidsafe export --format sft` writes, so both paths train on one text.
    return {
        "prompt": [{"role": "user", "content": record["prompt"]}],
        "completion": [{"role": "assistant", "content": cot_answer(record, cot_template)}],
    }


def _load_native(ref: str, path: Path) -> Dataset:
    if not path.exists() and not looks_like_hub_id(ref):
        # Before importing datasets: a missing local path must not become a Hub request.
        raise AidsafeError(f"{ref}: no such file or folder, and not a Hugging Face dataset id like owner/name")
    import datasets

    try:
        if path.is_file():
            loader = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}.get(path.suffix.lower())
            if loader is None:
                suffix = path.suffix or "(none)"
                raise AidsafeError(f"{ref}: unsupported file type {suffix}; expected .jsonl, .json or .parquet")
            return datasets.load_dataset(loader, data_files=str(path), split="train")
        if path.is_dir() and (path / "export.json").is_file():  # `aidsafe export`: its default config
            return _read_export(path)
        if path.is_dir():
            if not any((path / name).is_file() for name in ("state.json", "dataset_dict.json")):
                raise AidsafeError(
                    f"{ref}: neither a run directory (no samples.jsonl) nor a dataset saved with save_to_disk"
                )
            loaded = datasets.load_from_disk(str(path))
            if isinstance(loaded, datasets.DatasetDict):
                if "train" not in loaded:
                    raise AidsafeError(f"{ref}: the saved dataset has no train split (splits: {', '.join(loaded)})")
                loaded = loaded["train"]
            return loaded
        name, _, split = ref.partition(":")
        return datasets.load_dataset(name, split=split or "train")
    except AidsafeError:
        raise
    except Exception as exc:  # noqa: BLE001 (datasets raises many types: offline, bad JSON, bad Parquet)
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise AidsafeError(f"{ref}: cannot load the dataset ({type(exc).__name__}: {first_line})") from None


def _read_export(path: Path) -> Dataset:
    """The train split of an export folder's default config, read from its Parquet shards.

    Not through `load_dataset(folder)`: datasets (5.2) keys its cache of a local folder on the
    folder's name and configs, not on its files, so another export in a folder of the same name,
    or a re-export, would come back as the rows (and columns) cached before."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Dataset
    from huggingface_hub import DatasetCard

    configs = DatasetCard.load(path / "README.md").data.to_dict().get("configs", [])
    default = next((c for c in configs if c.get("default")), configs[0] if configs else None)
    patterns = [f["path"] for f in (default or {}).get("data_files", []) if f.get("split") == "train"]
    shards = sorted(p for pattern in patterns for p in path.glob(pattern))
    if not shards:
        raise AidsafeError(f"{path}: the export's default config has no train split Parquet files")
    return Dataset(pa.concat_tables([pq.read_table(p) for p in shards]))


def _check_sft(dataset: Dataset, ref: str) -> Dataset:
    columns = dataset.column_names
    if "messages" in columns:
        # Train on the last assistant turn only: the user turns of a safety corpus are often the
        # harmful requests themselves, which the model must not learn to write. TRL masks the
        # prompt for prompt/completion data (`completion_only_loss`), so split the conversation.
        return dataset.map(_split_last_turn, with_indices=True, fn_kwargs={"ref": ref}, remove_columns=["messages"])
    if "prompt" in columns and "completion" in columns:
        return dataset
    if {"instruction", "input", "output"} <= set(columns):
        return dataset.map(format_trace, remove_columns=columns)
    raise AidsafeError(
        f"{ref}: SFT data needs a messages column, prompt and completion columns, or instruction, input and "
        f"output columns; found: {', '.join(columns)}"
    )


def _split_last_turn(row: dict[str, Any], index: int, ref: str) -> dict[str, Any]:
    messages = row["messages"]
    if not isinstance(messages, list) or len(messages) < 2 or not isinstance(messages[-1], dict):
        raise AidsafeError(f"{ref}: row {index}: messages must be a list of at least two {{role, content}} turns")
    if messages[-1].get("role") != "assistant":
        raise AidsafeError(f"{ref}: row {index}: the last message must be the assistant's answer")
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def _check_dpo(dataset: Dataset, ref: str) -> Dataset:
    columns = dataset.column_names
    missing = [c for c in _DPO_COLUMNS if c not in columns]
    if missing:
        raise AidsafeError(
            f"{ref}: DPO data needs columns prompt, chosen, rejected; missing: {', '.join(missing)}; "
            f"found: {', '.join(columns)}"
        )
    if "belief" in columns:  # `export --keep-beliefs`: kept for audit, never shown to the trainer
        dataset = dataset.remove_columns("belief")
    if "weight" in columns:
        for index, value in enumerate(dataset["weight"]):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise AidsafeError(f"{ref}: row {index}: weight must be a finite number >= 0, got {value!r}")
    return dataset
