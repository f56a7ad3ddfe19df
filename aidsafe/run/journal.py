"""The run directory: append-only results that double as the resume journal.

samples.jsonl and rejected.jsonl are written one whole line per `os.write` on an O_APPEND
descriptor, so a killed process leaves at most one partial last line, which `open` cuts off
(the item is then finished again from its checkpoint). An item id is in exactly one of the
two files.

Every line starts with the same keys, in this order, so that resuming a run of a million items
reads only those prefixes instead of parsing every record:

    samples.jsonl   {"id": ..., "input_sha": ..., <the record>}
    rejected.jsonl  {"id": ..., "input_sha": ..., "transient": ..., "reason": ..., <the rest>}

`input_sha` is `input_digest` of the item's input, so a rerun can tell that an id now names a
different input. Lines written by older versions (no such prefix) are parsed whole; their
digest is "" (unknown).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

import aidsafe
from aidsafe.errors import AidsafeError
from aidsafe.run.jsonl import (
    append_jsonl,
    atomic_file,
    complete_size,
    cut_partial_tail,
    last_line,
    line_spans,
    parse_line,
    write_atomic,
)
from aidsafe.run.recipe_diff import first_difference
from aidsafe.teacher.wire import hide_credentials

__all__ = ["RunDirectory", "JournalIndex", "RejectionInfo", "folder_name", "input_digest", "utc_now"]

_STRING = rb'"((?:[^"\\]|\\.)*)"'
_SAMPLE_PREFIX = re.compile(rb'\{"id": ' + _STRING + rb', "input_sha": "([0-9a-f]*)"')
_REJECTED_PREFIX = re.compile(
    rb'\{"id": ' + _STRING + rb', "input_sha": "([0-9a-f]*)", "transient": (true|false), "reason": ' + _STRING
)
_SQLITE_MAGIC = b"SQLite format 3\x00"


def folder_name(text: str, fallback: str) -> str:
    """A safe folder name made from `text` (a model name such as `org/model:tag`, or `..`): letters,
    digits, `.`, `_` and `-`, never starting or ending with a dot or dash, so never `.` or `..`;
    `fallback` when nothing is left."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or fallback


def utc_now() -> str:
    """Now, as an ISO 8601 UTC timestamp to the second (what run.json and records carry)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def input_digest(text: str) -> str:
    """A short stable digest of an item's input (for generation: the prompt text)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True)
class RejectionInfo:
    transient: bool
    reason: str
    digest: str


@dataclass
class JournalIndex:
    """Ids in the journal, without their records: what a resume needs to plan."""

    finished: dict[str, str] = field(default_factory=dict)  # id -> input digest
    rejected: dict[str, RejectionInfo] = field(default_factory=dict)


def _json_string(raw: bytes) -> str:
    return raw.decode("utf-8") if b"\\" not in raw else json.loads(b'"' + raw + b'"')


def _row_id(path: Path, number: int | str, row: dict[str, Any]) -> str:
    value = row.get("id")
    if not isinstance(value, str):
        raise AidsafeError(f"{path}:{number}: journal line without a string 'id'; expected a line aidsafe wrote")
    return value


