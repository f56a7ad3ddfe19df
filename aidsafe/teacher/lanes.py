"""Who may send a request now, and to which replica: the client's concurrency limit and routing.

Two modes, chosen by the recipe's `teacher.concurrency`:
- a number: one budget of that many requests in flight, shared by every endpoint (a fixed limit);
- `auto`: one limit per replica URL that adapts (AIMD, as NeMo Data Designer does): it grows
  while replies come back in time and halves on HTTP 429 / 503, a timeout or a latency blow-up,
  never above `ceiling`.

An endpoint may have several replica URLs (vLLM data-parallel replicas, several hosts). Each
request goes to the healthy replica with the fewest requests in flight; a replica that failed
to answer (connection refused, 502-504, timeout) is avoided for a cool-down that doubles while
it keeps failing, so its share drains to the others and the failed request's retry goes
elsewhere. When every replica is cooling down the one that recovers first is used, so health
only orders the choice and never blocks a request.

Why the limit recovers fast after a halving: a server that answers 429 above C requests would
make plain AIMD saw between C/2 and C (0.75 C on average). So the limit remembers the last level
that served a whole window cleanly (about C), climbs back to it by one per reply, and only probes
above it by one per window (AdaptiveLimit).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["AdaptiveLimit", "Lanes", "Outcome", "START_LIMIT"]

START_LIMIT = 8  # where an adaptive limit begins (slow start doubles it per round trip)
_LATENCY_BLOWUP = 3.0  # smoothed latency this many times the best seen counts as overload
_LATENCY_ALPHA = 0.1  # weight of one reply in the smoothed latency
_BASELINE_DRIFT = 1.01  # per reply, how far the best latency may rise toward the current one
# Above the last level that worked, one more per this many windows: the sawtooth's dips get rarer
# (goodput), at the price of finding new capacity more slowly (a replica added behind a URL).
_PROBE_WINDOWS = 2
# A cut with no clean window since the previous one keeps 90% of the previous recovery target, so
# a server whose capacity dropped is approached in a few cuts rather than by plain halving.
_SAFE_DECAY = 0.9
_COOLDOWN_S = 2.0  # first wait before a failed replica is preferred again
_COOLDOWN_MAX_S = 60.0


class Outcome(Enum):
    OK = "ok"
    OVERLOADED = "overloaded"  # 429, 503, timeout: the server asks for less
    DOWN = "down"  # no answer at all, or a gateway error: prefer another replica
    FAILED = "failed"  # any other error: says nothing about load


@dataclass
class AdaptiveLimit:
    """One replica's AIMD limit. `clock` is injectable so tests step time by hand.

    - Before the first overload: slow start, one more per reply (doubling per round trip).
    - On an overload (429 / 503 / timeout / latency blow-up): halve, once per burst.
    - After it: climb back one per reply to the last *clean level*, the highest limit that
      served a whole window of replies (as many as the limit) without an overload while that
      many requests were really in flight; above it one more per two windows, with none known
      one more per window.
    A clean level is used for one cut only; a cut with no new one aims at 90% of the last
    target, so a server whose capacity dropped is approached in a few cuts instead of being
    driven back to a level that no longer works."""

    ceiling: int
    limit: float = START_LIMIT
    clock: Callable[[], float] = time.monotonic
    safe: float | None = None  # where fast recovery stops after the last cut
    clean_level: int | None = None
    best_latency_s: float | None = None
    smoothed_latency_s: float | None = None
    _cut_ever: bool = False
    _streak: int = 0  # replies since the window began, all on time
    _streak_peak: int = 0  # most requests in flight seen in that window
    _last_cut: float = field(default=float("-inf"))

    def __post_init__(self) -> None:
        self.limit = float(min(self.limit, self.ceiling))

    @property
    def allowed(self) -> int:
        return max(1, int(self.limit))

    def observe(self, outcome: Outcome, latency_s: float, started: float, others_in_flight: int | None = None) -> None:
        """One request's end. `others_in_flight`: the replica's other requests still out then."""
        if outcome is Outcome.OVERLOADED:
            self._streak = self._streak_peak = 0  # even a burst's late 429s: that window was not clean
            self._cut(started)
        elif outcome is Outcome.OK:
            if self._latency_blew_up(latency_s):
                self._cut(started)
                return
            in_flight = self.allowed if others_in_flight is None else others_in_flight + 1
            self._streak += 1
            self._streak_peak = max(self._streak_peak, in_flight)
            if self._streak >= self.allowed:
                self.clean_level = min(self.allowed, self._streak_peak)
                self._streak = self._streak_peak = 0
            self._grow()

    def _grow(self) -> None:
        if not self._cut_ever or (self.safe is not None and self.limit < self.safe):
            self.limit += 1.0  # slow start, or climbing back to the clean level
        elif self.safe is not None:
            self.limit += 1.0 / (_PROBE_WINDOWS * self.limit)  # above a level that worked: probe slowly
        else:
            self.limit += 1.0 / self.limit  # no level known: one more per window of replies
        self.limit = min(self.limit, float(self.ceiling))

    def _cut(self, started: float) -> None:
        # Requests sent before the last cut report the load of the old limit: one burst of 429s
        # halves the limit once, not once per request.
        if started < self._last_cut:
            return
        clean, self.clean_level = self.clean_level, None
        if clean is None and self.safe is not None:
            clean = self.safe * _SAFE_DECAY  # no new clean window since the last cut: trust it less
        self.safe = None if clean is None else float(max(1.0, min(clean, self.allowed - 1)))
        self.limit = max(1.0, self.limit / 2.0)
        self._cut_ever = True
        self._streak = self._streak_peak = 0
        self._last_cut = self.clock()

    def _latency_blew_up(self, latency_s: float) -> bool:
        smoothed = self.smoothed_latency_s
        smoothed = latency_s if smoothed is None else (1 - _LATENCY_ALPHA) * smoothed + _LATENCY_ALPHA * latency_s
        self.smoothed_latency_s = smoothed
        # The baseline drifts up slowly, so a lasting change (longer replies, a busier client)
        # becomes the new normal instead of cutting forever; a sudden jump still counts.
        best = smoothed if self.best_latency_s is None else min(smoothed, self.best_latency_s * _BASELINE_DRIFT)
        self.best_latency_s = best
        return smoothed > _LATENCY_BLOWUP * best


@dataclass
class _Replica:
    url: str
    limit: AdaptiveLimit | None
    in_flight: int = 0
    down_until: float = float("-inf")
    failures: int = 0  # consecutive DOWN outcomes, for the growing cool-down
    sent: int = 0


class Lanes:
    """The slots and the routing of one client (see the module docstring)."""

    def __init__(
        self,
        concurrency: int | None,
        ceiling: int,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        """`concurrency` None means adaptive, per replica, up to `ceiling` each; `on_change`
        hears the total adaptive limit whenever it moves (the progress line shows it)."""
        self.fixed = concurrency
        self._on_change = on_change
        self.ceiling = ceiling
        self._clock = clock
        self._replicas: dict[str, _Replica] = {}
        self._waiting: dict[tuple[str, ...], asyncio.Condition] = {}
        self._in_flight = 0

    @property
    def adaptive(self) -> bool:
        return self.fixed is None

    def limit(self) -> int:
        """Requests allowed in flight now, over every replica (for the progress line)."""
        if self.fixed is not None:
            return self.fixed
        return sum(r.limit.allowed for r in self._replicas.values() if r.limit is not None)

    def sent_to(self, url: str) -> int:
        replica = self._replicas.get(url)
        return replica.sent if replica else 0

    def mark_down(self, url: str) -> None:
        """A replica the pre-flight could not reach: start it cooling down."""
        self._report(self._replica(url), Outcome.DOWN, 0.0, self._clock())

    @asynccontextmanager
    async def slot(self, urls: tuple[str, ...]) -> AsyncIterator[_Lease]:
        """Hold one request slot on one of `urls`; the caller sets `lease.outcome` before leaving."""
        replicas = [self._replica(url) for url in urls]
        condition = self._waiting.setdefault(urls, asyncio.Condition())
        async with condition:
            replica = await condition.wait_for(lambda: self._choose(replicas))
            replica.in_flight += 1
            replica.sent += 1
            self._in_flight += 1
        lease = _Lease(replica.url, self._clock())
        try:
            yield lease
        finally:
            replica.in_flight -= 1
            self._in_flight -= 1
            before = self.limit()
            self._report(replica, lease.outcome, self._clock() - lease.started, lease.started)
            after = self.limit()
            if after != before and self._on_change is not None and self.adaptive:
                self._on_change(after)
            await self._wake(max(1, after - before + 1))

    def _replica(self, url: str) -> _Replica:
        replica = self._replicas.get(url)
        if replica is None:
            limit = None if self.fixed is not None else AdaptiveLimit(self.ceiling, clock=self._clock)
            replica = self._replicas[url] = _Replica(url, limit)
            if limit is not None and self._on_change is not None:
                self._on_change(self.limit())
        return replica

    def _choose(self, replicas: list[_Replica]) -> _Replica | None:
        if self.fixed is not None and self._in_flight >= self.fixed:
            return None
        open_ = [r for r in replicas if r.limit is None or r.in_flight < r.limit.allowed]
        if not open_:
            return None
        now = self._clock()
        healthy = [r for r in open_ if r.down_until <= now]
        if healthy:
            return min(healthy, key=lambda r: r.in_flight)
        return min(open_, key=lambda r: r.down_until)

    def _report(self, replica: _Replica, outcome: Outcome, latency_s: float, started: float) -> None:
        """Called after the request left `replica.in_flight`."""
        if outcome is Outcome.DOWN:
            replica.failures += 1
            cooldown = min(_COOLDOWN_MAX_S, _COOLDOWN_S * 2 ** (replica.failures - 1))
            replica.down_until = self._clock() + cooldown
        elif outcome is Outcome.OK:
            replica.failures = 0
            replica.down_until = float("-inf")
        if replica.limit is not None:
            replica.limit.observe(outcome, latency_s, started, replica.in_flight)

    async def _wake(self, count: int) -> None:
        """Wake as many waiters as slots may have opened, in every queue (queues are per set of
        replica URLs; a run has one or a few). A waiter that finds no room waits again."""
        for condition in self._waiting.values():
            async with condition:
                condition.notify(count)


@dataclass
class _Lease:
    url: str
    started: float
    outcome: Outcome = Outcome.FAILED
