"""Which transport failures are worth retrying, how long to wait, and how to describe a failure.
The failures are the wire's (wire.py): a status, no connection, a timeout, a body that is not JSON.
"""

from __future__ import annotations

import random

from aidsafe.teacher.lanes import Outcome
from aidsafe.teacher.wire import ConnectionFailed, RequestTimedOut, StatusError, WireError, one_line

__all__ = [
    "Backoff",
    "describe_failure",
    "is_transient",
    "load_outcome",
    "retry_after_s",
    "timed_out",
    "timeout_hint",
]

# Request timeout, conflict and rate limit: the server may well accept the same request later.
_RETRYABLE_4XX = frozenset({408, 409, 429})


def is_transient(exc: BaseException) -> bool:
    """True for errors a later identical request can get past: 5xx, 408/409/429, timeouts,
    refused or reset connections, a proxy's error page. Other 4xx mean the request itself is wrong."""
    if isinstance(exc, StatusError):
        return exc.status >= 500 or exc.status in _RETRYABLE_4XX
    return isinstance(exc, ConnectionFailed)


def load_outcome(exc: BaseException | None) -> Outcome:
    """What a request's end says about the replica it went to (aidsafe.teacher.lanes)."""
    if exc is None:
        return Outcome.OK
    if isinstance(exc, StatusError):
        if exc.status in (429, 503):
            return Outcome.OVERLOADED
        return Outcome.DOWN if exc.status in (502, 504) else Outcome.FAILED
    if timed_out(exc):
        return Outcome.OVERLOADED
    # A refused or reset connection, or a proxy's error page: the server behind it is not answering.
    return Outcome.DOWN if isinstance(exc, ConnectionFailed) else Outcome.FAILED


def retry_after_s(exc: BaseException | None) -> float | None:
    """The server's Retry-After in seconds, if it sent a numeric one (vLLM, OpenAI and proxies
    in front of them do on 429/503). The HTTP-date form is rare from LLM servers and ignored."""
    if not isinstance(exc, StatusError):
        return None
    value = exc.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(seconds, 0.0)


class Backoff:
    """How long to wait before try `attempt + 1`: the server's Retry-After when given, else exponential backoff with
    "equal jitter" (half fixed, half random) so concurrent callers do not retry in lockstep.
    Everything is capped at `max_s`. The random source is the caller's seeded generator."""

    def __init__(self, *, base_s: float, max_s: float, rng: random.Random) -> None:
        self._base_s = base_s
        self._max_s = max_s
        self._rng = rng

    def wait(self, attempt: int, failure: BaseException | None) -> float:
        """`attempt`: the tries made so far (1 after the first); `failure`: how the last ended."""
        server_wait = retry_after_s(failure)
        if server_wait is not None:
            return min(server_wait, self._max_s)
        delay = min(self._max_s, self._base_s * 2 ** (attempt - 1))
        return delay / 2 + self._rng.uniform(0, delay / 2)


def describe_failure(exc: BaseException) -> str:
    """One line saying what went wrong on the wire, for TeacherError messages."""
    if isinstance(exc, StatusError):
        return f"HTTP {exc.status}: {exc.server_message}"
    if timed_out(exc):
        return "request timed out"
    if isinstance(exc, WireError):
        return exc.message
    return one_line(f"{type(exc).__name__}: {exc}")


def timed_out(exc: BaseException) -> bool:
    """True when the server gave no whole answer in time."""
    return isinstance(exc, RequestTimedOut)


def timeout_hint(timeouts: int, tries: int, timeout_s: float, *, last: bool) -> str:
    """What to change when timeouts are the main failure: the limit, by its recipe name."""
    if not timeouts or 2 * timeouts < tries:
        return ""
    if last and timeouts == tries:
        what = f" after {timeout_s:g} s"
    else:
        what = f"; {timeouts} of {tries} attempts timed out after {timeout_s:g} s"
    return f"{what}: a slow teacher needs a longer teacher.timeout_s (or a smaller max_tokens in the agents' sampling)"
