"""The scripted OpenAI-compatible server: wire format, faults, recording, clean shutdown."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import httpx
import pytest
from pydantic import BaseModel

from aidsafe.testing.server import Fault, ScriptedServer, echo_responder, responder_by_schema_name
from aidsafe.testing.server import main as server_main

MODEL = "scripted-model"


class Verdict(BaseModel):
    safe: bool
    reason: str


def chat(messages=None, **fields) -> dict:
    return {"model": MODEL, "messages": messages or [{"role": "user", "content": "hi"}], **fields}


def json_schema_format(name: str) -> dict:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": {}}}


def post(server: ScriptedServer, body: dict, path: str = "/chat/completions") -> httpx.Response:
    with httpx.Client(timeout=5) as http:
        return http.post(server.base_url + path, json=body)


def test_models_lists_the_configured_names():
    with ScriptedServer(models=["a", "b"]) as server, httpx.Client() as http:
        listing = http.get(server.base_url + "/models").json()
    assert [entry["id"] for entry in listing["data"]] == ["a", "b"]
    assert listing["object"] == "list"


def test_chat_completion_has_the_openai_shape():
    with ScriptedServer(lambda request: "hello there") as server:
        body = post(server, chat([{"role": "user", "content": "x" * 40}])).json()
    assert body["object"] == "chat.completion"
    (choice,) = body["choices"]
    assert choice["message"] == {"role": "assistant", "content": "hello there"}
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}


def test_echo_responder_repeats_the_last_message():
    assert echo_responder(chat([{"role": "user", "content": "ping"}])) == "ping"
    assert echo_responder({"model": MODEL, "prompt": "p"}) == " ok"


def test_dict_reply_overrides_finish_reason_and_tool_calls():
    reply = {"tool_calls": [{"name": "Verdict", "arguments": {"safe": True, "reason": "r"}}]}
    with ScriptedServer(lambda request: reply) as server:
        (choice,) = post(server, chat()).json()["choices"]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function"
    assert call["function"]["name"] == "Verdict"
    assert json.loads(call["function"]["arguments"]) == {"safe": True, "reason": "r"}


def test_raw_completions_endpoint():
    reply = {"text": " unsafe", "logprobs": {"tokens": [" unsafe"], "token_logprobs": [-0.1]}}
    with ScriptedServer(lambda request: reply) as server:
        body = post(server, {"model": MODEL, "prompt": "Is it safe?"}, "/completions").json()
        (recorded,) = server.requests
    assert body["object"] == "text_completion"
    (choice,) = body["choices"]
    assert (choice["text"], choice["finish_reason"]) == (" unsafe", "stop")
    assert choice["logprobs"]["token_logprobs"] == [-0.1]
    assert recorded.path == "/v1/completions"
    assert recorded.text == "Is it safe?"


def test_responder_by_schema_name_answers_json_schema_and_tool_requests():
    responder = responder_by_schema_name({"Verdict": lambda request: Verdict(safe=False, reason="r")})
    with ScriptedServer(responder) as server:
        as_content = post(server, chat(response_format=json_schema_format("Verdict"))).json()
        tool_choice = {"type": "function", "function": {"name": "Verdict"}}
        tools = [{"type": "function", "function": {"name": "Verdict", "parameters": {}}}]
        as_tool = post(server, chat(tools=tools, tool_choice=tool_choice)).json()
    content = as_content["choices"][0]["message"]["content"]
    assert Verdict.model_validate_json(content) == Verdict(safe=False, reason="r")
    (call,) = as_tool["choices"][0]["message"]["tool_calls"]
    assert Verdict.model_validate_json(call["function"]["arguments"]).safe is False


def test_a_failing_responder_answers_500_and_is_raised_at_exit():
    responder = responder_by_schema_name({"Verdict": lambda request: {"safe": True, "reason": "r"}})
    with (
        pytest.raises(RuntimeError, match="responder or fault plan failed") as caught,
        ScriptedServer(responder) as server,
    ):
        response = post(server, chat(response_format=json_schema_format("Other")))
        assert response.status_code == 500
        assert "no scripted reply for schema 'Other'" in response.json()["error"]["message"]
    assert isinstance(caught.value.__cause__, KeyError)


def test_a_failing_fault_plan_answers_500_and_is_raised_at_exit():
    def plan(index, request):
        return "no_such_fault"

    with pytest.raises(RuntimeError, match="no_such_fault"), ScriptedServer(fault_plan=plan) as server:
        assert post(server, chat()).status_code == 500


def test_unknown_model_is_404():
    with ScriptedServer() as server:
        response = post(server, {"model": "nope", "messages": []})
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "The model `nope` does not exist."


def test_requests_are_recorded_with_faults_and_headers():
    def plan(index, request):
        return "http_500" if index == 1 else None

    with ScriptedServer(fault_plan=plan) as server:
        for word in ("alpha", "beta", "alpha beta"):
            post(server, chat([{"role": "user", "content": word}]))
        requests = server.requests
        assert [r.index for r in server.requests_containing("beta")] == [1, 2]
    assert [r.fault for r in requests] == [None, Fault.HTTP_500, None]
    assert requests[0].time <= requests[1].time <= requests[2].time
    assert requests[0].headers["content-type"] == "application/json"


@pytest.mark.parametrize(("fault", "status"), [(Fault.HTTP_500, 500), (Fault.HTTP_429, 429), (Fault.HTTP_400, 400)])
def test_http_faults(fault, status):
    with ScriptedServer(fault_plan=lambda index, request: fault, retry_after_s=2) as server:
        response = post(server, chat())
    assert response.status_code == status
    assert "injected" in response.json()["error"]["message"]
    assert (response.headers.get("retry-after") == "2") is (fault is Fault.HTTP_429)


def test_malformed_and_truncated_faults():
    def plan(index, request):
        return [Fault.MALFORMED_JSON, Fault.TRUNCATED][index]

    with ScriptedServer(lambda request: '{"safe": true}', fault_plan=plan) as server:
        malformed, truncated = (post(server, chat()).json()["choices"][0] for _ in range(2))
    with pytest.raises(ValueError):
        json.loads(malformed["message"]["content"])
    assert truncated["message"]["content"] == '{"safe"'
    assert truncated["finish_reason"] == "length"


def test_reset_fault_drops_the_connection():
    with ScriptedServer(fault_plan=lambda index, request: Fault.RESET) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            post(server, chat())
        assert len(server.requests) == 1


def test_slow_fault_outlasts_the_client_timeout_and_stop_does_not_wait_for_it():
    server = ScriptedServer(fault_plan=lambda index, request: Fault.SLOW, slow_s=30).start()
    try:
        with httpx.Client(timeout=0.2) as http, pytest.raises(httpx.ReadTimeout):
            http.post(server.base_url + "/chat/completions", json=chat())
    finally:
        started = time.monotonic()
        server.stop()
    assert time.monotonic() - started < 2


def test_html_200_fault_answers_a_proxy_page():
    with ScriptedServer(fault_plan=lambda index, request: Fault.HTML_200) as server:
        response = post(server, chat())
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html"
    assert response.text.startswith("<html>")


def test_dribble_fault_sends_the_whole_reply_in_pieces():
    with ScriptedServer(fault_plan=lambda index, request: Fault.DRIBBLE, slow_s=0.2) as server:
        with (
            httpx.Client(timeout=5) as http,
            http.stream("POST", server.base_url + "/chat/completions", json=chat()) as reply,
        ):
            pieces = list(reply.iter_raw())
    assert len(pieces) > 1
    assert json.loads(b"".join(pieces))["choices"][0]["message"]["content"] == "hi"


def test_no_json_schema_fault_refuses_only_json_schema_like_llama_cpp_python():
    tools = [{"type": "function", "function": {"name": "Verdict", "parameters": {}}}]
    responder = responder_by_schema_name({"Verdict": lambda request: Verdict(safe=True, reason="r")})
    with ScriptedServer(responder, fault_plan=lambda index, request: Fault.NO_JSON_SCHEMA) as server:
        refused = post(server, chat(response_format=json_schema_format("Verdict")))
        answered = post(server, chat(tools=tools, tool_choice="required"))
    assert refused.status_code == 500
    assert "Input should be 'text' or 'json_object'" in refused.json()["error"]["message"]
    assert answered.status_code == 200


def test_named_tool_choice_ignored_fault_answers_prose_like_llama_server():
    tools = [{"type": "function", "function": {"name": "Verdict", "parameters": {}}}]
    named = {"type": "function", "function": {"name": "Verdict"}}
    responder = responder_by_schema_name({"Verdict": lambda request: Verdict(safe=True, reason="r")})
    with ScriptedServer(responder, fault_plan=lambda index, request: Fault.NAMED_TOOL_CHOICE_IGNORED) as server:
        ignored = post(server, chat(tools=tools, tool_choice=named)).json()["choices"][0]["message"]
        forced = post(server, chat(tools=tools, tool_choice="required")).json()["choices"][0]["message"]
    assert "tool_calls" not in ignored and ignored["content"].startswith("Sure!")
    assert forced["tool_calls"][0]["function"]["name"] == "Verdict"


def test_context_chars_refuses_a_prompt_that_does_not_fit():
    with ScriptedServer(context_chars=10) as server:
        fits = post(server, chat([{"role": "user", "content": "short"}]))
        too_long = post(server, chat([{"role": "user", "content": "x" * 11}]))
    assert fits.status_code == 200
    assert too_long.status_code == 400
    assert "maximum context length is 10" in too_long.json()["error"]["message"]


def probe_request(**fields) -> tuple[dict, type]:
    """The teacher client's pre-flight probe, as it sends it (a fresh token each time)."""
    from aidsafe.teacher.body import chat_body
    from aidsafe.teacher.preflight import PREFLIGHT_MESSAGES, probe_schema

    schema = probe_schema()
    return chat_body(MODEL, PREFLIGHT_MESSAGES, {}, schema, **fields), schema


