"""Rows from a local file or a Hugging Face dataset (`read_rows`), and prompts with stable ids.

`read_rows` is the one reader of "a .jsonl/.json/.csv/.parquet file or a Hub id" for every
command that takes one (prompts, guard sources, ThinkGuard conversations, guard and safety
benchmarks): one set of formats, one way of naming a row's place, one set of one-line errors.
Everything is read and checked before the first teacher call, so a bad line 9,000 of a file
fails the run at start, not after an hour of generation.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aidsafe.config.yamlio import regular_file
from aidsafe.errors import AidsafeError
from aidsafe.run.jsonl import read_jsonl

__all__ = ["Prompt", "hub_parts", "looks_like_hub_id", "prompt_id", "read_prompts", "read_rows"]

_EXPECTED = "a .jsonl, .json, .csv or .parquet file"
# Given a columnar source's column names and its place (path or Hub id), the columns to read.
ColumnChoice = Callable[[list[str], str], list[str]]


@dataclass(frozen=True)
class Prompt:
    id: str
    prompt: str


def prompt_id(prompt: str) -> str:
    """A stable id for a prompt without one: the same text always gets the same id."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]


def read_rows(
    ref: str,
    *,
    config: str | None = None,
    split: str = "train",
    columns: ColumnChoice | None = None,
    noun: str = "rows",
) -> list[tuple[str, dict[str, Any]]]:
    """(where, record) of every row of `ref`, in order: a file or a Hub id `owner/name[:config][:split]`.

    Files: `.jsonl` (also `.jsonl.txt`), `.json` (a JSON array of objects, or JSON Lines), `.csv`
    (UTF-8, a byte-order mark allowed; every value a string) and `.parquet`. `where` names the row
    for error messages: `path:line` (JSONL; CSV, whose header is line 1), `path: record i` (a JSON
    array), `path: row i` (Parquet) or `ref: row i` (Hub), all counted from 1 as lines are.
    `config` and `split` apply where the Hub id names none. `columns` chooses which columns of a
    Parquet file or Hub dataset to read (a corpus may carry responses or embeddings many times its
    prompts); it may raise to say one is missing. Every failure is one AidsafeError line naming
    the file, line or row; an input without rows is one too ("no {noun}").
    """
    path = Path(ref).expanduser()
    if path.exists():
        regular_file(path, _EXPECTED)  # a directory, a FIFO, a device: named as what it is
        kind, rows = _read_file(path, columns)
        place = str(path)
    elif looks_like_hub_id(ref):
        kind, rows, place = "hub", _read_hub(ref, config, split, columns), ref
    else:
        raise AidsafeError(
            f"{ref}: file not found (and not a Hugging Face dataset id like owner/name[:config][:split])"
        )
    if not rows:
        raise AidsafeError(f"{place}: no {noun} ({_EMPTY[kind]})")
    return rows


_EMPTY = {
    "jsonl": "the file is empty",
    "json": "the JSON array is empty",
    "csv": "no rows after the header",
    "parquet": "the table has no rows",
    "hub": "the split is empty",
}


def _read_file(path: Path, columns: ColumnChoice | None) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    kind = _file_kind(path)
    if kind == "jsonl":
        return kind, [(f"{path}:{number}", row) for number, row in read_jsonl(path)]  # its errors name the line
    if kind == "json":
        return kind, _read_json_array(path)
    if kind == "csv":
        return kind, _read_csv(path)
    return kind, _read_parquet(path, columns)


def _file_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".jsonl" or path.name.lower().endswith(".jsonl.txt"):
        return "jsonl"
    if suffix == ".json":
        # GuardReasoner's files are one JSON array; many `.json` files in the wild are JSON Lines.
        return "json" if _first_byte(path) == b"[" else "jsonl"
    if suffix in (".csv", ".parquet"):
        return suffix[1:]
    raise AidsafeError(f"{path}: unsupported file type {suffix or '(none)'}; expected .jsonl, .json, .csv or .parquet")


def _first_byte(path: Path) -> bytes:
    """The first byte that is not white space (b"" for a blank file), without reading it all."""
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 16):
            if stripped := chunk.lstrip():
                return stripped[:1]
    return b""


