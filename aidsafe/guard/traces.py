"""GuardReasoner reasoning traces: label-conditioned rationalisation (methods.md section 2).

`aidsafe generate guardreasoner --input LABELLED --output DIR`: one teacher call per labelled row.
The teacher sees the conversation and its gold labels and explains them. It answers JSON whose
schema says everything JSON Schema can: three tasks, each 1 to 10 reasoning steps and a
conclusion (non-empty, trimmed, one paragraph, no line starting with `#`), and an answers block
whose values are pinned to the gold labels (a one-value `enum`). A guided-decoding teacher
therefore cannot disagree with gold or break the format. The text is rendered from the JSON
(`render_trace`) exactly as the released GuardReasoner models write it, and `parse_trace`
mirrors it:

    # Task 1\\n\\n## Reasoning Step 1\\n...\\n\\n## Conclusion\\n...\\n\\n# Task 2 ... \\n\\nAnswers: \\nRequest: ...

The parsed reply is then checked, with a named rejection for a teacher without guided decoding:
`empty` (a blank step or conclusion), `step_count` (outside 1 to 10), `answers_disagree` (an answer
that is not the gold label), `format` (the text would not parse back to the same trace).

Records are the released GuardReasonerTrain shape, `instruction` (byte-identical), `input`,
`output`, plus `labels` (task -> gold or None) and provenance (`source`, `teacher`, `recipe_hash`).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aidsafe.config.resources import resolve_resource
from aidsafe.config.yamlio import load_yaml, register_config_model, validate_model
from aidsafe.errors import AidsafeError
from aidsafe.generation.cards import render_template, template_fields
from aidsafe.generation.recipe import _NON_SEMANTIC_TEACHER, TeacherSettings
from aidsafe.guard.formats import GUARDREASONER_INSTRUCTION, TASKS, guardreasoner_input, parse_gold
from aidsafe.run.executor import RecipeJournal, check_something_finished, execute
from aidsafe.run.journal import RunDirectory, input_digest
from aidsafe.run.jsonl import write_atomic
from aidsafe.run.task import Rejection, RunContext, Task
from aidsafe.teacher.types import Endpoint, InvalidOutputError, Teacher, TeacherError

__all__ = [
    "CARD_FIELDS",
    "MAX_STEPS",
    "RECIPE_KIND",
    "STEP_PATTERN",
    "TASK_ORDER",
    "LabelledRow",
    "LoadedTraceRecipe",
    "TaskTrace",
    "Trace",
    "TraceCard",
    "TraceRecipe",
    "TraceTask",
    "check_trace",
    "generate_traces",
    "generate_traces_async",
    "is_trace_recipe",
    "load_trace_recipe",
    "parse_trace",
    "read_labelled",
    "render_trace",
    "trace_schema",
]

RECIPE_KIND = "guardreasoner"
MAX_STEPS = 10
# Task j of the instruction: 1 Request (prompt), 2 Completion (refusal), 3 Response.
TASK_ORDER = ("prompt", "refusal", "response")
_KEYS = tuple(TASKS[task][0] for task in TASK_ORDER)  # Request, Completion, Response
# One trimmed paragraph: no blank line and no line starting with `#`, so a step can neither end
# its section early nor open a new one. Only ASCII classes (llama.cpp's converter has no \S).
STEP_PATTERN = r"^[^ \t\n\r#](([^\n]|\n[^\n#])*[^ \t\n\r])?$"
CARD_FIELDS = frozenset({"instruction", "prompt", "response", "request_label", "completion_label", "response_label"})


# ----------------------------------------------------------------------------------------------
# The text: render and parse, mirrors of each other.


@dataclass(frozen=True)
class TaskTrace:
    steps: tuple[str, ...]
    conclusion: str | None  # the released models usually, not always, write one


@dataclass(frozen=True)
class Trace:
    tasks: tuple[TaskTrace, ...]
    answers: tuple[str, str, str]  # Request, Completion, Response: a label or "None"
    # The released data writes two styles; we render the first (the most common in the released
    # 3B and 8B outputs) and parse both, so a parsed released trace renders back byte for byte:
    # `## Reasoning Step 1\n<text>` with no rule, or `## Reasoning Step 1: <text>` with a `---`
    # line before the answers.
    header: str = "\n"  # between a section's heading and its text: "\n" or ": "
    rule: bool = False  # a `---` line before the answer block


def render_trace(trace: Trace) -> str:
    """The GuardReasoner output text, as the released models write it (no trailing newline)."""
    sections = []
    for number, task in enumerate(trace.tasks, start=1):
        parts = [f"# Task {number}"]
        parts += [f"## Reasoning Step {i}{trace.header}{step}" for i, step in enumerate(task.steps, start=1)]
        if task.conclusion is not None:
            parts.append(f"## Conclusion{trace.header}{task.conclusion}")
        sections.append("\n\n".join(parts))
    request, completion, response = trace.answers
    block = f"Answers: \nRequest: {request}\nCompletion: {completion}\nResponse: {response}"
    return "\n\n".join([*sections, *(["---"] if trace.rule else []), block])


_ANSWERS = re.compile(r"\n\n(---\n\n)?Answers: \nRequest: (\w+)\nCompletion: (\w+)\nResponse: (\w+)\Z")
_TASK_SPLIT = re.compile(r"\n\n(?=# Task \d+\n\n)")
_SECTION_SPLIT = re.compile(r"\n\n(?=## (?:Reasoning Step \d+|Conclusion)(?:\n|: ))")
_TASK_HEAD = re.compile(r"\A# Task (\d+)\Z")
_SECTION_HEAD = re.compile(r"\A## (?:Reasoning Step (\d+)|Conclusion)(\n|: )")


def parse_trace(text: str) -> Trace:
    """The trace `render_trace` made `text` from; ValueError naming what does not fit."""
    answers = _ANSWERS.search(text)
    if answers is None:
        raise ValueError("no answer block (Answers: / Request: / Completion: / Response:) at the end")
    body = text[: answers.start()]
    if not body.startswith("# Task 1\n\n"):
        raise ValueError("does not start with '# Task 1'")
    tasks, headers = [], set()
    for number, chunk in enumerate(_TASK_SPLIT.split(body), start=1):
        head, *sections = _SECTION_SPLIT.split(chunk)
        if not (found := _TASK_HEAD.match(head)) or int(found[1]) != number:
            raise ValueError(f"task {number}: expected a '# Task {number}' header line")
        steps, conclusion = [], None
        for section in sections:
            match = _SECTION_HEAD.match(section)
            if match is None or conclusion is not None:
                raise ValueError(f"task {number}: a section after the conclusion")
            headers.add(match[2])
            if match[1] is None:
                conclusion = section[match.end() :]
            elif int(match[1]) == len(steps) + 1:
                steps.append(section[match.end() :])
            else:
                raise ValueError(f"task {number}: reasoning steps out of order")
        tasks.append(TaskTrace(tuple(steps), conclusion))
    if len(headers) > 1:
        raise ValueError("sections mix the two heading styles ('\\n' and ': ')")
    header = headers.pop() if headers else "\n"
    return Trace(tuple(tasks), (answers[2], answers[3], answers[4]), header, answers[1] is not None)


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


def trace_schema(gold: tuple[str, str, str]) -> dict[str, Any]:
    """The JSON Schema of one call: answers pinned to `gold` (Request, Completion, Response).
    Strict-mode compatible: all properties required, no additional ones, no defaults."""
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

    answers = {key: {"type": "string", "enum": [label]} for key, label in zip(_KEYS, gold, strict=True)}
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
def _reply_model(gold: tuple[str, str, str]) -> type[_TraceReply]:
    """A `_TraceReply` whose schema on the wire is `trace_schema(gold)` (one class per gold triple)."""
    schema = trace_schema(gold)

    def model_json_schema(cls: type, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return json.loads(json.dumps(schema))  # a fresh copy: callers may edit what they get

    return type("GuardReasonerTrace", (_TraceReply,), {"model_json_schema": classmethod(model_json_schema)})


_STEP_RE = re.compile(STEP_PATTERN)


def check_trace(trace: Trace, gold: tuple[str, str, str]) -> str:
    """The rendered text, or Rejection(stage "trace") with the first rule the reply breaks."""

    def reject(reason: str, error: str) -> Rejection:
        return Rejection("trace", reason, error, transient=False)

    for number, task in enumerate(trace.tasks, start=1):
        texts = [*task.steps, task.conclusion or ""]
        if any(not t.strip() for t in texts):
            raise reject("empty", f"task {number}: an empty reasoning step or conclusion")
        if not 1 <= len(task.steps) <= MAX_STEPS:
            raise reject("step_count", f"task {number}: {len(task.steps)} reasoning steps; expected 1 to {MAX_STEPS}")
    for key, given, label in zip(_KEYS, trace.answers, gold, strict=True):
        if given != label:
            raise reject("answers_disagree", f"{key}: {given!r}, but the gold label is {label!r}")
    for number, task in enumerate(trace.tasks, start=1):
        for text in [*task.steps, task.conclusion or ""]:
            if not _STEP_RE.match(text):
                raise reject("format", f"task {number}: {text[:60]!r} is not one trimmed paragraph without '#' lines")
    rendered = render_trace(trace)
    if parse_trace(rendered) != trace:  # the rules above should make this impossible; kept as the contract
        raise reject("format", "the rendered text does not parse back to the same trace")
    return rendered


# ----------------------------------------------------------------------------------------------
# Input: labelled rows.


@dataclass(frozen=True)
class LabelledRow:
    id: str
    instruction: str
    input: str
    prompt: str
    response: str | None
    gold: tuple[str, str, str]  # Request, Completion, Response: a label or "None"
    source: str

    @property
    def labels(self) -> dict[str, str | None]:
        return {task: None if g == "None" else g for task, g in zip(TASK_ORDER, self.gold, strict=True)}


def read_labelled(ref: str) -> tuple[list[LabelledRow], int]:
    """Rows of a GuardReasoner-shaped file (`instruction`/`input`/`output`, the output's `Answers:`
    block the gold; a JSON array or JSONL) or a JSONL of `prompt`/`response`/`label` with the label
    an answer block; a Hub id too. Returns the rows and how many repeated an earlier input."""
    from aidsafe.guard.predict import load_benchmark  # the one reader of guard benchmark files

    rows, seen, repeats = [], set(), 0
    for example in load_benchmark(ref):
        where = f"{ref}: row {example.index}"
        label = example.label
        if not isinstance(label, str) or "answers:" not in label.lower():
            raise AidsafeError(f"{where}: output: expected the gold labels as an Answers: block")
        block = label[label.lower().rfind("answers:") :]
        try:
            gold = tuple("None" if (g := parse_gold(block, t)) is None else g for t in TASK_ORDER)
        except ValueError as exc:
            raise AidsafeError(f"{where}: output: {exc}") from None
        if example.text is not None:
            cut = example.text.index("\nHuman user:\n")  # the instruction never contains it
            instruction, text = example.text[:cut], example.text[cut + 1 :]
        else:
            instruction, text = GUARDREASONER_INSTRUCTION, guardreasoner_input(example.prompt, example.response)
        key = input_digest(instruction + "\n" + text)[:16]
        if key in seen:
            repeats += 1
            continue
        seen.add(key)
        rows.append(LabelledRow(key, instruction, text, example.prompt, example.response, gold, where))  # type: ignore[arg-type]
    return rows, repeats


# ----------------------------------------------------------------------------------------------
# The recipe and the teacher's card.


@register_config_model
class TraceCard(BaseModel):
    """agents/guard/guardreasoner_teacher.yaml: the teacher's prompts and sampling defaults."""

    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    sampling: dict[str, Any] = Field(default_factory=dict)
    system: str
    user: str


