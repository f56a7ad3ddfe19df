"""The verdicts of `aidsafe check`: one `Part` per check and slot (its state, its table cell, and
for a failure the one line that says what to do), the table, the JSON, and the failure lines
naming their slots. Pure: run.py asks the endpoints and hands the answers here.

A check holds ("ok"), fails, or is "not known" (the server does not say its context; a Python
agent's messages are its own; a probe cut off at its token limit), "not checked" (an earlier
check of the same endpoint failed) or "n/a". Only a failure makes the command exit non-zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aidsafe.errors import TeacherUnreachable
from aidsafe.teacher.calls import SlotCall
from aidsafe.teacher.wire import hide_credentials
from aidsafe.terminal import printable

__all__ = ["CheckReport", "Part", "SlotReport", "context_part", "endpoint_parts", "prefix_part"]

# The checks of one endpoint in the order the pre-flight makes them: a failure leaves those after
# it not checked, and says that those before it held (a model list answered with the key).
_ORDER = ("reachable", "key", "served", "answers", "mode", "schema")
# Which column a failure shows in, and how.
_FAILED_CELL = {
    "reachable": ("served", "unreachable"),
    "key": ("key", "refused"),
    "served": ("served", "not served"),
    "answers": ("answers", "no"),
    "mode": ("schema", "mode refused"),
    "schema": ("schema", "ignored"),
}
_HELD_CELL = {"served": "yes", "key": "accepted", "answers": "yes"}


@dataclass(frozen=True)
class Part:
    state: str  # "ok", "failed", "not known", "not checked", "n/a"
    shown: str  # the table cell
    line: str = ""  # a failure's one line (the slot is named in front of it)


@dataclass
class SlotReport:
    slot: SlotCall
    parts: dict[str, Part]
    numbers: dict[str, Any] = field(default_factory=dict)  # the context's and prefix's figures

    @property
    def ok(self) -> bool:
        return all(part.state != "failed" for part in self.parts.values())

    @property
    def name(self) -> str:
        return f"{self.slot.slot} ({self.slot.agent})"

    def to_dict(self) -> dict[str, Any]:
        endpoint = self.slot.endpoint
        return {
            "slot": self.slot.slot,
            "agent": self.slot.agent,
            "model": endpoint.model,
            "base_url": [hide_credentials(url) for url in endpoint.urls],
            "ok": self.ok,
            "checks": {name: _part_dict(part) for name, part in self.parts.items()},
            **self.numbers,
        }


@dataclass
class CheckReport:
    recipe: str
    kind: str
    input_tokens: int
    slots: list[SlotReport]

    @property
    def ok(self) -> bool:
        return all(slot.ok for slot in self.slots)

    def failure_lines(self) -> list[str]:
        """One line per failure, naming its slots: slots that failed alike (one endpoint) share it."""
        by_line: dict[str, list[str]] = {}
        for slot in self.slots:
            for part in slot.parts.values():
                if part.state == "failed":
                    by_line.setdefault(part.line, []).append(slot.name)
        return [hide_credentials(f"{', '.join(names)}: {line}") for line, names in by_line.items()]

    def to_dict(self) -> dict[str, Any]:
        return {"recipe": self.recipe, "kind": self.kind, "ok": self.ok, "input_tokens": self.input_tokens,
                "slots": [slot.to_dict() for slot in self.slots]}  # fmt: skip

    def table(self, width: int | None = None) -> Any:
        """A rich Table, one row per slot; with `width`, made to fit it (aidsafe.terminal.fit_table)."""
        from rich.table import Table
        from rich.text import Text

        from aidsafe.terminal import fit_table

        table = Table(title=printable(f"aidsafe check {self.recipe} ({self.kind})"))
        for column in ("Slot", "Model", "Served", "Key", "Answers", "Schema", "Longest call", "Tokens", "Counted by",
                       "Prefix cache"):  # fmt: skip
            table.add_column(column, overflow="fold" if column == "Longest call" else "ellipsis")
        for slot in self.slots:
            context = slot.numbers.get("context", {})
            cells = [Text(printable(slot.name)), Text(printable(slot.slot.endpoint.model))]
            cells += [_cell(slot.parts[name]) for name in ("served", "key", "answers", "schema")]
            cells += [Text(printable(context.get("step", ""))), _cell(slot.parts["context"]),
                      Text(context.get("counted_by", "")), _cell(slot.parts["prefix"])]  # fmt: skip
            table.add_row(*cells)
        return table if width is None else fit_table(table, width)


def _part_dict(part: Part) -> dict[str, str]:
    failure = {"failure": hide_credentials(part.line)} if part.line else {}
    return {"state": part.state, "shown": part.shown, **failure}


def _cell(part: Part) -> Any:
    from rich.text import Text

    return Text(printable(part.shown), style="red" if part.state == "failed" else "")


def endpoint_parts(failure: TeacherUnreachable | None, structured: bool, schema: str | None) -> dict[str, Part]:
    """The served, key, answers and schema parts of a slot whose endpoint answered the
    pre-flight (`failure` None, `schema` the probe's verdict) or failed it."""
    parts = {name: Part("ok", _HELD_CELL.get(name, "")) for name in ("served", "key", "answers")}
    parts["schema"] = Part("ok", "honoured") if schema == "honoured" else Part("not known", "not known")
    if not structured:
        parts["schema"] = Part("n/a", "n/a (raw text)")
    if failure is None:
        return parts
    failed = failure.failed if failure.failed in _ORDER else "reachable"
    column, shown = _FAILED_CELL[failed]
    reached = _ORDER.index(failed)
    for name in ("served", "key", "answers", "schema"):  # what the pre-flight had not reached yet
        if _ORDER.index(name) > reached and parts[name].state != "n/a":
            parts[name] = Part("not checked", "-")
    parts[column] = Part("failed", shown, str(failure))
    return parts


def context_part(numbers: dict[str, Any] | None, unknown: str, unbounded: list[str] | None = None) -> Part:
    """Whether the longest call, with its reply, fits the served model's context."""
    if numbers is None:
        return Part("not known", f"not known: {unknown}")
    if unbounded:
        return Part("not known", f"not known: {', '.join(unbounded)} has no max_tokens")
    prompt, reply, limit = numbers["prompt_tokens"], numbers["max_tokens"] or 0, numbers["context_length"]
    need = prompt + reply
    shown = f"{prompt:,} + {reply:,}"
    if limit is None:
        return Part("not known", f"{shown}; context not known")
    if need <= limit:
        return Part("ok", f"{shown} of {limit:,}")
    counted = "by the server's tokenizer" if numbers["counted_by"] == "tokenizer" else "estimated"
    filled = sum(tokens or 0 for tokens in numbers["filled"].values())
    line = (
        f"{numbers['step']} needs {prompt:,} prompt tokens ({numbers['fixed_tokens']:,} of the recipe's own text, "
        f"{counted}; {filled:,} for what fills it; {numbers['reask_tokens']:,} for re-asks) + {reply:,} max_tokens "
        f"= {need:,}, more than the {limit:,} the served model takes (max_model_len): use fewer rounds or "
        "iterations, lower max_tokens or --input-tokens, or serve a longer context (vllm serve --max-model-len)"
    )
    return Part("failed", f"{shown} > {limit:,}", line)


def prefix_part(numbers: dict[str, Any] | None, unknown: str) -> Part:
    """Whether the slot's system message is the same for every sample, and the share of the
    longest call's prompt tokens it makes (what the server's prefix cache can reuse)."""
    if numbers is None:
        return Part("n/a", "n/a") if unknown == "no system message" else Part("not known", "not known")
    if not numbers["same_system_message"]:
        line = (
            "its system message changes from sample to sample, so the server's prefix cache cannot reuse it: "
            "move the fields that come from the input ({prompt} ...) into the card's user message"
        )
        return Part("failed", "varies", line)
    share = numbers["shared_tokens"] / max(1, numbers["prompt_tokens"])
    return Part("ok", f"{numbers['shared_tokens']:,} shared ({share:.0%})")
