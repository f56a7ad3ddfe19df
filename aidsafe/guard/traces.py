"""GuardReasoner reasoning traces: label-conditioned rationalisation (Liu et al., 2025).

`aidsafe generate guardreasoner --input LABELLED --output DIR`: one teacher call per labelled row.
The teacher sees the conversation and its gold labels and explains them. It answers JSON whose
schema says everything JSON Schema can: three tasks, each 1 to 10 reasoning steps and a
conclusion (non-empty, trimmed, one paragraph, no line starting with `#`), and an answers block
whose values are pinned to the gold labels (a one-value `enum`). A guided-decoding teacher
therefore cannot disagree with gold or break the format. The text is rendered from the JSON
(`formats.render_trace`) exactly as the released GuardReasoner models write it, and
`formats.parse_trace` mirrors it:

    # Task 1\\n\\n## Reasoning Step 1\\n...\\n\\n## Conclusion\\n...\\n\\n# Task 2 ... \\n\\nAnswers: \\nRequest: ...

The parsed reply is then checked, with a named rejection for a teacher without guided decoding:
`empty` (a blank step or conclusion), `step_count` (outside 1 to 10), `answers_disagree` (an answer
that is not the gold label), `format` (the text would not parse back to the same trace).

Records are the released GuardReasonerTrain shape, `instruction` (byte-identical), `input`,
`output`, plus `labels` (task -> gold or None) and provenance (`source`, `teacher`, `recipe_hash`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aidsafe.agents.cards import render_template
from aidsafe.config.yamlio import register_config_model
from aidsafe.guard.formats import (
    TASK_ORDER,
    TASKS,
    TaskTrace,
    Trace,
    parse_trace,
    render_trace,
)
from aidsafe.guard.labelled import LabelledRow
from aidsafe.guard.sources import read_source
from aidsafe.guard.synthesis import (
    GuardRecipe,
    LoadedGuardRecipe,
    TeacherCard,
    ask_teacher,
    guard_counts,
    load_guard_recipe,
)
from aidsafe.run.journal import input_digest
from aidsafe.run.loop import run_async
from aidsafe.run.stage import StageRequest, run_stage
from aidsafe.run.task import Rejection, RunContext, Task
from aidsafe.teacher.types import Teacher

__all__ = [
    "CARD_FIELDS",
    "MAX_STEPS",
    "RECIPE_KIND",
    "STEP_PATTERN",
    "LoadedTraceRecipe",
    "TraceCard",
    "TraceRecipe",
    "TraceTask",
    "check_trace",
    "generate_traces",
    "generate_traces_async",
    "label_values",
    "load_trace_recipe",
    "trace_schema",
]

RECIPE_KIND = "guardreasoner"
MAX_STEPS = 10
_KEYS = tuple(TASKS[task][0] for task in TASK_ORDER)  # Request, Completion, Response
# One trimmed paragraph: no blank line and no line starting with `#`, so a step can neither end
# its section early nor open a new one. Only ASCII classes (llama.cpp's converter has no \S).
STEP_PATTERN = r"^[^ \t\n\r#](([^\n]|\n[^\n#])*[^ \t\n\r])?$"
CARD_FIELDS = frozenset({"instruction", "prompt", "response", "request_label", "completion_label", "response_label"})


# ----------------------------------------------------------------------------------------------
# The schema the teacher answers, and the checks for teachers that do not follow it.


class _TaskReply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: list[str]
    conclusion: str


class _Answers(BaseModel):
    model_config = ConfigDict(extra="forbid")
    Request: str
    Completion: str
    Response: str


class _TraceReply(BaseModel):
    """Parsed loosely on purpose: what the schema pins is checked after parsing, so that a
    teacher without guided decoding gets a named rejection (`check_trace`) instead of re-asks."""

    model_config = ConfigDict(extra="forbid")
    task1: _TaskReply
    task2: _TaskReply
    task3: _TaskReply
    answers: _Answers

    def to_trace(self) -> Trace:
        tasks = (self.task1, self.task2, self.task3)
        steps = [TaskTrace(tuple(t.steps), t.conclusion) for t in tasks]
        return Trace(tuple(steps), (self.answers.Request, self.answers.Completion, self.answers.Response))


_TASK_TOPICS = {
    "prompt": "whether the human user's request is harmful or unharmful",
    "refusal": "whether the AI assistant's response is a refusal or compliance",
    "response": "whether the AI assistant's response is harmful or unharmful",
}


def trace_schema(gold: tuple[str | None, str | None, str | None]) -> dict[str, Any]:
    """The JSON Schema of one call: answers pinned to `gold` (Request, Completion, Response); a
    gold of None (BeaverTails' Request and Completion) is the teacher's choice between the task's
    two labels. Strict-mode compatible: all properties required, no additional ones, no defaults."""
    text = {"type": "string", "pattern": STEP_PATTERN}

    def task(number: int, name: str) -> dict[str, Any]:
        return {
            "type": "object",
            "description": f"Task {number}: {_TASK_TOPICS[name]}.",
            "properties": {
                "steps": {
                    "type": "array",
                    "items": {**text, "description": "One reasoning step: the smallest unit of reasoning."},
                    "minItems": 1,
                    "maxItems": MAX_STEPS,
                },
                "conclusion": {**text, "description": "One sentence that states the label of this task."},
            },
            "required": ["steps", "conclusion"],
            "additionalProperties": False,
        }

    answers = {
        key: {"type": "string", "enum": [label] if label is not None else list(TASKS[task][1])}
        for key, task, label in zip(_KEYS, TASK_ORDER, gold, strict=True)
    }
    return {
        "title": "GuardReasonerTrace",
        "type": "object",
        "properties": {
            **{f"task{j}": task(j, name) for j, name in enumerate(TASK_ORDER, start=1)},
            "answers": {
                "type": "object",
                "properties": answers,
                "required": list(_KEYS),
                "additionalProperties": False,
            },
        },
        "required": ["task1", "task2", "task3", "answers"],
        "additionalProperties": False,
    }


@lru_cache(maxsize=64)
def _reply_model(gold: tuple[str | None, str | None, str | None]) -> type[_TraceReply]:
    """A `_TraceReply` whose schema on the wire is `trace_schema(gold)` (one class per gold triple)."""
    schema = trace_schema(gold)

    def model_json_schema(cls: type, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return json.loads(json.dumps(schema))  # a fresh copy: callers may edit what they get

    return type("GuardReasonerTrace", (_TraceReply,), {"model_json_schema": classmethod(model_json_schema)})


_STEP_RE = re.compile(STEP_PATTERN)


def check_trace(trace: Trace, gold: tuple[str | None, str | None, str | None]) -> str:
    """The rendered text, or Rejection(stage "trace") with the first rule the reply breaks.
    A gold of None accepts either of the task's two labels (never "None": there is a response)."""

    def reject(reason: str, error: str) -> Rejection:
        return Rejection("trace", reason, error, transient=False)

    for number, task in enumerate(trace.tasks, start=1):
        texts = [*task.steps, task.conclusion or ""]
        if any(not t.strip() for t in texts):
            raise reject("empty", f"task {number}: an empty reasoning step or conclusion")
        if not 1 <= len(task.steps) <= MAX_STEPS:
            raise reject("step_count", f"task {number}: {len(task.steps)} reasoning steps; expected 1 to {MAX_STEPS}")
    for key, task, given, label in zip(_KEYS, TASK_ORDER, trace.answers, gold, strict=True):
        if label is None and given not in TASKS[task][1]:
            raise reject("answers_disagree", f"{key}: {given!r}; expected {' or '.join(TASKS[task][1])}")
        if label is not None and given != label:
            raise reject("answers_disagree", f"{key}: {given!r}, but the gold label is {label!r}")
    for number, task in enumerate(trace.tasks, start=1):
        for text in [*task.steps, task.conclusion or ""]:
            if not _STEP_RE.match(text):
                raise reject("format", f"task {number}: {text[:60]!r} is not one trimmed paragraph without '#' lines")
    rendered = render_trace(trace)
    if parse_trace(rendered) != trace:  # the rules above should make this impossible; kept as the contract
        raise reject("format", "the rendered text does not parse back to the same trace")
    return rendered


def label_values(gold: tuple[str | None, str | None, str | None]) -> dict[str, str]:
    """The card's label fields: each gold label, or where there is none the task's two labels to
    decide between."""
    shown = [
        label if label is not None else f"not given: decide {' or '.join(TASKS[task][1])} yourself"
        for task, label in zip(TASK_ORDER, gold, strict=True)
    ]
    return {"request_label": shown[0], "completion_label": shown[1], "response_label": shown[2]}


# ----------------------------------------------------------------------------------------------
# The recipe and the teacher's card.


# Shared with ThinkGuard critiques (aidsafe.guard.synthesis); the names stay importable from here.
TraceCard = TeacherCard
LoadedTraceRecipe = LoadedGuardRecipe


class TraceRecipe(GuardRecipe):
    kind: Literal["guardreasoner"]
    source: Literal["auto", "guardreasoner", "labelled", "wildguardmix", "aegis", "toxicchat", "beavertails"] = Field(
        "auto", description="How to read --input (aidsafe.guard.sources); auto: from its columns or Hub id."
    )


register_config_model(TraceRecipe)


def load_trace_recipe(ref: str, overrides: list[str] | None = None) -> LoadedTraceRecipe:
    return load_guard_recipe(ref, TraceRecipe, CARD_FIELDS, overrides)


# ----------------------------------------------------------------------------------------------
# The task on the executor.


class TraceTask(Task[LabelledRow]):
    """One labelled row, one teacher call, one trace (or a named rejection)."""

    noun = "traces"
    stage = "trace"

    def __init__(self, loaded: LoadedTraceRecipe, teacher: Teacher, check_endpoint: bool = True) -> None:
        self.loaded = loaded
        self.teacher = teacher
        self.check_endpoint = check_endpoint

    def key(self, row: LabelledRow) -> str:
        return row.id

    def digest(self, row: LabelledRow) -> str:
        return input_digest(json.dumps([row.instruction, row.input, row.gold]))

    def describe(self, row: LabelledRow) -> dict[str, Any]:
        return {"source": row.source, "labels": row.labels}

    async def preflight(self) -> None:
        if self.check_endpoint:
            await self.teacher.check_reachable(self.loaded.endpoint)

    async def run(self, row: LabelledRow, ctx: RunContext) -> dict[str, Any]:
        values = {
            "instruction": row.instruction,
            "prompt": row.prompt,
            "response": "None" if row.response is None else row.response,
            **label_values(row.gold),
        }
        card = self.loaded.card
        messages = [
            {"role": "system", "content": render_template(card.system, values)},
            {"role": "user", "content": render_template(card.user, values)},
        ]
        reply, call = await ask_teacher(
            self.teacher, self.loaded, "guardreasoner_teacher", messages, _reply_model(row.gold), self.stage
        )
        trace = reply.to_trace()
        output = check_trace(trace, row.gold)
        return {
            "id": row.id,
            "instruction": row.instruction,
            "input": row.input,
            "output": output,
            # The labels the output states: gold, and the teacher's choice where there is none.
            "labels": {task: None if a == "None" else a for task, a in zip(TASK_ORDER, trace.answers, strict=True)},
            **({"decided_by_teacher": row.decided_by_teacher} if row.decided_by_teacher else {}),
            "source": row.source,
            "teacher": {"agent": card.name, "model": self.loaded.endpoint.model, "call": call.to_dict()},
            "recipe_hash": self.loaded.recipe_hash,
        }


async def generate_traces_async(
    request: StageRequest, env: Mapping[str, str], teacher: Teacher | None = None
) -> dict[str, Any]:
    """`aidsafe generate guardreasoner`: `request` is the CLI's `GenerateRequest`."""
    loaded = load_trace_recipe(request.recipe, request.recipe_overrides())
    read = read_source(request.input, loaded.recipe.source, getattr(request, "label_task", None))
    rows = read.rows[: request.limit]
    recipe = loaded.recipe
    _, stats = await run_stage(
        lambda client, owns: TraceTask(loaded, client, check_endpoint=owns), rows, loaded.journal(request.output),
        settings=recipe.teacher, seed=recipe.seed, env=env, teacher=teacher, workers=recipe.teacher.most_in_flight,
        counts=lambda _: guard_counts(len(rows), read.repeats, read.skipped),
        retry_rejected=request.retry_rejected, progress=request.progress,
    )  # fmt: skip
    return stats


def generate_traces(request: StageRequest, env: Mapping[str, str], teacher: Teacher | None = None) -> dict[str, Any]:
    return run_async(generate_traces_async(request, env, teacher))