def test_the_server_answers_the_preflight_probe_whatever_the_responder():
    request, schema = probe_request()
    (token,) = schema.model_json_schema()["properties"]["probe"]["enum"]
    tool_request, tool_schema = probe_request(mode="function_calling")
    with ScriptedServer(responder_by_schema_name({})) as server:
        content = post(server, request).json()["choices"][0]["message"]["content"]
        call = post(server, tool_request).json()["choices"][0]["message"]["tool_calls"][0]["function"]
    assert json.loads(content) == {"probe": token}
    tool_schema.model_validate_json(call["arguments"])


def test_schema_ignored_fault_answers_as_an_unconstrained_model():
    request, _ = probe_request()
    card = chat([{"role": "user", "content": 'Reply with JSON only:\n{"safe": true, "reason": "<why>"}'}])
    card["response_format"] = json_schema_format("Verdict")
    with ScriptedServer(fault_plan=lambda index, request: Fault.SCHEMA_IGNORED) as server:
        probe = post(server, request).json()["choices"][0]["message"]["content"]
        copied = post(server, card).json()["choices"][0]["message"]["content"]
        plain = post(server, chat([{"role": "user", "content": "ping"}])).json()["choices"][0]["message"]["content"]
    assert probe.startswith("Sure!")  # the probe's prompt shows no JSON: prose
    assert json.loads(copied) == {"safe": True, "reason": "<why>"}  # the card's example, not the schema
    assert plain == "ping"  # a request without a schema is answered as ever


