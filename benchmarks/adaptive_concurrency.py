"""Adaptive concurrency against a rate-limited server: goodput over the server's capacity.

    python benchmarks/adaptive_concurrency.py --capacity 32 --latency 0.3 --calls 3000

A loopback ScriptedServer answers HTTP 429 (at once, with Retry-After) to any request that
arrives while `--capacity` are in flight. The real TeacherClient with `concurrency: auto`
(aidsafe/teacher/lanes.py) sends `--calls` completions, many more than the capacity at once.
Printed: goodput (successful calls in flight on average, after the first `--ramp` seconds) over
the capacity (the goal is >= 0.9), failed calls (the goal: 0), 429s per call (a retry storm
would be many), and the limit the client settled on. Each run states the machine's speed on a
fixed pure-Python loop (benchmarks/machine.py), so figures from different machines compare.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from machine import reference_loop_ms

from aidsafe.teacher import Endpoint, TeacherClient
from aidsafe.testing.server import ScriptedServer


async def run(capacity: int, latency: float, calls: int, ramp: float, ceiling: int) -> dict[str, float]:
    with ScriptedServer(latency_s=latency, capacity=capacity, retry_after_s=latency / 2) as server:
        endpoint = Endpoint(base_url=server.base_url, model="scripted-model")
        async with TeacherClient(concurrency=None, max_concurrency=ceiling, max_transport_retries=20) as client:
            done: list[float] = []

            async def one(i: int) -> None:
                await client.complete_text(agent="bench", prompt=f"call {i}", endpoint=endpoint, sampling={})
                done.append(time.perf_counter())

            started = time.perf_counter()
            work = asyncio.ensure_future(asyncio.gather(*(one(i) for i in range(calls)), return_exceptions=True))
            limits = []
            while not work.done():
                if time.perf_counter() - started > ramp and client.stats.concurrency_limit:
                    limits.append(client.stats.concurrency_limit)
                await asyncio.sleep(0.05)
            results = await work
            failed = sum(isinstance(r, BaseException) for r in results)
    # Goodput between the end of the ramp and the last 10% of calls (the tail has no queue).
    window = [t - started for t in sorted(done)[: int(0.9 * len(done))] if t - started > ramp]
    span = window[-1] - window[0] if len(window) > 1 else float("nan")
    goodput = len(window) * latency / span  # successful calls in flight on average
    return {
        "goodput_over_capacity": goodput / capacity,
        "failed_calls": failed,
        "429_per_call": server.over_capacity / calls,
        "median_limit": statistics.median(limits) if limits else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capacity", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--ramp", type=float, default=3.0, help="seconds left out at the start")
    parser.add_argument("--ceiling", type=int, default=256, help="teacher.max_concurrency")
    args = parser.parse_args()
    print(f"machine: reference loop {reference_loop_ms():.0f} ms")
    result = asyncio.run(run(args.capacity, args.latency, args.calls, args.ramp, args.ceiling))
    print(f"capacity {args.capacity}, latency {args.latency} s, {args.calls} calls")
    for key, value in result.items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")


if __name__ == "__main__":
    main()
