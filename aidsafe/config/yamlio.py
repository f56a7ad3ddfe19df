"""Load YAML config files into pydantic models with errors that name the file, line and key.

One dialect for every file and every `--set` value: YAML 1.2's core schema (`Yaml12Loader`).
PyYAML alone speaks YAML 1.1, where `save_strategy: no` is False, `on` is True, `9e-1` is a string
and `2024-01-01` a date; in 1.2 those are the word, the word, a float and a string, which is what
people mean. Anchors and aliases (`&name` / `*name`, and `<<: *name` merges) are ordinary YAML
(recipes repeat sampling settings; `yaml.safe_dump` writes them for a repeated value); what they
expand to is bounded (`MAX_EXPANDED_NODES`, `MAX_EXPANDED_CHARS`), so an alias bomb ("billion
laughs") is refused at once instead of expanding for minutes.

Every file is checked before it is parsed (a regular file, at most `MAX_CONFIG_BYTES`) and while it
is composed (nesting at most `MAX_DEPTH`, no key twice in one mapping): each refusal is one line
naming the file and line.

PyYAML's composer keeps a start mark on every node; we walk the node tree once to map each key
path to its line, so a pydantic error at `("teacher", "timeout_s")` can say
`recipe.yaml:12: teacher.timeout_s: ...`. A key set by `--set` is blamed on that `--set` instead.
"""

from __future__ import annotations

import codecs
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from aidsafe.errors import AidsafeError

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_DEPTH",
    "MAX_EXPANDED_CHARS",
    "MAX_EXPANDED_NODES",
    "Yaml12Loader",
    "regular_file",
    "blamed_override",
    "load_yaml",
    "read_text",
    "utf8_error",
    "parse_yaml_text",
    "validate_model",
    "format_validation_error",
    "key_lines",
    "register_config_model",
]

M = TypeVar("M", bound=BaseModel)

# Far above any real config (the largest built-in file is a few KB, nesting under 10), far below
# what would take seconds to parse or overflow the parser's stack.
MAX_CONFIG_BYTES = 8 << 20
MAX_DEPTH = 64
MAX_EXPANDED_NODES = 100_000
MAX_EXPANDED_CHARS = 32 << 20


class _TooDeep(yaml.composer.ComposerError):
    """Not a syntax error: said as what it is."""


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core schema scalars, and a bound on nesting (PyYAML's composer
    recurses per level: 10^5 levels were a RecursionError traceback)."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep(
                    None, None, f"nested too deeply (more than {MAX_DEPTH} levels)", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


# The core schema's scalar rules (https://yaml.org/spec/1.2.2/#1032-tag-resolution). Order
# matters: the first matching resolver wins, so int comes before float.
_CORE_SCALARS = (
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+0123456789."),
    ),
)
Yaml12Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in _CORE_SCALARS:
    Yaml12Loader.add_implicit_resolver(_tag, re.compile(_pattern), _first)
# `<<: *defaults` merges a mapping, as YAML 1.1 loaders (and most people's habits) do.
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])


def _construct_core_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    # SafeLoader's int reads "0o17" as 0 and "017" as octal (YAML 1.1); 1.2 core says 15 and 17.
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text)


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_core_int)