@register_config_model
class TraceRecipe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["guardreasoner"]
    name: str
    description: str = ""
    teacher: TeacherSettings
    agent: str = Field(description="Built-in card name or a card path (relative to the recipe).")
    sampling: dict[str, Any] = Field(default_factory=dict, description="Overrides the card's sampling.")
    seed: int = 0


@dataclass(frozen=True)
class LoadedTraceRecipe:
    recipe: TraceRecipe
    card: TraceCard
    recipe_hash: str

    @property
    def endpoint(self) -> Endpoint:
        return self.recipe.teacher.endpoint()

    @property
    def sampling(self) -> dict[str, Any]:
        return {**self.card.sampling, **self.recipe.sampling}

    def resolved(self) -> dict[str, Any]:
        resolved = {"recipe_hash": self.recipe_hash, "card": self.card.model_dump(mode="json")}
        return {**self.recipe.model_dump(mode="json"), "resolved": resolved}


def is_trace_recipe(ref: str) -> bool:
    """Whether `ref` names a recipe with `kind: guardreasoner` (the AIDSAFE recipe has no `kind`)."""
    try:
        data, _ = load_yaml(resolve_resource(ref, "recipes"))
    except AidsafeError:
        return False  # the AIDSAFE loader reports the missing or broken file
    return isinstance(data, dict) and data.get("kind") == RECIPE_KIND


