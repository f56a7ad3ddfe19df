"""A LangChain chat model as the teacher: ChatOpenAI (langchain-openai over the openai SDK) against
the real ScriptedServer over loopback HTTP, through the TeacherClient, which must treat it as it
treats its own wire client. Most tests run both ways (`via`) with the same expectations: the
fault kinds end the same (a retried request, a re-ask, or the same error), so the rejection
reasons and counters a run keeps do not depend on which client made the call."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda

from aidsafe.errors import RunSetupError, TeacherUnreachable
from aidsafe.run.task import rejection_for
from aidsafe.teacher import Endpoint, InvalidOutputError, TeacherClient, TeacherError, TransientTeacherError
from aidsafe.teacher.lanes import START_LIMIT
from aidsafe.teacher.langchain import ChatModels, ModelFailed, openai_reply, wire_failure
from aidsafe.teacher.retry import is_transient, load_outcome, retry_after_s
from aidsafe.teacher.types import ChatModel
from aidsafe.teacher.watch import TRIP_AFTER
from aidsafe.teacher.wire import ConnectionFailed, NotJSONReply, RequestTimedOut, StatusError
from aidsafe.testing.server import Fault, ScriptedServer
from tests.helpers import MESSAGES, MODEL, Verdict, ask, faults_at, verdict_server

CHAT_OPENAI = ChatModel("langchain_openai:ChatOpenAI", openai_compatible=True)
VIA = {"wire": {}, "langchain": {"chat_model": CHAT_OPENAI}}
TRANSPORT_FAULTS = [Fault.HTTP_500, Fault.HTTP_429, Fault.RESET, Fault.HTML_200]
REPLY_FAULTS = [Fault.MALFORMED_JSON, Fault.TRUNCATED]


def fast_client(**kwargs: Any) -> TeacherClient:
    return TeacherClient(env={}, backoff_base_s=0.01, backoff_max_s=0.05, seed=0, **kwargs)


def sent_by_langchain(request) -> bool:
    return request.headers.get("user-agent", "").startswith("AsyncOpenAI/Python")


# The fault kinds, both ways --------------------------------------------------------------------


@pytest.mark.parametrize("via", sorted(VIA))
@pytest.mark.parametrize("fault", TRANSPORT_FAULTS + REPLY_FAULTS, ids=str)
async def test_one_fault_ends_in_a_valid_reply_the_same_way_both_ways(via, fault):
    """A transport fault is retried (the same request again), a bad reply re-asked (the
    conversation grows by the reply and the error), with the same counts either way."""
    async with fast_client() as client:
        with verdict_server(models=[MODEL], fault_plan=faults_at(fault), retry_after_s=0.05) as server:
            verdict, call = await ask(client, server, sampling={"max_tokens": 50}, **VIA[via])
            first, second = server.requests
    assert verdict == Verdict(safe=True, reason="harmless")
    assert all(sent_by_langchain(r) == (via == "langchain") for r in (first, second))
    if fault in TRANSPORT_FAULTS:
        assert (call.attempts, call.transport_retries) == (1, 1)
        assert second.json["messages"] == first.json["messages"]
    else:
        assert (call.attempts, call.transport_retries) == (2, 0)
        reply, reask = second.json["messages"][-2:]
        assert reply["role"] == "assistant" and reask["role"] == "user"
        why = "finish_reason=length" if fault is Fault.TRUNCATED else "Invalid JSON"
        assert why in reask["content"]
    assert call.prompt_tokens > 0 and call.completion_tokens > 0  # both replies' usage, summed
    assert (client.stats.calls, client.stats.failed_calls) == (1, 0)
    assert client.stats.transport_retries + client.stats.parse_retries == 1


@pytest.mark.parametrize("via", sorted(VIA))
@pytest.mark.parametrize(
    ("fault", "error", "reason"),
    [(f, TransientTeacherError, "teacher_unavailable") for f in TRANSPORT_FAULTS]
    + [(f, InvalidOutputError, "invalid_output") for f in REPLY_FAULTS]
    + [(Fault.HTTP_400, TeacherError, "teacher_error")],
    ids=str,
)
async def test_a_fault_on_every_try_is_the_same_error_and_rejection_both_ways(via, fault, error, reason):
    async with fast_client(max_transport_retries=1, max_parse_retries=1) as client:
        with verdict_server(models=[MODEL], fault_plan=lambda index, request: fault, retry_after_s=0.05) as server:
            with pytest.raises(TeacherError) as caught:
                await ask(client, server, **VIA[via])
            asked = len(server.requests)
    assert type(caught.value) is error
    assert asked == (1 if fault is Fault.HTTP_400 else 2)  # a 4xx is never retried
    rejection = rejection_for("judge", caught.value)
    assert (rejection.reason, rejection.transient) == (reason, error is TransientTeacherError)
    assert "\n" not in str(caught.value) and "judge" in str(caught.value)
    assert caught.value.call is not None and client.stats.failed_calls == 1


async def test_retry_after_is_honoured():
    async with TeacherClient(env={}, backoff_base_s=0.01, backoff_max_s=5.0) as client:
        with verdict_server(models=[MODEL], fault_plan=faults_at(Fault.HTTP_429), retry_after_s=0.5) as server:
            _, call = await ask(client, server, **VIA["langchain"])
            first, second = server.requests
    assert call.transport_retries == 1
    assert second.time - first.time >= 0.45  # the server's 0.5 s, not the 0.01 s backoff


async def test_a_slow_reply_times_out_within_timeout_s_and_names_the_setting():
    async with fast_client(max_transport_retries=1) as client:
        with verdict_server(models=[MODEL], fault_plan=lambda index, request: Fault.SLOW, slow_s=3) as server:
            with pytest.raises(TransientTeacherError, match=r"request timed out after 0.3 s: .*teacher.timeout_s"):
                await ask(client, server, timeout_s=0.3, **VIA["langchain"])
    assert client.stats.timeouts == 2


async def test_a_server_failing_the_first_requests_the_same_way_stops_the_run():
    """The watch of the first requests (aidsafe.teacher.watch) reads the chat model's failures too."""
    async with fast_client(max_transport_retries=2) as client:
        with verdict_server(models=[MODEL], fault_plan=lambda index, request: Fault.HTTP_500) as server:
            calls = [ask(client, server, **VIA["langchain"]) for _ in range(TRIP_AFTER)]
            results = await asyncio.gather(*calls, return_exceptions=True)
    assert any(isinstance(r, RunSetupError) and "HTTP 500: injected server error" in str(r) for r in results)


