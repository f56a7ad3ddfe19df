"""`aidsafe pairs`: the pair graph as a `Task` on the executor (aidsafe.run.executor).

Items are the finished samples of a generation run (the chosen sides; nothing is regenerated).
One sample is one checkpointed LangGraph thread (`teacher.checkpoint`: stored once per sample or
after every step, aidsafe.run.checkpoints); its record is written only when the graph
reached END (as in aidsafe.generation.runner). A sample whose beliefs never made the judge
separate the sides is rejected with reason `no_separation`; its rejection line carries every
attempt's scores (`attempts`), so stats.json counts them too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aidsafe.errors import AidsafeError, RunSetupError
from aidsafe.pairs.graph import PairDeps, build_pairs_graph
from aidsafe.pairs.recipe import PairPipeline, load_pairs_pipeline
from aidsafe.pairs.records import Chosen, attempt_scores, pair_counts, pair_record, read_chosen
from aidsafe.run.checkpoints import failed_node, run_thread
from aidsafe.run.executor import NothingFinished, RecipeJournal
from aidsafe.run.journal import RunDirectory
from aidsafe.run.loop import run_async
from aidsafe.run.stage import StageRequest, run_stage
from aidsafe.run.task import Rejection, RunContext, Task, rejection_for
from aidsafe.teacher.types import Teacher

__all__ = ["PairsRequest", "PairsTask", "NothingFinished", "make_pairs", "make_pairs_async"]


@dataclass
class PairsRequest(StageRequest):
    """`aidsafe pairs make`: `input` is a generation run directory."""


def make_pairs(request: PairsRequest, env: Mapping[str, str], teacher: Teacher | None = None) -> dict[str, Any]:
    """Build preference pairs from a generation run; returns the stats written to stats.json."""
    return run_async(make_pairs_async(request, env, teacher))


async def make_pairs_async(
    request: PairsRequest, env: Mapping[str, str], teacher: Teacher | None = None
) -> dict[str, Any]:
    pipeline = load_pairs_pipeline(request.recipe, request.recipe_overrides())
    if Path(request.input).resolve() == Path(request.output).resolve():
        raise AidsafeError(f"--output {request.output}: is the input run; write the pairs into another directory")
    chosen = read_chosen(request.input, pipeline.policies.id)
    if request.limit is not None:
        chosen = chosen[: request.limit]
    run_dir, recipe = RunDirectory(Path(request.output)), pipeline.recipe
    _, stats = await run_stage(
        lambda client, owns: PairsTask(pipeline, client, check_endpoints=owns),
        chosen,
        RecipeJournal(run_dir, pipeline.recipe_hash, pipeline.resolved_recipe(), pipeline.recipe.kind),
        settings=recipe.teacher, seed=recipe.seed, env=env, teacher=teacher, workers=2 * recipe.teacher.most_in_flight,
        counts=lambda _: pair_counts(run_dir, len(chosen)), noun="sample",
        retry_rejected=request.retry_rejected, progress=request.progress,
    )  # fmt: skip
    return stats


class PairsTask(Task[Chosen]):
    """One chosen sample through whisper -> rejected CoT -> judge, looped; resumable at every node."""

    noun = "pairs"
    stage = "whisper"
    checkpointed = True
    # A judge that never separated the sides judged the content: the run did its work.
    verdicts = frozenset({"no_separation"})

    def __init__(self, pipeline: PairPipeline, teacher: Teacher, check_endpoints: bool = True) -> None:
        self.pipeline = pipeline
        self.teacher = teacher
        self.check_endpoints = check_endpoints
        self.graph: Any = None
        self.deps: PairDeps | None = None
        self._attempts: dict[str, list[dict]] = {}  # no_separation attempts, until their rejection line is written

    def key(self, item: Chosen) -> str:
        return item.id

    def digest(self, item: Chosen) -> str:
        return item.digest()

    def describe(self, item: Chosen) -> dict[str, Any]:
        found = self._attempts.pop(item.id, None)
        return {"prompt": item.prompt, **({"attempts": found} if found is not None else {})}

    async def preflight(self) -> None:
        if self.check_endpoints:
            guard = self.pipeline.guard_endpoint
            for endpoint in self.pipeline.endpoints:  # a guard judge only completes raw text
                await self.teacher.check_reachable(endpoint, structured=endpoint != guard)

    async def start(self, ctx: RunContext) -> None:
        recipe = self.pipeline.recipe
        self.deps = PairDeps(self.pipeline.agents, self.pipeline.policies, self.teacher, recipe.pairs.margin,
                             recipe.pairs.max_iterations, recipe.seed, recipe.min_text_chars)  # fmt: skip
        self.graph = build_pairs_graph(checkpointer=ctx.checkpointer)

    async def run(self, item: Chosen, ctx: RunContext) -> dict[str, Any]:
        start = item.start_state()
        try:
            state = await run_thread(self.graph, ctx, item.id, start, context=self.deps,
                                     same_input=lambda values: values.get("chosen") == start["chosen"],
                                     every=self.pipeline.recipe.teacher.checkpoint)  # fmt: skip
        except (asyncio.CancelledError, RunSetupError):
            raise
        except Exception as exc:
            raise rejection_for(await failed_node(self.graph, ctx, item.id, self.stage), exc) from exc
        attempts = state.get("attempts", [])
        if not attempts or not attempts[-1]["separated"]:
            self._attempts[item.id] = attempt_scores(attempts)
            raise Rejection("judge", "no_separation", _no_separation(attempts))
        judge = self.pipeline.agents["judge"]
        settings = self.pipeline.recipe.pairs
        about = {"kind": settings.judge, "agent": judge.name, "model": judge.endpoint.model}
        if settings.guard_judge is not None:
            about["format"] = settings.guard_judge.format
        return pair_record(state, item, self.pipeline.recipe_hash, self.pipeline.policies, about)


def _no_separation(attempts: list[dict]) -> str:
    """One line with every attempt's verdicts: faithfulness chosen/rejected and who violated."""

    guard = bool(attempts) and "p_unsafe" in attempts[0]["chosen"]

    def mark(side: dict) -> str:
        score = f"{side['p_unsafe']:.2f}" if guard else str(side["faithfulness"])
        return f"{score}{'!' if side['violates'] else ''}"

    scale = "P(unsafe)" if guard else "faithfulness"
    shown = ", ".join(f"#{a['iteration']} {mark(a['chosen'])}/{mark(a['rejected'])}" for a in attempts)
    return (f"no belief separated the sides in {len(attempts)} iterations ({scale} chosen/rejected, "
            f"! = judged violating: {shown})")  # fmt: skip
