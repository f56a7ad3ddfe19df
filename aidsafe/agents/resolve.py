"""Resolve a recipe's agent slot to a `ResolvedAgent`: a built-in card, a card path, or Python.

One resolver for every stage (design.md principle 4): a slot names `agent: REF` where REF is a
built-in card name, a card file (relative to the recipe), `module:attr`, or `file.py:attr`
(relative to the recipe). Cards are checked against the role they fill (role, output schema,
template fields) before any teacher call; the error lists the built-in cards.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any, Protocol

from aidsafe.agents.cards import AgentCard, load_card, template_fields
from aidsafe.agents.context import Agent, CardAgent, ResolvedAgent
from aidsafe.agents.roles import RoleSpec
from aidsafe.agents.settings import AgentSlot, TeacherSettings
from aidsafe.config.resources import ResourceNotFoundError, builtin_names
from aidsafe.errors import AidsafeError

__all__ = ["AgentSetup", "resolve_agent"]


class AgentSetup(Protocol):
    """What resolving a slot reads of a recipe: its teacher settings and where its paths resolve."""

    teacher: TeacherSettings
    base_dir: Path


def resolve_agent(slot: AgentSlot, spec: RoleSpec, recipe: AgentSetup, key: str) -> ResolvedAgent:
    """The agent `slot` names, checked for the role `spec`; `key` (e.g. agents.refiner) prefixes errors."""
    ref = slot.agent
    if ":" in ref and not (recipe.base_dir / ref).is_file():
        agent, fingerprint = _load_python_agent(ref, recipe.base_dir, key)
        name = slot.name or agent.name
        sampling = dict(slot.sampling)
    else:
        card, path = _load_card_for(ref, recipe.base_dir, key)
        _check_card(card, path, spec)
        name = slot.name or card.name
        agent = CardAgent(card, name)
        sampling = {**card.sampling, **slot.sampling}
        fingerprint = card.model_dump_json()
    endpoint = recipe.teacher.endpoint(
        slot.base_url, chat_model=slot.chat_model, chat_model_args=slot.chat_model_args, where=key,
        model=slot.model, api_key_env=slot.api_key_env, structured_output=slot.structured_output,
    )  # fmt: skip
    return ResolvedAgent(agent, name, spec, endpoint, sampling, fingerprint)


def _load_card_for(ref: str, base_dir: Path, key: str) -> tuple[AgentCard, Path]:
    try:
        return load_card(ref, base_dir)
    except ResourceNotFoundError:
        names = ", ".join(builtin_names("agents"))
        raise AidsafeError(
            f"{key}: agent {ref!r} is not a card path, a built-in agent ({names}), "
            "or a Python reference module:attr / file.py:attr"
        ) from None


def _check_card(card: AgentCard, path: Path, spec: RoleSpec) -> None:
    if card.role != spec.name:
        raise AidsafeError(f"{path}: role: card is for role {card.role!r} but fills the {spec.name!r} slot")
    if card.output_schema != spec.output.__name__:
        raise AidsafeError(
            f"{path}: output_schema: role {spec.name!r} needs {spec.output.__name__!r}, "
            f"card says {card.output_schema!r}"
        )
    for key in ("system", "user"):
        unknown = sorted(template_fields(getattr(card, key)) - spec.fields)
        if unknown:
            raise AidsafeError(
                f"{path}: {key}: unknown placeholder {{{unknown[0]}}} for role {spec.name}; "
                f"expected one of: {', '.join(sorted(spec.fields))}"
            )


def _load_python_agent(ref: str, base_dir: Path, key: str) -> tuple[Agent, str]:
    module_ref, _, attr = ref.rpartition(":")
    try:
        if module_ref.endswith(".py"):
            # Relative to the recipe only, as every path in a recipe: never the current directory,
            # whose files (and whoever put them there) the recipe's author did not choose.
            path = Path(module_ref).expanduser()
            path = path if path.is_absolute() else base_dir / path
            if not path.is_file():
                raise AidsafeError(
                    f"{key}: agent file {module_ref} not found at {path} (paths in a recipe are relative to the "
                    "recipe; give an absolute path for a file elsewhere)"
                )
            module = _import_file(path)
            source = path.read_bytes()
        else:
            module = importlib.import_module(module_ref)
            source = inspect.getsource(module).encode()
    except AidsafeError:
        raise
    except Exception as exc:  # an import error in user code: name it, keep it one line
        raise AidsafeError(f"{key}: cannot import {module_ref} ({type(exc).__name__}: {exc})") from None
    target = getattr(module, attr, None)
    if target is None:
        raise AidsafeError(f"{key}: {module_ref} has no attribute {attr!r}")
    agent = target() if inspect.isclass(target) else target
    if not callable(agent) or not hasattr(agent, "name"):
        raise AidsafeError(f"{key}: {ref} must be an agent: an object with `name` and `async __call__(state, ctx)`")
    return agent, hashlib.sha256(source).hexdigest()


def _import_file(path: Path) -> Any:
    name = f"aidsafe_user_agent_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
