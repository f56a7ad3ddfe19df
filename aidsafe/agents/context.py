"""Agents: the objects that fill a stage's roles, and what they may use during one call.

An agent is any object with a `name` and `async __call__(state, ctx)` that returns its role's
output model (aidsafe.agents.roles). Built-in agents are agent cards run against the teacher
(`CardAgent`); Python agents plug in by reference (aidsafe.agents.resolve). Each stage gives its
agents an `AgentContext` subclass whose `template_values` render that stage's state.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from aidsafe.agents.cards import AgentCard, render_template
from aidsafe.agents.policies import PolicySet
from aidsafe.agents.roles import RoleSpec
from aidsafe.agents.schemas import DEFAULT_MIN_CHARS
from aidsafe.teacher.types import CallRecord, Endpoint, InvalidOutputError, Message, Teacher

__all__ = [
    "Agent",
    "AgentContext",
    "CardAgent",
    "ResolvedAgent",
    "agent_rng",
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
        """Everything a card's templates may reference, rendered as text: the stage's subclass says."""
        raise NotImplementedError(f"{type(self).__name__} renders no templates; use the stage's context")


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

    def provenance(self) -> dict[str, Any]:
        """What this agent ran as, for the run directory's recipe.yaml: its model and sampling, and
        its card whole (the prompts it was given), or a Python agent's source digest; so a run
        still says what its agents were told after a later release rewords the built-in cards."""
        definition = (
            {"card": self.agent.card.model_dump(mode="json")}
            if isinstance(self.agent, CardAgent)
            else {"python_sha256": self.fingerprint}
        )
        chat_model = self.endpoint.chat_model
        runs_on = {} if chat_model is None else {"chat_model": chat_model.ref}  # None: aidsafe's wire client
        return {"name": self.name, "model": self.endpoint.model, "base_url": self.endpoint.base_url, **runs_on,
                "sampling": self.sampling, **definition}  # fmt: skip


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
