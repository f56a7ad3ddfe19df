"""Agents: the objects that fill graph roles.

An agent is any object with a `name` and `async __call__(state, ctx)` that returns its role's
output model (aidsafe.generation.roles). Built-in agents are agent cards run against the teacher
(`CardAgent`); Python agents plug in by reference (`module:attr` or `path/to/file.py:attr`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import random
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from aidsafe.config.resources import ResourceNotFoundError, builtin_names
from aidsafe.errors import AidsafeError
from aidsafe.generation.cards import AgentCard, load_card, render_template, template_fields
from aidsafe.generation.policies import PolicySet
from aidsafe.generation.recipe import AgentSlot, Recipe
from aidsafe.generation.roles import ROLES, RoleSpec, role_spec, template_values
from aidsafe.generation.schemas import DEFAULT_MIN_CHARS
from aidsafe.teacher.types import CallRecord, Endpoint, InvalidOutputError, Message, Teacher

__all__ = [
    "Agent",
    "AgentContext",
    "CardAgent",
    "ResolvedAgent",
    "agent_rng",
    "resolve_agent",
    "resolve_agents",
    "run_agent",
]


@dataclass
class AgentContext:
    """What an agent may use during one call: the teacher, the policies, a per-sample RNG.

    Every teacher call goes through `generate`, which records its provenance for the sample under
    `agent_name`, the name the agent's slot resolved to (two slots of one agent differ by it).
    """

    teacher: Teacher
    policies: PolicySet
    rng: random.Random
    role: RoleSpec
    endpoint: Endpoint
    sampling: dict[str, Any]
    max_rounds: int
    agent_name: str = ""
    min_chars: int = DEFAULT_MIN_CHARS  # the content floor (recipe: min_text_chars)
    calls: list[CallRecord] = field(default_factory=list)

    async def generate(
        self,
        agent_name: str | None,
        messages: list[Message],
        state: dict,
        schema: type[BaseModel] | None = None,
        sampling: dict[str, Any] | None = None,
    ) -> BaseModel:
        """Ask the teacher for the role's output, with this call's schema (valid ids, content
        floor); returns the role's output model. With an explicit `schema`, that model as it is."""
        name = self.agent_name or agent_name or ""
        per_call = schema is None
        if per_call:
            schema = self.role.call_model(state, self.policies, self.min_chars)
        check = self.role.check
        output, record = await self.teacher.generate(
            agent=name,
            role=self.role.name,
            messages=messages,
            schema=schema,
            endpoint=self.endpoint,
            sampling={**self.sampling, **(sampling or {})},
            check=(lambda out: check(out, state, self.policies)) if per_call and check else None,
        )
        self.calls.append(record)
        return self.role.output.model_validate(output.model_dump()) if per_call else output

    def template_values(self, state: dict, agent_name: str | None = None) -> dict[str, str]:
        return template_values(state, self.policies, self.agent_name or agent_name or "", self.max_rounds)


class Agent(Protocol):
    name: str

    async def __call__(self, state: dict, ctx: AgentContext) -> BaseModel: ...


class CardAgent:
    """An agent defined by an agent card: render the card's templates, ask the teacher."""

    def __init__(self, card: AgentCard, name: str) -> None:
        self.card = card
        self.name = name  # the card's default; the slot's resolved name is ctx.agent_name

    def build_messages(self, values: dict[str, str]) -> list[Message]:
        return [
            {"role": "system", "content": render_template(self.card.system, values).strip()},
            {"role": "user", "content": render_template(self.card.user, values).strip()},
        ]

    async def __call__(self, state: dict, ctx: AgentContext) -> BaseModel:
        messages = self.build_messages(ctx.template_values(state, self.name))
        return await ctx.generate(self.name, messages, state)


@dataclass(frozen=True)
class ResolvedAgent:
    """An agent bound to its slot: the name, role, endpoint and sampling it runs with.

    The name belongs to the slot, not to the agent object: one Python agent instance may fill two
    slots under two names, and is never renamed."""

    agent: Agent
    name: str
    role: RoleSpec
    endpoint: Endpoint
    sampling: dict[str, Any]
    fingerprint: str  # what in the agent's definition changes outputs, for the recipe hash


def agent_rng(seed: int, sample_id: str, step: int, agent_name: str) -> random.Random:
    """The random generator of one agent call: the same for the same recipe seed, sample, step
    (deliberation round, pairs iteration) and agent, whatever order samples run in."""
    digest = hashlib.sha256(f"{seed}:{sample_id}:{step}:{agent_name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


async def run_agent(agent: ResolvedAgent, state: dict, ctx: AgentContext) -> tuple[Any, list[dict]]:
    """Run `agent` in `ctx`; return its output, held to its role's per-call contract, and the
    records of the teacher calls it made."""
    output = await agent.agent(dict(state), ctx)
    if not isinstance(output, agent.role.output):
        raise TypeError(
            f"agent {agent.name} returned {type(output).__name__}; "
            f"role {agent.role.name} needs {agent.role.output.__name__}"
        )
    try:  # teacher replies were validated already; Python agents may build outputs themselves
        agent.role.validate(output, dict(state), ctx.policies, ctx.min_chars)
    except ValueError as exc:  # pydantic's ValidationError is one too
        message = " ".join(str(exc).split())
        raise InvalidOutputError(f"agent {agent.name} ({agent.role.name}): {message}") from None
    return output, [call.to_dict() for call in ctx.calls]


def resolve_agents(recipe: Recipe) -> dict[str, list[ResolvedAgent]]:
    """Resolve every slot of the recipe, naming duplicates apart (deliberator, deliberator_2)."""
    seen: dict[str, int] = {}
    resolved: dict[str, list[ResolvedAgent]] = {}
    for role, spec in ROLES.items():
        found = getattr(recipe.agents, spec.slot)
        slots = found if isinstance(found, list) else [] if found is None else [found]  # None: role left out
        resolved[role] = []
        for index, slot in enumerate(slots):
            key = f"agents.{spec.slot}.{index}" if isinstance(found, list) else f"agents.{spec.slot}"
            agent = resolve_agent(slot, role, recipe, key)
            seen[agent.name] = seen.get(agent.name, 0) + 1
            if seen[agent.name] > 1:
                agent = replace(agent, name=f"{agent.name}_{seen[agent.name]}")
            resolved[role].append(agent)
    return resolved


def resolve_agent(slot: AgentSlot, role: str, recipe: Recipe, key: str, spec: RoleSpec | None = None) -> ResolvedAgent:
    """`spec`: the role's entry when it is not one of the generation graph's (a later stage's role)."""
    spec = spec or role_spec(role)
    ref = slot.agent
    if ":" in ref and not Path(ref).is_file():
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
        slot.base_url, model=slot.model, api_key_env=slot.api_key_env, structured_output=slot.structured_output
    )
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
            path = Path(module_ref)
            path = path if path.is_absolute() else (base_dir / path if (base_dir / path).is_file() else path)
            if not path.is_file():
                raise AidsafeError(f"{key}: agent file {module_ref} not found")
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
