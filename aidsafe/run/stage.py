"""One recipe-driven stage, start to end: the teacher client the recipe describes (unless the
caller passes one), the executor over the items, the client closed, stats.json written.

generate, pairs and the guard-data stages (GuardReasoner traces, ThinkGuard critiques) differ only
in their task, their items and their stats; this is what they share.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aidsafe.run.executor import Outcome, RecipeJournal, execute
from aidsafe.run.task import Task

__all__ = ["run_stage"]


async def run_stage(
    make_task: Callable[[Any, bool], Task[Any]],
    items: Iterable[Any],
    journal: RecipeJournal,
    *,
    recipe: Any,
    env: Mapping[str, str],
    teacher: Any = None,
    workers: int,
    request: Any,
    write_stats: Callable[[Any, float], dict[str, Any]],
) -> tuple[Outcome, dict[str, Any]]:
    """`make_task(teacher, check_endpoints)`: the stage's task (endpoints are checked only on a
    client made here). `recipe`: the stage's recipe, whose `teacher` settings and `seed` make the
    client. `write_stats(teacher_stats, wall_s)` runs once the journal was opened, also
    when the run stops early (Ctrl-C, the breaker), so stats.json matches the journals; a run that
    failed its pre-flight leaves no trace. `request`: the CLI request (retry_rejected, progress)."""
    owns_teacher = teacher is None
    if teacher is None:
        from aidsafe.teacher.client import TeacherClient

        teacher = TeacherClient.from_settings(recipe.teacher, env, recipe.seed)
    started = time.monotonic()
    stats: dict[str, Any] = {}
    try:
        outcome = await execute(
            make_task(teacher, owns_teacher),
            items,
            journal,
            workers=workers,
            stats=teacher.stats,
            retry_rejected=request.retry_rejected,
            progress=request.progress,
        )
    finally:
        if owns_teacher:
            await teacher.aclose()
        if journal.opened:
            stats = write_stats(teacher.stats, time.monotonic() - started)
    return outcome, stats
