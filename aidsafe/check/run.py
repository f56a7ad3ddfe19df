"""What `aidsafe check` asks the endpoints, through the teacher client's public methods: the
pre-flight (`check_reachable`: model list, key, the schema probe), one tiny completion for a slot
that only completes raw text, and token counts (`count_tokens`, where the client has it; else the
estimate of aidsafe.teacher.tokens). Each endpoint (each replica) is asked once, however many slots
share it; the client is made from the recipe's teacher settings, as a run's is, so an outage gets
the same retries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aidsafe.check import DEFAULT_INPUT_TOKENS
from aidsafe.check.report import CheckReport, SlotReport, context_part, endpoint_parts, prefix_part
from aidsafe.errors import AidsafeError, TeacherUnreachable
from aidsafe.teacher.body import chat_body, completion_body
from aidsafe.teacher.calls import LongestCall, SlotCall, reask_tokens
from aidsafe.teacher.tokens import estimate_tokens
from aidsafe.teacher.types import Endpoint, Served, TeacherError

__all__ = ["CheckRequest", "check_recipe", "check_recipe_async"]

_HELLO = "Hello"  # the tiny completion a raw-text slot (a guard judge) is asked to continue


@dataclass
class CheckRequest:
    """`aidsafe check`: the recipe, the CLI's overrides of it, and the allowance for input texts."""

    recipe: str
    base_url: str | None = None
    model: str | None = None
    overrides: list[str] = field(default_factory=list)
    input_tokens: int = DEFAULT_INPUT_TOKENS


def check_recipe(request: CheckRequest, env: Mapping[str, str]) -> CheckReport:
    from aidsafe.run.loop import run_async

    return run_async(check_recipe_async(request, env))


async def check_recipe_async(request: CheckRequest, env: Mapping[str, str]) -> CheckReport:
    """Load the recipe (one line for anything wrong with it, as `validate` gives), list its slots,
    and check each against its endpoint, with the client the recipe's teacher settings describe
    (`env`: where it reads API keys)."""
    from aidsafe.config.overrides import cli_overrides
    from aidsafe.kinds import KINDS, load_object, recipe_kind

    kind = recipe_kind(request.recipe)
    if kind.check is None:
        checked = ", ".join(k.name for k in KINDS.values() if k.check)
        raise AidsafeError(
            f"{request.recipe} is a {kind.name} recipe: it calls no teacher; `aidsafe check` checks {checked} recipes"
        )
    overrides = cli_overrides(request.base_url, request.model, None, request.overrides)
    calls = load_object(kind.check)(load_object(kind.load)(request.recipe, overrides), request.input_tokens)
    from aidsafe.teacher.client import TeacherClient

    async with TeacherClient.from_settings(calls.teacher, env, calls.seed) as teacher:
        asked = _Endpoints(teacher)
        slots = [await _check_slot(asked, slot) for slot in calls.slots]
    return CheckReport(str(request.recipe), kind.name, request.input_tokens, slots)


@dataclass
class _Answer:
    """What one endpoint (one replica) answered: what it serves, or why it failed."""

    served: Served = field(default_factory=Served)
    failure: TeacherUnreachable | None = None


