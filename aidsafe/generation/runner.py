"""Run the AIDSAFE graph over many prompts: concurrent, checkpointed, resumable.

One asyncio loop; worker tasks take prompts from a queue; the teacher client holds the one
limit on in-flight calls. A finished sample is appended to samples.jsonl and its checkpoint
deleted; a failed one goes to rejected.jsonl with its stage and reason. Rerunning into the same
directory skips finished samples, resumes unfinished ones from their last checkpointed step and
retries those that failed for transient reasons.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aidsafe.errors import RunSetupError
from aidsafe.generation.graph import GraphDeps, build_graph
from aidsafe.sources import Prompt, read_prompts
from aidsafe.run.journal import JournalIndex, RunDirectory, input_digest
from aidsafe.generation.pipeline import Pipeline, cli_overrides, load_pipeline
from aidsafe.run.progress import RunProgress
from aidsafe.generation.records import sample_record, write_corpus_stats
from aidsafe.teacher.types import InvalidOutputError, Teacher, TeacherError

__all__ = ["GenerateRequest", "generate", "generate_async"]


@dataclass
class GenerateRequest:
    recipe: str
    input: str
    output: Path
    prompt_field: str = "prompt"
    base_url: str | None = None
    model: str | None = None
    overrides: list[str] = field(default_factory=list)
    limit: int | None = None
    concurrency: int | None = None
    retry_rejected: bool = False
    progress: bool = True


def generate(request: GenerateRequest, env: Mapping[str, str], teacher: Teacher | None = None) -> dict[str, Any]:
    """Generate a corpus; returns the stats written to stats.json."""
    return asyncio.run(generate_async(request, env, teacher))


async def generate_async(
    request: GenerateRequest, env: Mapping[str, str], teacher: Teacher | None = None
) -> dict[str, Any]:
    # Everything that can be wrong with the input is found here, before any teacher call.
    pipeline = load_pipeline(
        request.recipe, cli_overrides(request.base_url, request.model, request.concurrency, request.overrides)
    )
    prompts, repeats = read_prompts(request.input, request.prompt_field)
    if request.limit is not None:
        prompts = prompts[: request.limit]
    run_dir = RunDirectory(Path(request.output))
    run_dir.check(pipeline.recipe_hash)
    todo, retry = _plan(run_dir.index(), prompts, request.retry_rejected)

    owns_teacher = teacher is None
    if teacher is None:
        from aidsafe.teacher.client import TeacherClient

        settings = pipeline.recipe.teacher
        teacher = TeacherClient(
            concurrency=settings.concurrency,
            max_transport_retries=settings.max_transport_retries,
            max_parse_retries=settings.max_parse_retries,
            env=env,
            backoff_base_s=settings.backoff_base_s,
            backoff_max_s=settings.backoff_max_s,
            seed=pipeline.recipe.seed,
        )
    started = time.monotonic()
    opened = False
    try:
        if todo and owns_teacher:
            for endpoint in pipeline.endpoints:
                await teacher.check_reachable(endpoint)
        # Nothing is written before the pre-flight passed: a wrong --model leaves no directory.
        run_dir.open(pipeline.recipe_hash, pipeline.resolved_recipe())
        opened = True
        run_dir.forget_rejections(retry)
        if todo:
            await _run_samples(pipeline, teacher, run_dir, todo, len(prompts), request)
    finally:
        if owns_teacher:
            await teacher.aclose()
        if opened:
            stats = write_corpus_stats(
                run_dir, inputs=len(prompts), repeated_inputs=repeats, teacher=teacher.stats,
                wall_s=time.monotonic() - started,
            )  # fmt: skip
            run_dir.save_index()  # the next rerun reads only the lines appended after this
    return stats


def _plan(index: JournalIndex, prompts: list[Prompt], retry_rejected: bool) -> tuple[list[Prompt], set[str]]:
    """Prompts still to run (not finished, and not rejected for a reason a rerun cannot fix),
    and the rejections to forget because they are retried."""
    finished, rejected = index.finished, index.rejected
    # Only prompts of this run (--limit may leave some out) lose their old rejection line.
    retry = {p.id for p in prompts if p.id in rejected and (retry_rejected or rejected[p.id].transient)}
    return [p for p in prompts if p.id not in finished and (p.id not in rejected or p.id in retry)], retry


async def _run_samples(
    pipeline: Pipeline,
    teacher: Teacher,
    run_dir: RunDirectory,
    todo: list[Prompt],
    total: int,
    request: GenerateRequest,
) -> None:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    recipe = pipeline.recipe
    dedup = None
    if recipe.dedup.enabled:
        from aidsafe.generation.dedup import ThoughtDeduplicator

        dedup = ThoughtDeduplicator(recipe.dedup.model, recipe.dedup.threshold, recipe.dedup.device)
    deps = GraphDeps(pipeline.agents, pipeline.policies, teacher, recipe.deliberation.max_rounds, recipe.seed, dedup)
    queue: asyncio.Queue[Prompt] = asyncio.Queue()
    for prompt in todo:
        queue.put_nowait(prompt)
    # Twice the call limit in samples, so the teacher stays busy while some samples are between calls.
    workers = min(len(todo), 2 * recipe.teacher.concurrency)
    progress = RunProgress(total=total, done=total - len(todo), stats=teacher.stats, enabled=request.progress)
    async with AsyncSqliteSaver.from_conn_string(str(run_dir.checkpoints_path)) as saver:
        # WAL without an fsync per commit: a killed process loses nothing (the OS has the pages);
        # only a power cut could lose the last steps, which are then redone. Per-commit fsyncs
        # through the one connection otherwise cap the whole run's step rate.
        await saver.setup()
        await saver.conn.execute("PRAGMA synchronous=NORMAL")
        graph = build_graph(deps, checkpointer=saver)
        runner = _SampleRunner(graph, saver, pipeline, run_dir, progress)
        with progress:
            try:
                async with asyncio.TaskGroup() as group:
                    if dedup is not None:  # load the model while the first calls are out
                        group.create_task(asyncio.to_thread(dedup.warm_up))
                    for _ in range(workers):
                        group.create_task(runner.drain(queue))
            except* RunSetupError as failed:
                raise failed.exceptions[0] from None


class _SampleRunner:
    def __init__(self, graph: Any, saver: Any, pipeline: Pipeline, run_dir: RunDirectory, progress: RunProgress):
        self.graph = graph
        self.saver = saver
        self.pipeline = pipeline
        self.run_dir = run_dir
        self.progress = progress

    async def drain(self, queue: asyncio.Queue[Prompt]) -> None:
        while not queue.empty():
            await self.run_one(queue.get_nowait())

    async def run_one(self, prompt: Prompt) -> None:
        config = {"configurable": {"thread_id": prompt.id}}
        try:
            snapshot = await self.graph.aget_state(config)
            if snapshot.values and not snapshot.next:
                state = snapshot.values  # finished before a kill, but not yet journaled
            else:
                start = None if snapshot.values else {"id": prompt.id, "prompt": prompt.prompt}
                state = await self.graph.ainvoke(start, config, durability="sync")
        except (asyncio.CancelledError, RunSetupError):
            raise
        except Exception as exc:
            stage = await self._failed_stage(config)
            self.run_dir.append_rejected(_rejection(prompt, stage, exc), input_digest(prompt.prompt))
            self.progress.sample_done(ok=False)
            return
        record = sample_record(state, self.pipeline.recipe_hash, self.pipeline.policies)
        self.run_dir.append_sample(record, input_digest(prompt.prompt))
        await self.saver.adelete_thread(prompt.id)  # after the journal line: a kill in between is safe
        self.progress.sample_done(ok=True)

    async def _failed_stage(self, config: dict) -> str:
        snapshot = await self.graph.aget_state(config)
        return snapshot.next[0] if snapshot.next else "decompose"


def _rejection(prompt: Prompt, stage: str, exc: Exception) -> dict[str, Any]:
    if isinstance(exc, InvalidOutputError):
        reason = "invalid_output"
    elif isinstance(exc, TeacherError):
        reason = "teacher_unavailable" if exc.transient else "teacher_error"
    else:  # a bug in an agent or in aidsafe: kept with its location so it can be reported
        reason = "error"
    error = str(exc) if isinstance(exc, TeacherError) else _one_line_traceback(exc)
    return {
        "id": prompt.id,
        "prompt": prompt.prompt,
        "stage": stage,
        "reason": reason,
        "error": error,
        "transient": bool(getattr(exc, "transient", False)),
    }


def _one_line_traceback(exc: Exception) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"
