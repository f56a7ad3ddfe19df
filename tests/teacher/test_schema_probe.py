"""The pre-flight's structured request is a probe whose schema allows one value that no model
writes unasked (issue 25, part 2): a server that ignores the schema (vLLM >= 0.12 given the old
guided_* fields, a proxy that strips response_format) stops the pre-flight in one line, instead
of answering every call 200 with whatever the prompt suggests. The real client over loopback
HTTP; the scripted server's SCHEMA_IGNORED fault is the ignoring server."""

from __future__ import annotations

import pytest

from aidsafe.errors import TeacherUnreachable
from aidsafe.teacher import Endpoint, TeacherClient
from aidsafe.teacher.preflight import PREFLIGHT_MESSAGES, probe_schema
from aidsafe.teacher.types import Served
from aidsafe.testing.server import Fault, ScriptedServer
from tests.helpers import MODEL, always, verdict_server


def quick_client(**kwargs) -> TeacherClient:
    return TeacherClient(env={}, backoff_base_s=0.01, backoff_max_s=0.05, seed=0, **kwargs)


def probes(server: ScriptedServer) -> list:
    return [r for r in server.requests if "AidsafePreflight" in str(r.json.get("response_format") or r.json["tools"])]


@pytest.mark.parametrize("mode", ["json_schema", "function_calling"])
async def test_a_server_that_ignores_the_schema_stops_the_preflight_in_one_line(mode):
    async with quick_client() as client:
        with verdict_server(fault_plan=always(Fault.SCHEMA_IGNORED)) as server:
            endpoint = Endpoint(base_url=server.base_url, model=MODEL, structured_output=mode)
            with pytest.raises(TeacherUnreachable) as caught:
                await client.check_reachable(endpoint)
    message = str(caught.value)
    assert caught.value.failed == "schema" and "\n" not in message
    assert message.startswith(
        f"teacher {MODEL} at {server.base_url} ignores the structured-output schema ({mode} mode)"
    )
    assert "it answered 'Sure! Here is my answer: it looks fine to me.'" in message
    assert ("does not apply response_format" if mode == "json_schema" else "does not apply tools") in message


@pytest.mark.parametrize("mode", ["json_schema", "function_calling"])
async def test_a_server_that_applies_the_schema_passes_and_says_its_context(mode):
    async with quick_client() as client:
        with verdict_server(max_model_len=8192) as server:
            endpoint = Endpoint(base_url=server.base_url, model=MODEL, structured_output=mode)
            served = await client.check_reachable(endpoint)
        with verdict_server() as silent:
            unsaid = await client.check_reachable(Endpoint(base_url=silent.base_url, model=MODEL))
    assert served == Served(context_length=8192, schema="honoured")
    assert unsaid == Served(context_length=None, schema="honoured")  # a server that says no context: not known


async def test_the_probe_names_its_value_only_in_the_schema_and_draws_a_new_one_each_time():
    first, second = (probe_schema().model_json_schema() for _ in range(2))
    (token,) = first["properties"]["probe"]["enum"]
    assert (
        token.startswith("aidsafe-probe-")
        and first["properties"]["probe"]["enum"] != second["properties"]["probe"]["enum"]
    )
    assert token not in str(PREFLIGHT_MESSAGES)
    async with quick_client() as client:
        with verdict_server() as server:
            await client.check_reachable(Endpoint(base_url=server.base_url, model=MODEL))
            (sent,) = probes(server)
    assert "aidsafe-probe-" not in sent.text  # the prompt never shows it


async def test_a_probe_cut_off_at_its_token_limit_proves_nothing_and_passes():
    # A reasoning model still thinking when the probe's 32 tokens run out: not called ignoring.
    async with quick_client() as client:
        with verdict_server(fault_plan=always(Fault.TRUNCATED)) as server:
            served = await client.check_reachable(Endpoint(base_url=server.base_url, model=MODEL))
    assert served.schema == "not known"


async def test_a_refused_key_names_its_variable():
    async with quick_client() as client:
        with verdict_server(api_key="right") as server:
            endpoint = Endpoint(base_url=server.base_url, model=MODEL, api_key_env="TEACHER_KEY")
            with pytest.raises(TeacherUnreachable) as caught:
                await client.check_reachable(endpoint)
    assert caught.value.failed == "key"
    assert str(caught.value) == (
        f"teacher at {server.base_url} refused the API key from TEACHER_KEY (HTTP 401); set that variable, "
        "or api_key_env in the recipe"
    )


async def test_the_server_tokenizer_counts_where_there_is_one():
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x" * 400}]}
    async with quick_client() as client:
        with ScriptedServer(tokenize=True) as server:
            counted = await client.count_tokens(Endpoint(base_url=server.base_url, model=MODEL), body)
        with ScriptedServer() as plain:
            uncounted = await client.count_tokens(Endpoint(base_url=plain.base_url, model=MODEL), body)
    assert (counted, uncounted) == (100, None)
