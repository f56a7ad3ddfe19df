"""`aidsafe check RECIPE`: the recipe's teacher endpoints checked before a run, in seconds.

For every agent slot of a recipe of any kind that calls a teacher (the kinds registry names how
each kind lists its slots, aidsafe.kinds `check`): its model is served, its API key accepted, it
answers, it applies the structured-output schema (the pre-flight's probe, aidsafe.teacher.preflight),
the longest request it will send fits the served model's context with its max_tokens, and its
system message is the same for every sample (the server's prefix cache). `run.py` asks the
endpoints; `report.py` holds the verdicts, the table and the JSON.

`import aidsafe.check` stays light (the CLI reads the default below at start-up): the rest is
imported on first use (run.py takes the default from here, so this module names it by string).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "DEFAULT_INPUT_TOKENS",
    "CheckReport",
    "CheckRequest",
    "Part",
    "SlotReport",
    "check_recipe",
    "check_recipe_async",
]

# Each text a run takes from its input (a prompt, a response, a chosen side), counted at this many
# tokens unless --input-tokens says otherwise: a long user prompt, not the longest there is.
DEFAULT_INPUT_TOKENS = 1024

_LAZY = {"CheckReport": "report", "Part": "report", "SlotReport": "report", "CheckRequest": "run",
         "check_recipe": "run", "check_recipe_async": "run"}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"aidsafe.check.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