def parse_yaml_text(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """Parse YAML 1.2 text; return the data and its node tree. Errors name `source` and the line."""
    try:
        loader = Yaml12Loader(text)  # the reader refuses control characters here already
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise AidsafeError(f"{source}:{line}: YAML syntax error: {str(exc).splitlines()[0]}") from None
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_nodes(node, source)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        kind = "" if isinstance(exc, _TooDeep) else "YAML syntax error: "
        raise AidsafeError(f"{where}: {kind}{problem}") from None
    finally:
        loader.dispose()
    return data, node


def _check_nodes(root: yaml.Node, source: str) -> None:
    """Refuse a key twice in one mapping (the last would win, silently) and aliases expanding past
    the bounds. Walks each distinct node once: an alias is a shared node, so its expanded size is
    counted from its memoised size, never by expanding it."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes, characters) when expanded
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> tuple[int, int]:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise AidsafeError(f"{source}:{node.start_mark.line + 1}: an alias refers to itself; write the value out")
        open_nodes.add(key)
        nodes, chars = 1, len(node.value) if isinstance(node, yaml.ScalarNode) else 0
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            _check_duplicate_keys(node, source)
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        for child in children:
            child_nodes, child_chars = size(child)
            nodes, chars = nodes + child_nodes, chars + child_chars
            if nodes > MAX_EXPANDED_NODES or chars > MAX_EXPANDED_CHARS:
                raise AidsafeError(
                    f"{source}:{node.start_mark.line + 1}: aliases expand to more than {MAX_EXPANDED_NODES:,} "
                    f"values or {MAX_EXPANDED_CHARS >> 20} MB of text; write the values out"
                )
        open_nodes.discard(key)
        sizes[key] = (nodes, chars)
        return nodes, chars

    size(root)


def _check_duplicate_keys(node: yaml.MappingNode, source: str) -> None:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue  # a merge (`<<`) may repeat, and later keys override what it brings, as YAML says
        line = key_node.start_mark.line + 1
        if key_node.value in seen:
            raise AidsafeError(
                f"{source}:{line}: key {key_node.value!r} is given twice (also at line {seen[key_node.value]}); "
                "keep one"
            )
        seen[key_node.value] = line


def regular_file(path: Path, what: str, limit: int | None = None) -> os.stat_result:
    """`path`'s stat if it is a regular file (of at most `limit` bytes); else one line saying what
    it is instead (a FIFO or /dev/zero would block or never end), naming `what` was expected."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise AidsafeError(f"{path}: file not found") from None
    except OSError as exc:
        raise AidsafeError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise AidsafeError(f"{path}: is a directory; expected {what}")
    if not stat.S_ISREG(info.st_mode):
        kind = (
            "a FIFO"
            if stat.S_ISFIFO(info.st_mode)
            else "a device"
            if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
            else "a socket"
            if stat.S_ISSOCK(info.st_mode)
            else "not a regular file"
        )
        raise AidsafeError(f"{path}: is {kind}, not a regular file; expected {what}")
    if limit is not None and info.st_size > limit:
        raise AidsafeError(f"{path}: {info.st_size:,} bytes; {what} is at most {limit >> 20} MB")
    return info


def read_text(path: Path) -> str:
    """The file's text, which must be UTF-8; otherwise one line with the offending byte's place."""
    regular_file(path, "a YAML file", MAX_CONFIG_BYTES)
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise utf8_error(path) from None


def utf8_error(path: Path) -> AidsafeError:
    """The error for a file that is not UTF-8: `path:line: not UTF-8 text (byte 0xe9 at offset N)`.

    Called after a UnicodeDecodeError, whose offset is relative to whatever buffer the reader
    decoded; this re-reads the file in chunks to find the first bad byte's place in the file.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line = 0, 1  # of the first byte the decoder holds (it may carry an unfinished character)
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            data = decoder.getstate()[0] + chunk  # what this decode() call sees; exc.start indexes it
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line += data.count(b"\n", 0, exc.start)
                return AidsafeError(
                    f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {offset + exc.start}); "
                    "save it as UTF-8"
                )
            held = len(decoder.getstate()[0])
            line += data.count(b"\n", 0, len(data) - held)
            offset += len(data) - held
    return AidsafeError(f"{path}: not UTF-8 text (cut off inside a character at the end); save it as UTF-8")


def load_yaml(path: Path) -> tuple[Any, dict[tuple, int]]:
    """Parse a YAML file; return the data and a map from key path to 1-based line number."""
    text = read_text(path)
    if not text.strip():
        raise AidsafeError(f"{path}: file is empty; expected a YAML mapping")
    data, node = parse_yaml_text(text, str(path))
    if not isinstance(data, dict):
        raise AidsafeError(f"{path}: expected a YAML mapping at the top level, got {type(data).__name__}")
    return data, key_lines(node)


def key_lines(node: yaml.Node | None, prefix: tuple = ()) -> dict[tuple, int]:
    lines: dict[tuple, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = prefix + (key_node.value,)
            lines[path] = key_node.start_mark.line + 1
            lines.update(key_lines(value_node, path))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = prefix + (index,)
            lines[path] = item.start_mark.line + 1
            lines.update(key_lines(item, path))
    return lines


def format_validation_error(
    exc: ValidationError, source: str, lines: dict[tuple, int] | None = None, overrides: Iterable[str] = ()
) -> str:
    """One line for the first error pydantic found: `file:line: dotted.key: message`.

    An error at or under a key that a `--set` override wrote is blamed on that override
    (`--set deliberation.max_round=3: unknown key; ...`), not on the file's nearest line.
    """
    err = exc.errors()[0]
    loc = tuple(part for part in err["loc"] if not (isinstance(part, str) and part.startswith("function-")))
    key = ".".join(str(p) for p in loc) or "(top level)"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
        allowed = _allowed_keys(exc, loc)
        if allowed:
            msg += f"; expected one of: {', '.join(allowed)}"
    elif err["type"] == "missing":
        msg = "required key is missing"
    elif err["type"] == "value_error":  # a validator's own sentence, without pydantic's prefix
        msg = msg.removeprefix("Value error, ")
    count = exc.error_count()
    more = f" (and {count - 1} more error{'s' if count > 2 else ''})" if count > 1 else ""
    override = blamed_override(loc, overrides)
    if override is not None:
        item, path = override
        if set(loc) & {"api_key_env", "chat_model_args"}:  # the value may hold a key, pasted in the wrong place
            item = item.partition("=")[0] + "=..."
        return f"--set {item}: {msg}{more}" if path == loc else f"--set {item}: {key}: {msg}{more}"
    line = _nearest_line(loc, lines or {})
    where = f"{source}:{line}" if line else source
    return f"{where}: {key}: {msg}{more}"


def blamed_override(loc: tuple, overrides: Iterable[str]) -> tuple[str, tuple] | None:
    """The last `--set` whose key path is `loc` or a parent of it, with that path; else None."""
    for item in reversed(list(overrides)):
        path = tuple(int(p) if p.strip().isdigit() else p.strip() for p in item.partition("=")[0].split("."))
        if loc[: len(path)] == path:
            return item, path
    return None


def validate_model(
    model: type[M], data: Any, source: str, lines: dict[tuple, int] | None = None, overrides: Iterable[str] = ()
) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise AidsafeError(format_validation_error(exc, source, lines, overrides)) from None


def _nearest_line(loc: tuple, lines: dict[tuple, int]) -> int | None:
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return None


def _allowed_keys(exc: ValidationError, loc: tuple) -> list[str]:
    """The field names of the model that rejected an unknown key, for the error message."""
    model = exc.title and _MODELS_BY_TITLE.get(exc.title)
    if model is None:
        return []
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        model = _model_in(field.annotation)
        if model is None:
            return []
    # Fields excluded from dumps (Recipe.base_dir) are internal, not keys a user writes.
    return sorted(name for name, field in model.model_fields.items() if not field.exclude)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


# Config models register by class name so an "unknown key" error can list the keys accepted.
_MODELS_BY_TITLE: dict[str, type[BaseModel]] = {}


def register_config_model(model: type[M]) -> type[M]:
    _MODELS_BY_TITLE[model.__name__] = model
    return model
