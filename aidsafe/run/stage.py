"""The one entrance to the executor: every stage (generate, pairs, GuardReasoner traces, ThinkGuard
critiques, predict guard, eval cot, eval safety) runs its `Task` through `run_stage`, which does
the same four things for each:

1. the client: the `TeacherClient` its teacher settings describe (seeded), unless the caller
   passes one (tests, a shared client); a client made here is closed here, and only for one made
   here does the task check its endpoints first (`make_task(client, check_endpoints)`);
2. the executor over the items into the journal (aidsafe.run.executor);
3. stats.json through the one writer (aidsafe.run.stats), once the journal was opened, also when
   the run stops early (Ctrl-C, the circuit breaker), so the stats match the journals; a run that
   failed its pre-flight leaves no trace;
4. the run fails when it finished nothing (`NothingFinished`, naming the most common rejection),
   unless a rejection is one of the task's `verdicts` (pairs' `no_separation`: the run did its
   work); a journal that keeps no rejections (a predictions file) fails when any item failed.

A stage whose items beget items (policy-guard: a counterfactual variant exists only once its
original row was judged) passes `then`: called when the first items are done, it gives the
items that follow from the journal as it stands, which the same task runs into the same journal
on the same client; so a resumed run finds both kinds where it left them, and one stats.json
counts both.

`StageRequest` is what the CLI asks of a recipe-driven stage (generate and pairs take it, the
guard-data stages too).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aidsafe.run.executor import Journal, Outcome, check_every_item_finished, check_something_finished, execute
from aidsafe.run.stats import StageCounts
from aidsafe.run.task import Task

__all__ = ["StageRequest", "run_stage"]


@dataclass
class StageRequest:
    """A recipe-driven stage as the CLI asks for it: the recipe, where to read and write, the
    CLI's overrides of the recipe, and how to run."""

    recipe: str
    input: str | Path
    output: Path
    base_url: str | None = None
    model: str | None = None
    overrides: list[str] = field(default_factory=list)
    limit: int | None = None
    concurrency: int | None = None
    retry_rejected: bool = False
    progress: bool = True

    def recipe_overrides(self) -> list[str]:
        """`--set` values, after those --base-url, --model and --concurrency stand for."""
        from aidsafe.config.overrides import cli_overrides

        return cli_overrides(self.base_url, self.model, self.concurrency, self.overrides)


async def run_stage(
    make_task: Callable[[Any, bool], Task[Any]],
    items: Iterable[Any],
    journal: Journal,
    *,
    settings: Any,
    seed: int | None,
    env: Mapping[str, str] | None,
    workers: int,
    teacher: Any = None,
    counts: Callable[[dict[str, Any] | None], StageCounts] | None = None,
    then: Callable[[], Iterable[Any]] | None = None,
    noun: str | None = None,
    retry_rejected: bool = False,
    progress: bool = True,
) -> tuple[Outcome, dict[str, Any]]:
    """Run `make_task(client, check_endpoints)` over `items` into `journal`; see the module docstring.

    `settings`: the `TeacherSettings` (aidsafe.agents.settings) the client is made from, `seed`
    its random generator's, `env` where it reads API keys (None: the process environment).
    `counts(previous_stats)`: the stage's own part of stats.json (default: `inputs` alone).
    `then()`: the items that follow from the first ones once they are done (see the module docstring).
    `noun`: one item in the "no ... finished" line (default: the task's noun, singular).
    Returns the executor's `Outcome` and the stats written."""
    items = list(items)
    owns_teacher = teacher is None
    if teacher is None:
        from aidsafe.teacher.client import TeacherClient

        teacher = TeacherClient.from_settings(settings, env, seed)
    task = make_task(teacher, owns_teacher)
    started = time.monotonic()
    stats: dict[str, Any] = {}
    try:
        outcome = await execute(task, items, journal, workers=workers, stats=teacher.stats,
                                retry_rejected=retry_rejected, progress=progress)  # fmt: skip
        if then is not None:
            more = await execute(task, list(then()), journal, workers=workers, stats=teacher.stats,
                                 retry_rejected=retry_rejected, progress=progress)  # fmt: skip
            outcome = Outcome(outcome.items + more.items, outcome.skipped + more.skipped,
                              outcome.finished + more.finished, {**outcome.rejected, **more.rejected})  # fmt: skip
    finally:
        if owns_teacher:
            await teacher.aclose()
        stats = journal.write_stats(counts or (lambda _: StageCounts(len(items))), teacher.stats,
                                    time.monotonic() - started)  # fmt: skip
    singular = noun or (task.noun[:-1] if task.noun.endswith("s") else task.noun)
    if journal.rejected_path is None:
        check_every_item_finished(outcome, task.noun, singular)
    else:
        check_something_finished(outcome, journal.rejected_path, stats, noun=singular, verdicts=task.verdicts)
    return outcome, stats
