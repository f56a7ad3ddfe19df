"""Training data: the output directory of a stage, or a TRL-native dataset.

Accepted `--data`:
- the output directory of any stage whose kind (aidsafe.kinds) declares rows for the mode: its
  records, each made a TRL row by the kind's row function below:
  - generation (`aidsafe generate`), SFT: the user prompt and an assistant answer rendered with
    the recipe's `cot_template`;
  - GuardReasoner traces (`aidsafe generate guardreasoner`), SFT: plain-text prompt = instruction
    + "\n" + input, completion = output, no chat template, because `predict guard` sends exactly
    that text to /v1/completions;
  - ThinkGuard (`aidsafe generate thinkguard`), SFT: plain-text prompt/completion, the completion
    the critique or the label-only target by the recipe's `thinkguard_target`;
  - policy-guard (`aidsafe generate policy-guard`), SFT: TRL `messages` (the policy as the system
    message, the content, the answer) for the training recipe's `target` (full, rationale or
    verdict; full where the recipe says none) in its `rendering` (generic:
    `policy_format.target_messages`, what `aidsafe export --format policy-guard*` writes; harmony:
    `harmony.target_messages`); records held out for evaluation (`policy_bench.is_heldout` of
    their `source_id`, what `aidsafe eval guard RUN` scores) are left out;
  - pairs (`aidsafe pairs`), DPO: the user prompt and both sides rendered with `cot_template`; the
    belief is never part of the prompt;
  - hard-sample pairs (`aidsafe pairs hard-samples`), DPO: prompt/chosen/rejected text and the
    pair's `weight`;
  - GuardReasoner traces, GRPO: the same plain-text prompt, and `labels` (task -> gold label or
    None) for the GuardReasoner rewards;
  - policy-guard records, GRPO: the guard messages in the recipe's `rendering` (generic or harmony:
    policy and instruction as the system message, the content as the user message) and the
    record's `verdict` and `rules`; records held out for evaluation (`policy_bench.is_heldout` of
    their `source_id`, what `aidsafe eval guard RUN` scores) are left out;
- a .jsonl / .json / .parquet file, a folder written by `aidsafe export` (its default config's
  train split) or by `Dataset.save_to_disk`, or a Hub id
  `owner/name[:split]`, in TRL's own formats: `messages` or `prompt`/`completion` for SFT,
  `prompt`/`chosen`/`rejected` (plus an optional numeric `weight`) for DPO; for SFT also
  GuardReasoner's `instruction`/`input`/`output` (`aidsafe export --format guardreasoner`), read
  as prompt = instruction + "\n" + input and completion = output, the text the released models see;
  for GRPO `prompt` plus the columns the recipe's rewards read (`verdict`, `rules`, `labels`), or
  for the GuardReasoner rewards instruction/input/output, the gold labels read from the answer block.

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
from aidsafe.guard import harmony
from aidsafe.guard.formats import TASK_ORDER, TASKS, parse_gold
from aidsafe.guard.harmony import render_messages
from aidsafe.guard.policy_bench import is_heldout
from aidsafe.guard.policy_format import VERDICTS, target_messages
from aidsafe.kinds import KINDS, load_object, run_kind
from aidsafe.oneline import one_line
from aidsafe.sources import looks_like_hub_id

if TYPE_CHECKING:
    from datasets import Dataset

    from aidsafe.train.recipe import TrainRecipe

__all__ = [
    "critique_row",
    "format_pair",
    "format_sample",
    "format_trace",
    "generation_row",
    "hard_sample_row",
    "load_train_data",
    "pairs_row",
    "policy_guard_grpo_row",
    "policy_guard_row",
    "read_run_critiques",
    "read_run_pairs",
    "read_run_samples",
    "read_run_traces",
    "trace_grpo_row",
    "trace_row",
]

_DPO_COLUMNS = ("prompt", "chosen", "rejected")


def load_train_data(ref: str, recipe: TrainRecipe) -> Dataset:
    """The training set for `recipe.mode`, in the columns TRL's trainer expects."""
    path = Path(ref).expanduser()
    kind = run_kind(path) if path.is_dir() else None
    if kind is not None:
        dataset = _run_rows(ref, path, kind, recipe)
    else:
        dataset = _load_native(ref, path)
        if len(dataset) == 0:
            raise AidsafeError(f"{ref}: the dataset has no rows")
        if "id" in dataset.column_names:  # an export's provenance column: not a training input
            dataset = dataset.remove_columns("id")
    if recipe.mode == "grpo":
        return _check_grpo(dataset, ref, recipe)
    return _check_sft(dataset, ref) if recipe.mode == "sft" else _check_dpo(dataset, ref)


