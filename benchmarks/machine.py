"""The machine's speed on a fixed pure-Python loop, printed by every benchmark beside its numbers.

Client-side figures (CPU ms per call, calls/s) scale with single-core Python speed, which differs
about 3x between the machines this project runs on; a figure stated with this number can be
compared across machines (divide by it). Lower is faster.
"""

from __future__ import annotations

import time

__all__ = ["reference_loop_ms"]


def _loop() -> int:
    total = 0
    items = {}
    for i in range(300_000):
        items[i % 1000] = str(i)
        total += len(items[i % 1000])
    return total


def reference_loop_ms(repeats: int = 5) -> float:
    """The best of `repeats` runs of a fixed dict/str/int loop, in milliseconds."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        _loop()
        best = min(best, time.perf_counter() - started)
    return best * 1000


if __name__ == "__main__":
    print(f"reference loop: {reference_loop_ms():.0f} ms")
