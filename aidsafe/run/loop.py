"""The event loop a stage runs on: uvloop's when it is installed (a dependency except on Windows),
asyncio's own otherwise.

At 64 calls in flight the client's one event loop is what keeps the teacher waiting: its
scheduling and socket I/O were about a fifth of the client's CPU per call (docs/performance.md),
and uvloop (libuv, in C) does both for less. Everything else is unchanged: the runner's SIGINT
(and so SIGTERM, aidsafe.cli) handling is asyncio.Runner's either way.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["run_async"]

T = TypeVar("T")


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the fastest loop there is. AIDSAFE_EVENT_LOOP=asyncio forces the
    standard one (to compare, or to rule uvloop out when debugging)."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(main)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    if os.environ.get("AIDSAFE_EVENT_LOOP", "auto") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:  # not installed (Windows has no wheel): asyncio's loop
        return None
    return uvloop.new_event_loop
