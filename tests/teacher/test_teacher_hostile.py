"""TeacherClient against servers it does not control: a proxy answering HTML, a reply dribbled past
the deadline, invalid Unicode, replies that overflow the context, servers that refuse a
structured-output mode. The real client over loopback HTTP, the faults from the ScriptedServer."""

from __future__ import annotations

import pytest

from aidsafe.errors import TeacherUnreachable
from aidsafe.teacher import (
    Endpoint,
    InvalidOutputError,
    TeacherClient,
    TransientTeacherError,
)
from aidsafe.testing.server import Fault, ScriptedServer
from tests.helpers import MESSAGES, MODEL, Verdict, always, ask, faults_at, verdict_server


def quick_client(**kwargs) -> TeacherClient:
    return TeacherClient(env={}, backoff_base_s=0.01, backoff_max_s=0.02, seed=0, **kwargs)


# 9.6: an HTTP 200 whose body is an HTML page is a transport fault -----------------------------


async def test_html_page_with_status_200_is_retried():
    async with quick_client() as client:
        with verdict_server(fault_plan=faults_at(Fault.HTML_200)) as server:
            verdict, call = await ask(client, server)
    assert verdict.safe is True
    assert call.transport_retries == 1


async def test_html_pages_outlasting_the_retries_are_transient():
    async with quick_client(max_transport_retries=2) as client:
        with verdict_server(fault_plan=always(Fault.HTML_200)) as server:
            with pytest.raises(TransientTeacherError) as caught:
                await ask(client, server)
            assert len(server.requests) == 3
    message = str(caught.value)
    assert caught.value.transient is True
    assert "failed 3 times in a row" in message
    assert "HTTP 200 with a text/html body, not JSON" in message and "502 Bad Gateway" in message
    assert "\n" not in message


async def test_html_page_on_raw_completions_is_retried_too():
    async with quick_client() as client:
        with ScriptedServer(fault_plan=faults_at(Fault.HTML_200)) as server:
            reply, call = await client.complete_text(
                agent="guard", prompt="x", endpoint=Endpoint(base_url=server.base_url, model=MODEL), sampling={}
            )
    assert reply["text"] == " ok"
    assert call.transport_retries == 1


# 9.7: timeout_s bounds each request as a whole -----------------------------------------------


async def test_a_reply_dribbled_past_timeout_s_times_out():
    # Each piece arrives within 0.1 s, far inside a 0.5 s read timeout; the whole takes 2 s.
    async with quick_client(max_transport_retries=1) as client:
        with verdict_server(fault_plan=always(Fault.DRIBBLE), slow_s=2.0) as server:
            with pytest.raises(TransientTeacherError, match="request timed out"):
                await ask(client, server, timeout_s=0.5)
            assert len(server.requests) == 2
    assert client.stats.timeouts == 2


async def test_a_dribbled_reply_within_timeout_s_is_read():
    async with quick_client() as client:
        with verdict_server(fault_plan=always(Fault.DRIBBLE), slow_s=0.2) as server:
            verdict, call = await ask(client, server, timeout_s=5)
    assert verdict.safe is True
    assert call.transport_retries == 0


# 9.18: when timeouts dominate, say which setting to raise --------------------------------------


async def test_timeouts_name_the_setting_and_are_counted():
    async with quick_client(max_transport_retries=2) as client:
        with verdict_server(fault_plan=always(Fault.SLOW), slow_s=5) as server:
            with pytest.raises(TransientTeacherError) as caught:
                await ask(client, server, timeout_s=0.2)
    message = str(caught.value)
    assert "request timed out after 0.2 s" in message
    assert "teacher.timeout_s" in message
    assert client.stats.timeouts == 3


async def test_a_server_error_after_timeouts_still_names_the_setting():
    async with quick_client(max_transport_retries=2) as client:
        with verdict_server(fault_plan=faults_at(Fault.SLOW, Fault.SLOW, Fault.HTTP_500), slow_s=5) as server:
            with pytest.raises(TransientTeacherError) as caught:
                await ask(client, server, timeout_s=0.2)
    assert "HTTP 500" in str(caught.value)
    assert "2 of 3 attempts timed out" in str(caught.value)
    assert "teacher.timeout_s" in str(caught.value)


async def test_server_errors_alone_do_not_blame_the_timeout():
    async with quick_client(max_transport_retries=1) as client:
        with verdict_server(fault_plan=always(Fault.HTTP_500)) as server:
            with pytest.raises(TransientTeacherError) as caught:
                await ask(client, server)
    assert "timeout" not in str(caught.value)
    assert client.stats.timeouts == 0


