"""The pre-flight, before the first item: the server answers, serves the model, and takes one
tiny request in the endpoint's structured-output mode (preflight.py holds that request). The
functions take the TeacherClient, whose wire, backoff and retry loop they use.

Outages are waited out and refusals named, never one mistaken for the other:
- transient failures (5xx, 429, a reset connection; on the probe also a proxy's page and
  timeouts) get the client's normal transport retries, backoff and Retry-After included: a run
  started while the server restarts starts once it is back, within the retry budget, and
  otherwise stops with a line naming the outage;
- a connection that cannot be made at all (refused, unknown host) fails at once: before a run the
  usual cause is a server that was never started, and the line says how to start one;
- the probe is called a mode refusal only when the server's answer names the mode's request
  fields (a 4xx, or llama-cpp-python's HTTP 500 naming json_schema); another 4xx says what the
  server rejected; HTTP 401 or 403 on either request is the API key;
- a probe answered with anything but the one value its schema allows (preflight.py) is a server
  that ignores the schema, named as such; a reply cut off at the probe's token limit proves
  nothing, and passes as "not known".

Each failure is a TeacherUnreachable whose `failed` names the part (aidsafe.errors), for
`aidsafe check`'s table.

An endpoint whose calls go through a LangChain chat model sends the probe through the model
(`check_chat_model`): it says that the provider serves the model (a 404 says not), takes the key,
answers in the endpoint's mode and applies the schema. ChatOpenAI's server is an OpenAI-compatible
one, whose model list is read first, as for the wire client (the context length comes from it).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel

from aidsafe.errors import TeacherUnreachable
from aidsafe.oneline import one_line
from aidsafe.teacher.body import chat_body
from aidsafe.teacher.preflight import (
    PREFLIGHT_MESSAGES,
    PREFLIGHT_SAMPLING,
    mode_refused,
    names_mode,
    probe_schema,
    schema_ignored,
)
from aidsafe.teacher.replies import clean_reply, has_tool_call, parse_reply, reply_text
from aidsafe.teacher.retry import describe_failure, is_transient, timed_out
from aidsafe.teacher.tokens import server_root
from aidsafe.teacher.types import CallRecord, Endpoint, Served, TeacherError
from aidsafe.teacher.wire import NotConnected, NotJSONReply, StatusError, WireError

__all__ = ["check_chat_model", "check_model_list", "check_structured_output"]

REACHABLE_TIMEOUT_S = 10.0
# A mode refusal seen three times is the server's answer, not a passing fault: a few seconds.
_REFUSAL_ATTEMPTS = 3
_REPLY_SHOWN = 120  # characters of an ignoring reply the line quotes
# Unauthorized (no or a wrong key) and Forbidden (a key without access to the model): the key's answer.
_KEY_REFUSED = (401, 403)


async def check_model_list(client: Any, endpoint: Endpoint) -> int | None:
    """`GET /models` answers an OpenAI model list that holds `endpoint.model`; returns the context
    length the list gives for it (vLLM's `max_model_len`), or None where it says none."""
    url = endpoint.base_url.rstrip("/") + "/models"
    started, tries = time.monotonic(), 0
    while True:
        tries += 1
        try:
            page = await client._wire.request(
                "GET", url, api_key=client._api_key(endpoint), timeout_s=REACHABLE_TIMEOUT_S
            )
            break
        except WireError as exc:
            if not _outage(exc) or tries >= client.max_attempts:
                raise _model_list_failure(endpoint, exc, tries, time.monotonic() - started) from exc
            await asyncio.sleep(client._backoff.wait(tries, exc))
    entries = page.get("data")
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise _unreachable(endpoint, "GET /models did not return an OpenAI model list")
    served = [entry.get("id") for entry in entries]
    if not all(isinstance(name, str) for name in served):
        raise TeacherUnreachable(
            f"teacher at {endpoint.base_url} is not an OpenAI-compatible server: "
            "GET /models listed models without an id"
        )
    if endpoint.model not in served:
        raise TeacherUnreachable(
            f"teacher at {endpoint.base_url} does not serve model {endpoint.model!r}; "
            f"it serves: {', '.join(served) or 'no models'}",
            failed="served",
        )
    length = entries[served.index(endpoint.model)].get("max_model_len")
    return length if isinstance(length, int) and not isinstance(length, bool) and length > 0 else None


async def check_structured_output(client: Any, endpoint: Endpoint) -> str:
    """One tiny request in the endpoint's mode whose schema allows one value (preflight.py):
    "honoured" when the reply is that value, "not known" when it was cut off at the token limit;
    any other reply raises TeacherUnreachable (failed="schema").

    In function_calling mode the forced tool is sent as tool_choice "required", which current
    llama-server honours and its named form not; llama-cpp-python is the other way round. So
    when "required" brings no tool call, the named form is tried, and kept for this endpoint if
    it does."""
    schema = probe_schema()
    failure: TeacherError | None = None
    reply = None
    try:
        reply = await _probe(client, endpoint, schema, named_tool=False)
    except TeacherError as exc:
        failure = exc
    answered = failure is None or not failure.transient  # an outage says nothing about the mode
    if endpoint.structured_output == "function_calling" and answered and not has_tool_call(reply[0] if reply else None):
        try:
            named = await _probe(client, endpoint, schema, named_tool=True)
        except TeacherError:
            named = None  # the first answer is the one to report
        if named is not None and has_tool_call(named[0]):
            client._named_tool_choice.add((endpoint.base_url, endpoint.model))
            reply, failure = named, None
    if failure is not None:
        raise _probe_failure(endpoint, failure) from failure
    assert reply is not None
    return _honoured(endpoint, schema, *reply)


async def check_chat_model(client: Any, endpoint: Endpoint) -> Served:
    """The probe, through the endpoint's chat model (`client._chat_model_send`), with the wire's
    retries and refusal rules; for ChatOpenAI, after its server's model list (the context length;
    LangChain knows none)."""
    assert endpoint.chat_model is not None
    length = await check_model_list(client, endpoint) if endpoint.chat_model.openai_compatible else None
    schema = probe_schema()
    call = CallRecord(agent="pre-flight", role="pre-flight", model=endpoint.model)
    mode = endpoint.structured_output

    def refused(failure: WireError, tries: int) -> bool:
        return tries >= _REFUSAL_ATTEMPTS and isinstance(failure, StatusError) and names_mode(failure, mode)

    try:
        reply = await client._chat_model_send(
            call, endpoint, PREFLIGHT_MESSAGES, schema, PREFLIGHT_SAMPLING, give_up=refused, watched=False
        )
    except TeacherError as exc:
        raise _chat_model_failure(endpoint, exc) from exc
    choice = reply["choices"][0]
    return Served(length, _honoured(endpoint, schema, choice["message"], choice["finish_reason"]))


def _chat_model_failure(endpoint: Endpoint, exc: TeacherError) -> TeacherUnreachable:
    spec = endpoint.chat_model
    assert spec is not None
    cause = exc.__cause__
    where = f"teacher {endpoint.model} through {spec.ref}"
    if isinstance(cause, StatusError) and cause.status in _KEY_REFUSED:
        source = (
            f"the key from {endpoint.api_key_env}: set that variable, or api_key_env in the recipe"
            if spec.openai_compatible
            else f"the credentials {spec.ref} finds itself (its provider's environment variables or files)"
        )
        return TeacherUnreachable(f"{where} was refused {source} ({describe_failure(cause)})", failed="key")
    if isinstance(cause, StatusError) and cause.status == 404:
        return TeacherUnreachable(
            f"{where}: the provider does not serve model {endpoint.model!r} ({describe_failure(cause)})",
            failed="served",
        )
    if isinstance(cause, StatusError) and names_mode(cause, endpoint.structured_output):
        return TeacherUnreachable(mode_refused(endpoint.base_url, endpoint.structured_output, describe_failure(cause)),
                                  failed="mode")  # fmt: skip
    tail = (
        "; rerun when it answers" if exc.transient and not (isinstance(cause, WireError) and timed_out(cause)) else ""
    )
    return TeacherUnreachable(f"{exc}{tail}", failed="answers")


async def _probe(
    client: Any, endpoint: Endpoint, schema: type[BaseModel], *, named_tool: bool
) -> tuple[dict[str, Any] | None, Any]:
    """The probe's reply: its message (None when it has none) and finish reason."""
    call = CallRecord(agent="pre-flight", role="pre-flight", model=endpoint.model)
    mode = endpoint.structured_output
    body = chat_body(endpoint.model, PREFLIGHT_MESSAGES, PREFLIGHT_SAMPLING, schema, mode, named_tool)

    def refused(failure: WireError, tries: int) -> bool:
        return tries >= _REFUSAL_ATTEMPTS and isinstance(failure, StatusError) and names_mode(failure, mode)

    reply = await client._send(call, endpoint, "/chat/completions", body, give_up=refused, watched=False)
    choices = reply.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = choice.get("message")
    return (message if isinstance(message, dict) else None), choice.get("finish_reason")


def _honoured(endpoint: Endpoint, schema: type[BaseModel], message: dict[str, Any] | None, finish: Any) -> str:
    text = clean_reply(reply_text(message or {}))
    try:
        parse_reply(text, False, schema, None)
    except ValueError:
        if finish == "length":
            return "not known"  # a reasoning model still thinking, say: nothing was proved
        shown = one_line(text, _REPLY_SHOWN) or "nothing"
        raise TeacherUnreachable(
            schema_ignored(endpoint.base_url, endpoint.model, endpoint.structured_output, shown), failed="schema"
        ) from None
    return "honoured"


def _probe_failure(endpoint: Endpoint, exc: TeacherError) -> TeacherUnreachable:
    cause = exc.__cause__
    if isinstance(cause, StatusError):
        if cause.status in _KEY_REFUSED:
            return _key_refused(endpoint, cause)
        if names_mode(cause, endpoint.structured_output):
            return TeacherUnreachable(
                mode_refused(endpoint.base_url, endpoint.structured_output, describe_failure(cause)), failed="mode"
            )
        if not exc.transient:
            return TeacherUnreachable(
                f"teacher at {endpoint.base_url} lists {endpoint.model} but rejected the pre-flight's minimal chat "
                f"request ({describe_failure(cause)}); see the server's log",
                failed="answers",
            )
    if isinstance(cause, WireError) and timed_out(cause):
        return TeacherUnreachable(str(exc), failed="answers")  # the timeout hint names the setting
    return TeacherUnreachable(
        f"{exc}; the server lists its models but is not answering requests: rerun when it does", failed="answers"
    )


def _outage(exc: WireError) -> bool:
    """Whether a failed model list is worth asking again: a server error or rate limit, or a
    connection lost on the way. Not one never made, nor a silent server, nor a page that is no
    JSON (a web page at the URL): those fail the pre-flight at once."""
    if isinstance(exc, StatusError):
        return is_transient(exc)
    return is_transient(exc) and not isinstance(exc, NotConnected | NotJSONReply) and not timed_out(exc)


def _model_list_failure(endpoint: Endpoint, exc: WireError, tries: int, waited_s: float) -> TeacherUnreachable:
    if isinstance(exc, StatusError):
        if exc.status in _KEY_REFUSED:
            return _key_refused(endpoint, exc)
        if exc.status == 404 and server_root(endpoint.base_url) == endpoint.base_url.rstrip("/"):
            suggested = endpoint.base_url.rstrip("/") + "/v1"
            return TeacherUnreachable(
                f"teacher at {endpoint.base_url} answered HTTP 404 for GET /models; OpenAI-compatible servers "
                f"serve it under /v1: pass --base-url {suggested}"
            )
        if is_transient(exc):
            return TeacherUnreachable(
                f"teacher at {endpoint.base_url} is not answering: GET /models failed {tries} times in "
                f"{waited_s:.0f} s, last: {describe_failure(exc)}; rerun when it is back"
            )
        return _unreachable(endpoint, f"GET /models answered HTTP {exc.status}")
    if timed_out(exc):
        return _unreachable(endpoint, f"no answer within {REACHABLE_TIMEOUT_S:g} s")
    if isinstance(exc, NotJSONReply) or not is_transient(exc):
        return _unreachable(endpoint, "GET /models did not return an OpenAI model list")
    if isinstance(exc, NotConnected) or tries == 1:
        return _unreachable(endpoint, describe_failure(exc))
    return TeacherUnreachable(
        f"teacher at {endpoint.base_url} is not answering: GET /models failed {tries} times in "
        f"{waited_s:.0f} s, last: {describe_failure(exc)}; rerun when it is back"
    )


def _key_refused(endpoint: Endpoint, exc: StatusError) -> TeacherUnreachable:
    return TeacherUnreachable(
        f"teacher at {endpoint.base_url} refused the API key from {endpoint.api_key_env} "
        f"(HTTP {exc.status}); set that variable, or api_key_env in the recipe",
        failed="key",
    )


def _unreachable(endpoint: Endpoint, reason: str) -> TeacherUnreachable:
    return TeacherUnreachable(
        f"teacher at {endpoint.base_url} is not reachable: {reason}; "
        f"start it (e.g. vllm serve {endpoint.model}) or pass --base-url"
    )
