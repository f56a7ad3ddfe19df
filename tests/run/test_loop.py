"""The event loop stages run on: uvloop's when installed, asyncio's when AIDSAFE_EVENT_LOOP=asyncio."""

from __future__ import annotations

import asyncio

import pytest

from aidsafe.run.loop import run_async


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_stages_run_on_uvloop_when_it_is_installed(monkeypatch):
    pytest.importorskip("uvloop")
    monkeypatch.delenv("AIDSAFE_EVENT_LOOP", raising=False)
    assert run_async(_loop_module()).startswith("uvloop")


def test_the_standard_loop_can_be_forced(monkeypatch):
    monkeypatch.setenv("AIDSAFE_EVENT_LOOP", "asyncio")
    assert run_async(_loop_module()).startswith("asyncio")