# 9.16: a call that finally fails still spent its replies --------------------------------------


async def test_failed_calls_count_every_reply_in_stats_and_on_the_error():
    async with quick_client(max_parse_retries=2) as client:
        with verdict_server(fault_plan=always(Fault.MALFORMED_JSON)) as server:
            with pytest.raises(InvalidOutputError) as caught:
                await ask(client, server)
            replies = len(server.requests)
    stats = client.stats
    assert replies == 3
    assert (stats.calls, stats.failed_calls, stats.parse_retries) == (0, 1, 2)
    assert stats.completion_tokens == 3 * (len('{"this is": not valid JSON') // 4)
    assert stats.prompt_tokens > 0
    assert len(stats.latencies_s) == 1
    call = caught.value.call
    assert (call.attempts, call.completion_tokens) == (3, stats.completion_tokens)
    assert call.latency_s > 0


async def test_transport_failures_are_counted_with_their_call():
    async with quick_client(max_transport_retries=1) as client:
        with verdict_server(fault_plan=always(Fault.HTTP_500)) as server:
            with pytest.raises(TransientTeacherError) as caught:
                await ask(client, server)
    assert caught.value.call.transport_retries == 1
    assert (client.stats.failed_calls, client.stats.transport_retries) == (1, 1)


# 9.8: a reply that is not valid Unicode is re-asked ------------------------------------------


async def test_lone_surrogate_in_a_reply_is_reasked_with_a_sendable_echo():
    # The server's JSON body escapes it ("\ud800"); the SDK's parse gives a str no codec encodes.
    replies = iter(['{"safe": true, "reason": "bad \ud800 text"}', '{"safe": true, "reason": "fine"}'])
    async with quick_client() as client:
        with ScriptedServer(lambda request: next(replies)) as server:
            verdict, call = await ask(client, server)
    assert verdict.reason == "fine"
    assert call.attempts == 2
    echoed, reask = server.requests[1].json["messages"][-2:]
    assert echoed["content"] == '{"safe": true, "reason": "bad \ufffd text"}'
    assert "not valid Unicode: a lone surrogate U+D800" in reask["content"]


async def test_lone_surrogates_every_time_are_invalid_output():
    async with quick_client(max_parse_retries=1) as client:
        with ScriptedServer(lambda request: '{"safe": true, "reason": "\udfff"}') as server:
            with pytest.raises(InvalidOutputError, match="lone surrogate U\\+DFFF"):
                await ask(client, server)


async def test_lone_surrogate_in_a_raw_completion_is_replaced():
    async with quick_client() as client:
        with ScriptedServer(lambda request: " unsafe \ud83d") as server:
            reply, _ = await client.complete_text(
                agent="guard", prompt="x", endpoint=Endpoint(base_url=server.base_url, model=MODEL), sampling={}
            )
    assert reply["text"] == " unsafe \ufffd"


# 9.15: a re-ask echoes a bounded excerpt, so long replies cannot overflow the context ---------


def long_reply_server(finish_reason: str) -> ScriptedServer:
    rambling = "I will now explain at length. " * 700  # 21,000 characters, about 5,000 tokens
    # A context of 8,000 characters: the first request fits, one with the whole reply echoed not.
    return ScriptedServer(lambda request: {"content": rambling, "finish_reason": finish_reason}, context_chars=8_000)


async def test_reply_cut_off_at_the_token_limit_says_so_instead_of_overflowing():
    async with quick_client(max_parse_retries=2) as client:
        with long_reply_server("length") as server:
            with pytest.raises(InvalidOutputError) as caught:
                await ask(client, server, sampling={"max_tokens": 5_000})
            requests = server.requests
    assert len(requests) == 3
    message = str(caught.value)
    assert "cut off at the token limit" in message and "raise max_tokens" in message
    for request in requests[1:]:
        echoed, reask = request.json["messages"][-2:]
        assert len(echoed["content"]) < 2_100
        assert echoed["content"].endswith("more characters left out]")
        assert "a shorter reply" in reask["content"]


async def test_a_server_ignoring_max_tokens_is_reasked_within_the_context():
    async with quick_client(max_parse_retries=1) as client:
        with long_reply_server("stop") as server:
            with pytest.raises(InvalidOutputError, match="Invalid JSON"):
                await ask(client, server)


# 9.14: a server that refuses the structured-output mode stops the pre-flight, in one line -----


async def test_preflight_names_a_refused_mode_and_the_other_one():
    async with quick_client() as client:
        with verdict_server(fault_plan=always(Fault.NO_JSON_SCHEMA)) as server:
            with pytest.raises(TeacherUnreachable) as caught:
                await client.check_reachable(Endpoint(base_url=server.base_url, model=MODEL))
            probes = server.requests
    message = str(caught.value)
    assert message.startswith(f"teacher at {server.base_url} refused a structured-output request in json_schema mode (")
    assert "HTTP 500: 1 validation error" in message and "Input should be 'text' or 'json_object'" in message
    assert "--set teacher.structured_output=function_calling" in message
    assert "\n" not in message
    assert len(probes) == 3  # retried a little, not max_transport_retries times
    assert probes[0].json["response_format"]["json_schema"]["name"] == "AidsafePreflight"


async def test_preflight_passes_in_the_mode_the_server_supports():
    async with quick_client() as client:
        with verdict_server(fault_plan=always(Fault.NO_JSON_SCHEMA)) as server:
            endpoint = Endpoint(base_url=server.base_url, model=MODEL, structured_output="function_calling")
            await client.check_reachable(endpoint)
            verdict, _ = await client.generate(
                agent="judge", role="verdict", messages=MESSAGES, schema=Verdict, endpoint=endpoint, sampling={}
            )
    assert verdict.safe is True
    probe = server.requests[0].json
    assert probe["tools"][0]["function"]["name"] == "AidsafePreflight"
    assert probe["max_completion_tokens"] == 32


async def test_preflight_can_skip_the_structured_request():
    async with quick_client() as client:
        with ScriptedServer(fault_plan=always(Fault.NO_JSON_SCHEMA)) as server:
            await client.check_reachable(Endpoint(base_url=server.base_url, model=MODEL), structured=False)
            assert server.requests == []


async def test_preflight_survives_a_passing_server_error():
    async with quick_client() as client:
        with verdict_server(fault_plan=faults_at(Fault.HTTP_500)) as server:
            await client.check_reachable(Endpoint(base_url=server.base_url, model=MODEL))
            assert len(server.requests) == 2


async def test_preflight_that_times_out_names_the_setting():
    async with quick_client() as client:
        with verdict_server(fault_plan=always(Fault.SLOW), slow_s=5) as server:
            with pytest.raises(
                TeacherUnreachable, match=r"pre-flight: .* request timed out after 0.2 s: .*teacher.timeout_s"
            ):
                await client.check_reachable(Endpoint(base_url=server.base_url, model=MODEL, timeout_s=0.2))


async def test_forced_tool_is_required_so_llama_server_honours_it():
    # Current llama-server ignores {"type": "function", "function": {"name": ...}} and the model
    # answers in prose; "required" with the one tool forces the call.
    async with quick_client(max_parse_retries=0) as client:
        with verdict_server(fault_plan=always(Fault.NAMED_TOOL_CHOICE_IGNORED)) as server:
            verdict, call = await ask(client, server, structured_output="function_calling")
    assert verdict.safe is True
    assert call.attempts == 1
    assert server.requests[0].json["tool_choice"] == "required"


async def test_preflight_falls_back_to_the_named_tool_where_only_that_is_forced():
    # llama-cpp-python forces a tool only by name: "required" brings prose. The pre-flight notices
    # and the endpoint's calls name the tool from then on.
    async with quick_client(max_parse_retries=0) as client:
        with verdict_server(fault_plan=always(Fault.REQUIRED_TOOL_CHOICE_IGNORED)) as server:
            endpoint = Endpoint(base_url=server.base_url, model=MODEL, structured_output="function_calling")
            await client.check_reachable(endpoint)
            verdict, call = await client.generate(
                agent="judge", role="verdict", messages=MESSAGES, schema=Verdict, endpoint=endpoint, sampling={}
            )
            choices = [request.json["tool_choice"] for request in server.requests]
    assert verdict.safe is True and call.attempts == 1
    named = {"type": "function", "function": {"name": "AidsafePreflight"}}
    assert choices == ["required", named, {"type": "function", "function": {"name": "Verdict"}}]


async def test_max_tokens_can_also_travel_as_the_field_llama_cpp_python_reads():
    # docs/teacher.md "Server limits": llama-cpp-python reads max_tokens, not max_completion_tokens.
    async with quick_client() as client:
        with verdict_server() as server:
            await ask(client, server, sampling={"max_tokens": 64, "extra_body": {"max_tokens": 64}})
            body = server.requests[0].json
    assert (body["max_completion_tokens"], body["max_tokens"]) == (64, 64)
