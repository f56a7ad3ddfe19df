"""A scripted OpenAI-compatible HTTP server on 127.0.0.1, so tests and benchmarks run the real
client stack (aidsafe's HTTP client, aiohttp, sockets) with no model.

Replies come from a `responder(request_json) -> str | dict`: a str is the assistant's content; a
dict overrides parts of the reply: `content`, `tool_calls` (a list of `{"name", "arguments"}`,
arguments a dict or a JSON string, or full OpenAI tool-call objects), `finish_reason`, and for
`/v1/completions` `text` and `logprobs`. The responder runs on the server's handler threads,
concurrently, so it must be thread-safe; it tells a chat request (`"messages"`) from a raw
completion request (`"prompt"`) by the request's keys.

Faults are injected per request, by a deterministic plan `(request_index, request) -> Fault | None`
or by seeded random rates, and every generation request is recorded in `server.requests`. Like
vLLM, the server can report the model's context in `GET /v1/models` (`max_model_len`), count a
request's prompt tokens at `POST /tokenize` (`tokenize`), and refuse requests without its API key
(`api_key`: HTTP 401).

Run standalone with `python -m aidsafe.testing.server --port 8000 --latency 0.3`.

One module, longer than most: the handler, the fault plan, the reply format and the CLI are one
tool and change together.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import random
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from pydantic import BaseModel

__all__ = [
    "Fault",
    "FaultPlan",
    "RecordedRequest",
    "Responder",
    "ScriptedServer",
    "echo_responder",
    "main",
    "responder_by_schema_name",
]

Responder = Callable[[dict[str, Any]], "str | dict[str, Any]"]


class Fault(StrEnum):
    """What can go wrong with one request."""

    HTTP_500 = "http_500"
    HTTP_429 = "http_429"  # with a Retry-After header
    HTTP_503 = "http_503"  # no Retry-After: a load balancer while the server behind it restarts
    OVER_CAPACITY = "over_capacity"  # HTTP 429 at once, no latency (the `capacity` option)
    HTTP_400 = "http_400"  # a request error the client must not retry
    SLOW = "slow"  # sleep `slow_s` (past the client's timeout) before replying
    MALFORMED_JSON = "malformed_json"  # content (or tool arguments) that is not JSON
    TRUNCATED = "truncated"  # content cut in half, finish_reason "length"
    RESET = "reset"  # close the connection without a reply
    HTML_200 = "html_200"  # HTTP 200 with an HTML page (a proxy's error page), not JSON
    DRIBBLE = "dribble"  # the reply sent in small pieces spread over `slow_s`
    # llama-cpp-python's server: a json_schema response_format is refused with HTTP 500 (its
    # request model allows only "text" and "json_object"); other requests are answered.
    NO_JSON_SCHEMA = "no_json_schema"
    # Current llama-server: the object form of tool_choice ({"type": "function", ...}) is
    # ignored, so the model answers in prose; "required" still forces the (only) tool.
    NAMED_TOOL_CHOICE_IGNORED = "named_tool_choice_ignored"
    # llama-cpp-python's server: tool_choice "required" is no forced call (only the named form
    # is), so the model answers in prose.
    REQUIRED_TOOL_CHOICE_IGNORED = "required_tool_choice_ignored"
    # vLLM >= 0.12 given the old guided_* fields, or a proxy that strips response_format and tools:
    # the schema never reaches the decoder, so the model answers the prompt unconstrained (the
    # first JSON object the prompt shows, as a model copying the card's example would, else prose).
    SCHEMA_IGNORED = "schema_ignored"


FaultPlan = Callable[[int, dict[str, Any]], "Fault | str | None"]

_MALFORMED = '{"this is": not valid JSON'
_PROXY_PAGE = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
_PROSE = "Sure! Here is my answer: it looks fine to me."
_DRIBBLE_PIECES = 20
# What llama-cpp-python's server answers (HTTP 500) to a json_schema response_format.
_NO_JSON_SCHEMA_MESSAGE = (
    "1 validation error for ResponseFormat\ntype\n  Input should be 'text' or 'json_object' "
    "[type=literal_error, input_value='json_schema', input_type=str]"
)
_CHAT_PATH = "/v1/chat/completions"
_COMPLETIONS_PATH = "/v1/completions"
_MODELS_PATH = "/v1/models"
_TOKENIZE_PATH = "/tokenize"  # vLLM serves it at the root, next to /v1
_JSON_EXAMPLE = re.compile(r"\{.*\}", re.DOTALL)


@dataclass
class RecordedRequest:
    """One POST the server received, in arrival order."""

    index: int
    time: float  # time.monotonic() on arrival
    path: str
    json: dict[str, Any]
    fault: Fault | None
    headers: dict[str, str]  # lower-cased names

    @property
    def text(self) -> str:
        """All prompt text of the request, for `"..." in request.text` checks."""
        return _prompt_text(self.json)


def echo_responder(request: dict[str, Any]) -> str:
    """Default: repeat the last message (chat) or answer " ok" (completions)."""
    if "messages" in request:
        return _content_text(request["messages"][-1].get("content")) if request["messages"] else ""
    return " ok"


def responder_by_schema_name(
    by_schema_name: Mapping[str, Callable[[dict[str, Any]], dict[str, Any] | BaseModel]],
) -> Responder:
    """A responder for structured-output requests: the function registered under the requested
    schema's name (response_format json_schema name, or the forced tool's name) builds the
    object, which is sent as JSON content, or as that tool's call arguments. (The teacher
    client's pre-flight probe never reaches a responder: the server answers it.)"""

    def respond(request: dict[str, Any]) -> str | dict[str, Any]:
        name, via_tool = _requested_schema(request)
        build = by_schema_name.get(name) if name else None
        if build is None:
            known = ", ".join(sorted(by_schema_name))
            raise KeyError(f"no scripted reply for schema {name!r} (known: {known})")
        result = build(request)
        text = result.model_dump_json() if isinstance(result, BaseModel) else json.dumps(result)
        if via_tool:
            return {"tool_calls": [{"name": name, "arguments": text}]}
        return text

    return respond


