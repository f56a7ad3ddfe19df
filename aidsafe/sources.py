"""Read prompts from JSONL, CSV, Parquet or a Hugging Face dataset, with stable sample ids.

Everything is read and checked before the first teacher call, so a bad line 9,000 of a file
fails the run at start, not after an hour of generation.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aidsafe.errors import AidsafeError
from aidsafe.run.jsonl import read_jsonl

__all__ = ["Prompt", "looks_like_hub_id", "read_prompts", "prompt_id"]


@dataclass(frozen=True)
class Prompt:
    id: str
    prompt: str


def prompt_id(prompt: str) -> str:
    """A stable id for a prompt without one: the same text always gets the same id."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]


def read_prompts(source: str, prompt_field: str = "prompt", id_field: str = "id") -> tuple[list[Prompt], int]:
    """All prompts in `source`, in order, and how many repeated an earlier prompt (skipped)."""
    path = Path(source).expanduser()
    if path.is_file():
        try:
            rows = _read_file(path, prompt_field, id_field)
        except UnicodeDecodeError:
            from aidsafe.config.yamlio import utf8_error

            raise utf8_error(path) from None
    elif path.exists():
        raise AidsafeError(f"{source}: is a directory; expected a .jsonl, .csv or .parquet file")
    elif looks_like_hub_id(source):
        rows = _read_hub(source, prompt_field, id_field)
    else:
        raise AidsafeError(f"{source}: file not found (and not a Hugging Face dataset id like owner/name)")
    return _to_prompts(rows, source, prompt_field, id_field)


def _read_file(path: Path, prompt_field: str, id_field: str) -> list[tuple[str, dict[str, Any]]]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json") or path.name.endswith(".jsonl.txt"):
        return _read_jsonl(path)
    if suffix == ".csv":
        return _read_csv(path)
    if suffix == ".parquet":
        return _read_parquet(path, prompt_field, id_field)
    raise AidsafeError(f"{path}: unsupported file type {suffix or '(none)'}; expected .jsonl, .csv or .parquet")


def _read_jsonl(path: Path) -> list[tuple[str, dict[str, Any]]]:
    rows = [(f"{path}:{number}", row) for number, row in read_jsonl(path)]
    if not rows:
        raise AidsafeError(f"{path}: no prompts (the file is empty)")
    return rows


def _read_csv(path: Path) -> list[tuple[str, dict[str, Any]]]:
    # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark, which would otherwise stick to
    # the first column's name ("\ufeffprompt").
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [(f"{path}:{number}", row) for number, row in enumerate(reader, start=2)]
    if not rows:
        raise AidsafeError(f"{path}: no prompts (no rows after the header)")
    return rows


def _read_parquet(path: Path, prompt_field: str, id_field: str) -> list[tuple[str, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
        # Only the columns we use: a corpus may carry responses or embeddings many times its prompts.
        table = pq.read_table(path, columns=_columns(names, str(path), prompt_field, id_field))
    except AidsafeError:
        raise
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise AidsafeError(f"{path}: cannot read Parquet ({exc})") from None
    return [(f"{path}: row {i}", row) for i, row in enumerate(table.to_pylist())]


def _columns(names: list[str], source: str, prompt_field: str, id_field: str) -> list[str]:
    if prompt_field not in names:
        raise AidsafeError(
            f"{source}: missing field {prompt_field!r} (fields: {', '.join(names) or 'none'}); "
            "choose one with --prompt-field"
        )
    return [prompt_field] + ([id_field] if id_field in names and id_field != prompt_field else [])


_FILE_SUFFIXES = frozenset({".jsonl", ".json", ".csv", ".tsv", ".parquet", ".arrow", ".txt", ".yaml", ".yml"})


def looks_like_hub_id(ref: str) -> bool:
    """Whether `ref` (already known not to exist locally) is a Hub id `owner/name[:split]`.

    Anything path-like is not: it starts with `.`, `/` or `~`, has more than one separator, or a
    file suffix; and `runs/nosuch` is not when `runs/` is a folder here (a mistyped path). Saying
    "not found" at once beats a long wait for the Hub to say the same.
    """
    name = ref.split(":", 1)[0]
    # Only data-file suffixes: Hub names have dots too (`Qwen/Qwen2.5-7B-Instruct`).
    if name.count("/") != 1 or name.startswith((".", "/", "~")) or Path(name).suffix.lower() in _FILE_SUFFIXES:
        return False
    if os.sep != "/" and os.sep in name:
        return False
    return not Path(name.split("/", 1)[0]).is_dir()


def _read_hub(source: str, prompt_field: str, id_field: str) -> list[tuple[str, dict[str, Any]]]:
    """`owner/name` or `owner/name:split` (default split: train)."""
    name, _, split = source.partition(":")
    import datasets

    try:
        dataset = datasets.load_dataset(name, split=split or "train")
    except Exception as exc:  # offline, gated, missing: all end the run before any teacher call
        raise AidsafeError(f"{source}: cannot load Hugging Face dataset ({type(exc).__name__}: {exc})") from None
    dataset = dataset.select_columns(_columns(dataset.column_names, source, prompt_field, id_field))
    return [(f"{source}: row {i}", row) for i, row in enumerate(dataset)]


def _to_prompts(
    rows: list[tuple[str, dict[str, Any]]], source: str, prompt_field: str, id_field: str
) -> tuple[list[Prompt], int]:
    prompts: list[Prompt] = []
    first_seen: dict[str, tuple[str, str]] = {}  # id -> (where, prompt)
    repeats = 0
    for where, row in rows:
        if prompt_field not in row:
            fields = ", ".join(map(str, row)) or "none"
            raise AidsafeError(
                f"{where}: missing field {prompt_field!r} (fields: {fields}); choose one with --prompt-field"
            )
        text = row[prompt_field]
        if not isinstance(text, str) or not text.strip():
            raise AidsafeError(f"{where}: field {prompt_field!r} must be a non-empty string")
        given = row.get(id_field)
        sample_id = str(given) if given not in (None, "") else prompt_id(text)
        if sample_id in first_seen:
            earlier, earlier_text = first_seen[sample_id]
            if earlier_text != text:
                raise AidsafeError(f"{where}: id {sample_id!r} was already used for another prompt at {earlier}")
            repeats += 1
            continue
        first_seen[sample_id] = (where, text)
        prompts.append(Prompt(sample_id, text))
    return prompts, repeats