@pytest.mark.parametrize("via", sorted(VIA))
async def test_a_429_cuts_the_adaptive_limit_both_ways(via):
    async with fast_client(concurrency=None) as client:
        with verdict_server(models=[MODEL], fault_plan=faults_at(Fault.HTTP_429), retry_after_s=0.01) as server:
            await ask(client, server, **VIA[via])
    assert client.lanes.limit() < START_LIMIT  # halved by the 429, one reply back since


async def test_the_concurrency_limit_holds_chat_model_calls():
    async with fast_client(concurrency=3) as client:
        with verdict_server(models=[MODEL], latency_s=0.05) as server:
            await asyncio.gather(*(ask(client, server, **VIA["langchain"]) for _ in range(12)))
    assert server.max_in_flight == 3
    assert client.stats.calls == 12


# What is sent ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["json_schema", "function_calling"])
async def test_the_schema_sent_is_the_wires(mode):
    async with fast_client() as client:
        with verdict_server(models=[MODEL]) as server:
            for via in ("wire", "langchain"):
                await ask(client, server, structured_output=mode, sampling={"temperature": 0.2, "max_tokens": 40},
                          **VIA[via])  # fmt: skip
            wire, langchain = (r.json for r in server.requests)
    if mode == "json_schema":
        assert langchain["response_format"] == wire["response_format"]
    else:
        assert langchain["tools"] == wire["tools"]
        # ChatOpenAI forces the tool by name; the wire client sends "required" (docs/teacher.md)
        assert langchain["tool_choice"] == {"type": "function", "function": {"name": "Verdict"}}
    assert langchain["messages"] == wire["messages"]
    assert (langchain["temperature"], langchain["max_completion_tokens"]) == (0.2, 40)


async def test_token_counts_come_from_usage_metadata():
    async with fast_client() as client:
        with verdict_server(models=[MODEL]) as server:
            _, by_wire = await ask(client, server)
            _, by_langchain = await ask(client, server, **VIA["langchain"])
    assert (by_langchain.prompt_tokens, by_langchain.completion_tokens) == (
        by_wire.prompt_tokens,
        by_wire.completion_tokens,
    )
    assert client.stats.prompt_tokens == 2 * by_wire.prompt_tokens


# The pre-flight --------------------------------------------------------------------------------


def chat_endpoint(server: ScriptedServer, **fields: Any) -> Endpoint:
    return Endpoint(base_url=server.base_url, model=MODEL, chat_model=CHAT_OPENAI, **fields)