class RunDirectory:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.samples_path = self.path / "samples.jsonl"
        self.rejected_path = self.path / "rejected.jsonl"
        self.stats_path = self.path / "stats.json"
        self.recipe_path = self.path / "recipe.yaml"
        self.run_info_path = self.path / "run.json"
        self.checkpoints_path = self.path / "checkpoints.sqlite"
        self.ids_path = self.path / "samples.ids.json"
        self._saved_mark: dict[str, Any] | None = None  # what the loaded samples.ids.json covers

    # -- before the first teacher call: look, write nothing ------------------------------------

    def check(self, recipe_hash: str, recipe: dict[str, Any] | None = None) -> None:
        """Refuse, in one line, a directory this run could not use. Reads only; writes nothing.
        `recipe`: the resolved recipe this run would store, so a refusal can name what changed."""
        try:
            self._check(recipe_hash, recipe)
        except OSError as exc:  # e.g. a parent we may not even look into
            raise AidsafeError(f"{self.path}: cannot be used as the run directory ({exc.strerror or exc})") from None

    def _files(self) -> tuple[Path, ...]:
        return (
            self.samples_path,
            self.rejected_path,
            self.run_info_path,
            self.checkpoints_path,
            self.stats_path,
            self.recipe_path,
            self.ids_path,
        )

    def _check(self, recipe_hash: str, recipe: dict[str, Any] | None) -> None:
        path = self.path
        if path.exists() and not path.is_dir():
            raise AidsafeError(f"{path}: exists and is not a directory; expected a run directory")
        if not path.exists():
            parent = next((p for p in path.absolute().parents if p.exists()), None)
            if parent is None or not parent.is_dir():
                raise AidsafeError(f"{path}: cannot be created: {parent} is not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise AidsafeError(f"{path}: cannot be created: {parent} is not writable")
            return
        if not os.access(path, os.W_OK | os.X_OK):
            raise AidsafeError(f"{path}: directory is not writable")
        for name in self._files():
            if name.exists() and not name.is_file():
                raise AidsafeError(f"{name}: exists and is not a file")
            if name.exists() and not os.access(name, os.R_OK | os.W_OK):
                raise AidsafeError(f"{name}: not readable and writable")
        self._check_checkpoints()
        stored = self._stored_hash()
        if stored is not None and stored != recipe_hash and self._holds_items():
            changed = self._what_changed(recipe)
            raise AidsafeError(
                f"{path}: made with a different recipe, policies or agents (hash {stored}, now {recipe_hash}"
                f"{': ' + changed if changed else ''}); use a new --output directory"
            )

    def _what_changed(self, recipe: dict[str, Any] | None) -> str | None:
        if recipe is None or not self.recipe_path.is_file():
            return None
        return first_difference(self.recipe_path.read_text(encoding="utf-8", errors="replace"), recipe)

    def _stored_hash(self) -> str | None:
        if not self.run_info_path.exists():
            return None
        try:
            info = json.loads(self.run_info_path.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise AidsafeError(
                f"{self.run_info_path}: not valid JSON ({getattr(exc, 'msg', exc)}); "
                "expected the run.json aidsafe wrote; use a new --output directory"
            ) from None
        stored = info.get("recipe_hash") if isinstance(info, dict) else None
        if not isinstance(stored, str):
            raise AidsafeError(
                f"{self.run_info_path}: expected a JSON object with a string 'recipe_hash'; "
                "use a new --output directory"
            )
        return stored

    def _stored_info(self) -> dict[str, Any]:
        try:
            info = json.loads(self.run_info_path.read_bytes())
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    def _check_checkpoints(self) -> None:
        # SQLite accepts an empty file as an empty database; anything else must carry its magic.
        if not self.checkpoints_path.exists():
            return
        with self.checkpoints_path.open("rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
        if head and head != _SQLITE_MAGIC:
            raise AidsafeError(
                f"{self.checkpoints_path}: not a SQLite database; delete it (unfinished samples then "
                "start over) or use a new --output directory"
            )

    def _holds_items(self) -> bool:
        """Whether either journal holds a complete line: an empty directory is never refused."""
        for journal in (self.samples_path, self.rejected_path):
            if journal.exists():
                with journal.open("rb") as handle:
                    for _ in line_spans(handle):
                        return True
        return False

    # -- after the pre-flight: create and write ------------------------------------------------

    def open(self, recipe_hash: str, resolved_recipe: dict[str, Any], kind: str | None = None) -> None:
        """Create the directory and its files; adopt it for this recipe if it holds no item yet.
        run.json records the recipe hash and the stage `kind` (aidsafe.kinds), which export,
        report and train read; a directory written before run.json held the kind gets it now.

        Call `check` first; this is called only once the pre-flight passed, so a failed
        pre-flight leaves nothing behind.
        """
        info = {"recipe_hash": recipe_hash, **({"kind": kind} if kind is not None else {})}
        now = {"aidsafe_version": aidsafe.__version__, "at": utc_now()}
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            stored = self._stored_hash()
            # Provenance: which aidsafe made the directory and when (unknown, so left out, for one
            # made before run.json said it), and which one wrote to it last.
            first = self._stored_info().get("created") if stored == recipe_hash else now
            info |= {**({"created": first} if first else {}), "last_run": now}
            if stored != recipe_hash:
                # `check` let a different hash through only with no item in the journals; the
                # checkpoints of that recipe's unfinished items must not be resumed by this one.
                for suffix in ("", "-wal", "-shm"):
                    Path(str(self.checkpoints_path) + suffix).unlink(missing_ok=True)
                write_atomic(
                    self.recipe_path,
                    hide_credentials(yaml.safe_dump(resolved_recipe, sort_keys=False, allow_unicode=True)),
                )
                write_atomic(self.run_info_path, json.dumps(info, indent=2) + "\n")
            else:  # resumed: the same identity, a later run (and the kind, for directories from before it)
                write_atomic(self.run_info_path, json.dumps({**self._stored_info(), **info}, indent=2) + "\n")
            for journal in (self.samples_path, self.rejected_path):
                journal.touch()
                cut_partial_tail(journal)
        except OSError as exc:
            raise AidsafeError(f"{self.path}: cannot write the run directory ({exc.strerror or exc})") from None

    # -- the journal ---------------------------------------------------------------------------

    def index(self) -> JournalIndex:
        """Ids of finished and rejected items, from line prefixes: no record is parsed whole.

        Finished ids come from samples.ids.json (see `save_index`) as far as it covers
        samples.jsonl, and from the lines appended after that. An unterminated last line is
        left out (`open` cuts it off).
        """
        finished, start = self._saved_ids()
        index = JournalIndex(finished=finished)
        for where, buf, begin, end in self._spans(self.samples_path, start):
            if (match := _SAMPLE_PREFIX.match(buf, begin, end)) is not None:
                index.finished[_json_string(match[1])] = match[2].decode("ascii")
            else:
                row = parse_line(self.samples_path, where, buf[begin:end])
                index.finished[_row_id(self.samples_path, where, row)] = str(row.get("input_sha", ""))
        for where, buf, begin, end in self._spans(self.rejected_path):
            if (match := _REJECTED_PREFIX.match(buf, begin, end)) is not None:
                info = RejectionInfo(match[3] == b"true", _json_string(match[4]), match[2].decode("ascii"))
                index.rejected[_json_string(match[1])] = info
            else:
                row = parse_line(self.rejected_path, where, buf[begin:end])
                transient, reason = bool(row.get("transient")), str(row.get("reason", ""))
                info = RejectionInfo(transient, reason, str(row.get("input_sha", "")))
                index.rejected[_row_id(self.rejected_path, where, row)] = info
        return index

    def save_index(self) -> None:
        """Write samples.ids.json: the finished ids and digests, and how much of samples.jsonl
        they cover, so the next `index` reads only lines appended since. Call it when nothing
        is appending (the end of a run); a stale or damaged file is ignored, never trusted."""
        mark = self.samples_mark()
        finished = self.index().finished
        if mark == self._saved_mark:
            return  # nothing appended since the saved ids were written: they are current
        write_atomic(self.ids_path, json.dumps({"samples.jsonl": mark, "finished": finished}, ensure_ascii=True))

    def _saved_ids(self) -> tuple[dict[str, str], int]:
        try:
            saved = json.loads(self.ids_path.read_bytes())
        except (OSError, ValueError):
            return {}, 0  # none yet, or damaged: scan the whole journal
        if not isinstance(saved, dict) or not isinstance(saved.get("finished"), dict):
            return {}, 0
        mark = saved.get("samples.jsonl")
        if not self.mark_holds(mark):
            return {}, 0
        self._saved_mark = mark
        return saved["finished"], mark["bytes"]

    def _spans(self, path: Path, start: int = 0, stop: int | None = None) -> Iterator[tuple[Any, bytes, int, int]]:
        """Non-blank complete lines from byte `start` to `stop`, each with where it is (for errors)."""
        if not path.exists():
            return
        with path.open("rb") as handle:
            handle.seek(start)
            offset = start
            for number, buf, begin, end in line_spans(handle):
                if stop is not None and offset >= stop:
                    return
                offset += end - begin + 1
                if begin == end or (buf[begin] in b" \t\r" and not buf[begin:end].strip()):
                    continue  # blank lines are no items
                yield (number if not start else f"{number} after byte {start}"), buf, begin, end

    def iter_samples(self, start: int = 0, stop: int | None = None) -> Iterator[dict[str, Any]]:
        """Finished records, one at a time (never the whole file in memory), from byte `start`
        to byte `stop` (line boundaries, such as the `bytes` of a `samples_mark`)."""
        for where, buf, begin, end in self._spans(self.samples_path, start, stop):
            yield parse_line(self.samples_path, where, buf[begin:end])

    def iter_rejected(self) -> Iterator[dict[str, Any]]:
        for where, buf, begin, end in self._spans(self.rejected_path):
            yield parse_line(self.rejected_path, where, buf[begin:end])

    def samples_mark(self) -> dict[str, Any]:
        """Where samples.jsonl's complete lines end, and the last one's id: saved with counters
        derived from the file, it lets the next run read only what was appended since."""
        if not self.samples_path.exists():
            return {"bytes": 0, "last_id": None}
        with self.samples_path.open("rb") as handle:
            end = complete_size(handle)
            return {"bytes": end, "last_id": self._line_id(last_line(handle, end - 1)) if end else None}

    def mark_holds(self, mark: Any) -> bool:
        """Whether samples.jsonl still begins with what `mark` covered (appends keep it; a file
        edited, truncated or replaced does not)."""
        if not isinstance(mark, dict) or not isinstance(mark.get("bytes"), int) or mark["bytes"] < 0:
            return False
        end = mark["bytes"]
        if end == 0:
            return mark.get("last_id") is None
        if not self.samples_path.exists():
            return False
        with self.samples_path.open("rb") as handle:
            if complete_size(handle) < end:
                return False
            handle.seek(end - 1)
            if handle.read(1) != b"\n":
                return False
            try:
                return self._line_id(last_line(handle, end - 1)) == mark.get("last_id")
            except AidsafeError:
                return False

    def _line_id(self, line: bytes) -> str:
        if (match := _SAMPLE_PREFIX.match(line)) is not None:
            return _json_string(match[1])
        return _row_id(self.samples_path, "end", parse_line(self.samples_path, "end", line))

    def forget_rejections(self, ids: set[str]) -> None:
        """Drop rejections that are about to be retried, so an item never sits in both files."""
        if not ids or not self.rejected_path.exists():
            return
        with atomic_file(self.rejected_path) as out:
            for number, buf, start, end in self._spans(self.rejected_path):
                match = _REJECTED_PREFIX.match(buf, start, end)
                if match is not None:
                    item = _json_string(match[1])
                else:
                    item = _row_id(self.rejected_path, number, parse_line(self.rejected_path, number, buf[start:end]))
                if item not in ids:
                    out.write(buf[start : end + 1])

    def append_sample(self, record: dict[str, Any], digest: str) -> None:
        head = {"id": record["id"], "input_sha": digest}
        append_jsonl(self.samples_path, head | {k: v for k, v in record.items() if k not in head})

    def append_rejected(self, entry: dict[str, Any], digest: str) -> None:
        head = {
            "id": entry["id"],
            "input_sha": digest,
            "transient": bool(entry.get("transient", False)),
            "reason": str(entry.get("reason", "")),
        }
        append_jsonl(self.rejected_path, head | {k: v for k, v in entry.items() if k not in head})