def _run_rows(ref: str, path: Path, name: str, recipe: TrainRecipe) -> Dataset:
    """A stage's output directory as rows, by its kind's row function for the recipe's mode."""
    kind = KINDS.get(name)
    if kind is None or recipe.mode not in kind.train:
        title = kind.title if kind is not None else name
        held = " and ".join(_HOLDS[mode] for mode in kind.train) if kind is not None and kind.train else ""
        raise AidsafeError(
            f"{ref}: a {title} run directory holds {held or 'no training data'}; {recipe.mode.upper()} needs a file "
            f"with {_COLUMNS[recipe.mode]}, or the output directory of a {_takers(recipe.mode)} run"
        )
    from datasets import Dataset

    row = load_object(kind.train[recipe.mode])
    records = _read_run(path / str(kind.records), name, "records")
    # A row function returns None for a record that is not training data (held out for evaluation).
    rows = [example for example in (row(record, recipe) for record in records) if example is not None]
    if not rows:
        raise AidsafeError(f"{ref}: all {len(records)} records are held out for evaluation; nothing to train on")
    return Dataset.from_list(rows)


_HOLDS = {"sft": "SFT targets", "dpo": "DPO pairs", "grpo": "GRPO prompts"}
_COLUMNS = {
    "sft": "messages or prompt and completion columns",
    "dpo": "prompt, chosen and rejected columns",
    "grpo": "a prompt column and the gold columns its rewards read",
}


def _takers(mode: str) -> str:
    """The kinds whose output directory `mode` trains on: "a, b or c"."""
    titles = [kind.title for kind in KINDS.values() if mode in kind.train]
    return ", ".join(titles[:-1]) + f" or {titles[-1]}" if len(titles) > 1 else titles[0]


def generation_row(record: dict[str, Any], recipe: TrainRecipe) -> dict[str, Any]:
    return format_sample(record, recipe.cot_template)


def trace_row(record: dict[str, Any], recipe: TrainRecipe) -> dict[str, Any]:
    return format_trace(record)


def critique_row(record: dict[str, Any], recipe: TrainRecipe) -> dict[str, Any]:
    return thinkguard_example(record, recipe.thinkguard_target)


def policy_guard_row(record: dict[str, Any], recipe: TrainRecipe) -> dict[str, Any] | None:
    # The target and rendering are the training recipe's (dual mode, as Nemotron ships; full and
    # generic where it names none); None for a record of the share held out for evaluation.
    if is_heldout(record["source_id"]):
        return None
    if recipe.rendering == "harmony":
        return {"messages": harmony.target_messages(record, recipe.target)}
    return {"messages": target_messages(record, recipe.target)}


def pairs_row(record: dict[str, Any], recipe: TrainRecipe) -> dict[str, Any]:
    return format_pair(record, recipe.cot_template)


def hard_sample_row(record: dict[str, Any], recipe: TrainRecipe) -> dict[str, Any]:
    # The text pairs as mined, and the hardness HS-DPO weighs each pair's DPO term by.
    return {key: record[key] for key in ("prompt", "chosen", "rejected", "weight")}


def trace_grpo_row(record: dict[str, Any], recipe: TrainRecipe) -> dict[str, Any]:
    # R-SFT's prompt text (GRPO continues from the R-SFT model) and the labels the trace states.
    labels = record.get("labels") or {}
    return {"prompt": format_trace(record)["prompt"], "labels": {task: labels.get(task) for task in TASK_ORDER}}


def policy_guard_grpo_row(record: dict[str, Any], recipe: TrainRecipe) -> dict[str, Any] | None:
    # The prompt in the recipe's rendering (the policy_* rewards read the answer it asks for) and the
    # judged verdict and rule ids; None for a record of the share held out for evaluation.
    if is_heldout(record["source_id"]):
        return None
    messages = render_messages(recipe.rendering, record["policy"]["text"], record["prompt"], record.get("response"))
    return {"prompt": messages, "verdict": record["verdict"], "rules": list(record["rules"])}


