"""The HTTP exchange with an OpenAI-compatible server: a JSON body out, a JSON object back, over
one aiohttp connection pool, and the failures the retry policy (retry.py) tells apart.

Why not the openai SDK (or langchain-openai over it): a profile at 64 calls in flight found the
two spending about 57% of the client's CPU per call re-validating messages against typed dicts,
building request objects, and wrapping and unwrapping replies we parse ourselves; on one event
loop that CPU is what keeps the teacher waiting (docs/performance.md). The OpenAI wire format is
small and stable: this module speaks it directly.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp
import orjson

from aidsafe.oneline import one_line as shorten

__all__ = [
    "ConnectionFailed",
    "NotConnected",
    "NotJSONReply",
    "ReplyTooLarge",
    "RequestTimedOut",
    "StatusError",
    "Wire",
    "WireError",
    "hide_credentials",
    "reply_cap",
]

_MAX_MESSAGE_CHARS = 300
# The largest reply a request may get, decompressed: a base for the envelope (ids, usage, the
# prompt echoed back by some servers) plus a generous allowance per token the request allows
# (a token is a few bytes of text, JSON escapes at most multiply it by six, and top-5 logprobs add
# a few hundred bytes). Anything past it is a broken or hostile server: reading it would only
# grow the client (a 200 MB body, an endless chunked stream, a gzip bomb), so reading stops there.
_REPLY_BASE_BYTES = 8 << 20
_REPLY_BYTES_PER_TOKEN = 2048
_DEFAULT_MAX_TOKENS = 16384  # a request that names no limit: the server's own default, generously
_ERROR_BODY_BYTES = 64 << 10  # an error page is read for its message only
_CHUNK_BYTES = 64 << 10


class WireError(Exception):
    """A request that got no usable HTTP answer; `message` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StatusError(WireError):
    """The server answered with a non-2xx status. `error` is the JSON body's "error" object (the
    whole body when it has none; None when the body is not JSON), `text` the raw body."""

    def __init__(self, status: int, headers: Mapping[str, str], text: str, error: Any) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.headers = headers
        self.text = text
        self.error = error

    @property
    def server_message(self) -> str:
        # vLLM and OpenAI both send {"error": {"message": ...}}; other servers and proxies send
        # {"message": ...}, {"detail": ...} or an HTML page: their raw text is the best we have.
        if isinstance(self.error, dict) and isinstance(self.error.get("message"), str):
            return one_line(self.error["message"])
        return one_line(self.text) or f"Error code: {self.status}"


class ConnectionFailed(WireError):
    """No HTTP answer at all: refused, reset, or closed mid-reply. The cause is chained."""


class NotConnected(ConnectionFailed):
    """No connection could be made (refused, unknown host, no route): nothing listens there, or
    not yet. Retried like any lost connection during a run (a server restarting); the pre-flight
    says so at once instead, since the usual cause there is a server that was never started."""


class RequestTimedOut(ConnectionFailed):
    """No whole reply within the request's time limit."""


class ReplyTooLarge(WireError):
    """The reply outgrew `reply_cap` while it was read (compressed or not). Not transient: a server
    that answers a request with more than any reply to it can hold will do so again."""


class NotJSONReply(ConnectionFailed):
    """A success status with a body that is not a JSON object: a proxy's or load balancer's
    error page in front of the server. A transport fault like a reset connection, so it is
    retried."""


class Wire:
    """One connection pool for every request of a run. The session is made on first use, since
    aiohttp binds it to the running event loop."""

    def __init__(self, user_agent: str) -> None:
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            # No connection cap here: the lanes (lanes.py) already hold requests to each replica's
            # limit, and a second cap would queue requests the lanes let through.
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
            # No session timeout (aiohttp's default is 5 minutes): `request` sets each deadline.
            # No trust_env: it reads ~/.netrc and the proxy settings in a worker thread on every
            # request; the proxy is looked up once per host instead (`_proxy`).
            self._session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self, method: str, url: str, *, api_key: str, timeout_s: float, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The reply's JSON object. `timeout_s` bounds the whole exchange, not each read: a server
        sending a byte now and then (a slow proxy, a stalled stream) would otherwise hold the
        request for ever, and `teacher.timeout_s` is documented as per request."""
        url, basic = _split_credentials(url)
        # Credentials in the URL (a proxy with basic auth in front of the server) are sent as HTTP
        # Basic auth in place of the bearer key: one Authorization header holds one scheme.
        headers = {"Authorization": basic or f"Bearer {api_key}", "User-Agent": self._user_agent}
        data = None
        if body is not None:
            data = _encode(body)
            headers["Content-Type"] = "application/json"
        deadline = asyncio.timeout(timeout_s)
        try:
            async with deadline:
                session = self._open()
                async with session.request(method, url, data=data, headers=headers, proxy=self._proxy(url)) as response:
                    status, reply_headers = response.status, response.headers
                    kind = response.content_type
                    ok = 200 <= status < 300
                    raw = await _read_capped(response, reply_cap(body) if ok else _ERROR_BODY_BYTES, cut=not ok)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            # aiohttp may turn the deadline's cancellation into a connection error: the deadline
            # knows which it was.
            if deadline.expired():
                raise RequestTimedOut(f"no whole reply within {timeout_s:g} s") from exc
            if isinstance(exc, aiohttp.ClientConnectorError):
                raise NotConnected(connection_failure(exc)) from exc
            raise ConnectionFailed(connection_failure(exc)) from exc
        text = raw.decode("utf-8", "replace")
        if not 200 <= status < 300:
            raise StatusError(status, reply_headers, text, _error_object(text))
        try:
            reply = _decode(raw)
        except ValueError:
            what = "not JSON"
        else:
            if isinstance(reply, dict):
                return reply
            what = "not a JSON object"
        page = shorten(text, 160)
        raise NotJSONReply(one_line(f"HTTP {status} with a {kind or 'no content type'} body, {what}: {page!r}"))

    def _proxy(self, url: str) -> str | None:
        """The proxy HTTP(S)_PROXY / NO_PROXY give for `url`'s host, as other HTTP clients honour them."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        if key not in self._proxies:
            bypass = parts.hostname is not None and urllib.request.proxy_bypass(parts.hostname)
            self._proxies[key] = None if bypass else urllib.request.getproxies().get(parts.scheme)
        return self._proxies[key]


