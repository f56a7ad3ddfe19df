"""Load YAML config files into pydantic models with errors that name the file, line and key.

PyYAML's composer keeps a start mark on every node; we walk the node tree once to map each key
path to its line, so a pydantic error at `("teacher", "timeout_s")` can say
`recipe.yaml:12: teacher.timeout_s: ...`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from aidsafe.errors import AidsafeError

__all__ = [
    "load_yaml",
    "validate_model",
    "format_validation_error",
    "key_lines",
    "register_config_model",
]

M = TypeVar("M", bound=BaseModel)


def load_yaml(path: Path) -> tuple[Any, dict[tuple, int]]:
    """Parse a YAML file; return the data and a map from key path to 1-based line number."""
    if not path.is_file():
        raise AidsafeError(f"{path}: file not found")
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise AidsafeError(f"{path}: file is empty; expected a YAML mapping")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise AidsafeError(f"{where}: YAML syntax error: {problem}") from None
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


def format_validation_error(exc: ValidationError, source: str, lines: dict[tuple, int] | None = None) -> str:
    """One line for the first error pydantic found: `file:line: dotted.key: message`."""
    err = exc.errors()[0]
    loc = tuple(part for part in err["loc"] if not (isinstance(part, str) and part.startswith("function-")))
    line = _nearest_line(loc, lines or {})
    where = f"{source}:{line}" if line else source
    key = ".".join(str(p) for p in loc) or "(top level)"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
        allowed = _allowed_keys(exc, loc)
        if allowed:
            msg += f"; expected one of: {', '.join(allowed)}"
    elif err["type"] == "missing":
        msg = "required key is missing"
    count = exc.error_count()
    more = f" (and {count - 1} more error{'s' if count > 2 else ''})" if count > 1 else ""
    return f"{where}: {key}: {msg}{more}"


def validate_model(model: type[M], data: Any, source: str, lines: dict[tuple, int] | None = None) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise AidsafeError(format_validation_error(exc, source, lines)) from None


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
    return sorted(model.model_fields)


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
