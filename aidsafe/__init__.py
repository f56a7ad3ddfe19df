"""aidsafe: safety-reasoning training data from deliberating LLM agents.

The public entry points are imported lazily so `import aidsafe` (and the CLI's start) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "AidsafeError": "aidsafe.errors",
    "load_policies": "aidsafe.agents.policies",
    "load_recipe": "aidsafe.generation.recipe",
    "load_pipeline": "aidsafe.generation.pipeline",
    "build_graph": "aidsafe.generation.graph",
    "GenerateRequest": "aidsafe.generation.runner",
    "generate": "aidsafe.generation.runner",
    "read_prompts": "aidsafe.sources",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'aidsafe' has no attribute {name!r}")