class ScriptedServer:
    """Serve until `stop()`; as a context manager, `with ScriptedServer(...) as server:`.

    A responder or fault plan that raises makes the request fail with HTTP 500 (the client sees a
    server error) and is re-raised when the `with` block exits, so a broken script cannot pass
    quietly.
    """

    def __init__(
        self,
        responder: Responder = echo_responder,
        *,
        models: Sequence[str] = ("scripted-model",),
        latency_s: float = 0.0,
        fault_plan: FaultPlan | None = None,
        fault_rates: Mapping[str, float] | None = None,
        seed: int = 0,
        retry_after_s: float = 1.0,
        slow_s: float = 5.0,
        context_chars: int | None = None,
        capacity: int | None = None,
        max_model_len: int | None = None,
        tokenize: bool = False,
        api_key: str | None = None,
        port: int = 0,
    ) -> None:
        if fault_plan is not None and fault_rates:
            raise ValueError("pass fault_plan or fault_rates, not both")
        self.responder = responder
        self.models = list(models)
        self.latency_s = latency_s
        self.retry_after_s = retry_after_s
        self.slow_s = slow_s
        # A model's context window, in prompt characters: a longer request is refused with the
        # HTTP 400 vLLM sends when the prompt does not fit.
        self.context_chars = context_chars
        # A rate-limited server: a request that arrives while `capacity` are in flight is
        # answered HTTP 429 at once (with Retry-After), as a proxy in front of vLLM does.
        self.capacity = capacity
        # What vLLM tells of the model: its context in tokens (each /v1/models entry's
        # max_model_len), and a prompt's token count at POST /tokenize (four characters a token,
        # as `usage` counts them). Reported only: requests are not refused for length here.
        self.max_model_len = max_model_len
        self.tokenize = tokenize
        # `vllm serve --api-key`: every request without `Authorization: Bearer <api_key>` gets 401.
        self.api_key = api_key
        self.over_capacity = 0
        self.max_in_flight = 0
        self.errors: list[BaseException] = []
        self._fault_plan = fault_plan or _random_plan(fault_rates or {}, seed)
        self._port = port
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._in_flight = 0
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._base_url: str | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the server was never started")
        return self._base_url

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every generation request so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def requests_containing(self, text: str) -> list[RecordedRequest]:
        return [request for request in self.requests if text in request.text]

    def start(self) -> Self:
        self._httpd = _HTTPServer(("127.0.0.1", self._port), _Handler, self)
        self._base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            # How long stop() may wait for the accept loop to notice; the default is 0.5 s.
            kwargs={"poll_interval": 0.02},
            name="scripted-openai-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, cut open keep-alive connections and wake sleeping handlers, then
        join every thread, so no socket outlives the server."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        with self._lock:
            for connection in self._connections:
                _shutdown_socket(connection)
        self._httpd.server_close()  # joins the handler threads
        assert self._thread is not None
        self._thread.join()
        self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.stop()
        if exc is None and self.errors:
            raise RuntimeError(
                f"the scripted server's responder or fault plan failed: {self.errors[0]!r}"
            ) from self.errors[0]

    # Handler-thread side --------------------------------------------------------------------

    def _open(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)
            if self._stopping.is_set():  # accepted just as stop() swept the connections
                _shutdown_socket(connection)

    def _close(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _admit(self, path: str, request: dict[str, Any], headers: Mapping[str, str]) -> RecordedRequest:
        arrived = time.monotonic()
        with self._lock:
            index = len(self._requests)
            try:
                fault = self._fault_plan(index, request)
                fault = Fault(fault) if fault else None
            except Exception as exc:  # a broken plan: answer 500 and re-raise at __exit__
                self.errors.append(exc)
                fault = Fault.HTTP_500
            if self.capacity is not None and self._in_flight >= self.capacity:
                fault = Fault.OVER_CAPACITY
                self.over_capacity += 1
            record = RecordedRequest(
                index=index,
                time=arrived,
                path=path,
                json=request,
                fault=fault,
                headers={name.lower(): value for name, value in headers.items()},
            )
            self._requests.append(record)
            if fault is not Fault.OVER_CAPACITY:  # answered at once: never counts as in flight
                self._in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self._in_flight)
        return record

    def _release(self, record: RecordedRequest) -> None:
        if record.fault is Fault.OVER_CAPACITY:
            return
        with self._lock:
            self._in_flight -= 1

    def _reply(self, record: RecordedRequest) -> tuple[int, dict[str, str], dict[str, Any] | str] | None:
        """(status, headers, body) for one admitted request, or None to drop the connection. A
        str body is sent as an HTML page."""
        fault = record.fault
        if fault is Fault.OVER_CAPACITY:
            return 429, {"Retry-After": f"{self.retry_after_s:g}"}, _error("too many requests", "rate_limit_exceeded")
        self._stopping.wait(self.latency_s)
        if fault is Fault.RESET:
            return None
        if fault is Fault.HTTP_500:
            return 500, {}, _error("injected server error", "server_error")
        if fault is Fault.HTTP_503:
            return 503, {}, _error("service unavailable", "service_unavailable")
        if fault is Fault.HTTP_429:
            headers = {"Retry-After": f"{self.retry_after_s:g}"}
            return 429, headers, _error("injected rate limit", "rate_limit_exceeded")
        if fault is Fault.HTTP_400:
            return 400, {}, _error("injected bad request", "invalid_request_error")
        if fault is Fault.HTML_200:
            return 200, {}, _PROXY_PAGE
        if fault is Fault.NO_JSON_SCHEMA and (record.json.get("response_format") or {}).get("type") == "json_schema":
            return 500, {}, _error(_NO_JSON_SCHEMA_MESSAGE, "internal_server_error")
        model = record.json.get("model")
        if model not in self.models:
            return 404, {}, _error(f"The model `{model}` does not exist.", "NotFoundError")
        if self.context_chars is not None and len(record.text) > self.context_chars:
            message = f"This model's maximum context length is {self.context_chars} characters"
            return 400, {}, _error(message, "BadRequestError")
        if fault is Fault.SLOW:
            self._stopping.wait(self.slow_s)
        if fault is Fault.SCHEMA_IGNORED and (record.json.get("response_format") or record.json.get("tools")):
            return 200, {}, _chat_body(record, _unconstrained(record))
        tool_choice = record.json.get("tool_choice")
        if (fault is Fault.NAMED_TOOL_CHOICE_IGNORED and isinstance(tool_choice, dict)) or (
            fault is Fault.REQUIRED_TOOL_CHOICE_IGNORED and tool_choice == "required"
        ):
            return 200, {}, _chat_body(record, _PROSE)
        if (probe := _probe_answer(record.json)) is not None:
            return 200, {}, _chat_body(record, probe)
        try:
            override = self.responder(record.json)
        except Exception as exc:  # re-raised at __exit__; the client sees a 500
            with self._lock:
                self.errors.append(exc)
            return 500, {}, _error(f"responder failed: {exc!r}", "server_error")
        if record.path == _CHAT_PATH:
            return 200, {}, _chat_body(record, override)
        return 200, {}, _completion_body(record, override)


