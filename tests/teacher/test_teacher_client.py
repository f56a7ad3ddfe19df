"""TeacherClient against the real ScriptedServer: structured output, re-asks, transport retries,
concurrency and the pre-flight check, all over loopback HTTP with no mocks."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from aidsafe.errors import AidsafeError, TeacherUnreachable
from aidsafe.teacher import (
    Endpoint,
    InvalidOutputError,
    TeacherClient,
    TeacherError,
    TransientTeacherError,
    clean_reply,
)
from aidsafe.teacher.retry import Backoff
from aidsafe.teacher.wire import ConnectionFailed, StatusError
from aidsafe.testing.server import Fault, ScriptedServer, responder_by_schema_name
from tests.helpers import MESSAGES, MODEL, Verdict, ask, faults_at, free_port, serving, verdict_server

VALID = '{"safe": true, "reason": "harmless"}'  # what verdict_server() answers


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with verdict_server() as running:
        yield running


@pytest.fixture
async def client():
    async with TeacherClient(env={}, backoff_base_s=0.01, backoff_max_s=0.05, seed=0) as teacher:
        yield teacher


def endpoint(server: ScriptedServer, **kwargs) -> Endpoint:
    return Endpoint(base_url=server.base_url, model=MODEL, **kwargs)


def approx_tokens(text: str) -> int:
    return max(1, len(text) // 4)  # the ScriptedServer's own count


# Structured output ----------------------------------------------------------------------------


async def test_json_schema_reply_is_parsed_and_recorded(client, server):
    verdict, call = await ask(client, server, sampling={"temperature": 0.2, "top_k": 5})

    assert verdict == Verdict(safe=True, reason="harmless")
    assert (call.agent, call.role, call.model) == ("judge", "verdict", MODEL)
    assert (call.attempts, call.transport_retries) == (1, 0)
    assert call.prompt_tokens == approx_tokens(server.requests[0].text)
    assert call.completion_tokens == approx_tokens(verdict.model_dump_json())
    assert call.latency_s > 0
    assert client.stats.calls == 1
    assert client.stats.prompt_tokens == call.prompt_tokens
    assert client.stats.in_flight == 0

    body = server.requests[0].json
    response_format = body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "Verdict"
    assert response_format["json_schema"]["schema"] == Verdict.model_json_schema()
    assert response_format["json_schema"]["strict"] is False
    # OpenAI's own parameters as they are; a server-specific one (vLLM's top_k) in the body too.
    assert body["temperature"] == 0.2
    assert body["top_k"] == 5
    assert "tools" not in body


async def test_function_calling_mode_reads_the_forced_tool_call(client, server):
    verdict, _ = await ask(client, server, structured_output="function_calling")

    assert verdict == Verdict(safe=True, reason="harmless")
    body = server.requests[0].json
    assert [tool["function"]["name"] for tool in body["tools"]] == ["Verdict"]
    assert body["tools"][0]["function"]["parameters"] == Verdict.model_json_schema()
    assert body["tool_choice"] == "required"  # the only tool; llama-server ignores the named form
    assert "response_format" not in body


async def test_think_block_and_fence_are_stripped(client):
    reply = '<think>Maybe {"safe": false}? No.</think>\nHere it is:\n```json\n' + VALID + "\n```"
    with ScriptedServer(lambda request: reply) as server:
        verdict, call = await ask(client, server)
    assert verdict.reason == "harmless"
    assert call.attempts == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (VALID, VALID),
        ("<think>a\nb</think>" + VALID, VALID),
        ("reasoning whose opening tag was in the prompt</think>\n" + VALID, VALID),
        ("```\n" + VALID + "\n```", VALID),
        ("  " + VALID + "\n", VALID),
        # Already JSON: fences and tags inside its strings are content.
        ('{"reason": "see ```py\\nx\\n``` and </think>"}', '{"reason": "see ```py\\nx\\n``` and </think>"}'),
    ],
)
def test_clean_reply(text, expected):
    assert clean_reply(text) == expected


async def test_api_key_is_read_from_the_given_env(server):
    async with TeacherClient(env={"TEACHER_KEY": "sekret"}) as client:
        await ask(client, server, api_key_env="TEACHER_KEY")
    assert server.requests[0].headers["authorization"] == "Bearer sekret"


async def test_openai_without_key_names_the_variable():
    async with TeacherClient(env={}) as client:
        openai_endpoint = Endpoint(base_url="https://api.openai.com/v1", model="gpt-4o-mini")
        with pytest.raises(AidsafeError, match="OPENAI_API_KEY is not set"):
            await client.generate(
                agent="judge", role="verdict", messages=MESSAGES, schema=Verdict,
                endpoint=openai_endpoint, sampling={},
            )  # fmt: skip


# Re-asks ---------------------------------------------------------------------------------------


async def test_malformed_then_valid_reasks_once_and_sums_tokens(client):
    with verdict_server(fault_plan=faults_at(Fault.MALFORMED_JSON)) as server:
        verdict, call = await ask(client, server)
    first, second = server.requests
    assert verdict.safe is True
    assert call.attempts == 2
    assert call.prompt_tokens == approx_tokens(first.text) + approx_tokens(second.text)
    assert client.stats.parse_retries == 1
    # The re-ask carries the bad reply and the validation error.
    bad_reply, reask = second.json["messages"][-2:]
    assert bad_reply["role"] == "assistant"
    assert "not valid JSON" in bad_reply["content"]  # the server's malformed reply, verbatim
    assert reask["role"] == "user"
    assert "Invalid JSON" in reask["content"]
    assert "Verdict" in reask["content"]


async def test_always_malformed_raises_invalid_output_after_the_allowed_reasks():
    async with TeacherClient(env={}, max_parse_retries=2) as client:
        with verdict_server(fault_plan=lambda index, request: Fault.MALFORMED_JSON) as server:
            with pytest.raises(InvalidOutputError) as caught:
                await ask(client, server)
            assert len(server.requests) == 3
    message = str(caught.value)
    assert "\n" not in message
    assert "judge" in message and MODEL in message and "Verdict" in message
    assert "3 replies" in message and "Invalid JSON" in message
    assert client.stats.failed_calls == 1
    assert client.stats.calls == 0


async def test_check_error_is_sent_back_to_the_model(client):
    replies = iter([Verdict(safe=True, reason="no policy"), Verdict(safe=True, reason="P1 ok")])
    with ScriptedServer(responder_by_schema_name({"Verdict": lambda request: next(replies)})) as server:

        def must_cite_policy(verdict: Verdict) -> None:
            if "P1" not in verdict.reason:
                raise ValueError("the reason must cite policy P1")

        verdict, call = await ask(client, server, check=must_cite_policy)
    assert verdict.reason == "P1 ok"
    assert call.attempts == 2
    assert "the reason must cite policy P1" in server.requests[1].json["messages"][-1]["content"]


async def test_reply_cut_off_at_the_token_limit_is_reasked(client):
    with verdict_server(fault_plan=faults_at(Fault.TRUNCATED)) as server:
        _, call = await ask(client, server, sampling={"max_tokens": 50})
    assert call.attempts == 2
    assert "finish_reason=length" in server.requests[1].json["messages"][-1]["content"]
    assert server.requests[0].json["max_completion_tokens"] == 50


async def test_truncated_every_time_says_so():
    async with TeacherClient(env={}, max_parse_retries=0) as client:
        with (
            verdict_server(fault_plan=lambda index, request: Fault.TRUNCATED) as server,
            pytest.raises(InvalidOutputError, match="cut off at the token limit"),
        ):
            await ask(client, server)


async def test_malformed_tool_arguments_are_reasked(client):
    with verdict_server(fault_plan=faults_at(Fault.MALFORMED_JSON)) as server:
        verdict, call = await ask(client, server, structured_output="function_calling")
    assert verdict.safe is True
    assert call.attempts == 2


# Transport retries ----------------------------------------------------------------------------


async def test_server_error_then_ok_is_retried(client):
    with verdict_server(fault_plan=faults_at(Fault.HTTP_500)) as server:
        verdict, call = await ask(client, server)
    assert verdict.safe is True
    assert (call.attempts, call.transport_retries) == (1, 1)
    assert client.stats.transport_retries == 1
    assert len(server.requests) == 2


async def test_server_errors_outlasting_the_retries_raise_transient():
    async with TeacherClient(env={}, max_transport_retries=2, backoff_base_s=0.01) as client:
        with verdict_server(fault_plan=lambda index, request: Fault.HTTP_500) as server:
            with pytest.raises(TransientTeacherError) as caught:
                await ask(client, server)
            assert len(server.requests) == 3
    assert caught.value.transient is True
    assert "HTTP 500: injected server error" in str(caught.value)
    assert "3 times" in str(caught.value)
    assert client.stats.failed_calls == 1
    assert client.stats.transport_retries == 2


async def test_rate_limit_honours_retry_after(client):
    with verdict_server(fault_plan=faults_at(Fault.HTTP_429), retry_after_s=0.5) as server:
        async with TeacherClient(env={}, backoff_base_s=0.01, backoff_max_s=5.0) as patient:
            _, call = await ask(patient, server)
    first, second = server.requests
    assert call.transport_retries == 1
    assert second.time - first.time >= 0.45  # the server's 0.5 s, not the 0.01 s backoff


async def test_retry_after_is_capped_at_backoff_max(client):
    with verdict_server(fault_plan=faults_at(Fault.HTTP_429), retry_after_s=30) as server:
        started = time.monotonic()
        await ask(client, server)  # backoff_max_s=0.05
    assert time.monotonic() - started < 5


async def test_slow_reply_times_out_is_retried_then_transient():
    async with TeacherClient(env={}, max_transport_retries=1, backoff_base_s=0.01) as client:
        with verdict_server(fault_plan=lambda index, request: Fault.SLOW, slow_s=5) as server:
            with pytest.raises(
                TransientTeacherError, match=r"failed 2 times in a row, last: request timed out after 0.2 s: "
            ):
                await ask(client, server, timeout_s=0.2)
            assert len(server.requests) == 2


async def test_reset_connection_is_retried(client):
    with verdict_server(fault_plan=faults_at(Fault.RESET)) as server:
        verdict, call = await ask(client, server)
    assert verdict.safe is True
    assert call.transport_retries == 1


async def test_bad_request_is_not_retried(client):
    with verdict_server(fault_plan=lambda index, request: Fault.HTTP_400) as server:
        with pytest.raises(TeacherError) as caught:
            await ask(client, server)
        assert len(server.requests) == 1
    assert not isinstance(caught.value, TransientTeacherError)
    assert str(caught.value) == (
        f"judge: teacher {MODEL} at {server.base_url} rejected the request: HTTP 400: injected bad request"
    )
    assert client.stats.transport_retries == 0
    assert client.stats.failed_calls == 1


async def test_unknown_model_is_not_retried(client, server):
    with pytest.raises(TeacherError, match="HTTP 404"):
        await client.generate(
            agent="judge", role="verdict", messages=MESSAGES, schema=Verdict,
            endpoint=Endpoint(base_url=server.base_url, model="no-such-model"), sampling={},
        )  # fmt: skip
    assert len(server.requests) == 1


def test_backoff_is_seeded_exponential_and_prefers_retry_after():
    def waits(seed: int) -> list[float]:
        backoff = Backoff(base_s=1.0, max_s=30.0, rng=random.Random(seed))
        return [backoff.wait(n, ConnectionFailed("connection failed (reset)")) for n in range(1, 8)]

    assert waits(1) == waits(1) != waits(2)
    for attempt, wait in enumerate(waits(1), start=1):
        delay = min(30.0, 2.0 ** (attempt - 1))
        assert delay / 2 <= wait <= delay
    backoff = Backoff(base_s=1.0, max_s=30.0, rng=random.Random(0))
    assert backoff.wait(1, StatusError(429, {"retry-after": "7"}, "", None)) == 7.0
    assert backoff.wait(1, StatusError(503, {"retry-after": "600"}, "", None)) == 30.0  # capped


# Raw-text completions -------------------------------------------------------------------------


def completion_server(**kwargs) -> ScriptedServer:
    top = [{" unsafe": -0.1, " safe": -2.4}, {"\n": 0.0}]
    logprobs = {"tokens": [" unsafe", "\n"], "token_logprobs": [-0.1, 0.0], "top_logprobs": top}
    return ScriptedServer(lambda request: {"text": " unsafe\n", "logprobs": logprobs}, models=[MODEL], **kwargs)


async def complete(client: TeacherClient, server: ScriptedServer, sampling=None):
    return await client.complete_text(agent="guard", prompt="<|begin|>Is this safe?", endpoint=endpoint(server),
                                      sampling=sampling or {"temperature": 0, "max_tokens": 16})  # fmt: skip


async def test_complete_text_returns_the_choice_and_records_usage(client):
    with completion_server() as server:
        reply, call = await complete(client, server, {"temperature": 0, "max_tokens": 16, "logprobs": 5, "top_k": 1})
    assert reply["text"] == " unsafe\n" and reply["finish_reason"] == "stop"
    assert reply["logprobs"]["tokens"] == [" unsafe", "\n"]
    assert reply["logprobs"]["top_logprobs"][0] == {" unsafe": -0.1, " safe": -2.4}
    assert (call.agent, call.model, call.attempts, call.transport_retries) == ("guard", MODEL, 1, 0)
    assert (call.prompt_tokens, call.completion_tokens) == (approx_tokens("<|begin|>Is this safe?"), 2)
    assert call.latency_s > 0
    assert (client.stats.calls, client.stats.completion_tokens, client.stats.in_flight) == (1, 2, 0)
    (request,) = server.requests
    assert request.path == "/v1/completions"
    # the prompt as it is (no chat template); OpenAI's parameters and vLLM's top_k in the body
    assert request.json == {"model": MODEL, "prompt": "<|begin|>Is this safe?", "temperature": 0, "max_tokens": 16,
                            "logprobs": 5, "top_k": 1}  # fmt: skip


async def test_complete_text_retries_a_server_error(client):
    with completion_server(fault_plan=faults_at(Fault.HTTP_500)) as server:
        reply, call = await complete(client, server)
    assert reply["text"] == " unsafe\n"
    assert call.transport_retries == 1 and client.stats.transport_retries == 1
    assert len(server.requests) == 2


async def test_complete_text_shares_the_concurrency_limit_with_generate():
    async with TeacherClient(env={}, concurrency=2) as client:
        with completion_server(latency_s=0.05) as server:
            await asyncio.gather(*(complete(client, server) for _ in range(8)))
    assert server.max_in_flight == 2
    assert client.stats.calls == 8


async def test_complete_text_bad_request_is_not_retried(client):
    with completion_server(fault_plan=lambda index, request: Fault.HTTP_400) as server:
        with pytest.raises(TeacherError) as caught:
            await complete(client, server)
        assert len(server.requests) == 1
    assert not isinstance(caught.value, TransientTeacherError)
    assert str(caught.value) == (
        f"guard: teacher {MODEL} at {server.base_url} rejected the request: HTTP 400: injected bad request"
    )
    assert (client.stats.failed_calls, client.stats.transport_retries, client.stats.calls) == (1, 0, 0)


async def test_complete_text_transient_errors_outlasting_the_retries():
    async with TeacherClient(env={}, max_transport_retries=1, backoff_base_s=0.01) as client:
        with completion_server(fault_plan=lambda index, request: Fault.RESET) as server:
            with pytest.raises(TransientTeacherError, match="failed 2 times in a row, last: connection failed"):
                await complete(client, server)
            assert len(server.requests) == 2
    assert client.stats.failed_calls == 1


# Concurrency ----------------------------------------------------------------------------------


async def test_concurrency_limit_bounds_requests_in_flight():
    async with TeacherClient(env={}, concurrency=3) as client:
        with verdict_server(latency_s=0.05) as server:
            results = await asyncio.gather(*(ask(client, server) for _ in range(12)))
    assert len(results) == 12
    assert server.max_in_flight == 3
    assert client.stats.in_flight == 0
    assert client.stats.calls == 12


async def test_slots_are_not_held_during_backoff():
    # One slot; a 429 with a 0.5 s Retry-After must not block a second caller meanwhile.
    async with TeacherClient(env={}, concurrency=1, backoff_max_s=5.0) as client:
        with verdict_server(fault_plan=faults_at(Fault.HTTP_429), retry_after_s=0.5) as server:
            first = asyncio.create_task(ask(client, server))
            await asyncio.sleep(0.1)
            started = time.monotonic()
            await ask(client, server)
            assert time.monotonic() - started < 0.4
            await first


# Pre-flight -----------------------------------------------------------------------------------


async def test_check_reachable_accepts_a_serving_endpoint(client, server):
    await client.check_reachable(endpoint(server))


async def test_check_reachable_closed_port(client):
    port = free_port()
    closed = Endpoint(base_url=f"http://127.0.0.1:{port}/v1", model="Qwen/Qwen3-8B")
    with pytest.raises(TeacherUnreachable) as caught:
        await client.check_reachable(closed)
    message = str(caught.value)
    assert message.startswith(f"teacher at http://127.0.0.1:{port}/v1 is not reachable: connection failed (")
    assert message.endswith("start it (e.g. vllm serve Qwen/Qwen3-8B) or pass --base-url")


async def test_check_reachable_silent_server_times_out(client, monkeypatch):
    monkeypatch.setattr("aidsafe.teacher.reachable.REACHABLE_TIMEOUT_S", 0.3)
    with socket.socket() as silent:  # listens (the kernel completes the handshake) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with pytest.raises(TeacherUnreachable, match=r"is not reachable: no answer within 0.3 s; start it"):
            await client.check_reachable(Endpoint(base_url=f"http://127.0.0.1:{port}/v1", model="m"))


async def test_check_reachable_unknown_model_lists_served_ones(client):
    with (
        ScriptedServer(models=["llama-3-8b", "qwen3-8b"]) as server,
        pytest.raises(TeacherUnreachable, match="it serves: llama-3-8b, qwen3-8b"),
    ):
        await client.check_reachable(Endpoint(base_url=server.base_url, model="gpt-oss"))


@pytest.fixture
def models_endpoint() -> Iterator[tuple[dict, str]]:
    """A server whose `GET /v1/models` answers whatever `answer["status"]`/`["body"]` say, for
    servers that are up but are not (or not quite) OpenAI-compatible."""
    answer: dict = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = answer["body"].encode()
            self.send_response(answer["status"])
            self.send_header("content-type", answer.get("type", "application/json"))
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    with serving(Handler) as url:
        yield answer, url + "/v1"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, "<html>not found</html>", "is not reachable: GET /models answered HTTP 404; start it"),
        (200, "<html>a web page</html>", "is not reachable: GET /models did not return an OpenAI model list"),
        (200, '{"models": ["m"]}', "is not reachable: GET /models did not return an OpenAI model list"),
        (200, '{"data": [{"name": "m"}]}', "is not an OpenAI-compatible server: GET /models listed models without"),
        (401, '{"error": {"message": "bad key"}}', "refused the API key from OPENAI_API_KEY (HTTP 401)"),
    ],
)
async def test_check_reachable_explains_a_server_that_is_up_but_wrong(client, models_endpoint, status, body, expected):
    answer, base_url = models_endpoint
    answer.update(status=status, body=body)
    with pytest.raises(TeacherUnreachable) as caught:
        await client.check_reachable(Endpoint(base_url=base_url, model="m"))
    assert f"teacher at {base_url} " in str(caught.value)
    assert expected in str(caught.value)
