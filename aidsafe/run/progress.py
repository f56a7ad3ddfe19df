"""A live progress line for long runs (stderr): items, calls, tokens, retries, rejections, ETA.

One line, fitted to the terminal: when the width is short, the least useful figures go first
(whole figures, never cut mid-number), so the line never wraps. A task's note ("loading the
embedding model ...") stands in for the teacher's figures while it lasts, and when timeouts are
most of the failures the line names the setting to raise.

Without a terminal (CI logs, nohup, a pipe) a live line cannot be redrawn: rich printed its
last frame with no newline, so the command's result ran on after it (`...27.4k tokens6 samples,
0 rejected`) and `grep ^error:` missed errors. There the progress is a plain line every
`LOG_EVERY_S` seconds and one at the end, each ending with a newline, no bar and no redraws.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

__all__ = ["LOG_EVERY_S", "RunProgress", "progress_line"]

_BAR = 16
LOG_EVERY_S = 15.0  # a log line this often: a long run's progress, without flooding the log
_LOG_WIDTH = 240  # a log has no width to fit: every figure fits in this


class RunProgress:
    """Counts finished items; the teacher's counters (`stats`, optional) are read at every refresh."""

    def __init__(self, total: int, done: int, stats: Any = None, enabled: bool = True, noun: str = "samples") -> None:
        self.total = total
        self.done = done
        self.stats = stats
        self.noun = noun
        self.rejected = 0
        self.enabled = enabled
        self._note = ""
        self._started_done = done
        self._started = time.monotonic()
        self._live: Any = None
        self._logger: threading.Thread | None = None
        self._stop = threading.Event()

    def __enter__(self) -> RunProgress:
        if self.enabled:
            from rich.console import Console
            from rich.live import Live
            from rich.text import Text

            progress, console = self, Console(stderr=True)
            if not console.is_terminal:
                self._logger = threading.Thread(target=self._log_every, name="aidsafe-progress-log", daemon=True)
                self._logger.start()
                return self

            class _Line:
                def __rich__(self) -> Text:
                    return Text(progress.line(console.width), no_wrap=True, overflow="crop")

            self._live = Live(_Line(), console=console, refresh_per_second=4, transient=False)
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
        if self._logger is not None:
            self._stop.set()
            self._logger.join()
            self._log()  # the last figures, on a line of their own

    def _log_every(self) -> None:
        while not self._stop.wait(LOG_EVERY_S):
            self._log()

    def _log(self) -> None:
        print(self.line(_LOG_WIDTH, bar=False), file=sys.stderr, flush=True)

    def item_done(self, ok: bool) -> None:
        self.done += 1
        self.rejected += 0 if ok else 1

    def note(self, text: str) -> None:
        """Show `text` (what the run is waiting for) until the next note; "" clears it."""
        self._note = text

    def line(self, width: int, bar: bool = True) -> str:
        elapsed = time.monotonic() - self._started
        return progress_line(self.noun, self.done, self.total, self.rejected, self.stats, self._note,
                             width, _eta(self.done - self._started_done, self.total - self.done, elapsed),
                             bar=bar)  # fmt: skip


def progress_line(
    noun: str, done: int, total: int, rejected: int, stats: Any, note: str, width: int, eta: str = "", bar: bool = True
) -> str:
    """The progress line at most `width` characters wide, dropping whole parts from the end
    (`bar`: the bar first, while it fits; a log line goes without)."""
    filled = round(_BAR * done / total) if total else _BAR
    head = [f"{noun} {'━' * filled}{'╌' * (_BAR - filled)} {done}/{total}"] if bar else []
    head.append(f"{noun} {done}/{total}")
    parts = [note] if note else _figures(stats, rejected)
    tails = ([f"ETA {eta}"], []) if eta else ([],)
    for kept in range(len(parts), -1, -1):  # fewer figures before a shorter head or no ETA
        for tail in tails:
            for first in head:
                line = " · ".join([first, *parts[:kept], *tail])
                if len(line) <= width:
                    return line
    return head[-1][:width]


def _figures(stats: Any, rejected: int) -> list[str]:
    """Most useful first: rejections, the timeout hint, calls, retries, tokens."""
    parts = [f"{rejected} rejected"]
    if stats is None:
        return parts
    timeouts = getattr(stats, "timeouts", 0)  # counted by the teacher client, when it does
    retries = stats.parse_retries + stats.transport_retries
    if timeouts and timeouts * 2 >= retries + rejected:
        parts.append(f"{timeouts} timeouts: raise teacher.timeout_s?")
    tokens = stats.prompt_tokens + stats.completion_tokens
    limit = getattr(stats, "concurrency_limit", None)  # set while teacher.concurrency is auto
    out = f"{stats.in_flight} out of {limit}" if limit else f"{stats.in_flight} out"
    parts += [f"{stats.calls} calls ({out})", f"{retries} retries", f"{tokens / 1000:,.1f}k tokens"]
    return parts


def _eta(done_now: int, left: int, elapsed: float) -> str:
    if done_now <= 0 or left <= 0:
        return ""
    seconds = int(elapsed / done_now * left)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
