"""What changed between the recipe a run directory was made with (its recipe.yaml) and the one a
new run brings: the first differing key, for the one-line refusal of a run directory whose
recipe hash differs ("hash A, now B" alone leaves the user diffing YAML by hand).

Only what enters the recipe hash is worth naming first. Where a teacher runs and how fast
(URLs, keys, timeouts, concurrency, retry budgets, checkpoint frequency), the device and the
license never change a sample, and recipe.yaml hides URL passwords (`user:***@`); those keys
are left out. When no other key differs, what changed is the text of the policies or the agent
cards, which the hash covers and recipe.yaml names only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import yaml

from aidsafe.oneline import one_line
from aidsafe.run.identity import NON_SEMANTIC_CHAT_ARGS, NON_SEMANTIC_TEACHER
from aidsafe.teacher.wire import hide_credentials

__all__ = ["first_difference"]

# Leaf keys that do not enter any stage's recipe hash: the teacher's and a chat model's (the
# lists in run.identity) and those a stage's own hashing drops. `recipe_hash` differs by definition.
_NOT_IN_THE_HASH = NON_SEMANTIC_TEACHER | NON_SEMANTIC_CHAT_ARGS | {"replicas", "device", "license", "recipe_hash"}
_MISSING = object()
_SHOWN_CHARS = 60


def first_difference(stored_yaml: str, now: dict[str, Any]) -> str:
    """`path was A, now B` for the first key of the hash (in the new recipe's order) whose value
    differs; or what else changed when none did."""
    try:
        stored = yaml.safe_load(stored_yaml)
    except yaml.YAMLError:
        return "recipe.yaml there is not readable YAML"
    # The new recipe as it would be stored: same YAML types, passwords hidden the same way.
    current = yaml.safe_load(hide_credentials(yaml.safe_dump(now, sort_keys=False, allow_unicode=True)))
    differences = (d for d in _differences(stored, current, ()) if not d[0] or d[0][-1] not in _NOT_IN_THE_HASH)
    found = next(differences, None)
    if found is None:
        return "the recipe's keys are the same: the policies' or agent cards' text changed"
    path, before, after = found
    return f"{'.'.join(path) or 'the recipe'} was {_shown(before)}, now {_shown(after)}"


def _differences(old: Any, new: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any, Any]]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*new, *(key for key in old if key not in new)]:
            yield from _differences(old.get(key, _MISSING), new.get(key, _MISSING), (*path, str(key)))
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from _differences(a, b, (*path, str(index)))
    elif old != new:
        yield path, old, new


def _shown(value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    return one_line(json.dumps(value, ensure_ascii=False, default=str), _SHOWN_CHARS)