def test_the_server_reports_a_context_length_and_counts_tokens_like_vllm():
    body = chat([{"role": "user", "content": "x" * 400}])
    with ScriptedServer(max_model_len=4096, tokenize=True) as server, httpx.Client() as http:
        listing = http.get(server.base_url + "/models").json()
        counted = http.post(server.base_url.removesuffix("/v1") + "/tokenize", json=body).json()
        assert server.requests == []  # a count is no generation request
    with ScriptedServer() as plain, httpx.Client() as http:
        unreported = http.get(plain.base_url + "/models").json()
        no_tokenizer = http.post(plain.base_url.removesuffix("/v1") + "/tokenize", json=body)
    assert listing["data"][0]["max_model_len"] == 4096 and counted["count"] == 100
    assert "max_model_len" not in unreported["data"][0] and no_tokenizer.status_code == 404


def test_the_server_refuses_requests_without_its_key_like_vllm():
    with ScriptedServer(api_key="right") as server, httpx.Client() as http:
        missing = http.get(server.base_url + "/models")
        wrong = http.post(server.base_url + "/chat/completions", json=chat(), headers={"Authorization": "Bearer no"})
        right = http.post(server.base_url + "/chat/completions", json=chat(), headers={"Authorization": "Bearer right"})
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert wrong.json() == {"error": "Unauthorized"}


