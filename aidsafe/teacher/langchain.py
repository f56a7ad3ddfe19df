"""LangChain chat models as teachers: any `BaseChatModel` subclass, named `module:Class` in a recipe
(`teacher.chat_model`, or a slot's `chat_model`), takes the calls of the agents that name it,
through the model's own `with_structured_output(schema, method=..., include_raw=True)`.

Everything around the call stays the client's (client.py), the same as for the wire: the slots
and AIMD lanes, the retry loop with its backoff and Retry-After, the watch of the first requests,
the re-asks and their parsing, the rejection reasons, the stats. So this module only

- makes the model (`ChatModels.model`): the class with the recipe's `chat_model_args` and, where
  its constructor takes them, `model`, `timeout` and `max_retries=0` (aidsafe retries, with its
  own backoff, and counts the retries), and for ChatOpenAI and its subclasses the endpoint's
  `base_url` and `api_key` as the wire client would use them; one per endpoint and URL;
- asks it (`ChatModels.reply`) with the per-call schema the wire client sends, and answers in the
  wire's shape, an OpenAI chat reply (the message, the finish reason, the usage), so the client
  reads both the same way; LangChain's own parse of the reply is not used, aidsafe's is (the
  same cleaning, validation, `check` and rejection reasons as for the wire);
- says how a call failed in the wire's terms (`wire_failure`): an HTTP status with its headers,
  a lost connection, a timeout, a success status with an unusable body. The provider SDKs'
  exceptions (openai, anthropic, botocore, google-api-core, httpx) are told apart by what they
  carry, a status code or their kind, so none of those packages is imported here.

Imported only when a recipe names a chat model: the core does not need langchain-openai.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from aidsafe.oneline import one_line
from aidsafe.teacher.body import structured_output_fields
from aidsafe.teacher.types import Endpoint
from aidsafe.teacher.wire import ConnectionFailed, NotJSONReply, RequestTimedOut, StatusError, WireError

__all__ = ["ChatModels", "ModelFailed", "chat_model_class", "openai_compatible", "openai_reply", "wire_failure"]

# Structured runnables kept (one per model, schema and sampling): per-call schemas are cached
# per prompt shape (aidsafe.agents.schemas keeps up to 1,024 of a kind), so this bounds the rest.
_RUNNABLES = 1024
# What a provider reports as "stopped at the token limit": OpenAI's and Vertex's finish_reason,
# Anthropic's stop_reason, Bedrock's stopReason.
_CUT_OFF = frozenset({"length", "max_tokens", "MAX_TOKENS"})
_STOP_KEYS = ("finish_reason", "stop_reason", "stopReason")
# The SDKs' words for their transport failures (class names in the exception's MRO): openai and
# anthropic's APIConnectionError, httpx's ConnectError/ReadError/RemoteProtocolError,
# botocore's EndpointConnectionError, aiohttp's ClientConnectionError.
_TIMEOUT_WORDS = ("Timeout",)
_CONNECTION_WORDS = ("Connection", "Connect", "Transport", "Protocol", "NetworkError", "ReadError", "WriteError")
# ChatOpenAI's own words for a 2xx body that is no chat completion (a proxy's HTML page).
_NOT_A_COMPLETION = "Unexpected response type"


class ModelFailed(WireError):
    """A chat model call that failed in a way the wire has no word for: a class that could not be
    made (missing credentials, a bad argument), or an error the provider raised without a status.
    Not retried: the same call would fail the same way."""


def chat_model_class(ref: str) -> type:
    """The class `ref` (`module:Class`) names, checked to be a LangChain chat model; a ValueError
    says in one line what is wrong."""
    module_name, _, name = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name} ({exc}); {_install_hint(module_name)}") from None
    except Exception as exc:  # an error inside the module: name it, keep it one line
        raise ValueError(one_line(f"cannot import {module_name} ({type(exc).__name__}: {exc})")) from None
    found = getattr(module, name, None)
    if found is None:
        raise ValueError(f"{module_name} has no {name!r}")
    from langchain_core.language_models import BaseChatModel

    if not (isinstance(found, type) and issubclass(found, BaseChatModel)):
        raise ValueError(f"{ref} is not a LangChain chat model (a subclass of BaseChatModel)")
    return found


def _install_hint(module_name: str) -> str:
    package = module_name.split(".")[0]
    if package == "langchain_openai":
        return "install it with: pip install 'aidsafe[langchain]'"
    return f"install its package (pip install {package.replace('_', '-')})"


def openai_compatible(cls: type) -> bool:
    """ChatOpenAI or a subclass: the class speaks the OpenAI API at a `base_url` of the teacher's
    kind (AzureChatOpenAI and the other providers' OpenAI-based classes have endpoints of their own)."""
    return any(
        klass.__name__ == "ChatOpenAI" and klass.__module__.startswith("langchain_openai") for klass in cls.__mro__
    )


def _openai_family(cls: type) -> bool:
    """ChatOpenAI, AzureChatOpenAI and their subclasses: they take the wire's schema spec as it is."""
    return any(klass.__module__.split(".")[0] == "langchain_openai" for klass in cls.__mro__)


def _takes(cls: type) -> set[str]:
    """The keyword arguments a pydantic-based chat model's constructor takes: fields and aliases."""
    names: set[str] = set()
    for name, info in getattr(cls, "model_fields", {}).items():
        names.add(name)
        names.update(alias for alias in (info.alias, info.validation_alias) if isinstance(alias, str))
    return names


def _schema_spec(cls: type, schema: type[BaseModel], mode: str) -> dict[str, Any]:
    """The schema handed to `with_structured_output`: the very object the wire client sends (the
    `json_schema` of its response_format, or its tool's function) wherever the class takes it as
    it is (the OpenAI family, and every class for a tool); else that JSON schema titled with its
    name, the form every provider's converter reads."""
    fields = structured_output_fields(schema, mode)
    if mode == "function_calling":
        return fields["tools"][0]["function"]
    spec = fields["response_format"]["json_schema"]
    if _openai_family(cls):
        return spec
    return {**spec["schema"], "title": spec["name"]}


class ChatModels:
    """The chat models of one client: made on first use and kept, one per endpoint and URL, with
    their structured runnables. The event loop is the client's; `aclose` closes what was opened."""

    def __init__(self) -> None:
        self._models: dict[tuple[Endpoint, str], Any] = {}
        self._runnables: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._http: list[Any] = []  # HTTP clients made here, closed in aclose

    def model(self, endpoint: Endpoint, url: str, api_key: str | None) -> Any:
        """The chat model for `endpoint` at `url` (see the module docstring for its arguments)."""
        key = (endpoint, url)
        found = self._models.get(key)
        if found is None:
            found = self._models[key] = self._make(endpoint, url, api_key)
        return found

    def _make(self, endpoint: Endpoint, url: str, api_key: str | None) -> Any:
        spec = endpoint.chat_model
        assert spec is not None
        cls = chat_model_class(spec.ref)
        takes = _takes(cls)
        given: dict[str, Any] = {"model": endpoint.model, "timeout": endpoint.timeout_s, "max_retries": 0}
        if spec.openai_compatible:
            given.update(base_url=url, api_key=api_key)
        kwargs = {name: value for name, value in given.items() if name in takes}
        if _openai_family(cls) and "http_async_client" in takes and "http_async_client" not in spec.args:
            kwargs["http_async_client"] = self._http_client(endpoint.timeout_s)
        kwargs.update(spec.args)  # the recipe's own arguments win
        try:
            return cls(**kwargs)
        except Exception as exc:
            raise ModelFailed(one_line(f"{spec.ref} could not be made: {type(exc).__name__}: {exc}")) from exc

    def _http_client(self, timeout_s: float) -> Any:
        """A connection pool of this client's own for the openai SDK, closed with it: langchain-openai's
        default one is kept for the whole process and would hold connections of event loops that
        are gone (each run, and each test, has its own loop). The SDK's default limits (1,000
        connections) are above any lane's, which hold each replica to its own."""
        import openai  # langchain-openai's own dependency; its HTTP library differs by version

        client = openai.DefaultAsyncHttpxClient(timeout=timeout_s)
        self._http.append(client)
        return client

    def structured(self, endpoint: Endpoint, url: str, api_key: str | None, schema: type[BaseModel],
                   sampling: Mapping[str, Any]) -> Any:  # fmt: skip
        """`model.with_structured_output(spec, method=mode, include_raw=True, **sampling)`, kept:
        building one costs more than a call's own work in LangChain."""
        key = (endpoint, url, schema, json.dumps(sampling, sort_keys=True, default=str))
        runnable = self._runnables.get(key)
        if runnable is not None:
            self._runnables.move_to_end(key)
            return runnable
        model = self.model(endpoint, url, api_key)
        mode = endpoint.structured_output
        runnable = model.with_structured_output(
            _schema_spec(type(model), schema, mode), method=mode, include_raw=True, **sampling
        )
        self._runnables[key] = runnable
        if len(self._runnables) > _RUNNABLES:
            self._runnables.popitem(last=False)
        return runnable

    async def reply(self, endpoint: Endpoint, url: str, api_key: str | None, messages: Sequence[Mapping[str, Any]],
                    schema: type[BaseModel], sampling: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
        """One call, answered as an OpenAI chat reply (`openai_reply`); a failure is raised as the
        wire's (`wire_failure`), within `endpoint.timeout_s` as a whole, as the wire's requests are."""
        try:
            runnable = self.structured(endpoint, url, api_key, schema, sampling)
            async with asyncio.timeout(endpoint.timeout_s):
                out = await runnable.ainvoke([dict(message) for message in messages])
        except WireError:
            raise
        except Exception as exc:
            kept = _kept_reply(exc)
            if kept is None:
                raise wire_failure(exc, endpoint.timeout_s) from exc
            return kept
        return openai_reply(out["raw"])

    async def aclose(self) -> None:
        for client in self._http:
            await client.aclose()
        self._http.clear()
        self._models.clear()
        self._runnables.clear()


def openai_reply(raw: Any) -> dict[str, Any]:
    """An AIMessage as the OpenAI chat reply the client reads: its content, its tool call's
    arguments (as LangChain parsed them, or the raw text it could not parse), the finish reason
    (a provider's "stopped at the token limit" as `length`) and the usage."""
    message: dict[str, Any] = {"content": raw.content}
    calls = [(c.get("name"), c.get("args")) for c in getattr(raw, "tool_calls", None) or []]
    calls = calls or [(c.get("name"), c.get("args") or "") for c in getattr(raw, "invalid_tool_calls", None) or []]
    if calls:
        message["tool_calls"] = [
            {"type": "function", "function": {"name": name, "arguments": args}} for name, args in calls
        ]
    metadata = getattr(raw, "response_metadata", None) or {}
    stop = next((metadata[key] for key in _STOP_KEYS if metadata.get(key) is not None), None)
    reply: dict[str, Any] = {"choices": [{"message": message, "finish_reason": "length" if stop in _CUT_OFF else stop}]}
    usage = getattr(raw, "usage_metadata", None)
    if usage:
        reply["usage"] = {"prompt_tokens": usage.get("input_tokens"), "completion_tokens": usage.get("output_tokens")}
    return reply


def _kept_reply(exc: BaseException) -> dict[str, Any] | None:
    """The reply an SDK refused but kept: the openai SDK raises LengthFinishReasonError for a
    reply cut off at the token limit, with the completion. The client reads it as the wire's
    reply, so the cut-off is re-asked for a shorter reply, as there."""
    completion = getattr(exc, "completion", None)
    if completion is None or not hasattr(completion, "choices") or not hasattr(completion, "model_dump"):
        return None
    reply = completion.model_dump(mode="json")
    return reply if isinstance(reply, dict) else None


def wire_failure(exc: BaseException, timeout_s: float) -> WireError:
    """`exc`, raised by a chat model call, as the wire's failure of the same kind, so the one retry
    policy (retry.py) and the watch of the first requests (watch.py) read it: transient (5xx,
    408/409/429, timeouts, lost connections, a success status with an unusable body) or not."""
    if isinstance(exc, TimeoutError) or _named(exc, _TIMEOUT_WORDS):
        return RequestTimedOut(f"no whole reply within {timeout_s:g} s")
    status = _status(exc)
    if status is not None and not 200 <= status < 300:
        body = getattr(exc, "body", None)  # the openai and anthropic SDKs keep the error object here
        error = body if isinstance(body, dict) and isinstance(body.get("message"), str) else {"message": _text(exc)}
        return StatusError(status, _headers(exc), one_line(str(exc)), error)
    if status is not None or (isinstance(exc, ValueError) and str(exc).startswith(_NOT_A_COMPLETION)):
        return NotJSONReply(one_line(f"a success status with a body that is no chat completion ({_text(exc)})"))
    if isinstance(exc, ConnectionError | OSError) or _named(exc, _CONNECTION_WORDS):
        detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
        return ConnectionFailed(one_line(f"connection failed ({detail})"))
    return ModelFailed(one_line(f"{type(exc).__name__}: {exc}"))


def _named(exc: BaseException, words: tuple[str, ...]) -> bool:
    return any(word in klass.__name__ for klass in type(exc).__mro__ for word in words)


def _status(exc: BaseException) -> int | None:
    """The HTTP status a provider's exception carries: `status_code` (openai, anthropic, httpx's
    HTTPStatusError through its response), aiohttp's `status`, botocore's response metadata,
    google-api-core's `code`."""
    response = getattr(exc, "response", None)
    candidates = [
        getattr(exc, "status_code", None),
        getattr(response, "status_code", None),
        getattr(exc, "status", None),
    ]
    if isinstance(response, dict):  # botocore's ClientError
        candidates.append((response.get("ResponseMetadata") or {}).get("HTTPStatusCode"))
    candidates.append(getattr(exc, "code", None))
    for value in candidates:
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value < 600:
            return value
    return None


def _headers(exc: BaseException) -> Mapping[str, str]:
    headers = getattr(getattr(exc, "response", None), "headers", None)
    return headers if isinstance(headers, Mapping) else {}


def _text(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    return one_line(message if isinstance(message, str) and message else str(exc))