_USERINFO = re.compile(r"(?<=://)[^/@\s]*:[^/@\s]*@")


def hide_credentials(text: str) -> str:
    """`text` with the password of every `scheme://user:password@host` hidden (`user:***@`): what
    aidsafe shows or stores (messages, rejections, recipe.yaml) never holds one."""
    return _USERINFO.sub(lambda match: match.group().split(":", 1)[0] + ":***@", text)


def _split_credentials(url: str) -> tuple[str, str | None]:
    """`url` without its user:password, and the Basic Authorization value they make (or None)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()
    return urlunsplit(parts._replace(netloc=netloc)), "Basic " + base64.b64encode(pair).decode("ascii")


def reply_cap(body: Mapping[str, Any] | None) -> int:
    """The most bytes a reply to `body` may have, decompressed (see `_REPLY_BASE_BYTES`)."""
    body = body or {}
    tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens <= 0:
        tokens = _DEFAULT_MAX_TOKENS
    choices = body.get("n")
    choices = choices if isinstance(choices, int) and not isinstance(choices, bool) and choices > 0 else 1
    return _REPLY_BASE_BYTES + _REPLY_BYTES_PER_TOKEN * tokens * choices


async def _read_capped(response: aiohttp.ClientResponse, cap: int, *, cut: bool) -> bytes:
    """The body, read in chunks while it stays within `cap` bytes. aiohttp decompresses as it reads,
    so the cap holds for the decompressed size, and with it for the compressed bytes read (a
    compressed body is never much larger than what it expands to). `cut`: keep the first `cap`
    bytes instead of failing (an error page is read for its message only)."""
    declared = response.content_length
    if declared is not None and declared > cap and not cut:
        raise ReplyTooLarge(
            f"HTTP {response.status} reply of {declared:,} bytes; a reply to this request is at most {cap:,}"
        )
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
        body += chunk
        if len(body) > cap:
            if cut:
                return bytes(body[:cap])
            raise ReplyTooLarge(
                f"HTTP {response.status} reply past {cap:,} bytes (decompressed), more than a reply to this "
                "request can hold; stopped reading"
            )
    return bytes(body)


def _encode(body: Mapping[str, Any]) -> bytes:
    """The body as JSON. orjson takes a few percent of the client's CPU per call off the stdlib
    encoder's (prompts carry the whole policy block); it refuses a str with a lone surrogate,
    which the stdlib writes as an escape (\\udXXX) that servers decode as they please."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        return json.dumps(body).encode("ascii")


def _decode(raw: bytes) -> Any:
    """The JSON value of a reply body; ValueError when it is not standard JSON. orjson refuses
    NaN, Infinity, numbers past a double and nesting past 1024; the stdlib fallback (for what
    orjson alone refuses: an escaped lone surrogate "\\ud800", which a model can write and
    replies.py deals with) is held to the same rules, so nothing non-finite or nested past the
    interpreter's stack gets in."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            return json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
        except RecursionError:
            raise ValueError("nested too deeply") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} does not fit a double")
    return value


def _error_object(text: str) -> Any:
    try:
        body = _decode(text.encode("utf-8"))
    except ValueError:
        return None
    return body.get("error", body) if isinstance(body, dict) else body


def connection_failure(exc: BaseException) -> str:
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    detail = f"{type(root).__name__}: {root}".rstrip(": ")
    return one_line(f"connection failed ({detail})")


def one_line(text: str) -> str:
    return shorten(text, _MAX_MESSAGE_CHARS)