async def test_preflight_reads_the_model_list_and_probes_through_the_model():
    async with fast_client() as client:
        with verdict_server(models=[MODEL], max_model_len=4096) as server:
            served = await client.check_reachable(chat_endpoint(server))
            [probe] = server.requests  # the model list is a GET, not recorded
    assert served.schema == "honoured" and served.context_length == 4096
    assert sent_by_langchain(probe) and "AidsafePreflight" in str(probe.json["response_format"])


@pytest.mark.parametrize(
    ("server_options", "fields", "failed", "words"),
    [
        ({"fault_plan": lambda index, request: Fault.SCHEMA_IGNORED}, {}, "schema", "ignores the structured-output"),
        ({"api_key": "right"}, {"api_key_env": "KEY"}, "key", "refused the API key from KEY"),
        ({"models": ["other"]}, {}, "served", f"does not serve model '{MODEL}'"),
        ({"fault_plan": lambda index, request: Fault.NO_JSON_SCHEMA}, {}, "mode", "structured_output=function_calling"),
        ({"fault_plan": lambda index, request: Fault.HTTP_400}, {}, "answers", "rejected the request: HTTP 400"),
    ],
    ids=["schema-ignored", "key-refused", "model-not-served", "mode-refused", "bad-request"],
)
async def test_preflight_names_what_is_wrong_in_one_line(server_options, fields, failed, words):
    options = {"models": [MODEL], **server_options}
    async with TeacherClient(env={"KEY": "wrong"}, backoff_base_s=0.01, backoff_max_s=0.05) as client:
        with verdict_server(**options) as server:
            with pytest.raises(TeacherUnreachable) as caught:
                await client.check_reachable(chat_endpoint(server, **fields))
    assert caught.value.failed == failed
    assert words in str(caught.value) and "\n" not in str(caught.value)


# The pieces, each alone ------------------------------------------------------------------------


class _Response:
    def __init__(self, status_code: int, headers: dict[str, str]) -> None:
        self.status_code, self.headers = status_code, headers


class ProviderStatusError(Exception):
    """An exception shaped as the openai and anthropic SDKs' APIStatusError."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"Error code: {status}")
        self.status_code, self.response = status, _Response(status, headers or {})
        self.body = {"message": "provider says no", "type": "error"}


class ClientError(Exception):
    """botocore's ClientError: the status in the response metadata."""

    def __init__(self, status: int) -> None:
        super().__init__("An error occurred (ThrottlingException)")
        self.response = {"Error": {"Code": "ThrottlingException"}, "ResponseMetadata": {"HTTPStatusCode": status}}


class GoogleAPICallError(Exception):
    """google-api-core's exceptions: the HTTP status as `code`."""

    code = 404


class EndpointConnectionError(Exception):
    """botocore's, named for what it is."""