def load_trace_recipe(ref: str, overrides: list[str] | None = None) -> LoadedTraceRecipe:
    path = resolve_resource(ref, "recipes")
    data, lines = load_yaml(path)
    if overrides:
        from aidsafe.config.overrides import apply_overrides

        data = apply_overrides(data, overrides)
    recipe = validate_model(TraceRecipe, data, str(path), lines, overrides or ())
    candidate = path.parent / recipe.agent
    # Built-in guard cards live in agents/guard/: they fill no AIDSAFE graph role.
    card_path = resolve_resource(candidate if candidate.is_file() else recipe.agent, "agents", "guard")
    card_data, card_lines = load_yaml(card_path)
    card = validate_model(TraceCard, card_data, str(card_path), card_lines)
    for part in ("system", "user"):
        try:
            unknown = template_fields(getattr(card, part)) - CARD_FIELDS
        except ValueError as exc:
            raise AidsafeError(f"{card_path}: {part}: {exc}") from None
        if unknown:
            raise AidsafeError(
                f"{card_path}: {part}: unknown field(s) {', '.join(sorted(unknown))}; "
                f"expected some of {', '.join(sorted(CARD_FIELDS))}"
            )
    body = recipe.model_dump(mode="json")
    for key in _NON_SEMANTIC_TEACHER:  # where and how fast the teacher runs does not change a trace
        body["teacher"].pop(key, None)
    payload = json.dumps({"recipe": body, "card": card.model_dump(mode="json")}, sort_keys=True)
    return LoadedTraceRecipe(recipe, card, input_digest(payload)[:16])


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
        request, completion, response = row.gold
        values = {
            "instruction": row.instruction,
            "prompt": row.prompt,
            "response": "None" if row.response is None else row.response,
            "request_label": request,
            "completion_label": completion,
            "response_label": response,
        }
        card = self.loaded.card
        messages = [
            {"role": "system", "content": render_template(card.system, values)},
            {"role": "user", "content": render_template(card.user, values)},
        ]
        try:
            reply, call = await self.teacher.generate(
                agent=card.name,
                role="guardreasoner_teacher",
                messages=messages,
                schema=_reply_model(row.gold),
                endpoint=self.loaded.endpoint,
                sampling=self.loaded.sampling,
            )
        except InvalidOutputError as exc:
            raise Rejection(self.stage, "invalid_output", str(exc), transient=False) from exc
        except TeacherError as exc:
            reason = "teacher_unavailable" if exc.transient else "teacher_error"
            raise Rejection(self.stage, reason, str(exc), transient=exc.transient) from exc
        output = check_trace(reply.to_trace(), row.gold)
        return {
            "id": row.id,
            "instruction": row.instruction,
            "input": row.input,
            "output": output,
            "labels": row.labels,
            "source": row.source,
            "teacher": {"agent": card.name, "model": self.loaded.endpoint.model, "call": call.to_dict()},
            "recipe_hash": self.loaded.recipe_hash,
        }


