"""Labelled rows: a GuardReasoner input with its gold labels, what `generate guardreasoner` explains.

Every source (aidsafe.guard.sources) is read into `LabelledRow`s. `read_labelled` reads the two
sources that already carry an `Answers:` block: GuardReasoner-shaped files (`instruction`/`input`/
`output`) and JSONL of `prompt`/`response`/`label`. It lives apart from the trace task so that the
sources and the task that consumes their rows both import it and neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from aidsafe.errors import AidsafeError
from aidsafe.guard.formats import GUARDREASONER_INSTRUCTION, TASK_ORDER, guardreasoner_input, parse_gold
from aidsafe.run.journal import input_digest

__all__ = ["LabelledRow", "read_labelled"]


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


def read_labelled(ref: str) -> tuple[list[LabelledRow], int]:
    """Rows of a GuardReasoner-shaped file (`instruction`/`input`/`output`, the output's `Answers:`
    block the gold; a JSON array or JSONL) or a JSONL of `prompt`/`response`/`label` with the label
    an answer block; a Hub id too. Returns the rows and how many repeated an earlier input."""
    from aidsafe.guard.predict import load_benchmark  # the one reader of guard benchmark files

    rows, seen, repeats = [], set(), 0
    for example in load_benchmark(ref, split="train"):  # training data: a Hub id's train split by default
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
