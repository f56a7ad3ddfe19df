"""What a stage does to one item: the `Task` the executor runs, and the `Rejection` it may raise.

A task is four things: a stable key per item (the sample id; also the LangGraph thread id), a
digest of the item's content (so a rerun notices a changed input under an existing key), an
`async run(item, ctx)` that returns the record to journal or raises `Rejection`, and the words
the run speaks in (`noun` for the progress line, `stage` for rejections that name no stage).
Everything else (workers, the journal, resume, checkpoints, progress, the circuit breaker) is the
executor's; see `aidsafe.run.executor`.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from aidsafe.teacher.types import InvalidOutputError, TeacherError
from aidsafe.teacher.wire import hide_credentials

__all__ = ["SETUP_FAILURES", "Item", "Rejection", "RunContext", "Task", "describe_exception", "rejection_for"]

Item = TypeVar("Item")

# The rejection reasons that can mean the run's setup is broken rather than that one item came
# out badly: the teacher refusing requests (a wrong model, URL, key or request field: reason
# `teacher_error`), replies that do not parse or fit the schema (`invalid_output`, a wrong
# structured-output mode or a model that cannot follow it; `malformed_reply`), and exceptions in
# aidsafe or an agent (`error`). Any other reason is a verdict on the item's content (the judge
# never separated a pair, a trace disagreed with its gold label): it shows the setup works.
# `rejection_for` is the one place a failed teacher call becomes one of these reasons.
SETUP_FAILURES = frozenset({"teacher_error", "teacher_unavailable", "invalid_output", "malformed_reply", "error"})


class Rejection(Exception):
    """This item cannot be finished now: written to the rejections with its stage and reason.

    `transient` says a rerun may succeed without any change (the teacher was down, a timeout);
    such items are retried on the next run. Anything else stays rejected until `--retry-rejected`.
    """

    def __init__(self, stage: str, reason: str, error: str, transient: bool = False) -> None:
        super().__init__(f"{stage}: {reason}: {error}")
        self.stage = stage
        self.reason = reason
        # One line (it is shown and compared as one), without a URL's password (it is stored).
        self.error = hide_credentials(" ".join(error.split()))
        self.transient = transient

    @property
    def signals_setup(self) -> bool:
        """Whether this failure can come from a broken setup (`SETUP_FAILURES`), not the content."""
        return self.reason in SETUP_FAILURES


@dataclass
class RunContext:
    """What the executor lends a task: the LangGraph checkpointer (for `checkpointed` tasks),
    a status note on the progress line, and background work that must not outlive the run."""

    checkpointer: Any = None
    note: Callable[[str], None] = lambda text: None
    _background: list[Coroutine[Any, Any, Any]] = field(default_factory=list, repr=False)

    def background(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run `work` beside the items (e.g. loading a model); if it raises, the run stops."""
        self._background.append(work)

    @staticmethod
    def thread(key: str) -> dict[str, Any]:
        """The LangGraph config of one item's checkpointed thread."""
        return {"configurable": {"thread_id": key}}


class Task(Generic[Item]):
    """Subclass and fill in `key`, `run` (and `digest`, unless the key already says it all)."""

    noun: str = "items"  # what the progress line counts: "samples", "rows"
    stage: str = "run"  # the stage named by rejections for unexpected exceptions
    checkpointed: bool = False  # True: ctx.checkpointer is a LangGraph AsyncSqliteSaver
    # Rejection reasons that judge the item's content, not the run (pairs' `no_separation`): a run
    # that reached one did its work even if it finished nothing (aidsafe.run.stage).
    verdicts: frozenset[str] = frozenset()

    def key(self, item: Item) -> str:
        raise NotImplementedError

    def digest(self, item: Item) -> str:
        """A digest of what the record is made from; "" when there is nothing to compare."""
        return ""

    def describe(self, item: Item) -> dict[str, Any]:
        """Fields copied into this item's rejection line (e.g. the prompt), after its id."""
        return {}

    async def preflight(self) -> None:
        """Check, before anything is written, that the run can work at all (endpoint, model)."""

    async def start(self, ctx: RunContext) -> None:
        """Once, after the pre-flight and before the first item (compile a graph, warm a model)."""

    async def run(self, item: Item, ctx: RunContext) -> dict[str, Any]:
        """The record of one finished item, or raise `Rejection`."""
        raise NotImplementedError


def describe_exception(exc: BaseException) -> str:
    """`Type: message at file.py:line`, one line: enough to report a bug in an agent or aidsafe."""
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


def rejection_for(stage: str, exc: Exception, error: str | None = None) -> Rejection:
    """The rejection of an item whose call to a model failed, the same for every stage, so that
    the circuit breaker counts it: `invalid_output` (replies never fitted the schema),
    `teacher_unavailable` (transport failures outlasted the retries: transient) or `teacher_error`
    (the server refused the request), and `error` for anything else (a bug, kept with its source
    line). `stage` names who failed (`decompose`, `student`, `safety_judge`): the model called is
    not always the teacher, the reason's vocabulary is still one. `error`: the text to keep, when
    the stage words it better than the exception (one line either way)."""
    if isinstance(exc, InvalidOutputError):
        reason = "invalid_output"
    elif isinstance(exc, TeacherError):
        reason = "teacher_unavailable" if exc.transient else "teacher_error"
    else:
        reason = "error"
    if error is None:
        error = str(exc) if isinstance(exc, TeacherError) else describe_exception(exc)
    return Rejection(stage, reason, error, transient=bool(getattr(exc, "transient", False)))
