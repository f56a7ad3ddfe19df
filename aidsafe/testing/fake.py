"""An in-process fake teacher keyed by agent role, for unit tests (no HTTP, no model).

Replies come from a function per role, never from a sequential script: samples run
concurrently, so the order of calls is not fixed. The fake validates like the real client:
against the schema it was given (for a role's output, the per-call one with this sample's valid
ids), then `check`; a failure raises InvalidOutputError. Responders may return the role's output
model (e.g. `DeliberationTurn(...)`): it is validated against the requested schema too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from aidsafe.teacher.types import CallRecord, Endpoint, InvalidOutputError, Message, TeacherStats
from aidsafe.testing.replies import default_reply

__all__ = ["FakeTeacher", "FakeCall"]

Responder = Callable[["FakeCall"], BaseModel | dict[str, Any]]


class FakeCall:
    """What a responder sees: the agent, its role, the messages and the schema asked for."""

    def __init__(self, agent: str, role: str, messages: list[Message], schema: type[BaseModel]) -> None:
        self.agent = agent
        self.role = role
        self.messages = messages
        self.schema = schema

    @property
    def text(self) -> str:
        return "\n".join(m["content"] for m in self.messages)


class FakeTeacher:
    def __init__(self, responders: Mapping[str, Responder] | None = None) -> None:
        self.responders = dict(responders or {})
        self.stats = TeacherStats()
        self.calls: list[FakeCall] = []

    async def generate(
        self,
        *,
        agent: str,
        role: str,
        messages: list[Message],
        schema: type[BaseModel],
        endpoint: Endpoint,
        sampling: Mapping[str, Any],
        check: Callable[[Any], None] | None = None,
    ) -> tuple[BaseModel, CallRecord]:
        call = FakeCall(agent, role, list(messages), schema)
        self.calls.append(call)
        responder = self.responders.get(role)
        reply = responder(call) if responder else default_reply(schema.__name__, call.messages)
        try:
            if isinstance(reply, BaseModel) and not isinstance(reply, schema):
                reply = reply.model_dump()
            output = reply if isinstance(reply, schema) else schema.model_validate(reply)
            if check is not None:
                check(output)
        except (ValidationError, ValueError) as exc:
            self.stats.failed_calls += 1
            raise InvalidOutputError(f"{agent} ({endpoint.model}): {_one_line(exc)}") from None
        record = CallRecord(
            agent=agent,
            role=role,
            model=endpoint.model,
            prompt_tokens=len(call.text) // 4,
            completion_tokens=len(output.model_dump_json()) // 4,
        )
        self.stats.record(record)
        return output, record

    async def check_reachable(self, endpoint: Endpoint) -> None:
        return None

    async def aclose(self) -> None:
        return None


def _one_line(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'reply'}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
    return " ".join(str(exc).split())