def _read_json_array(path: Path) -> list[tuple[str, dict[str, Any]]]:
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise AidsafeError(f"{path}: nested too deeply; expected a JSON array of objects") from None
    except UnicodeDecodeError:
        raise _utf8_error(path) from None
    except json.JSONDecodeError as exc:
        raise AidsafeError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    rows = [(f"{path}: record {i}", record) for i, record in enumerate(records, start=1)]
    for where, record in rows:
        if not isinstance(record, dict):
            raise AidsafeError(f"{where}: expected a JSON object, got {type(record).__name__}")
    return rows


def _read_csv(path: Path) -> list[tuple[str, dict[str, Any]]]:
    # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark, which would otherwise stick to
    # the first column's name ("\ufeffprompt").
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return [(f"{path}:{number}", row) for number, row in enumerate(csv.DictReader(handle), start=2)]
    except UnicodeDecodeError:
        raise _utf8_error(path) from None
    except csv.Error as exc:  # e.g. a field past csv's size limit: one line, not a traceback
        raise AidsafeError(f"{path}: not readable as CSV ({exc}); expected {_EXPECTED}") from None


def _read_parquet(path: Path, columns: ColumnChoice | None) -> list[tuple[str, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        wanted = columns(pq.read_schema(path).names, str(path)) if columns else None
        table = pq.read_table(path, columns=wanted)
    except AidsafeError:
        raise
    except Exception as exc:  # noqa: BLE001 (pyarrow raises several types for corrupt files)
        raise AidsafeError(f"{path}: cannot read Parquet ({_first_line(exc)})") from None
    return [(f"{path}: row {i}", row) for i, row in enumerate(table.to_pylist(), start=1)]


def hub_parts(ref: str, config: str | None = None, split: str = "train") -> tuple[str, str | None, str]:
    """(name, config, split) of `owner/name`, `owner/name:split` or `owner/name:config:split`;
    `config` and `split` are the defaults for the parts the id leaves out."""
    name, *rest = ref.split(":")
    if len(rest) >= 2:  # an empty config (`owner/name::split`) is no config, not the default one
        return name, rest[0] or None, ":".join(rest[1:]) or split
    return name, config, (rest[0] if rest and rest[0] else split)


def _read_hub(
    ref: str, config: str | None, split: str, columns: ColumnChoice | None
) -> list[tuple[str, dict[str, Any]]]:
    name, config, split = hub_parts(ref, config, split)
    import datasets

    try:
        # The config only when there is one: `load_dataset(name, split=...)` is the call of most cards.
        dataset = (
            datasets.load_dataset(name, split=split)
            if config is None
            else datasets.load_dataset(name, config, split=split)
        )
    except Exception as exc:  # noqa: BLE001 (offline, gated, missing, bad split: all end the run before any call)
        raise AidsafeError(
            f"{ref}: cannot load Hugging Face dataset ({type(exc).__name__}: {_first_line(exc)})"
        ) from None
    if columns:
        dataset = dataset.select_columns(columns(dataset.column_names, ref))
    return [(f"{ref}: row {i}", row) for i, row in enumerate(dataset, start=1)]


def _first_line(exc: Exception) -> str:
    """An exception's message cut to its first line: errors here are one line (datasets' often are not)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _utf8_error(path: Path) -> AidsafeError:
    from aidsafe.config.yamlio import utf8_error  # names the bad byte's line and offset in the file

    return utf8_error(path)


def read_prompts(source: str, prompt_field: str = "prompt", id_field: str = "id") -> tuple[list[Prompt], int]:
    """All prompts in `source` (see `read_rows`), in order, and how many repeated an earlier prompt (skipped)."""

    def choose(names: list[str], place: str) -> list[str]:
        if prompt_field not in names:
            raise AidsafeError(
                f"{place}: missing field {prompt_field!r} (fields: {', '.join(names) or 'none'}); "
                "choose one with --prompt-field"
            )
        return [prompt_field] + ([id_field] if id_field in names and id_field != prompt_field else [])

    return _to_prompts(read_rows(source, columns=choose, noun="prompts"), source, prompt_field, id_field)


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
