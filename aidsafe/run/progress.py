"""A live progress bar for long runs: samples, calls, tokens, retries, rejections and ETA (stderr)."""

from __future__ import annotations

from typing import Any

from aidsafe.teacher.types import TeacherStats

__all__ = ["RunProgress"]


class RunProgress:
    """Counts finished samples; the teacher's counters are read live at every refresh."""

    def __init__(self, total: int, done: int, stats: TeacherStats, enabled: bool = True) -> None:
        self.total = total
        self.done = done
        self.stats = stats
        self.rejected = 0
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> RunProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                ProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.text import Text

            summary = self.summary

            class TeacherColumn(ProgressColumn):
                def render(self, task: Any) -> Text:
                    return Text(summary(), style="dim")

            self._progress = Progress(
                TextColumn("[bold]samples"),
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TeacherColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                refresh_per_second=4,
            )
            self._progress.start()
            self._task = self._progress.add_task("samples", total=self.total, completed=self.done)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def sample_done(self, ok: bool) -> None:
        self.done += 1
        self.rejected += 0 if ok else 1
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done)

    def summary(self) -> str:
        s = self.stats
        tokens = s.prompt_tokens + s.completion_tokens
        return (
            f"{s.calls} calls ({s.in_flight} out) · {tokens / 1000:,.1f}k tokens · "
            f"{s.parse_retries + s.transport_retries} retries · {self.rejected} rejected"
        )
