"""How often a checkpointed task stores its LangGraph thread, and one item's thread run to END.

`teacher.checkpoint` (a recipe key, shared by generation and pairs) picks one of two modes:

- `sample` (default): the thread is stored when the graph exits: at END, on an exception (a
  transient teacher failure included) and on cancellation (Ctrl-C). LangGraph's
  `durability="exit"`. One checkpoint per sample instead of one per step plus one write per
  task: storing every step was about a fifth of the client's CPU per call (docs/performance.md,
  **Checkpoints.**). A hard kill (kill -9, OOM, a lost node) stores
  nothing for the samples in flight: on resume they start over, so their finished calls are
  made again; nothing is duplicated or lost, since only the journal says what is finished.
- `step`: stored after every step before the next starts (`durability="sync"`); a hard kill
  costs at most the calls in flight. For a teacher whose calls cost money or minutes.

`durability="async"` is not offered: it writes as much as `sync` (measured no cheaper) and only
moves the writes beside the next step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from aidsafe.run.task import RunContext

__all__ = ["CheckpointEvery", "durability", "failed_node", "run_thread"]

CheckpointEvery = Literal["step", "sample"]

_DURABILITY: dict[str, str] = {"step": "sync", "sample": "exit"}


def durability(every: CheckpointEvery) -> str:
    """LangGraph's `durability` for a `teacher.checkpoint` mode."""
    return _DURABILITY[every]


async def run_thread(
    graph: Any,
    ctx: RunContext,
    key: str,
    start: dict[str, Any],
    *,
    same_input: Callable[[dict[str, Any]], bool],
    context: Any,
    every: CheckpointEvery,
) -> dict[str, Any]:
    """The END state of item `key`'s thread: resumed from its checkpoint when one is stored,
    else run from `start`.

    A stored thread whose values fail `same_input` belongs to an earlier input under this key and
    is dropped. A stored END state (a kill came between END and the journal line) is returned
    without running anything. A snapshot with an empty `next` but a task left is a step whose
    writes were stored before its checkpoint: it is resumed, never returned.
    """
    config = ctx.thread(key)
    snapshot = await graph.aget_state(config)
    if snapshot.values and not same_input(snapshot.values):
        await ctx.checkpointer.adelete_thread(key)
        snapshot = await graph.aget_state(config)
    if snapshot.values and not snapshot.next and not snapshot.tasks:
        return snapshot.values
    resume = None if snapshot.values else start
    return await graph.ainvoke(resume, config, context=context, durability=durability(every))


async def failed_node(graph: Any, ctx: RunContext, key: str, default: str) -> str:
    """The node a failed thread stopped at (what its rejection names), or `default`."""
    snapshot = await graph.aget_state(ctx.thread(key))
    names = snapshot.next or tuple(task.name for task in snapshot.tasks)
    return names[0] if names else default