def test_seeded_fault_rates_are_reproducible():
    def faults(seed: int) -> list[Fault | None]:
        rates = {"http_500": 0.3, "malformed_json": 0.2}
        with ScriptedServer(fault_rates=rates, seed=seed) as server, httpx.Client() as http:
            for _ in range(40):
                http.post(server.base_url + "/chat/completions", json=chat())
            return [r.fault for r in server.requests]

    first = faults(0)
    assert first == faults(0) != faults(1)
    assert 4 <= first.count(Fault.HTTP_500) <= 20
    assert 1 <= first.count(Fault.MALFORMED_JSON) <= 16


def test_fault_configuration_errors():
    with pytest.raises(ValueError, match="not both"):
        ScriptedServer(fault_plan=lambda index, request: None, fault_rates={"http_500": 0.1})
    with pytest.raises(ValueError, match="more than 1"):
        ScriptedServer(fault_rates={"http_500": 0.7, "reset": 0.5})
    with pytest.raises(ValueError):
        ScriptedServer(fault_rates={"http_999": 0.1})


def test_latency_and_max_in_flight():
    # The responder only answers once all four requests are inside the server at the same time,
    # so the count is exact on a loaded machine; a server that served them one by one would
    # break the barrier and answer 500.
    barrier = threading.Barrier(4, timeout=30)

    def together(request):
        barrier.wait()
        return "ok"

    replies = []
    with ScriptedServer(together, latency_s=0.2) as server:
        threads = [threading.Thread(target=lambda: replies.append(post(server, chat()))) for _ in range(4)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    assert elapsed >= 0.2  # the latency is served (a lower bound only: never flaky)
    assert server.max_in_flight == 4
    assert [r.status_code for r in replies] == [200] * 4


def test_stop_closes_idle_keep_alive_connections():
    # The client keeps its connection open; stop() must still return promptly.
    with httpx.Client() as http:
        server = ScriptedServer().start()
        assert http.post(server.base_url + "/chat/completions", json=chat()).status_code == 200
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2


def test_runs_as_a_module_with_a_responder_factory():
    process = subprocess.Popen(
        [sys.executable, "-m", "aidsafe.testing.server", "--port", "0", "--model", "m1",
         "--responder", "aidsafe.testing:aidsafe_responder"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        with httpx.Client(timeout=5) as http:
            assert http.get(base_url + "/models").json()["data"][0]["id"] == "m1"
            request = {
                "model": "m1",
                "messages": [{"role": "user", "content": "Prompt: hello"}],
                "response_format": {"type": "json_schema", "json_schema": {"name": "IntentList", "schema": {}}},
            }
            reply = http.post(base_url + "/chat/completions", json=request)
            assert reply.status_code == 200
            assert "intents" in json.loads(reply.json()["choices"][0]["message"]["content"])
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        process.stdout.close()


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("aidsafe.testing", "must be module:attr"),
        ("aidsafe.no_such_module:x", "--responder aidsafe.no_such_module:x: No module named"),
        ("aidsafe.testing:no_such_attr", "aidsafe.testing has no attribute .no_such_attr."),
        ("aidsafe.testing.server:_CHAT_PATH", "not callable"),
    ],
)
def test_a_bad_responder_reference_is_one_line(reference, expected):
    with pytest.raises(SystemExit, match=expected):
        server_main(["--responder", reference])
