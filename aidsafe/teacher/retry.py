"""Which transport failures are worth retrying, how long to wait, and how to describe a failure.

langchain-openai re-raises the openai SDK's errors as subclasses of them (its `OpenAIAPIError` is
an `openai.InternalServerError`, its `OpenAITimeoutError` an `openai.APITimeoutError` ...), so
classifying by the openai types covers both.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable
from typing import Any, TypeVar

import openai
from tenacity import RetryCallState

from aidsafe.teacher.lanes import Outcome

__all__ = [
    "Backoff",
    "NotJSONReply",
    "describe_failure",
    "is_transient",
    "load_outcome",
    "refuse_non_json",
    "retry_after_s",
    "timed_out",
    "timeout_hint",
    "within",
]

T = TypeVar("T")

# Request timeout, conflict and rate limit: the server may well accept the same request later.
_RETRYABLE_4XX = frozenset({408, 409, 429})
_MAX_MESSAGE_CHARS = 300


class NotJSONReply(openai.APIConnectionError):
    """A success status with a body that is not JSON: a proxy's or load balancer's error page
    in front of the server. A transport fault like a reset connection, so it is retried."""


async def refuse_non_json(response: Any) -> None:
    """Response hook on the connection pool: a 2xx reply must be a JSON object or array.

    The SDK hands any other body on as a str, which langchain-openai then rejects with a
    ValueError that looks like a bug, not a fault worth retrying. Raised here it is an openai
    error, which the SDK passes through unwrapped. Checks one byte, not a parse."""
    if not 200 <= response.status_code < 300:
        return
    body = await response.aread()
    if body.lstrip()[:1] in (b"{", b"["):
        return
    kind = response.headers.get("content-type", "no content type").split(";")[0]
    preview = body[:160].decode("utf-8", "replace")
    raise NotJSONReply(
        message=_one_line(f"HTTP {response.status_code} with a {kind} body, not JSON: {preview!r}"),
        request=response.request,
    )


def is_transient(exc: BaseException) -> bool:
    """True for errors a later identical request can get past: 5xx, 408/409/429, timeouts,
    refused or reset connections. Other 4xx mean the request itself is wrong."""
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500 or exc.status_code in _RETRYABLE_4XX
    # APITimeoutError is a subclass of APIConnectionError; the SDK wraps every httpx transport
    # error (connect, read, remote protocol) in one of the two.
    return isinstance(exc, openai.APIConnectionError)


def load_outcome(exc: BaseException | None) -> Outcome:
    """What a request's end says about the replica it went to (aidsafe.teacher.lanes)."""
    if exc is None:
        return Outcome.OK
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code in (429, 503):
            return Outcome.OVERLOADED
        return Outcome.DOWN if exc.status_code in (502, 504) else Outcome.FAILED
    if timed_out(exc):
        return Outcome.OVERLOADED
    if isinstance(exc, NotJSONReply):  # a proxy's error page: the server behind it is not answering
        return Outcome.DOWN
    return Outcome.DOWN if isinstance(exc, openai.APIConnectionError) else Outcome.FAILED


def retry_after_s(exc: BaseException | None) -> float | None:
    """The server's Retry-After in seconds, if it sent a numeric one (vLLM, OpenAI and proxies
    in front of them do on 429/503). The HTTP-date form is rare from LLM servers and ignored."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    value = exc.response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(seconds, 0.0)


class Backoff:
    """tenacity wait strategy: the server's Retry-After when given, else exponential backoff with
    "equal jitter" (half fixed, half random) so concurrent callers do not retry in lockstep.
    Everything is capped at `max_s`. The random source is the caller's seeded generator."""

    def __init__(self, *, base_s: float, max_s: float, rng: random.Random) -> None:
        self._base_s = base_s
        self._max_s = max_s
        self._rng = rng

    def __call__(self, state: RetryCallState) -> float:
        outcome = state.outcome
        server_wait = retry_after_s(outcome.exception() if outcome is not None else None)
        if server_wait is not None:
            return min(server_wait, self._max_s)
        delay = min(self._max_s, self._base_s * 2 ** (state.attempt_number - 1))
        return delay / 2 + self._rng.uniform(0, delay / 2)


def describe_failure(exc: BaseException) -> str:
    """One line saying what went wrong on the wire, for TeacherError messages."""
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {_server_message(exc)}"
    if timed_out(exc):
        return "request timed out"
    if isinstance(exc, NotJSONReply):
        return exc.message
    if isinstance(exc, openai.APIConnectionError):
        root = _root_cause(exc)
        detail = f"{type(root).__name__}: {root}" if root is not exc else str(exc)
        return _one_line(f"connection failed ({detail})")
    return _one_line(f"{type(exc).__name__}: {exc}")


def _server_message(exc: openai.APIStatusError) -> str:
    # The SDK puts the JSON body's "error" object in `body`; vLLM and OpenAI both use
    # {"error": {"message": ...}}. Fall back to the raw text for HTML error pages and the like.
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return _one_line(body["message"])
    return _one_line(exc.response.text or exc.message)


def timed_out(exc: BaseException) -> bool:
    """True when the server gave no answer in time. The SDK's aiohttp transport raises
    APITimeoutError for a dropped connection too, so the root cause decides: aiohttp's read and
    connect timeouts are TimeoutErrors, a disconnect is not."""
    if not isinstance(exc, openai.APITimeoutError):
        return False
    root = _root_cause(exc)
    return root is exc or isinstance(root, TimeoutError)


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[: _MAX_MESSAGE_CHARS - 3] + "..."


async def within(timeout_s: float, request: Awaitable[T]) -> T:
    """`request`, given `timeout_s` in all. The SDK's timeout bounds each read, not the reply: a
    server sending a byte now and then (a slow proxy, a stalled stream) would hold the request
    for ever, and `teacher.timeout_s` is documented as per request."""
    deadline = asyncio.timeout(timeout_s)
    try:
        async with deadline:
            return await request
    except (TimeoutError, openai.APIConnectionError) as exc:
        # aiohttp turns the cancellation into a connection error; the deadline knows better.
        # Raised as the SDK's own timeout, so retries and messages treat both alike.
        if not deadline.expired() or timed_out(exc):
            raise
        raise openai.APITimeoutError(request=getattr(exc, "request", None)) from TimeoutError(  # type: ignore[arg-type]
            f"no whole reply within {timeout_s:g} s"
        )


def timeout_hint(timeouts: int, tries: int, timeout_s: float, *, last: bool) -> str:
    """What to change when timeouts are the main failure: the limit, by its recipe name."""
    if not timeouts or 2 * timeouts < tries:
        return ""
    if last and timeouts == tries:
        what = f" after {timeout_s:g} s"
    else:
        what = f"; {timeouts} of {tries} attempts timed out after {timeout_s:g} s"
    return f"{what}: a slow teacher needs a longer teacher.timeout_s (or a smaller max_tokens in the agents' sampling)"