@pytest.mark.parametrize(
    ("exc", "kind", "transient"),
    [
        (ProviderStatusError(503, {"retry-after": "2"}), StatusError, True),
        (ProviderStatusError(429), StatusError, True),
        (ProviderStatusError(401), StatusError, False),
        (ClientError(429), StatusError, True),
        (GoogleAPICallError("model not found"), StatusError, False),
        (ProviderStatusError(200), NotJSONReply, True),  # a success status that came with an error
        (TimeoutError(), RequestTimedOut, True),
        (ConnectionResetError("reset by peer"), ConnectionFailed, True),
        (EndpointConnectionError("could not connect"), ConnectionFailed, True),
        (ValueError("something else"), ModelFailed, False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_provider_failures_are_named_in_the_wires_terms(exc, kind, transient):
    failure = wire_failure(exc, 30)
    assert type(failure) is kind
    assert is_transient(failure) is transient
    assert "\n" not in failure.message


def test_a_provider_status_keeps_its_retry_after_and_message():
    failure = wire_failure(ProviderStatusError(503, {"retry-after": "2"}), 30)
    assert retry_after_s(failure) == 2.0
    assert failure.server_message == "provider says no"
    assert load_outcome(wire_failure(ProviderStatusError(429), 30)).value == "overloaded"


def test_an_ai_message_reads_as_the_wires_reply():
    called = AIMessage(content="", tool_calls=[{"name": "Verdict", "args": {"safe": True}, "id": "1"}],
                       usage_metadata={"input_tokens": 7, "output_tokens": 3, "total_tokens": 10})  # fmt: skip
    reply = openai_reply(called)
    assert reply["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == {"safe": True}
    assert reply["usage"] == {"prompt_tokens": 7, "completion_tokens": 3}
    broken = AIMessage(content="", invalid_tool_calls=[{"name": "Verdict", "args": '{"safe": tru', "id": "1",
                                                        "error": "bad json"}])  # fmt: skip
    assert openai_reply(broken)["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == '{"safe": tru'
    # a cut-off reply is "length" whatever the provider calls it (Anthropic, Bedrock, Vertex)
    for metadata in ({"stop_reason": "max_tokens"}, {"stopReason": "max_tokens"}, {"finish_reason": "MAX_TOKENS"}):
        assert (
            openai_reply(AIMessage(content="{", response_metadata=metadata))["choices"][0]["finish_reason"] == "length"
        )


class ProviderChat(BaseChatModel):
    """Another provider's chat model, in process: it answers (or fails) from `script`, in order,
    and keeps what `with_structured_output` was given, as a provider class would send it."""

    model: str
    timeout: float | None = None
    max_retries: int = 2
    region_name: str | None = None
    base_url: str | None = None
    api_key: str | None = None

    script: ClassVar[list[Any]] = []
    given: ClassVar[list[tuple[Any, ...]]] = []

    @property
    def _llm_type(self) -> str:
        return "provider"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):  # pragma: no cover - never called
        raise NotImplementedError

    def with_structured_output(self, schema, *, method="function_calling", include_raw=False, **kwargs):
        ProviderChat.given.append((schema, method, include_raw, kwargs))

        def answer(messages):
            step = ProviderChat.script.pop(0)
            if isinstance(step, Exception):
                raise step
            return {"raw": step, "parsed": None, "parsing_error": None}

        return RunnableLambda(answer)


def provider_endpoint(**args: Any) -> Endpoint:
    spec = ChatModel(f"{__name__}:ProviderChat", args)
    return Endpoint(base_url=spec.ref, model="claude-x", timeout_s=42, chat_model=spec)


def verdict_call(arguments: str, **metadata: Any) -> AIMessage:
    return AIMessage(content="", invalid_tool_calls=[{"name": "Verdict", "args": arguments, "id": "1", "error": None}],
                     response_metadata=metadata, usage_metadata={"input_tokens": 5, "output_tokens": 2,
                                                                 "total_tokens": 7})  # fmt: skip


def test_another_providers_model_gets_model_timeout_no_retries_and_its_args_but_not_the_teachers_url_or_key():
    made = ChatModels().model(provider_endpoint(region_name="eu-west-1", max_retries=1), ProviderChat.__name__, None)
    assert (made.model, made.timeout, made.region_name) == ("claude-x", 42, "eu-west-1")
    assert made.max_retries == 1  # the recipe's own arguments win
    assert made.base_url is None and made.api_key is None


async def test_another_providers_model_is_asked_and_retried_and_reasked_as_the_wire_is(monkeypatch):
    monkeypatch.setattr(ProviderChat, "script", [
        ProviderStatusError(429, {"retry-after": "0"}),  # retried
        verdict_call('{"safe": true, "rea', stopReason="max_tokens"),  # cut off (Bedrock's word): re-asked
        verdict_call('{"safe": true, "reason": "fine"}'),
    ])  # fmt: skip
    monkeypatch.setattr(ProviderChat, "given", [])
    async with fast_client() as client:
        verdict, call = await client.generate(agent="judge", role="verdict", messages=MESSAGES, schema=Verdict,
                                              endpoint=provider_endpoint(), sampling={"max_tokens": 64})  # fmt: skip
    assert verdict == Verdict(safe=True, reason="fine")
    assert (call.attempts, call.transport_retries, call.prompt_tokens) == (2, 1, 10)
    spec, method, include_raw, kwargs = ProviderChat.given[0]
    assert spec == {**Verdict.model_json_schema(), "title": "Verdict"}  # a titled JSON schema, for any provider
    assert (method, include_raw, kwargs) == ("json_schema", True, {"max_tokens": 64})


@pytest.mark.parametrize(
    ("failure", "failed", "words"),
    [
        (ProviderStatusError(403), "key", "was refused the credentials"),
        (ProviderStatusError(404), "served", "the provider does not serve model 'claude-x'"),
    ],
)
async def test_another_providers_preflight_names_its_own_credentials_or_model(monkeypatch, failure, failed, words):
    monkeypatch.setattr(ProviderChat, "script", [failure])
    async with fast_client() as client:
        with pytest.raises(TeacherUnreachable) as caught:
            await client.check_reachable(provider_endpoint())
    assert caught.value.failed == failed and words in str(caught.value)
    assert str(caught.value).startswith(f"teacher claude-x through {__name__}:ProviderChat")
