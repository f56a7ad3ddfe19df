"""One executor under every LLM stage: map a `Task` over items, resumably.

A stage writes a `Task` (aidsafe.run.task): how to key an item, digest its content, and `run`
it to a record or a `Rejection`. `execute(task, items, journal, ...)` does the rest, once for
every stage:

    check the journal (read-only)  ->  plan: skip finished, retry transient rejections
    -> task.preflight() (only if there is work)  ->  journal.open()  ->  task.start(ctx)
    -> `workers` coroutines run items; each ends as one journal line: a record or a rejection

- Resume. A key already finished is skipped; a rejection is retried when it was transient, or
  all of them with `retry_rejected`. A key whose journaled digest differs from its item's is
  refused with one line naming it: the record no longer describes its input.
- Checkpoints. `checkpointed` tasks get a LangGraph `AsyncSqliteSaver` on the journal's
  `checkpoints_path`, thread id = key; how often the task stores a thread is its recipe's
  `teacher.checkpoint` (aidsafe.run.checkpoints). A thread is deleted once its item is journaled
  as finished or non-transiently rejected (before, at start, for threads earlier runs left);
  a transient rejection keeps its thread, so the retry resumes at the failed step.
- Kill safety. A journal line is one `os.write`; the checkpoint goes only after it, so a kill
  in between redoes at most the tail of one item. A record is only ever what `run` returned.
- Circuit breaker. While the first `BREAKER_WINDOW` items of a run all fail with the same
  non-transient error of a kind a broken setup makes (`Rejection.signals_setup`: teacher
  errors, unparseable replies, exceptions), their rejections are held back; at the window's end
  the run stops with that error in one line (nothing written for them, so a rerun after the fix
  retries them). A content verdict (pairs' `no_separation`) is written at once and, like a
  finished item, ends the watch: the setup answered.
- Progress. A live line (aidsafe.run.progress) with the teacher's counters and the task's notes.

Unexpected exceptions from `run` become rejections with reason "error" (one line with the
source location); `RunSetupError` and cancellation stop the run instead.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Collection, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aidsafe.errors import AidsafeError, RunSetupError
from aidsafe.oneline import one_line
from aidsafe.run.journal import utc_now
from aidsafe.run.lock import run_lock
from aidsafe.run.progress import RunProgress
from aidsafe.run.stats import write_stats
from aidsafe.run.task import Item, Rejection, RunContext, Task, describe_exception

__all__ = [
    "BREAKER_WINDOW",
    "Journal",
    "NothingFinished",
    "Outcome",
    "RecipeJournal",
    "check_every_item_finished",
    "check_something_finished",
    "execute",
]

BREAKER_WINDOW = 20


class Journal(Protocol):
    """Where records and rejections go: a run directory, or a single predictions file."""

    checkpoints_path: Path | None
    rejected_path: Path | None  # None: rejections are not kept (the next run tries those items again)

    def check(self) -> None: ...  # read-only: refuse a directory this run must not write into
    def lock(self) -> AbstractContextManager[None]: ...  # one writer at a time (aidsafe.run.lock)
    def open(self) -> None: ...  # create what the run appends to
    def finish(self) -> None: ...  # the run stops appending (done, or interrupted): save what speeds a rerun
    def index(self) -> Any: ...  # .finished: {key: digest}; .rejected: {key: info(.transient, .digest)}
    def forget_rejections(self, ids: set[str]) -> None: ...
    def append_sample(self, record: dict[str, Any], digest: str) -> None: ...
    def append_rejected(self, entry: dict[str, Any], digest: str) -> None: ...
    def write_stats(self, counts: Any, teacher: Any, wall_s: float) -> dict[str, Any]: ...  # aidsafe.run.stats


class NothingFinished(AidsafeError):
    """The run tried items and finished none; `stats` is what was written to stats.json."""

    def __init__(self, message: str, stats: dict[str, Any]) -> None:
        super().__init__(message)
        self.stats = stats


@dataclass
class Outcome:
    """What this run did: counts, and the rejections it wrote (most common first is the caller's)."""

    items: int = 0  # items given
    skipped: int = 0  # finished or kept rejected by earlier runs
    finished: int = 0
    rejected: dict[str, Rejection] = field(default_factory=dict)  # key -> why, in the order they came

    @property
    def attempted(self) -> int:
        return self.finished + len(self.rejected)


async def execute(
    task: Task[Item],
    items: Iterable[Item],
    journal: Journal,
    *,
    workers: int,
    stats: Any = None,
    retry_rejected: bool = False,
    progress: bool = True,
) -> Outcome:
    """Run `task` over every item not done yet; see the module docstring."""
    items = list(items)
    journal.check()
    with journal.lock():  # one writer at a time, from before the pre-flight (aidsafe.run.lock)
        index = journal.index()
        todo, retry, skipped = _plan(task, items, index, retry_rejected)
        outcome = Outcome(items=len(items), skipped=skipped)
        if todo:
            await task.preflight()
        journal.open()
        journal.forget_rejections(retry)
        bar = RunProgress(len(items), len(items) - len(todo), stats, enabled=progress, noun=task.noun)
        saver = None
        try:
            if (
                task.checkpointed
                and journal.checkpoints_path is not None
                and (todo or journal.checkpoints_path.exists())
            ):
                saver = await _open_saver(journal.checkpoints_path)
                await _prune(saver, index)
            if todo:
                with bar:
                    await _Run(task, journal, saver, bar, outcome).all(todo, workers)
        finally:
            if saver is not None:
                await _close_saver(saver)
            journal.finish()
    return outcome


def _plan(task: Task[Item], items: list[Item], index: Any, retry_rejected: bool) -> tuple[list[Item], set[str], int]:
    todo, retry = [], set()
    for item in items:
        key, digest = task.key(item), task.digest(item)
        info = index.rejected.get(key)
        stored = index.finished.get(key, info.digest if info is not None else None)
        if stored and digest and stored != digest:
            raise AidsafeError(
                f"{task.noun[:-1] if task.noun.endswith('s') else task.noun} {key!r}: its input changed since "
                "it was journaled in this output; give it a new id or use another output"
            )
        if key in index.finished:
            continue
        if info is not None:
            if not (retry_rejected or info.transient):
                continue
            retry.add(key)
        todo.append(item)
    return todo, retry, len(items) - len(todo)


class _Run:
    """One run's workers, journal writes and circuit breaker."""

    def __init__(self, task: Task[Any], journal: Journal, saver: Any, bar: RunProgress, outcome: Outcome) -> None:
        self.task = task
        self.journal = journal
        self.saver = saver
        self.bar = bar
        self.outcome = outcome
        self.ctx = RunContext(checkpointer=saver, note=bar.note)
        self.watching = True  # the breaker looks at the first BREAKER_WINDOW items only
        self.held: list[tuple[Any, Rejection]] = []

    async def all(self, todo: list[Any], workers: int) -> None:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        for item in todo:
            queue.put_nowait(item)
        tripped = False
        try:
            await self.task.start(self.ctx)
            async with asyncio.TaskGroup() as group:
                for work in self.ctx._background:
                    group.create_task(work)
                for _ in range(max(1, min(workers, len(todo)))):
                    group.create_task(self._drain(queue))
        except* _Tripped as stop:
            tripped = True
            raise AidsafeError(str(stop.exceptions[0])) from None
        except* AidsafeError as failed:  # RunSetupError, a journal that cannot be written (a full disk)
            raise failed.exceptions[0] from None
        finally:
            for work in self.ctx._background:  # never started when start() or the group failed early
                work.close()
            if not tripped:  # interrupted or failed otherwise: what was held is still true
                self._release()

    async def _drain(self, queue: asyncio.Queue[Any]) -> None:
        while not queue.empty():
            await self._one(queue.get_nowait())

    async def _one(self, item: Any) -> None:
        try:
            record = await self.task.run(item, self.ctx)
        except (asyncio.CancelledError, RunSetupError):
            raise
        except Rejection as rejection:
            await self._rejected(item, rejection)
            return
        except Exception as exc:  # a bug in a task, an agent or aidsafe: kept with its location
            await self._rejected(item, Rejection(self.task.stage, "error", describe_exception(exc)))
            return
        key = self.task.key(item)
        self.journal.append_sample(record, self.task.digest(item))
        if self.saver is not None:  # after the journal line: a kill in between only redoes the end
            await self.saver.adelete_thread(key)
        self.outcome.finished += 1
        self.bar.item_done(ok=True)
        self._stop_watching()

    async def _rejected(self, item: Any, rejection: Rejection) -> None:
        self.outcome.rejected[self.task.key(item)] = rejection
        self.bar.item_done(ok=False)
        if self.watching and not rejection.transient and rejection.signals_setup:
            first = self.held[0][1] if self.held else rejection
            if (first.stage, first.reason, first.error) == (rejection.stage, rejection.reason, rejection.error):
                self.held.append((item, rejection))
                if len(self.held) >= BREAKER_WINDOW:
                    raise _Tripped(
                        f"stopped: the first {len(self.held)} {self.task.noun} all failed at {rejection.stage} "
                        f"({rejection.reason}: {rejection.error}); nothing was written for them: fix the cause "
                        "and rerun"
                    )
                return
        self._stop_watching()
        await self._write_rejection(item, rejection)

    def _stop_watching(self) -> None:
        if self.watching:
            self.watching = False
            self._release()

    def _release(self) -> None:
        """Write the rejections the breaker held back (their checkpoints go on the next start)."""
        held, self.held = self.held, []
        for item, rejection in held:
            self.journal.append_rejected(self._entry(item, rejection), self.task.digest(item))

    async def _write_rejection(self, item: Any, rejection: Rejection) -> None:
        self.journal.append_rejected(self._entry(item, rejection), self.task.digest(item))
        if self.saver is not None and not rejection.transient:  # a retry starts it over
            await self.saver.adelete_thread(self.task.key(item))

    def _entry(self, item: Any, rejection: Rejection) -> dict[str, Any]:
        return {
            "id": self.task.key(item),
            **self.task.describe(item),
            "stage": rejection.stage,
            "reason": rejection.reason,
            "error": rejection.error,
            "transient": rejection.transient,
        }


class _Tripped(Exception):
    """The circuit breaker: raised inside the task group, re-raised as one AidsafeError."""


async def _open_saver(path: Path) -> Any:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    try:
        context = AsyncSqliteSaver.from_conn_string(str(path))
        saver = await context.__aenter__()
        await saver.setup()
    except Exception as exc:  # noqa: BLE001 - not a database, locked, unreadable: one line
        raise AidsafeError(f"{path}: cannot open the checkpoint database ({type(exc).__name__}: {exc})") from None
    saver._aidsafe_context = context
    # WAL without an fsync per commit: a killed process loses nothing (the OS has the pages);
    # only a power cut could lose the last steps, which are then redone. Per-commit fsyncs
    # through the one connection otherwise cap the whole run's step rate.
    await saver.conn.execute("PRAGMA synchronous=NORMAL")
    return saver


async def _prune(saver: Any, index: Any) -> None:
    """Drop the threads of items that are journaled as finished or non-transiently rejected."""
    async with saver.conn.execute("SELECT DISTINCT thread_id FROM checkpoints") as cursor:
        threads = [row[0] async for row in cursor]
    for thread in threads:
        info = index.rejected.get(thread)
        if thread in index.finished or (info is not None and not info.transient):
            await saver.adelete_thread(thread)


async def _close_saver(saver: Any) -> None:
    """Close the database, first giving back the space of deleted threads when most of it is free."""
    try:
        async with saver.conn.execute("PRAGMA freelist_count") as cursor:
            free = (await cursor.fetchone())[0]
        async with saver.conn.execute("PRAGMA page_count") as cursor:
            pages = (await cursor.fetchone())[0]
        if pages > 64 and free * 2 > pages:
            await saver.conn.execute("VACUUM")
    finally:
        await saver._aidsafe_context.__aexit__(None, None, None)


class RecipeJournal:
    """A `RunDirectory` bound to the recipe that writes into it: the journal of recipe-driven stages."""

    def __init__(
        self, run_dir: Any, recipe_hash: str, resolved_recipe: dict[str, Any], kind: str | None = None
    ) -> None:
        self.run_dir = run_dir
        self.recipe_hash = recipe_hash
        self.resolved_recipe = resolved_recipe
        self.kind = kind  # the stage kind (aidsafe.kinds) run.json records
        self.checkpoints_path = run_dir.checkpoints_path
        self.opened = False  # stats and the like are written only into an opened directory

    def check(self) -> None:
        self.run_dir.check(self.recipe_hash, self.resolved_recipe)

    def lock(self) -> AbstractContextManager[None]:
        return run_lock(self.run_dir.path)

    def open(self) -> None:
        self.run_dir.open(self.recipe_hash, self.resolved_recipe, self.kind)
        self.opened = True

    def finish(self) -> None:
        """samples.ids.json, so the next run need not scan samples.jsonl (an optimisation: a
        failure to write it, e.g. a full disk, must not hide why the run stopped)."""
        try:
            self.run_dir.save_index()
        except (AidsafeError, OSError):
            pass

    def index(self) -> Any:
        return self.run_dir.index()

    def forget_rejections(self, ids: set[str]) -> None:
        self.run_dir.forget_rejections(ids)

    def append_sample(self, record: dict[str, Any], digest: str) -> None:
        # When the item finished, in every stage's records (run.json says which aidsafe wrote them).
        self.run_dir.append_sample({**record, "finished_at": utc_now()}, digest)

    def append_rejected(self, entry: dict[str, Any], digest: str) -> None:
        self.run_dir.append_rejected(entry, digest)

    @property
    def rejected_path(self) -> Path:
        return self.run_dir.rejected_path

    def write_stats(self, counts: Any, teacher: Any, wall_s: float) -> dict[str, Any]:
        """stats.json (aidsafe.run.stats), once the run opened the directory: a run that failed its
        pre-flight leaves no trace."""
        return write_stats(self.run_dir, counts, teacher, wall_s) if self.opened else {}


def check_something_finished(
    outcome: Outcome, rejected_path: Path, stats: dict[str, Any], noun: str, verdicts: Collection[str] = ()
) -> None:
    """A run that tried items and finished none is a failure, whatever each rejection says: raise
    `NothingFinished` naming the most common rejection and whether a rerun can help. Unless one of
    the rejections is among the stage's `verdicts` (reasons that judge the content, e.g. pairs'
    `no_separation`): such a run did its work, and its output says so."""
    if not outcome.attempted or outcome.finished:
        return
    if any(r.reason in verdicts for r in outcome.rejected.values()):
        return
    alike = Counter((r.stage, r.reason, r.error) for r in outcome.rejected.values())
    (stage, reason, error), count = alike.most_common(1)[0]
    rerun = "rerun the same command to retry" if all(r.transient for r in outcome.rejected.values()) else "see"
    raise NothingFinished(
        f"no {noun} finished: {len(outcome.rejected)} of {outcome.attempted} rejected, {count} at {stage} "
        f"({reason}: {one_line(error, 200)}); {rerun} {rejected_path}",
        stats,
    )


def check_every_item_finished(outcome: Outcome, noun: str, singular: str) -> None:
    """For a journal that keeps no rejections (a predictions file, whose rows must all be there):
    any rejected item fails the run, with the first one's error and whether a rerun alone helps."""
    if not outcome.rejected:
        return
    key, first = next(iter(outcome.rejected.items()))
    if all(r.transient for r in outcome.rejected.values()):
        then = "rerun the same command to retry them"
    else:  # a rerun alone changes nothing: the request, the server or aidsafe must change first
        then = "not transient: fix the cause, then rerun the same command to retry them"
    raise AidsafeError(
        f"{len(outcome.rejected)} of {outcome.attempted} {noun} failed ({singular} {key}: {first.error}); {then}"
    )