async def generate_traces_async(request: Any, env: Mapping[str, str], teacher: Teacher | None = None) -> dict[str, Any]:
    """`aidsafe generate guardreasoner`: `request` is the CLI's `GenerateRequest`."""
    from aidsafe.generation.pipeline import cli_overrides

    loaded = load_trace_recipe(
        request.recipe, cli_overrides(request.base_url, request.model, request.concurrency, request.overrides)
    )
    rows, repeats = read_labelled(request.input)
    if request.limit is not None:
        rows = rows[: request.limit]
    run_dir = RunDirectory(Path(request.output))
    journal = RecipeJournal(run_dir, loaded.recipe_hash, loaded.resolved())
    owns_teacher = teacher is None
    if teacher is None:
        from aidsafe.teacher.client import TeacherClient

        teacher = TeacherClient.from_settings(loaded.recipe.teacher, env, loaded.recipe.seed)
    started = time.monotonic()
    try:
        outcome = await execute(
            TraceTask(loaded, teacher, check_endpoint=owns_teacher),
            rows,
            journal,
            workers=loaded.recipe.teacher.most_in_flight,
            stats=teacher.stats,
            retry_rejected=request.retry_rejected,
            progress=request.progress,
        )
    finally:
        if owns_teacher:
            await teacher.aclose()
    stats = _write_stats(run_dir, len(rows), repeats, time.monotonic() - started)
    check_something_finished(outcome, run_dir.rejected_path, stats, noun="trace")
    return stats


def generate_traces(request: Any, env: Mapping[str, str], teacher: Teacher | None = None) -> dict[str, Any]:
    return asyncio.run(generate_traces_async(request, env, teacher))


def _write_stats(run_dir: RunDirectory, inputs: int, repeats: int, wall_s: float) -> dict[str, Any]:
    """stats.json from the journals as they stand (this run and earlier ones)."""
    index = run_dir.index()
    reasons = Counter(info.reason for info in index.rejected.values())
    stats = {
        "inputs": inputs,
        "repeated_inputs": repeats,
        "samples": len(index.finished),
        "rejected": len(index.rejected),
        "rejected_by_reason": dict(sorted(reasons.items())),
        "pending": max(0, inputs - len(index.finished) - len(index.rejected)),
        "wall_s": round(wall_s, 3),
    }
    write_atomic(run_dir.path / "stats.json", json.dumps(stats, indent=2) + "\n")
    return stats