def read_run_samples(path: Path) -> list[dict[str, Any]]:
    """Records of a generation run's samples.jsonl (a cut-off last line from a killed run is skipped)."""
    return _read_run(path, "generation", "samples")


def read_run_traces(path: Path) -> list[dict[str, Any]]:
    """Records of a traces run's samples.jsonl, checked (a cut-off last line is skipped)."""
    return _read_run(path, "guardreasoner", "traces")


def format_trace(record: dict[str, Any]) -> dict[str, str]:
    """R-SFT's (instruction + input -> reasoning and answers), as the text the model will be sent."""
    return {"prompt": record["instruction"] + "\n" + record["input"], "completion": record["output"]}


def read_run_critiques(path: Path) -> list[dict[str, Any]]:
    """Records of a ThinkGuard run's samples.jsonl, both targets checked (a cut-off last line is skipped)."""
    return _read_run(path, "thinkguard", "critiques")


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
    patterns: list[str] = []
    for entry in (default or {}).get("data_files", []):
        if entry.get("split") == "train":  # the exact files (exports list them), or an older pattern
            patterns += entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
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


def _check_grpo(dataset: Dataset, ref: str, recipe: TrainRecipe) -> Dataset:
    """A prompt column and the gold columns the recipe's rewards read, each value checked: a wrong
    label would otherwise only show as a reward of 0 hours into training."""
    from aidsafe.train.rewards import REWARDS

    columns = dataset.column_names
    needed = sorted({column for name in recipe.rewards for column in REWARDS[name].columns})
    if "prompt" not in columns and "labels" in needed and {"instruction", "input", "output"} <= set(columns):
        dataset = dataset.map(_trace_file_row, with_indices=True, fn_kwargs={"ref": ref}, remove_columns=columns)
        columns = dataset.column_names
    missing = [column for column in ("prompt", *needed) if column not in columns]
    if missing:
        raise AidsafeError(
            f"{ref}: GRPO data for rewards {', '.join(recipe.rewards)} needs columns {', '.join(['prompt', *needed])}"
            f"; missing: {', '.join(missing)}; found: {', '.join(columns)}"
        )
    for column in needed:
        for index, value in enumerate(dataset[column]):
            problem = _GOLD_CHECKS[column](value)
            if problem:
                raise AidsafeError(f"{ref}: row {index}: {column} {problem}, got {one_line(repr(value), 80)}")
    return dataset


def _verdict_problem(value: Any) -> str | None:
    return None if value in VERDICTS else f"must be {' or '.join(VERDICTS)}"


def _rules_problem(value: Any) -> str | None:
    ok = isinstance(value, list) and all(isinstance(rule, str) for rule in value)
    return None if ok else "must be a list of rule ids (strings)"


def _labels_problem(value: Any) -> str | None:
    if isinstance(value, dict) and set(value) <= set(TASK_ORDER):
        if all(label is None or label in TASKS[task][1] for task, label in value.items()):
            # No gold label at all: no correctness reward, nothing to learn from the row.
            return None if any(label is not None for label in value.values()) else "names no gold label"
    return "must map " + ", ".join(f"{task} to {'|'.join(TASKS[task][1])} or null" for task in TASK_ORDER)


_GOLD_CHECKS = {"verdict": _verdict_problem, "rules": _rules_problem, "labels": _labels_problem}


def _trace_file_row(row: dict[str, Any], index: int, ref: str) -> dict[str, Any]:
    """A GuardReasoner instruction/input/output row (`aidsafe export --format guardreasoner`) as a
    GRPO prompt, its gold labels read from the output's answer block."""
    if "answers:" not in str(row["output"]).lower():
        raise AidsafeError(f"{ref}: row {index}: output: expected a GuardReasoner answer block (Answers: ...)")
    try:
        labels = {task: parse_gold(row["output"], task) for task in TASK_ORDER}
    except ValueError as exc:
        raise AidsafeError(f"{ref}: row {index}: output: {exc}") from None
    return {"prompt": format_trace(row)["prompt"], "labels": labels}


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
