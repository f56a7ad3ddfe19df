"""The wire honours HTTP_PROXY and NO_PROXY as other HTTP clients do (docs/teacher.md): a request
to a proxied host goes to the proxy, in absolute form; a host NO_PROXY names goes direct."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from aidsafe.teacher.wire import StatusError, Wire


class _Proxy(BaseHTTPRequestHandler):
    """Keeps each request line and answers 502, as a proxy that cannot reach the host would."""

    lines: list[str]

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.lines.append(self.requestline)
        self.send_response(502)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def proxy():
    handler = type("Proxy", (_Proxy,), {"lines": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", handler.lines
    server.shutdown()
    server.server_close()


async def test_a_proxied_host_is_asked_through_the_proxy(proxy, monkeypatch):
    url, lines = proxy
    monkeypatch.setenv("HTTP_PROXY", url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    wire = Wire(user_agent="test")
    try:
        with pytest.raises(StatusError) as failed:
            await wire.request("GET", "http://teacher.invalid:8000/v1/models", api_key="k", timeout_s=5)
    finally:
        await wire.aclose()
    assert failed.value.status == 502
    assert lines == ["GET http://teacher.invalid:8000/v1/models HTTP/1.1"]


async def test_no_proxy_sends_the_host_direct(proxy, monkeypatch):
    url, lines = proxy
    host_port = url.removeprefix("http://")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    wire = Wire(user_agent="test")
    try:
        with pytest.raises(StatusError):
            await wire.request("GET", f"http://{host_port}/v1/models", api_key="k", timeout_s=5)
    finally:
        await wire.aclose()
    assert lines == ["GET /v1/models HTTP/1.1"]  # the server itself, asked directly
