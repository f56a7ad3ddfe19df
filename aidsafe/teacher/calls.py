"""The calls a recipe's agent slots make, as `aidsafe check` weighs them before a run: for each
slot its endpoint, the longest request it will send, and its system message for two different
samples (the prefix cache). Each stage kind builds them from its loaded recipe (its `check`
entry in aidsafe.kinds); aidsafe.check sends the probes and counts the tokens. Pure.

The longest request is counted in two parts. `messages` (or `prompt`, for raw completions) is the
request rendered with every text that does not come from the recipe left empty, so the server's
tokenizer can count what the recipe itself writes: the instructions, the policy block, the
labels. `filled` is the most tokens the empty texts can hold, each named: a text from the input
at the allowance the user gives, an earlier agent's reply at that agent's `max_tokens` (a reply
is cut off there). Re-asks come on top: each appends the rejected reply and the error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from aidsafe.teacher.replies import reask
from aidsafe.teacher.tokens import CHARS_PER_TOKEN
from aidsafe.teacher.types import Endpoint, Message

__all__ = ["LongestCall", "RecipeCalls", "SlotCall", "max_reply_tokens", "reask_tokens"]

# What a re-ask echoes of the rejected reply at most (aidsafe.teacher.replies.excerpt) ...
_ECHO_CHARS = 2_000
# ... and the longest validation error it quotes (replies.short_error).
_ERROR_CHARS = 400


@dataclass(frozen=True)
class LongestCall:
    """The longest request one slot sends (see the module docstring)."""

    step: str  # which call it is: "round 4 of 4", "iteration 3 of 3", "one call"
    messages: tuple[Message, ...] = ()
    prompt: str | None = None  # a raw completion's prompt, instead of messages
    # (what fills an empty text, its most tokens; None: not bounded, its agent sets no max_tokens)
    filled: tuple[tuple[str, int | None], ...] = ()
    max_tokens: int | None = None  # the reply's limit; None: the agent sets none
    schema: type[BaseModel] | None = None  # the call's schema (function_calling sends it as a tool)
    reasks: int = 0  # re-asks a rejected reply gets (teacher.max_parse_retries)

    def unbounded(self) -> list[str]:
        """What fills an empty text without a bound: the longest call's size is not known."""
        return [what for what, tokens in self.filled if tokens is None]

    def filled_tokens(self) -> int:
        return sum(tokens or 0 for _, tokens in self.filled)


@dataclass(frozen=True)
class SlotCall:
    """One agent slot of a recipe: where the recipe names it, the agent, its endpoint."""

    slot: str  # the recipe key: agents.deliberators.1, pairs.guard_judge, agent
    agent: str  # the name it runs under
    endpoint: Endpoint
    structured: bool = True  # False: raw completions only (a guard judge), no schema to probe
    longest: LongestCall | None = None
    unknown: str = ""  # why there is no longest call: a Python agent's messages are its own, ...
    # The system message for two samples that differ in everything that comes from the input;
    # None where the slot has none, or its messages are not known.
    systems: tuple[str, str] | None = None


@dataclass(frozen=True)
class RecipeCalls:
    """What `aidsafe check` needs of a loaded recipe: its teacher settings (the client is made
    from them, as a run's is), its seed, and its slots in recipe order."""

    teacher: Any  # aidsafe.agents.settings.TeacherSettings
    seed: int
    slots: list[SlotCall] = field(default_factory=list)


def max_reply_tokens(sampling: Mapping[str, Any]) -> int | None:
    """The reply limit a slot's sampling sets (`max_tokens`, or `max_completion_tokens`, also in
    `extra_body`), or None where it sets none."""
    extra = sampling.get("extra_body") or {}
    for source in (sampling, extra):
        for name in ("max_tokens", "max_completion_tokens"):
            value = source.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


def reask_tokens(max_tokens: int | None, schema: type[BaseModel] | None) -> int:
    """The most tokens one re-ask adds: the rejected reply's excerpt (at most its max_tokens) and
    the message quoting the error, at the estimate's characters per token."""
    echo = math.ceil(_ECHO_CHARS / CHARS_PER_TOKEN)
    if max_tokens is not None:
        echo = min(echo, max_tokens)
    message = reask("x" * _ERROR_CHARS, schema or BaseModel, cut_off=True)
    return echo + math.ceil(len(message) / CHARS_PER_TOKEN)
