"""`aidsafe generate`: the AIDSAFE graph as a `Task` on the executor (aidsafe.run.executor).

One prompt is one LangGraph thread (thread id = sample id), stored once per sample or after every
step (`teacher.checkpoint`, aidsafe.run.checkpoints). The executor owns the rest: workers (twice
the teacher's call limit, so the teacher stays busy while some samples are between calls), the
run directory, resume, pruning, progress, the breaker.

A sample's record is written only when its graph reached END: either `ainvoke` returned, or
(after a kill between the last step and the journal line) the stored checkpoint has no task
left (`aidsafe.run.checkpoints.run_thread`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aidsafe.errors import AidsafeError, RunSetupError
from aidsafe.generation.graph import GraphDeps, build_graph
from aidsafe.generation.pipeline import Pipeline, load_pipeline
from aidsafe.generation.records import corpus_counts, sample_record, write_corpus_stats
from aidsafe.run.checkpoints import failed_node, run_thread
from aidsafe.run.executor import NothingFinished, RecipeJournal
from aidsafe.run.journal import RunDirectory, input_digest
from aidsafe.run.loop import run_async
from aidsafe.run.shards import MergeResult, check_shard, merge_runs, parse_shard, record_shard
from aidsafe.run.stage import StageRequest, run_stage
from aidsafe.run.stats import StageCounts
from aidsafe.run.task import RunContext, Task, rejection_for
from aidsafe.sources import Prompt, read_prompts
from aidsafe.teacher.types import Teacher, TeacherStats

__all__ = ["GenerateRequest", "GenerationTask", "NothingFinished", "generate", "generate_async", "merge"]


@dataclass
class GenerateRequest(StageRequest):
    """`aidsafe generate`: the AIDSAFE graph, or the guard-data stages its recipe's `kind` names."""

    prompt_field: str = "prompt"
    shard: str | None = None  # "K/N": only the inputs whose id hashes to K of N (aidsafe.run.shards)
    # guardreasoner recipes: the task a bare gold label is for (aidsafe.guard.labelled)
    label_task: str | None = None
    # policy-guard recipes: the column holding a gold verdict (aidsafe.guard.policy_rows)
    gold_field: str | None = None


def merge(inputs: list[Path], output: Path) -> tuple[MergeResult, dict[str, Any]]:
    """Combine shard runs of one generation recipe into `output`; stats.json is recomputed from
    the merged records (the inputs are the shards' together)."""
    result = merge_runs(inputs, output)
    shard_stats = [_read_stats(Path(path)) for path in inputs]
    stats = write_corpus_stats(
        RunDirectory(Path(output)),
        inputs=sum(int(s.get("inputs", 0)) for s in shard_stats),
        repeated_inputs=sum(int(s.get("repeated_inputs_skipped", 0)) for s in shard_stats),
        teacher=TeacherStats(),
        wall_s=0.0,
    )
    return result, stats


def _read_stats(run_dir: Path) -> dict[str, Any]:
    try:
        stats = json.loads((run_dir / "stats.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise AidsafeError(f"{run_dir / 'stats.json'}: missing or not JSON; is {run_dir} a finished run?") from None
    return stats if isinstance(stats, dict) else {}


def generate(request: GenerateRequest, env: Mapping[str, str], teacher: Teacher | None = None) -> dict[str, Any]:
    """Generate a corpus; returns the stats written to stats.json."""
    return run_async(generate_async(request, env, teacher))


async def generate_async(
    request: GenerateRequest, env: Mapping[str, str], teacher: Teacher | None = None
) -> dict[str, Any]:
    # Everything that can be wrong with the input is found here, before any teacher call.
    pipeline = load_pipeline(request.recipe, request.recipe_overrides())
    prompts, repeats = read_prompts(request.input, request.prompt_field)
    if request.limit is not None:
        prompts = prompts[: request.limit]
    shard = parse_shard(request.shard) if request.shard else None
    if shard is not None:
        prompts = list(shard.select(prompts, key=lambda prompt: prompt.id))
    run_dir = RunDirectory(Path(request.output))
    check_shard(run_dir.path, shard)
    corpus = corpus_counts(run_dir, len(prompts), repeats)

    def counts(previous: dict[str, Any] | None) -> StageCounts:
        record_shard(run_dir.path, shard)  # with the journal: a rerun with another shard is refused
        return corpus(previous)

    recipe = pipeline.recipe
    _, stats = await run_stage(
        lambda client, owns: GenerationTask(pipeline, client, check_endpoints=owns),
        prompts,
        RecipeJournal(run_dir, pipeline.recipe_hash, pipeline.resolved_recipe(), pipeline.recipe.kind),
        settings=recipe.teacher, seed=recipe.seed, env=env, teacher=teacher, workers=2 * recipe.teacher.most_in_flight,
        counts=counts, retry_rejected=request.retry_rejected, progress=request.progress,
    )  # fmt: skip
    return stats


class GenerationTask(Task[Prompt]):
    """One prompt through the AIDSAFE graph, resumable at every node boundary."""

    noun = "samples"
    stage = "decompose"
    checkpointed = True

    def __init__(self, pipeline: Pipeline, teacher: Teacher, check_endpoints: bool = True) -> None:
        self.pipeline = pipeline
        self.teacher = teacher
        self.check_endpoints = check_endpoints
        self.graph: Any = None
        self.deps: GraphDeps | None = None

    def key(self, prompt: Prompt) -> str:
        return prompt.id

    def digest(self, prompt: Prompt) -> str:
        return input_digest(prompt.prompt)

    def describe(self, prompt: Prompt) -> dict[str, Any]:
        return {"prompt": prompt.prompt}

    async def preflight(self) -> None:
        if self.check_endpoints:
            for endpoint in self.pipeline.endpoints:
                await self.teacher.check_reachable(endpoint)

    async def start(self, ctx: RunContext) -> None:
        recipe = self.pipeline.recipe
        dedup = None
        if recipe.dedup.enabled and self.pipeline.agents.get("refiner"):  # dedup runs only before a refiner
            from aidsafe.generation.dedup import ThoughtDeduplicator

            dedup = ThoughtDeduplicator(recipe.dedup.model, recipe.dedup.threshold, recipe.dedup.device)
            ctx.background(_warm_up(dedup, recipe.dedup.model, ctx))  # while the first calls are out
        self.deps = GraphDeps.from_pipeline(self.pipeline, self.teacher, dedup)  # the graph's context
        roles = [role for role, agents in self.pipeline.agents.items() if agents]
        self.graph = build_graph(dedup=dedup is not None, checkpointer=ctx.checkpointer, roles=roles)

    async def run(self, prompt: Prompt, ctx: RunContext) -> dict[str, Any]:
        start = {"id": prompt.id, "prompt": prompt.prompt}
        try:
            state = await run_thread(self.graph, ctx, prompt.id, start, context=self.deps,
                                     same_input=lambda values: values.get("prompt") == prompt.prompt,
                                     every=self.pipeline.recipe.teacher.checkpoint)  # fmt: skip
        except (asyncio.CancelledError, RunSetupError):
            raise
        except Exception as exc:
            raise rejection_for(await failed_node(self.graph, ctx, prompt.id, self.stage), exc) from exc
        return sample_record(state, self.pipeline.recipe_hash, self.pipeline.policies)


async def _warm_up(dedup: Any, model: str, ctx: RunContext) -> None:
    ctx.note(f"loading the embedding model {model} (dedup)")
    try:
        await asyncio.to_thread(dedup.warm_up)
    finally:
        ctx.note("")