class _Endpoints:
    """The endpoints asked so far, each once, and which servers count tokens."""

    def __init__(self, teacher: Any) -> None:
        self.teacher = teacher
        self._answers: dict[tuple[Any, ...], _Answer] = {}
        self._no_tokenizer: set[str] = set()

    async def answer(self, endpoint: Endpoint, structured: bool) -> _Answer:
        key = (endpoint.base_url, endpoint.model, endpoint.api_key_env, endpoint.structured_output, structured,
               endpoint.chat_model)  # fmt: skip
        if key not in self._answers:
            self._answers[key] = await self._ask(endpoint, structured)
        return self._answers[key]

    async def _ask(self, endpoint: Endpoint, structured: bool) -> _Answer:
        try:
            served = await self.teacher.check_reachable(endpoint, structured=structured)
            if not structured:
                await self.teacher.complete_text(
                    agent="check", prompt=_HELLO, endpoint=endpoint, sampling={"max_tokens": 1}
                )
        except TeacherUnreachable as exc:
            return _Answer(failure=exc)
        except TeacherError as exc:
            return _Answer(failure=TeacherUnreachable(f"{exc}", failed="answers"))
        except AidsafeError as exc:  # no key where one is required (api.openai.com)
            return _Answer(failure=TeacherUnreachable(str(exc), failed="key"))
        return _Answer(served or Served())  # a client whose pre-flight says nothing

    async def count(self, endpoint: Endpoint, body: Mapping[str, Any], reachable: bool) -> tuple[int, str]:
        """The prompt tokens of `body` and how they were counted ("tokenizer" or "estimate")."""
        counter = getattr(self.teacher, "count_tokens", None)
        if reachable and counter is not None and endpoint.base_url not in self._no_tokenizer:
            counted = await counter(endpoint, body)
            if counted is not None:
                return counted, "tokenizer"
            self._no_tokenizer.add(endpoint.base_url)
        return estimate_tokens(body), "estimate"


async def _check_slot(asked: _Endpoints, slot: SlotCall) -> SlotReport:
    answers = [await asked.answer(slot.endpoint.at(url), slot.structured) for url in slot.endpoint.urls]
    failure = next((answer.failure for answer in answers if answer.failure is not None), None)
    lengths = [a.served.context_length for a in answers if a.served.context_length is not None]
    context_length = min(lengths) if lengths and failure is None else None
    schemas = {a.served.schema for a in answers}
    schema = "not known" if "not known" in schemas else next(iter(schemas))
    parts = endpoint_parts(failure, slot.structured, schema)
    numbers: dict[str, Any] = {}
    longest = slot.longest
    if longest is None:
        parts["context"] = context_part(None, slot.unknown)
        parts["prefix"] = prefix_part(None, slot.unknown)
        return SlotReport(slot, parts, numbers)
    reachable = failure is None
    fixed, counted_by = await asked.count(slot.endpoint, _body(slot.endpoint, longest), reachable)
    reasks = longest.reasks * reask_tokens(longest.max_tokens, longest.schema) if slot.structured else 0
    numbers["context"] = {
        "step": longest.step, "counted_by": counted_by, "fixed_tokens": fixed,
        "filled": dict(longest.filled), "reask_tokens": reasks, "max_tokens": longest.max_tokens,
        "prompt_tokens": fixed + longest.filled_tokens() + reasks, "context_length": context_length,
    }  # fmt: skip
    parts["context"] = context_part(numbers["context"], "", longest.unbounded())
    if slot.systems is None:
        parts["prefix"] = prefix_part(None, "no system message" if not slot.structured else slot.unknown)
        return SlotReport(slot, parts, numbers)
    shared = None
    if slot.systems[0] == slot.systems[1]:
        system = chat_body(slot.endpoint.model, [{"role": "system", "content": slot.systems[0]}], {})
        shared, _ = await asked.count(slot.endpoint, system, reachable)
    numbers["prefix"] = {"same_system_message": shared is not None, "shared_tokens": shared,
                         "prompt_tokens": numbers["context"]["prompt_tokens"]}  # fmt: skip
    parts["prefix"] = prefix_part(numbers["prefix"], "")
    return SlotReport(slot, parts, numbers)


def _body(endpoint: Endpoint, longest: LongestCall) -> dict[str, Any]:
    """The request as the client sends it (a function_calling schema travels as a tool, which
    the chat template renders into the prompt), with the call's texts left empty."""
    sampling = {} if longest.max_tokens is None else {"max_tokens": longest.max_tokens}
    if longest.prompt is not None:
        return completion_body(endpoint.model, longest.prompt, sampling)
    return chat_body(endpoint.model, longest.messages, sampling, longest.schema, endpoint.structured_output)
