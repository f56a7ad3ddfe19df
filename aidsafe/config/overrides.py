"""`--set key.path=value` overrides for any YAML config (generation and training recipes).

Values are parsed as YAML, so `--set trainer.max_steps=5` gives an int, `--set lora=null` clears a
section, and `--set trainer.loss_type=[sigmoid,sft]` gives a list. Booleans and floats follow
YAML 1.2 rather than PyYAML's 1.1: on a command line `no` is the word (save_strategy=no) and
`1e-5` is a number, which is what people mean there.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import yaml

from aidsafe.errors import AidsafeError

__all__ = ["apply_overrides", "parse_override"]

_BOOL, _FLOAT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:float"


class _Yaml12ScalarLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans (true/false only) and floats (`1e-5` without a dot)."""


_Yaml12ScalarLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12ScalarLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Yaml12ScalarLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*|[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+)|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split `a.b.c=value` into (["a", "b", "c"], parsed value)."""
    key, sep, raw = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(part.strip() for part in parts):
        raise AidsafeError(f"--set {item!r}: expected key.path=value, e.g. trainer.max_steps=5")
    try:
        value = yaml.load(raw, Loader=_Yaml12ScalarLoader) if raw.strip() else ""
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise AidsafeError(f"--set {item!r}: value is not valid YAML: {problem}") from None
    return [part.strip() for part in parts], value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of `data` with each `key.path=value` applied in order (later ones win).

    Missing mappings on the way are created; a list element is addressed by its index.
    """
    result = copy.deepcopy(data)
    for item in overrides:
        parts, value = parse_override(item)
        node: Any = result
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[: depth + 1])
            if isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    if node.get(part) is None:
                        node[part] = {}
                    node = node[part]
            elif isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise AidsafeError(f"--set {item!r}: {where}: no list item {part} (the list has {len(node)})")
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
            else:
                parent = ".".join(parts[:depth])
                raise AidsafeError(f"--set {item!r}: {parent} holds the value {node!r}, not a mapping")
    return result