class _HTTPServer(ThreadingHTTPServer):
    # 64+ clients connect at once in the throughput benchmark; the default backlog of 5 would
    # drop SYNs and add whole seconds of TCP retransmit delay.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], handler: type, scripted: ScriptedServer):
        self.scripted = scripted
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out or was reset has gone away: nothing to report.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every reply has a Content-Length
    disable_nagle_algorithm = True  # headers and body go out as two writes
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.scripted._open(self.connection)

    def finish(self) -> None:
        self.server.scripted._close(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read server.requests, not a log

    def do_GET(self) -> None:
        if not self._authorized():
            return
        if self.path.rstrip("/") != _MODELS_PATH:
            self._send(404, {}, _error(f"no route {self.path}", "NotFoundError"))
            return
        scripted = self.server.scripted
        models = [{"id": m, "object": "model", "owned_by": "aidsafe"} for m in scripted.models]
        if scripted.max_model_len is not None:
            models = [{**entry, "max_model_len": scripted.max_model_len} for entry in models]
        self._send(200, {}, {"object": "list", "data": models})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self._authorized():
            return
        scripted = self.server.scripted
        routes = (_CHAT_PATH, _COMPLETIONS_PATH, *((_TOKENIZE_PATH,) if scripted.tokenize else ()))
        if self.path not in routes:
            self._send(404, {}, _error(f"no route {self.path}", "NotFoundError"))
            return
        try:
            request = json.loads(body)
        except ValueError:
            self._send(400, {}, _error("request body is not JSON", "invalid_request_error"))
            return
        if self.path == _TOKENIZE_PATH:  # a count, not a generation: not recorded
            tools = json.dumps(request["tools"]) if request.get("tools") else ""
            count = _token_count(_prompt_text(request) + tools)
            self._send(200, {}, {"count": count, "max_model_len": scripted.max_model_len, "tokens": []})
            return
        record = scripted._admit(self.path, request, self.headers)
        try:
            reply = scripted._reply(record)
            if reply is None:
                self.close_connection = True
                return
            self._send(*reply, dribble_s=scripted.slow_s if record.fault is Fault.DRIBBLE else 0.0)
        finally:
            scripted._release(record)

    def _authorized(self) -> bool:
        """Whether the request may pass (no key set, or the right one); else it is answered 401."""
        key = self.server.scripted.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._send(401, {}, {"error": "Unauthorized"})  # what vLLM answers
        return False

    def _send(
        self, status: int, headers: Mapping[str, str], body: dict[str, Any] | str, *, dribble_s: float = 0.0
    ) -> None:
        html = isinstance(body, str)
        data = body.encode() if html else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html" if html else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if not dribble_s:
            self.wfile.write(data)
            return
        # A slow stream: every piece arrives well within a read timeout, the whole does not.
        step = -(-len(data) // _DRIBBLE_PIECES)
        for start in range(0, len(data), step):
            if self.server.scripted._stopping.wait(dribble_s / _DRIBBLE_PIECES):
                return
            self.wfile.write(data[start : start + step])
            self.wfile.flush()


def _chat_body(record: RecordedRequest, override: str | dict[str, Any]) -> dict[str, Any]:
    fields = {"content": override} if isinstance(override, str) else dict(override)
    _check_keys(fields, {"content", "tool_calls", "finish_reason"})
    tool_calls = [_tool_call(record.index, i, call) for i, call in enumerate(fields.get("tool_calls") or [])]
    content = fields.get("content")
    if tool_calls:
        tool_calls[0]["function"]["arguments"], finish = _apply_text_fault(
            tool_calls[0]["function"]["arguments"],
            record.fault,
            fields.get("finish_reason") or "tool_calls",
        )
    else:
        content, finish = _apply_text_fault(content or "", record.fault, fields.get("finish_reason") or "stop")
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    completion_text = content or "".join(c["function"]["arguments"] for c in tool_calls)
    return {
        "id": f"chatcmpl-{record.index}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": record.json.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": _usage(record.text, completion_text),
    }


def _completion_body(record: RecordedRequest, override: str | dict[str, Any]) -> dict[str, Any]:
    fields = {"text": override} if isinstance(override, str) else dict(override)
    _check_keys(fields, {"text", "finish_reason", "logprobs"})
    text, finish = _apply_text_fault(fields.get("text", ""), record.fault, fields.get("finish_reason") or "stop")
    choice = {"index": 0, "text": text, "finish_reason": finish, "logprobs": fields.get("logprobs")}
    return {
        "id": f"cmpl-{record.index}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": record.json.get("model"),
        "choices": [choice],
        "usage": _usage(record.text, text),
    }


def _apply_text_fault(text: str, fault: Fault | None, finish: str) -> tuple[str, str]:
    if fault is Fault.MALFORMED_JSON:
        return _MALFORMED, finish
    if fault is Fault.TRUNCATED:
        return text[: len(text) // 2], "length"
    return text, finish


def _tool_call(request_index: int, position: int, call: Mapping[str, Any]) -> dict[str, Any]:
    if "function" in call:  # already in OpenAI's shape
        function = dict(call["function"])
    else:
        function = {"name": call["name"], "arguments": call["arguments"]}
    if not isinstance(function["arguments"], str):
        function["arguments"] = json.dumps(function["arguments"])
    return {
        "id": call.get("id", f"call_{request_index}_{position}"),
        "type": "function",
        "function": function,
    }


def _requested_schema(request: Mapping[str, Any]) -> tuple[str | None, bool]:
    """(schema name, whether it was requested as a tool call)."""
    response_format = request.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return response_format.get("json_schema", {}).get("name"), False
    tool_choice = request.get("tool_choice")
    if isinstance(tool_choice, dict):
        return tool_choice.get("function", {}).get("name"), True
    tools = request.get("tools") or []
    if len(tools) == 1:
        return tools[0].get("function", {}).get("name"), True
    return None, False


def _random_plan(rates: Mapping[str, float], seed: int) -> FaultPlan:
    """Each request draws one number from a seeded generator; each fault owns a slice of [0, 1)
    as wide as its rate. Requests are drawn in arrival order (under the server lock)."""
    faults = [(Fault(name), rate) for name, rate in rates.items()]
    if sum(rate for _, rate in faults) > 1:
        raise ValueError(f"fault rates add up to more than 1: {dict(rates)}")
    rng = random.Random(seed)

    def plan(index: int, request: dict[str, Any]) -> Fault | None:
        draw = rng.random()
        for fault, rate in faults:
            if draw < rate:
                return fault
            draw -= rate
        return None

    return plan


def _probe_answer(request: Mapping[str, Any]) -> str | dict[str, Any] | None:
    """For the teacher client's pre-flight probe (aidsafe.teacher.preflight), the one value its
    schema allows, as a server that applies the schema produces it, whatever the responder: the
    probe is about the server, not the model. None for any other request."""
    from aidsafe.teacher.preflight import PROBE_SCHEMA_NAME

    name, via_tool = _requested_schema(request)
    if name != PROBE_SCHEMA_NAME:
        return None
    from aidsafe.testing.schema_responder import _requested, random_instance

    text = json.dumps(random_instance(_requested(request)[0], random.Random(0)))
    return {"tool_calls": [{"name": name, "arguments": text}]} if via_tool else text


def _unconstrained(record: RecordedRequest) -> str:
    """What a model answers to the request's last message with no schema applied."""
    messages = record.json.get("messages") or [{}]
    example = _JSON_EXAMPLE.search(_content_text(messages[-1].get("content")))
    if example is not None:
        try:
            return json.dumps(json.loads(example.group()))
        except ValueError:
            pass  # braces that are not JSON: prose it is
    return _PROSE


def _prompt_text(request: Mapping[str, Any]) -> str:
    if "messages" in request:
        return "\n".join(_content_text(m.get("content")) for m in request["messages"])
    prompt = request.get("prompt", "")
    return "\n".join(prompt) if isinstance(prompt, list) else str(prompt)


def _token_count(text: str) -> int:
    # About four characters per token: rough, but deterministic and non-zero.
    return max(1, len(text) // 4)


def _usage(prompt: str, completion: str) -> dict[str, int]:
    prompt_tokens = _token_count(prompt)
    completion_tokens = _token_count(completion)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": None}}


def _check_keys(fields: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"unknown reply fields {sorted(unknown)}; allowed: {sorted(allowed)}")


def _content_text(content: Any) -> str:
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


def _shutdown_socket(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the peer


def _load_responder(reference: str) -> Responder:
    """`module:attr` naming a responder, or a factory that takes no arguments and returns one
    (like `aidsafe.testing:aidsafe_responder`)."""
    module_name, _, attr = reference.partition(":")
    if not attr:
        raise SystemExit(f"--responder must be module:attr, got {reference!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"--responder {reference}: {exc}") from None
    found = getattr(module, attr, None)
    if found is None:
        raise SystemExit(f"--responder {reference}: {module_name} has no attribute {attr!r}")
    if not callable(found):
        raise SystemExit(f"--responder {reference}: not callable")
    try:
        inspect.signature(found).bind()
    except TypeError:
        return found  # takes the request: a responder
    return found()  # takes nothing: a factory


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--model", action="append", help="served model name (repeatable)")
    parser.add_argument(
        "--responder",
        help="module:attr of a responder, or of a no-argument factory of one "
        "(default: aidsafe.testing:loopback_responder, valid replies for every built-in stage)",
    )
    parser.add_argument(
        "--fault-rate",
        action="append",
        default=[],
        metavar="FAULT=RATE",
        help=f"inject a fault at random, e.g. http_500=0.05; faults: {', '.join(f.value for f in Fault)}",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retry-after", type=float, default=1.0)
    parser.add_argument("--slow", type=float, default=5.0, help="seconds a slow fault sleeps")
    parser.add_argument("--capacity", type=int, help="answer HTTP 429 above this many requests in flight")
    parser.add_argument("--max-model-len", type=int, help="the context length GET /v1/models reports, as vLLM does")
    parser.add_argument("--tokenize", action="store_true", help="count prompt tokens at POST /tokenize, as vLLM does")
    parser.add_argument("--api-key", help="answer HTTP 401 to requests without this bearer key (vllm serve --api-key)")
    args = parser.parse_args(argv)
    rates = {name: float(rate) for name, _, rate in (item.partition("=") for item in args.fault_rate)}
    server = ScriptedServer(
        # The default answers every built-in stage, so each command against it just works.
        _load_responder(args.responder or "aidsafe.testing:loopback_responder"),
        models=args.model or ["scripted-model"],
        latency_s=args.latency,
        fault_rates=rates,
        seed=args.seed,
        retry_after_s=args.retry_after,
        slow_s=args.slow,
        capacity=args.capacity,
        max_model_len=args.max_model_len,
        tokenize=args.tokenize,
        api_key=args.api_key,
        port=args.port,
    )
    # SIGTERM (how tests and benchmarks end us) unwinds through `finally` like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.start()
    print(server.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
