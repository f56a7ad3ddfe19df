"""LangSmith tracing of teacher calls: with tracing on, each call is an `llm` run under the
caller's run (a LangGraph node in a real run), sent to a loopback LangSmith endpoint by the
real langsmith client; with it off, nothing is sent."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import langsmith
import pytest
from pydantic import BaseModel

from aidsafe.teacher import Endpoint, TeacherClient
from aidsafe.testing.server import ScriptedServer, responder_by_schema_name


class Verdict(BaseModel):
    safe: bool


class _Ingest(BaseHTTPRequestHandler):
    """Accepts whatever the langsmith client sends and keeps the bodies."""

    bodies: list[bytes]

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.bodies.append(self.rfile.read(length))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = do_PATCH = _answer


@pytest.fixture
def langsmith_client():
    handler = type("Ingest", (_Ingest,), {"bodies": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = langsmith.Client(api_url=f"http://127.0.0.1:{server.server_port}", api_key="test-key")
    yield client, handler.bodies
    server.shutdown()
    server.server_close()


def _runs(bodies: list[bytes]) -> list[dict]:
    """The run objects in the multipart (or JSON batch) bodies the client posted."""
    runs = []
    for body in bodies:
        for part in re.findall(rb"\r\n\r\n(\{.*?\})\r\n--", body, re.DOTALL) or [body]:
            try:
                runs.append(json.loads(part))
            except ValueError:
                continue
    return runs


async def _ask(teacher: TeacherClient, server: ScriptedServer, **endpoint_fields: object) -> None:
    await teacher.generate(
        agent="judge",
        role="verdict",
        messages=[{"role": "user", "content": "Is this safe?"}],
        schema=Verdict,
        endpoint=Endpoint(base_url=server.base_url, model="scripted-model", **endpoint_fields),
        sampling={"max_tokens": 16},
    )


async def test_a_traced_call_is_an_llm_run_under_its_caller(langsmith_client):
    client, bodies = langsmith_client
    with ScriptedServer(responder_by_schema_name({"Verdict": lambda request: Verdict(safe=True)})) as server:
        async with TeacherClient(env={}) as teacher:
            with langsmith.tracing_context(enabled=True, client=client, project_name="aidsafe-test"):
                async with langsmith.trace("deliberate", "chain") as node:
                    await _ask(teacher, server)
    client.flush()
    runs = _runs(bodies)
    llm = [run for run in runs if run.get("run_type") == "llm"]
    assert [run["name"] for run in llm] == ["judge"]
    assert llm[0]["parent_run_id"] == str(node.id)
    text = b"".join(bodies).decode()
    assert "Is this safe?" in text and '"max_completion_tokens":16' in text.replace(" ", "")
    assert '"safe":true' in text.replace(" ", "")  # the parsed reply, as the run's output


async def test_nothing_is_traced_when_tracing_is_off(langsmith_client):
    client, bodies = langsmith_client
    with ScriptedServer(responder_by_schema_name({"Verdict": lambda request: Verdict(safe=True)})) as server:
        async with TeacherClient(env={}) as teacher:
            with langsmith.tracing_context(enabled=False, client=client):
                await _ask(teacher, server)
    client.flush()
    assert _runs(bodies) == []


async def _traced_in_a_node(langsmith_client, endpoint_fields: dict) -> dict[str, dict]:
    """One teacher call made in a LangGraph node "deliberate", traced; the runs sent, by id."""
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    class State(TypedDict, total=False):
        done: bool

    client, bodies = langsmith_client
    with ScriptedServer(responder_by_schema_name({"Verdict": lambda request: Verdict(safe=True)})) as server:
        async with TeacherClient(env={}) as teacher:

            async def deliberate(state: State) -> State:
                await _ask(teacher, server, **endpoint_fields)
                return {"done": True}

            graph = StateGraph(State).add_node("deliberate", deliberate)
            graph = graph.add_edge(START, "deliberate").add_edge("deliberate", END).compile()
            with langsmith.tracing_context(enabled=True, client=client, project_name="aidsafe-test"):
                await graph.ainvoke({})
    client.flush()
    return {run["id"]: run for run in _runs(bodies) if isinstance(run.get("id"), str) and "name" in run}


async def test_a_call_made_in_a_langgraph_node_is_traced_under_that_node(langsmith_client):
    # What docs/teacher.md "Tracing with LangSmith" promises for a real run: the node's run is
    # LangGraph's own, and the teacher call's llm run is its child.
    runs = await _traced_in_a_node(langsmith_client, {})
    llm = [run for run in runs.values() if run.get("run_type") == "llm"]
    assert [run["name"] for run in llm] == ["judge"]
    assert runs[llm[0]["parent_run_id"]]["name"] == "deliberate"


async def test_a_call_through_a_langchain_chat_model_is_traced_by_langchain_under_the_node(langsmith_client):
    """ChatOpenAI's own runs take the place of aidsafe's `llm` run: one trace per call, not two."""
    from aidsafe.teacher.types import ChatModel

    chat_openai = ChatModel("langchain_openai:ChatOpenAI", openai_compatible=True)
    runs = await _traced_in_a_node(langsmith_client, {"chat_model": chat_openai})
    [llm] = [run for run in runs.values() if run.get("run_type") == "llm"]
    assert llm["name"] == "ChatOpenAI"
    ancestors = []
    while (parent := runs.get(llm.get("parent_run_id"))) is not None:
        ancestors.append(parent["name"])
        llm = parent
    assert "deliberate" in ancestors
