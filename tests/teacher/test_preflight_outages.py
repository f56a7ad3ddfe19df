"""The pre-flight rides out outages and names refusals (issue 22, item 1), and a teacher that
fails the run's first requests the same way stops the run early (item 2). The real client over
loopback HTTP; outages are keyed on time, as a server restarting is."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from pydantic import BaseModel

from aidsafe.errors import RunSetupError, TeacherUnreachable
from aidsafe.teacher import Endpoint, TeacherClient, TransientTeacherError
from aidsafe.teacher.watch import FirstRequests
from aidsafe.teacher.wire import StatusError
from aidsafe.testing.server import Fault, ScriptedServer, responder_by_schema_name
from tests.helpers import serving

MODEL = "scripted-model"
MESSAGES = [{"role": "user", "content": "Is this prompt safe?"}]


class Verdict(BaseModel):
    safe: bool


def verdict_server(**kwargs) -> ScriptedServer:
    return ScriptedServer(responder_by_schema_name({"Verdict": lambda request: Verdict(safe=True)}), **kwargs)


def down_for(seconds: float, fault: Fault):
    """A plan answering `fault` to every request for `seconds` after the first one arrives."""
    started: list[float] = []

    def plan(index, request):
        started.append(time.monotonic()) if not started else None
        return fault if time.monotonic() - started[0] < seconds else None

    return plan


def is_probe(request) -> bool:
    return "AidsafePreflight" in str(request.get("response_format") or request.get("tools"))


def patient_client(**kwargs) -> TeacherClient:
    # The default 6 retries, backoff scaled down tenfold: about 1.7 s of budget, 0.25 s in the
    # first three tries (all the old pre-flight gave an outage).
    return TeacherClient(env={}, backoff_base_s=0.1, backoff_max_s=0.4, seed=0, **kwargs)


async def ask(client: TeacherClient, server: ScriptedServer) -> Verdict:
    verdict, _ = await client.generate(
        agent="judge",
        role="verdict",
        messages=MESSAGES,
        schema=Verdict,
        endpoint=Endpoint(base_url=server.base_url, model=MODEL),
        sampling={},
    )
    return verdict


# Item 1: the pre-flight -------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [Fault.HTTP_503, Fault.HTTP_500, Fault.RESET, Fault.HTML_200])
async def test_the_preflight_waits_out_an_outage_at_start(fault):
    async with patient_client() as client:
        with verdict_server(fault_plan=down_for(0.8, fault)) as server:
            await client.check_reachable(Endpoint(base_url=server.base_url, model=MODEL))
            probes = server.requests
    assert len(probes) > 3 and probes[-1].fault is None  # past the old three tries, to the recovery


@pytest.mark.parametrize(
    ("fault", "named"),
    [(Fault.HTTP_503, "HTTP 503: service unavailable"), (Fault.HTTP_500, "HTTP 500: injected server error"),
     (Fault.RESET, "connection failed"), (Fault.HTML_200, "text/html")],
)  # fmt: skip
async def test_an_outage_past_the_retries_is_named_as_one_not_as_a_refused_mode(fault, named):
    async with patient_client(max_transport_retries=3) as client:
        with verdict_server(fault_plan=lambda index, request: fault) as server:
            with pytest.raises(TeacherUnreachable) as caught:
                await client.check_reachable(Endpoint(base_url=server.base_url, model=MODEL))
            assert len(server.requests) == 4  # the client's transport retries, all of them
    message = str(caught.value)
    assert named in message and "failed 4 times in a row" in message
    assert "is not answering requests: rerun when it does" in message
    assert "structured-output" not in message and "json_schema" not in message and "\n" not in message


async def test_a_4xx_that_does_not_name_the_mode_is_not_called_a_mode_refusal():
    async with patient_client() as client:
        with verdict_server(fault_plan=lambda index, request: Fault.HTTP_400) as server:
            with pytest.raises(TeacherUnreachable) as caught:
                await client.check_reachable(Endpoint(base_url=server.base_url, model=MODEL))
            assert len(server.requests) == 1  # a 4xx is the server's answer: not retried
    message = str(caught.value)
    assert "rejected the pre-flight's minimal chat request (HTTP 400: injected bad request)" in message
    assert "structured-output" not in message and "--set teacher.structured_output" not in message


@pytest.fixture
def scripted_http() -> Iterator[tuple[dict, str]]:
    """A server whose answers `routes[(method, path)]` scripts as (status, body), a list of them
    taken in turn (the last repeats), or a function of the request's JSON that returns one, for
    what ScriptedServer does not fault: GET /models, HTTP 401."""
    routes: dict = {}

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            request = self.rfile.read(length)
            script = routes.get((self.command, self.path), (404, "{}"))
            if callable(script):
                script = script(json.loads(request))
            status, body = (script.pop(0) if len(script) > 1 else script[0]) if isinstance(script, list) else script
            data = body.encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *args) -> None:
            pass

    with serving(Handler) as url:
        yield routes, url


MODEL_LIST = '{"object": "list", "data": [{"id": "m"}]}'


def probe_reply(request: dict) -> tuple[int, str]:
    """The pre-flight probe answered with the one value its schema allows."""
    (token,) = request["response_format"]["json_schema"]["schema"]["properties"]["probe"]["enum"]
    content = json.dumps({"probe": token})
    return 200, json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]})


async def test_a_401_on_the_structured_request_is_the_api_key(scripted_http):
    routes, root = scripted_http
    routes[("GET", "/v1/models")] = (200, MODEL_LIST)
    routes[("POST", "/v1/chat/completions")] = (401, '{"error": {"message": "invalid api key"}}')
    async with patient_client() as client:
        with pytest.raises(TeacherUnreachable) as caught:
            await client.check_reachable(Endpoint(base_url=root + "/v1", model="m"))
    assert "refused the API key from OPENAI_API_KEY (HTTP 401)" in str(caught.value)


@pytest.mark.parametrize("request_path", ["/v1/models", "/v1/chat/completions"])
async def test_a_403_is_the_api_key_too(scripted_http, request_path):
    # A key the server knows but that may not use the model (an OpenAI project without access).
    routes, root = scripted_http
    routes[("GET", "/v1/models")] = (200, MODEL_LIST)
    routes[("POST", "/v1/chat/completions")] = probe_reply
    routes[("GET" if request_path == "/v1/models" else "POST", request_path)] = (403, '{"error": {"message": "no"}}')
    async with patient_client() as client:
        with pytest.raises(TeacherUnreachable) as caught:
            await client.check_reachable(Endpoint(base_url=root + "/v1", model="m"))
    assert "refused the API key from OPENAI_API_KEY (HTTP 403)" in str(caught.value) and caught.value.failed == "key"


async def test_a_model_list_outage_at_start_is_waited_out(scripted_http):
    routes, root = scripted_http
    routes[("GET", "/v1/models")] = [(503, '{"error": {"message": "restarting"}}')] * 3 + [(200, MODEL_LIST)]
    routes[("POST", "/v1/chat/completions")] = probe_reply
    async with patient_client() as client:
        await client.check_reachable(Endpoint(base_url=root + "/v1", model="m"))


async def test_a_model_list_outage_past_the_retries_says_so(scripted_http):
    routes, root = scripted_http
    routes[("GET", "/v1/models")] = (503, '{"error": {"message": "restarting"}}')
    async with patient_client(max_transport_retries=2) as client:
        with pytest.raises(TeacherUnreachable) as caught:
            await client.check_reachable(Endpoint(base_url=root + "/v1", model="m"))
    message = str(caught.value)
    assert "is not answering: GET /models failed 3 times" in message and "HTTP 503: restarting" in message
    assert "start it" not in message


async def test_a_base_url_without_v1_is_told_to_add_it():
    async with patient_client() as client:
        with verdict_server() as server:
            root = server.base_url.removesuffix("/v1")
            with pytest.raises(TeacherUnreachable) as caught:
                await client.check_reachable(Endpoint(base_url=root, model=MODEL))
    assert str(caught.value) == (
        f"teacher at {root} answered HTTP 404 for GET /models; OpenAI-compatible servers serve it under /v1: "
        f"pass --base-url {root}/v1"
    )


# Item 2: the run's first requests ------------------------------------------------------------


def broken_after_preflight(fault: Fault = Fault.HTTP_500):
    return lambda index, request: None if is_probe(request) else fault


async def test_the_same_500_to_the_first_requests_stops_the_run_early():
    async with TeacherClient(env={}, backoff_base_s=0.2, backoff_max_s=30.0, seed=0) as client:
        with verdict_server(fault_plan=broken_after_preflight()) as server:
            await client.check_reachable(Endpoint(base_url=server.base_url, model=MODEL))
            started = time.monotonic()
            calls = [asyncio.create_task(ask(client, server)) for _ in range(6)]
            done, _ = await asyncio.wait(calls, return_when=asyncio.FIRST_EXCEPTION)
            took = time.monotonic() - started
            for call in calls:
                call.cancel()
            await asyncio.gather(*calls, return_exceptions=True)
            sent = len(server.requests) - 1
    error = next(call.exception() for call in done if call.exception() is not None)
    assert isinstance(error, RunSetupError)
    message = str(error)
    assert message.startswith(f"stopped: teacher {MODEL} at {server.base_url} failed the first requests")
    assert "(HTTP 500: injected server error)" in message and "rerun the same command" not in message
    assert "\n" not in message
    # One backoff (0.1-0.2 s), not the six of each call (about 12 s each at this scale).
    assert took < 2 and sent <= 12


async def test_a_single_request_failing_alike_stops_after_a_few_tries():
    async with TeacherClient(env={}, backoff_base_s=0.01, backoff_max_s=0.05, seed=0) as client:
        with verdict_server(fault_plan=broken_after_preflight()) as server:
            with pytest.raises(RunSetupError, match=r"HTTP 500: injected server error"):
                await ask(client, server)
            assert len(server.requests) == 4  # not 7


@pytest.mark.parametrize("fault", [Fault.HTTP_503, Fault.HTTP_429, Fault.RESET])
async def test_outages_after_the_preflight_are_still_waited_out(fault):
    async with patient_client() as client:
        with verdict_server(fault_plan=down_for(0.8, fault), retry_after_s=0.2) as server:
            calls = [ask(client, server) for _ in range(6)]
            assert [verdict.safe for verdict in await asyncio.gather(*calls)] == [True] * 6


async def test_a_server_restarting_refuses_connections_and_is_waited_out():
    with verdict_server() as first:
        base_url, port = first.base_url, int(first.base_url.split(":")[2].split("/")[0])
    async with patient_client() as client:
        restarted: list[ScriptedServer] = []

        def restart() -> None:
            time.sleep(0.6)
            restarted.append(verdict_server(port=port).start())

        thread = threading.Thread(target=restart)
        thread.start()
        try:
            verdict, _ = await client.generate(
                agent="judge", role="verdict", messages=MESSAGES, schema=Verdict,
                endpoint=Endpoint(base_url=base_url, model=MODEL), sampling={},
            )  # fmt: skip
        finally:
            thread.join()
            for server in restarted:
                server.stop()
    assert verdict.safe is True


async def test_any_reply_ends_the_watch():
    # After one reply, the same 500s are the items' own: each call gets all of its retries.
    answered: list[int] = []

    def plan(index, request):
        if is_probe(request):
            return None
        answered.append(index)
        return None if len(answered) == 1 else Fault.HTTP_500

    async with TeacherClient(env={}, max_transport_retries=4, backoff_base_s=0.01, seed=0) as client:
        with verdict_server(fault_plan=plan) as server:
            assert (await ask(client, server)).safe is True
            with pytest.raises(TransientTeacherError, match="failed 5 times in a row"):
                await ask(client, server)


def test_a_500_with_retry_after_or_from_a_gateway_is_not_counted():
    watch = FirstRequests()
    with_retry_after = StatusError(500, {"retry-after": "1"}, "", {"message": "busy"})
    gateway = StatusError(502, {}, "<html>Bad Gateway</html>", None)
    assert all(watch.failed(failure, tries) is None for failure in (with_retry_after, gateway) for tries in range(1, 9))
    plain = StatusError(500, {}, "", {"message": "boom"})
    assert [watch.failed(plain, tries) for tries in (1, 1, 1, 2)] == [None, None, None, "HTTP 500: boom"]
