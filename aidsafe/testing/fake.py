"""An in-process fake teacher keyed by agent role, for unit tests (no HTTP, no model).

Raw completions (`complete_text`, as guard models are called) are answered by the responder
under the key "completion": `(FakeCompletion) -> {"text", "logprobs"}` or a plain text.

Replies come from a function per role, never from a sequential script: samples run
concurrently, so the order of calls is not fixed. The fake validates like the real client:
against the schema it was given (for a role's output, the per-call one with this sample's valid
ids), then `check`; a failure raises InvalidOutputError. Responders may return the role's output
model (e.g. `DeliberationTurn(...)`): it is validated against the requested schema too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from aidsafe.teacher.types import CallRecord, Endpoint, InvalidOutputError, Message, TeacherStats
from aidsafe.testing.replies import default_reply

__all__ = ["FakeTeacher", "FakeCall", "FakeCompletion"]

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


@dataclass(frozen=True)
class FakeCompletion:
    """What a completion responder sees: the agent, the raw prompt and the sampling asked for."""

    agent: str
    text: str
    sampling: Mapping[str, Any]
    role: str = "completion"


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

    async def complete_text(
        self, *, agent: str, prompt: str, endpoint: Endpoint, sampling: Mapping[str, Any]
    ) -> tuple[dict[str, Any], CallRecord]:
        call = FakeCompletion(agent, prompt, dict(sampling))
        self.calls.append(call)
        responder = self.responders.get("completion")
        if responder is None:
            raise AssertionError(f"{agent}: a completions call, but the FakeTeacher has no 'completion' responder")
        reply = responder(call)
        reply = {"text": reply} if isinstance(reply, str) else dict(reply)
        record = CallRecord(agent=agent, role="completion", model=endpoint.model,
                            prompt_tokens=len(prompt) // 4, completion_tokens=len(reply.get("text", "")) // 4)  # fmt: skip
        self.stats.record(record)
        return {"text": reply.get("text", ""), "finish_reason": "stop", "logprobs": reply.get("logprobs")}, record

    async def check_reachable(self, endpoint: Endpoint, *, structured: bool = True) -> None:
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
