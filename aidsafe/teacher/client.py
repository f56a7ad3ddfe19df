"""The real teacher: any OpenAI-compatible chat endpoint (vLLM, OpenAI, llama.cpp, SGLang) over
HTTP (wire.py), with structured output, retries and one concurrency limit. Raw-text
completions (`complete_text`, for guard models) share the limit, the connections and the retries.
An endpoint that names a LangChain chat model (`Endpoint.chat_model`) has its structured calls
and its pre-flight made through that model instead (langchain.py), inside the same limit, retry
loop, re-asks and stats.

Longer than most modules (about 450 lines): the one retry loop (`_retried`) and the call paths
that share it (structured chat over the wire or a chat model, raw completions, plain chat, the
pre-flight's requests) read best together; the pieces without state live beside it (body.py,
replies.py, retry.py, reachable.py, langchain.py).

Two kinds of retry, kept apart:
- transport (5xx, 429, timeouts, resets): the same request again after a backoff (retry.Backoff);
- parse (the reply is not valid JSON for the schema, or `check` rejects it): a re-ask, with the
  bad reply and the validation error appended to the conversation.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel

import aidsafe
from aidsafe.errors import AidsafeError, RunSetupError, TeacherUnreachable
from aidsafe.teacher.body import chat_body, completion_body
from aidsafe.teacher.lanes import Lanes
from aidsafe.teacher.reachable import check_chat_model, check_model_list, check_structured_output
from aidsafe.teacher.replies import (
    clean_reply,
    content_text,
    excerpt,
    parse_reply,
    reask,
    reply_text,
    short_error,
    valid_unicode,
)
from aidsafe.teacher.retry import Backoff, describe_failure, is_transient, load_outcome, timed_out, timeout_hint
from aidsafe.teacher.tokens import count_served_tokens
from aidsafe.teacher.tracing import traced
from aidsafe.teacher.types import (
    CallRecord,
    Endpoint,
    InvalidOutputError,
    Message,
    Served,
    TeacherError,
    TeacherStats,
    TransientTeacherError,
)
from aidsafe.teacher.watch import FirstRequests
from aidsafe.teacher.wire import Wire, WireError

__all__ = ["TeacherClient", "clean_reply"]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

# vLLM ignores the key; servers that check none still expect the header.
_PLACEHOLDER_KEY = "EMPTY"
_KEY_REQUIRED_HOSTS = frozenset({"api.openai.com"})


class TeacherClient:
    """Implements the `Teacher` protocol over HTTP. One instance per run; close it with
    `aclose()` or `async with`."""

    def __init__(
        self,
        *,
        concurrency: int | None = 32,
        max_concurrency: int = 256,
        max_transport_retries: int = 6,
        max_parse_retries: int = 2,
        env: Mapping[str, str] | None = None,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 30.0,
        seed: int | None = None,
    ) -> None:
        self.stats = TeacherStats()
        self._max_transport_retries = max_transport_retries
        self._max_parse_retries = max_parse_retries
        self._env = dict(os.environ if env is None else env)
        self._backoff = Backoff(base_s=backoff_base_s, max_s=backoff_max_s, rng=random.Random(seed))
        # None: adaptive per replica, up to max_concurrency each (aidsafe.teacher.lanes).
        self.lanes = Lanes(concurrency, max_concurrency, on_change=self._show_limit)
        self._wire = Wire(user_agent=f"aidsafe/{aidsafe.__version__}")
        # (base_url, model) of servers that force a tool only by name (see the pre-flight).
        self._named_tool_choice: set[tuple[str, str]] = set()
        # One run per client: its first requests are watched for one deterministic failure.
        self._first_requests = FirstRequests()
        self._chat_models: Any = None  # aidsafe.teacher.langchain.ChatModels, once an endpoint names one

    @property
    def max_attempts(self) -> int:
        """Tries a request gets on transport failures: the first and `max_transport_retries` more."""
        return self._max_transport_retries + 1

    @classmethod
    def from_settings(cls, settings: Any, env: Mapping[str, str], seed: int | None) -> Self:
        """The client a recipe's `teacher:` section describes (every stage builds it the same way)."""
        return cls(
            concurrency=None if settings.concurrency == "auto" else settings.concurrency,
            max_concurrency=settings.max_concurrency,
            max_transport_retries=settings.max_transport_retries,
            max_parse_retries=settings.max_parse_retries,
            env=env,
            backoff_base_s=settings.backoff_base_s,
            backoff_max_s=settings.backoff_max_s,
            seed=seed,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._wire.aclose()
        if self._chat_models is not None:
            await self._chat_models.aclose()

    async def generate(
        self,
        *,
        agent: str,
        role: str,
        messages: list[Message],
        schema: type[M],
        endpoint: Endpoint,
        sampling: Mapping[str, Any],
        check: Callable[[M], None] | None = None,
    ) -> tuple[M, CallRecord]:
        call = CallRecord(agent=agent, role=role, model=endpoint.model, attempts=0)
        if endpoint.chat_model is None:
            named_tool = (endpoint.base_url, endpoint.model) in self._named_tool_choice
            body = traced_body = chat_body(endpoint.model, messages, sampling, schema, endpoint.structured_output,
                                           named_tool)  # fmt: skip

            async def ask(body: dict[str, Any]) -> dict[str, Any]:
                return await self._send(call, endpoint, "/chat/completions", body)

        else:  # through the endpoint's LangChain chat model, which traces its own runs (LangSmith)
            body, traced_body = {"messages": messages}, None

            async def ask(body: dict[str, Any]) -> dict[str, Any]:
                return await self._chat_model_send(call, endpoint, body["messages"], schema, sampling)

        parsed = await self._recorded(call, traced_body, self._generate(call, body, schema, endpoint, check, ask))
        return parsed, call

    async def complete_text(
        self, *, agent: str, prompt: str, endpoint: Endpoint, sampling: Mapping[str, Any]
    ) -> tuple[dict[str, Any], CallRecord]:
        """One raw-text completion (`POST /v1/completions`: the prompt as it is, no chat template),
        with the same slots, connections, transport retries, stats and errors as `generate`.

        Returns the first choice as a plain dict, `text`, `finish_reason` and `logprobs` (None, or
        `tokens`, `top_logprobs`, ... as the server sent them), and the call's record."""
        call = CallRecord(agent=agent, role="completion", model=endpoint.model)
        body = completion_body(endpoint.model, prompt, sampling)

        async def complete() -> dict[str, Any]:
            reply = await self._send(call, endpoint, "/completions", body)
            return _text_choice(call, endpoint, reply)

        return await self._recorded(call, body, complete()), call

    async def chat_text(
        self, *, agent: str, messages: list[Message], endpoint: Endpoint, sampling: Mapping[str, Any]
    ) -> tuple[dict[str, Any], CallRecord]:
        """One plain chat completion (`POST /v1/chat/completions`, no schema, no re-ask): what a
        served student answers to a conversation, with the same slots, retries, stats and errors.

        Returns `text` (the assistant's content, "" when it sent none) and `finish_reason`."""
        call = CallRecord(agent=agent, role="chat", model=endpoint.model)
        body = chat_body(endpoint.model, messages, sampling)

        async def chat() -> dict[str, Any]:
            message, finish_reason = _chat_message(
                call, endpoint, await self._send(call, endpoint, "/chat/completions", body)
            )
            return {"text": valid_unicode(content_text(message.get("content"))), "finish_reason": finish_reason}

        return await self._recorded(call, body, chat()), call

    async def check_reachable(self, endpoint: Endpoint, *, structured: bool = True) -> Served:
        """Pre-flight (aidsafe.teacher.reachable): the server answers `GET /models` and serves
        `endpoint.model`; with `structured`, it also answers one tiny request in
        `endpoint.structured_output` mode with the one value the request's schema allows (a
        few tokens; callers that only use `complete_text` pass False). Outages get the normal
        transport retries; refusals and a server that ignores the schema are named.

        With several replicas each is checked; one that cannot be reached starts cooling down
        (its share goes to the others, aidsafe.teacher.lanes) and the run goes on while at least
        one answers. Returns what was learnt: the context length the server gives (the smallest
        of the replicas that say one) and whether the schema was honoured."""
        failures: list[TeacherUnreachable] = []
        found: list[Served] = []
        for url in endpoint.urls:
            replica = endpoint.at(url)
            try:
                if endpoint.chat_model is not None:
                    found.append(await check_chat_model(self, replica))
                    continue
                length = await check_model_list(self, replica)
                schema = await check_structured_output(self, replica) if structured else None
            except TeacherUnreachable as exc:
                failures.append(exc)
                self.lanes.mark_down(url)
            else:
                found.append(Served(length, schema))
        if len(failures) == len(endpoint.urls):
            raise failures[0]
        lengths = [served.context_length for served in found if served.context_length is not None]
        schemas = {served.schema for served in found}
        schema = "not known" if "not known" in schemas else next(iter(schemas))
        return Served(min(lengths, default=None), schema)

    async def count_tokens(self, endpoint: Endpoint, body: Mapping[str, Any]) -> int | None:
        """The prompt tokens of the chat request `body` as the server's own tokenizer counts them
        (aidsafe.teacher.tokens), or None when the server has no tokenizer endpoint (or a chat
        model's endpoint names no server)."""
        if endpoint.chat_model is not None and not endpoint.chat_model.openai_compatible:
            return None
        return await count_served_tokens(self, endpoint, body)

    async def _generate(
        self,
        call: CallRecord,
        body: dict[str, Any],
        schema: type[M],
        endpoint: Endpoint,
        check: Callable[[M], None] | None,
        ask: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
    ) -> M:
        """Ask (`ask(body)`: an OpenAI chat reply) and re-ask with the error until a reply is valid."""
        while True:
            call.attempts += 1
            message, finish_reason = _chat_message(call, endpoint, await ask(body))
            text = clean_reply(reply_text(message))
            cut_off = finish_reason == "length"
            try:
                return parse_reply(text, cut_off, schema, check)
            except ValueError as exc:  # pydantic's ValidationError is a ValueError too
                error = short_error(exc)
            if call.attempts > self._max_parse_retries:
                raise InvalidOutputError(
                    f"{call.agent}: {endpoint.model} gave no valid {schema.__name__} in "
                    f"{call.attempts} replies; last error: {error}"
                )
            body = {
                **body,
                "messages": [
                    *body["messages"],
                    {"role": "assistant", "content": excerpt(text)},
                    {"role": "user", "content": reask(error, schema, cut_off=cut_off)},
                ],
            }

    async def _recorded(self, call: CallRecord, body: Mapping[str, Any] | None, work: Awaitable[T]) -> T:
        """Await one call's work and count it in `stats`, failed or not: the tokens, re-asks and
        time of a call that finally failed were spent all the same. A TeacherError carries the
        call's record, for the sample's rejection. With tracing on, the call is a LangSmith run
        (`body` None: it traces itself)."""
        started = time.perf_counter()
        try:
            result = await (work if body is None else traced(call, body, work))
        except Exception as exc:
            call.latency_s = time.perf_counter() - started
            self.stats.record(call, ok=False)
            if isinstance(exc, TeacherError):
                exc.call = call
            raise
        call.latency_s = time.perf_counter() - started
        self.stats.record(call)
        return result

    async def _send(
        self,
        call: CallRecord,
        endpoint: Endpoint,
        path: str,
        body: Mapping[str, Any],
        *,
        give_up: Callable[[WireError, int], bool] | None = None,
        watched: bool = True,
    ) -> dict[str, Any]:
        """`POST path` with `body` to a free replica, inside one slot, with transport failures
        retried (`max_attempts` in all, fewer where `give_up(failure, tries)` says so); the wire
        errors that remain become TeacherErrors. `watched` requests count in the run's watch of
        its first requests (aidsafe.teacher.watch), which raises RunSetupError when it trips."""
        api_key = self._api_key(endpoint)

        async def request(url: str) -> dict[str, Any]:
            return await self._wire.request(
                "POST", url.rstrip("/") + path, api_key=api_key, timeout_s=endpoint.timeout_s, body=body
            )

        return await self._retried(call, endpoint, request, give_up=give_up, watched=watched)

    async def _chat_model_send(
        self,
        call: CallRecord,
        endpoint: Endpoint,
        messages: list[Message],
        schema: type[BaseModel],
        sampling: Mapping[str, Any],
        *,
        give_up: Callable[[WireError, int], bool] | None = None,
        watched: bool = True,
    ) -> dict[str, Any]:
        """`_send` for an endpoint whose calls go through its LangChain chat model (langchain.py):
        the same slot, retries and watch; the reply in the wire's shape. An OpenAI-compatible
        model gets the endpoint's key as the wire would send it."""
        spec = endpoint.chat_model
        assert spec is not None
        if self._chat_models is None:
            from aidsafe.teacher.langchain import ChatModels  # langchain only when a recipe names it

            self._chat_models = ChatModels()
        models = self._chat_models
        api_key = self._api_key(endpoint) if spec.openai_compatible else None

        async def request(url: str) -> dict[str, Any]:
            return await models.reply(endpoint, url, api_key, messages, schema, sampling)

        return await self._retried(call, endpoint, request, give_up=give_up, watched=watched)

    async def _retried(
        self,
        call: CallRecord,
        endpoint: Endpoint,
        request: Callable[[str], Awaitable[dict[str, Any]]],
        *,
        give_up: Callable[[WireError, int], bool] | None,
        watched: bool,
    ) -> dict[str, Any]:
        """`await request(url)` on a free replica, inside one slot, with transport failures (the
        WireErrors it raises) retried as `_send` says."""
        limit = self.max_attempts
        tries = timeouts = 0
        # A plain loop, not tenacity: its per-call state machine cost about 6% of the client's CPU
        # per call at 64 in flight (docs/performance.md), for what these lines do.
        while True:
            # The slot is held for the request only, never across a backoff sleep; each try
            # picks its replica again, so a retry goes where there is room.
            async with self.lanes.slot(endpoint.urls) as lease:
                url = lease.url
                self.stats.in_flight += 1
                tries += 1
                try:
                    reply = await request(url)
                except WireError as exc:
                    lease.outcome = load_outcome(exc)
                    if timed_out(exc):
                        timeouts += 1
                        self.stats.timeouts += 1
                    failure = exc
                else:
                    lease.outcome = load_outcome(None)
                    if watched:
                        self._first_requests.replied()
                    return reply
                finally:
                    self.stats.in_flight -= 1
            if watched and (answer := self._first_requests.failed(failure, tries)) is not None:
                raise RunSetupError(_same_answer(endpoint, url, answer)) from failure
            if not is_transient(failure) or tries >= limit or (give_up is not None and give_up(failure, tries)):
                break
            self._count_transport_retry(call)
            await asyncio.sleep(self._backoff.wait(tries, failure))
        where = f"{call.agent}: teacher {endpoint.model} at {url}"
        if is_transient(failure):
            raise TransientTeacherError(
                f"{where} failed {tries} times in a row, last: {describe_failure(failure)}"
                + timeout_hint(timeouts, tries, endpoint.timeout_s, last=timed_out(failure))
            ) from failure
        raise TeacherError(f"{where} rejected the request: {describe_failure(failure)}") from failure

    def _show_limit(self, limit: int) -> None:
        self.stats.concurrency_limit = limit

    def _count_transport_retry(self, call: CallRecord) -> None:
        call.transport_retries += 1
        self.stats.transport_retries += 1

    def _api_key(self, endpoint: Endpoint) -> str:
        key = self._env.get(endpoint.api_key_env)
        if key:
            return key
        if urlsplit(endpoint.base_url).hostname in _KEY_REQUIRED_HOSTS:
            raise AidsafeError(
                f"{endpoint.api_key_env} is not set; the teacher at {endpoint.base_url} "
                "needs an API key in that environment variable"
            )
        return _PLACEHOLDER_KEY


def _first_choice(reply: Mapping[str, Any]) -> dict[str, Any]:
    choices = reply.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    return choice if isinstance(choice, dict) else {}


def _add_usage(call: CallRecord, reply: Mapping[str, Any]) -> None:
    usage = reply.get("usage")
    if isinstance(usage, dict):
        call.prompt_tokens += _token_count(usage.get("prompt_tokens"))
        call.completion_tokens += _token_count(usage.get("completion_tokens"))


def _token_count(value: Any) -> int:
    """A server's token count, kept only when it is one (an integer in [0, 2^53)): a string, a
    negative or an absurd count would otherwise be summed into every total, or lose the sample."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53:
        return value
    return 0


def _chat_message(call: CallRecord, endpoint: Endpoint, reply: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """A chat reply's first message and finish reason; its token counts go into `call`."""
    _add_usage(call, reply)
    choice = _first_choice(reply)
    message = choice.get("message")
    if not isinstance(message, dict):
        raise TeacherError(f"{call.agent}: {endpoint.model} at {endpoint.base_url} sent no chat message")
    return message, choice.get("finish_reason")


def _text_choice(call: CallRecord, endpoint: Endpoint, reply: Mapping[str, Any]) -> dict[str, Any]:
    _add_usage(call, reply)
    choice = _first_choice(reply)
    if not isinstance(choice.get("text"), str):
        raise TeacherError(f"{call.agent}: teacher {endpoint.model} at {endpoint.base_url} sent no completion text")
    logprobs = choice.get("logprobs")
    return {"text": valid_unicode(choice["text"]), "finish_reason": choice.get("finish_reason"), "logprobs": logprobs}


def _same_answer(endpoint: Endpoint, url: str, answer: str) -> str:
    return (
        f"stopped: teacher {endpoint.model} at {url} failed the first requests of this run the same way, "
        f"retries included ({answer}); that is its answer to these requests, not an outage (those answer "
        "502/503/429 or drop connections, and are waited out): see the server's log, fix the cause and rerun"
    )
