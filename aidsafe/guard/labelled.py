"""Labelled rows: a GuardReasoner input with its gold labels, what `generate guardreasoner` explains.

Every source (aidsafe.guard.sources) is read into `LabelledRow`s. `read_labelled` reads the two
sources that carry their gold themselves: GuardReasoner-shaped files (`instruction`/`input`/
`output`) and JSONL of `prompt`/`response`/`label`. The gold is an `Answers:` block (all three
tasks), or a bare label (`unharmful`, as the shared benchmark files have) for the one task the
user names with `label_task`: a bare label does not say which task it judges (`harmful` fits the
request and the response alike). The tasks it leaves open are the teacher's to decide, or not
applicable where the row has no response. It lives apart from the trace task so that the sources
and the task that consumes their rows both import it and neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from aidsafe.errors import AidsafeError
from aidsafe.guard.formats import GUARDREASONER_INSTRUCTION, TASK_ORDER, TASKS, guardreasoner_input, parse_gold
from aidsafe.oneline import one_line
from aidsafe.run.journal import input_digest

__all__ = ["LABEL_TASKS", "LabelledRow", "read_labelled"]

# --label-task's words (the GuardReasoner answer block's) -> the task names of formats.TASKS.
LABEL_TASKS = {"request": "prompt", "completion": "refusal", "response": "response"}
_EXPECTED = (
    "expected the gold labels as an Answers: block, or a bare label (harmful, unharmful, refusal, compliance) "
    "with --label-task request|completion|response saying which task it is for"
)


@dataclass(frozen=True)
class LabelledRow:
    id: str
    instruction: str
    input: str
    prompt: str
    response: str | None
    # Request, Completion, Response: a label, "None" (not applicable) or None (no gold: the
    # teacher decides, as for BeaverTails' Request and Completion).
    gold: tuple[str | None, str | None, str | None]
    source: str

    @property
    def labels(self) -> dict[str, str | None]:
        """Task -> gold; not applicable and teacher-decided are both None here."""
        return {task: None if g == "None" else g for task, g in zip(TASK_ORDER, self.gold, strict=True)}

    @property
    def decided_by_teacher(self) -> list[str]:
        return [task for task, g in zip(TASK_ORDER, self.gold, strict=True) if g is None]


def read_labelled(ref: str, label_task: str | None = None) -> tuple[list[LabelledRow], int]:
    """Rows of a GuardReasoner-shaped file (`instruction`/`input`/`output`, the output the gold; a
    JSON array or JSONL) or a JSONL of `prompt`/`response`/`label`; a Hub id too. The gold is an
    `Answers:` block, or a bare label for `label_task` (request, completion or response). Returns
    the rows and how many repeated an earlier input."""
    from aidsafe.guard.predict import load_benchmark  # the one reader of guard benchmark files

    if label_task is not None and label_task not in LABEL_TASKS:
        raise AidsafeError(f"--label-task {label_task}: expected request, completion or response")
    rows, seen, repeats = [], set(), 0
    for example in load_benchmark(ref, split="train"):  # training data: a Hub id's train split by default
        where = example.where
        field = "output" if example.text is not None else "label"
        try:
            gold = _gold(example.label, example.response, label_task)
        except ValueError as exc:
            raise AidsafeError(f"{where}: {field}: {exc}") from None
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


def _gold(label: object, response: str | None, label_task: str | None) -> tuple[str | None, ...]:
    """(Request, Completion, Response) gold as LabelledRow holds it; ValueError says what is wrong."""
    if isinstance(label, str) and "answers:" in label.lower():
        block = label[label.lower().rfind("answers:") :]
        return tuple("None" if (g := parse_gold(block, t)) is None else g for t in TASK_ORDER)
    shown = one_line(repr(label), 40)
    if label_task is None:
        bare = isinstance(label, str) and any(label.strip().lower() in labels for _, labels in TASKS.values())
        if bare:
            raise ValueError(
                f"{shown} is a bare label; say which task it is for with --label-task request|completion|response"
            )
        raise ValueError(f"{_EXPECTED}; got {shown}")
    task = LABEL_TASKS[label_task]
    key, labels = TASKS[task]
    value = str(label).strip().lower() if label is not None else ""
    if value not in labels:
        raise ValueError(f"{shown} is not a {label_task} label ({'/'.join(labels)}, as --label-task says)")
    if task != "prompt" and response is None:
        raise ValueError(f"--label-task {label_task}: this row has no response for a {key} label to judge")
    # The tasks the label leaves open: the teacher's to decide, or not applicable without a response.
    open_task = None if response is not None else "None"
    return tuple(value if t == task else (None if t == "prompt" else open_task) for t in TASK_ORDER)
