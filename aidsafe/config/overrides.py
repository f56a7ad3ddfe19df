"""`--set key.path=value` overrides for any YAML config (generation and training recipes).

Values are parsed as YAML, so `--set trainer.max_steps=5` gives an int, `--set lora=null` clears a
section, and `--set trainer.loss_type=[sigmoid,sft]` gives a list. Values follow YAML 1.2's core
schema, the same dialect as the files (config.yamlio.Yaml12Loader): `no` is the word
(save_strategy=no) and `1e-5` is a number.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from aidsafe.config.yamlio import Yaml12Loader
from aidsafe.errors import AidsafeError

__all__ = ["apply_overrides", "cli_overrides", "parse_override"]


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split `a.b.c=value` into (["a", "b", "c"], parsed value)."""
    key, sep, raw = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(part.strip() for part in parts):
        raise AidsafeError(f"--set {item!r}: expected key.path=value, e.g. trainer.max_steps=5")
    try:
        value = yaml.load(raw, Loader=Yaml12Loader) if raw.strip() else ""
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


def cli_overrides(base_url: str | None, model: str | None, concurrency: int | None, sets: list[str]) -> list[str]:
    """CLI flags as recipe overrides; explicit --set values come last and win."""
    flags = []
    if base_url:
        flags.append(f"teacher.base_url={base_url}")
    if model:
        flags.append(f"teacher.model={model}")
    if concurrency:
        flags.append(f"teacher.concurrency={concurrency}")
    return flags + list(sets)
