"""Replies no teacher should send, over real loopback HTTP (an aiohttp server that writes them
byte by byte): bodies past any reply's size (declared, chunked without end, a gzip bomb),
nesting past the interpreter's stack, NaN and absurd token counts. Each ends as a teacher error
or a sane count, never as a traceback, unbounded memory or a non-JSON value in a record."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiohttp import web
from pydantic import BaseModel

from aidsafe.teacher import Endpoint, TeacherClient, TeacherError, TransientTeacherError
from aidsafe.teacher.wire import reply_cap

MESSAGES = [{"role": "user", "content": "Is this prompt safe?"}]


class Verdict(BaseModel):
    safe: bool


def chat_reply(usage: str = '{"prompt_tokens": 3, "completion_tokens": 2}') -> bytes:
    content = json.dumps(json.dumps({"safe": True}))
    return (
        '{"id": "x", "object": "chat.completion", "choices": [{"index": 0, "finish_reason": "stop", '
        f'"message": {{"role": "assistant", "content": {content}}}}}], "usage": {usage}}}'
    ).encode()


Handler = Callable[[web.Request], "asyncio.Future[web.StreamResponse]"]


@contextmanager
def hostile_server(chat: Handler) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 in its own thread and loop: /v1/models answers, /v1/chat/completions
    is `chat`. Yields the base URL."""

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "m", "object": "model"}]})

    ready, box = threading.Event(), {}

    def serve() -> None:
        loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_get("/v1/models", models)
        app.router.add_post("/v1/chat/completions", chat)
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        box["port"] = site._server.sockets[0].getsockname()[1]
        box["loop"], box["stop"] = loop, asyncio.Event()
        ready.set()
        loop.run_until_complete(box["stop"].wait())
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield f"http://127.0.0.1:{box['port']}/v1"
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(10)


async def ask(base_url: str, max_tokens: int = 256) -> tuple[Verdict, object]:
    async with TeacherClient(
        env={}, backoff_base_s=0.01, backoff_max_s=0.02, max_transport_retries=1, seed=0
    ) as client:
        return await client.generate(
            agent="judge", role="verdict", messages=MESSAGES, schema=Verdict,
            endpoint=Endpoint(base_url=base_url, model="m", timeout_s=20), sampling={"max_tokens": max_tokens},
        )  # fmt: skip


async def endless(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(b'{"choices": [')
    block = b" " * (1 << 20)
    for _ in range(2000):  # 2 GB if read whole; the client must stop long before
        try:
            await response.write(block)
        except (ConnectionResetError, RuntimeError):
            break
    return response


def declared(size: int) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": str(size)})
        await response.prepare(request)
        block = b" " * (1 << 20)
        try:
            for _ in range(size >> 20):
                await response.write(block)
        except (ConnectionResetError, RuntimeError):
            pass
        return response

    return handler


def gzip_bomb() -> Handler:
    """512 MB of whitespace around a valid reply, about 0.5 MB on the wire (compressed block by
    block, so the server itself never holds the 512 MB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    block = b" " * (1 << 20)
    parts = [packer.compress(block) for _ in range(256)]
    parts += [packer.compress(chat_reply())] + [packer.compress(block) for _ in range(256)] + [packer.flush()]
    raw = b"".join(parts)

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=raw, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})

    return handler


def fixed(body: bytes) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, headers={"Content-Type": "application/json"})

    return handler


@pytest.mark.parametrize(
    "make", [lambda: endless, lambda: declared(200 << 20), gzip_bomb], ids=["endless", "200MB", "gzip-bomb"]
)
async def test_a_reply_past_any_reply_size_is_a_teacher_error(make):
    with hostile_server(make()) as url:
        with pytest.raises(TeacherError) as caught:
            await ask(url)
    assert not isinstance(caught.value, TransientTeacherError)  # the same request gets the same
    assert "reply" in str(caught.value) and f"{reply_cap({'max_completion_tokens': 256}):,}" in str(caught.value)


def test_the_cap_follows_what_the_request_allows():
    assert reply_cap({"max_completion_tokens": 64}) < reply_cap({"max_completion_tokens": 4096})
    assert reply_cap({"max_tokens": 100, "n": 4}) > reply_cap({"max_tokens": 100})
    assert reply_cap({}) == reply_cap({"max_tokens": "lots"}) > reply_cap({"max_tokens": 100})


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"a": ' * 50_000 + b"1" + b"}" * 50_000])
async def test_nesting_past_the_stack_is_not_json_not_a_crash(body):
    with hostile_server(fixed(body)) as url:
        with pytest.raises(TransientTeacherError, match="not JSON"):
            await ask(url)


@pytest.mark.parametrize(
    "usage",
    [
        '{"prompt_tokens": NaN, "completion_tokens": 1e400}',
        '{"prompt_tokens": -5, "completion_tokens": 1e30}',
        '{"prompt_tokens": "12", "completion_tokens": true}',
        '{"prompt_tokens": 1000000000000000000000, "completion_tokens": 2}',
    ],
)
async def test_token_counts_are_kept_only_when_they_are_counts(usage):
    with hostile_server(fixed(chat_reply(usage).replace(b"\\ud", b""))) as url:
        try:
            output, call = await ask(url)
        except TransientTeacherError as exc:  # NaN / 1e400: not JSON at all, which is fair too
            assert "not JSON" in str(exc) and ("NaN" in usage or "1e400" in usage)
            return
    assert output.safe is True
    counts = (call.prompt_tokens, call.completion_tokens)
    assert all(isinstance(n, int) and 0 <= n < 2**53 for n in counts), counts
    json.dumps(call.to_dict(), allow_nan=False)  # what goes into samples.jsonl is JSON


def test_a_record_with_nan_is_never_written(tmp_path):
    from aidsafe.run.jsonl import append_jsonl

    with pytest.raises(ValueError):
        append_jsonl(tmp_path / "samples.jsonl", {"id": "a", "score": float("nan")})
    assert not (tmp_path / "samples.jsonl").exists() or (tmp_path / "samples.jsonl").read_bytes() == b""


@pytest.mark.slow
@pytest.mark.parametrize(
    "make", [lambda: endless, lambda: declared(200 << 20), gzip_bomb], ids=["endless", "200MB", "gzip-bomb"]
)
def test_client_memory_stays_bounded_against_the_hostile_replies(make):
    """Peak RSS of a client process (the server runs here, the client in its own process) that
    meets each hostile body: under 300 MB. Read whole, a 200 MB body peaked at 893 MB and the gzip
    bomb at 1.7 GB."""
    script = textwrap.dedent(
        """
        import asyncio, sys
        sys.path.insert(0, sys.argv[2])
        from tests.teacher.test_hostile_bodies import ask
        from aidsafe.teacher import TeacherError
        try:
            asyncio.run(ask(sys.argv[1]))
        except TeacherError as exc:
            print("refused:", exc)
        # VmHWM: this process's own peak. ru_maxrss would include the forking parent's (pytest's).
        status = open("/proc/self/status").read()
        print(int(status.split("VmHWM:")[1].split()[0]) // 1024)
        """
    )
    repo = str(Path(__file__).resolve().parents[2])
    with hostile_server(make()) as url:
        done = subprocess.run([sys.executable, "-c", script, url, repo], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "refused:" in done.stdout
    peak_mb = int(done.stdout.split()[-1])
    assert peak_mb < 300, peak_mb
