"""The multi-agent workload every framework runs: per prompt, five dependent structured calls.

Stdlib and pydantic only, because the peers' scripts import this file by
path from their own venvs, where aidsafe is not installed. Call k's user message carries call
k-1's answer, so the five calls of one prompt cannot overlap; a fixed system block of about the
size of aidsafe's role and policy text goes first in every call, as it does in aidsafe's cards.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field  # in every venv the runners use

__all__ = [
    "STAGES",
    "SCHEMA_NAME",
    "SYSTEM",
    "prompt_texts",
    "stage_message",
    "StageAnswer",
    "check_answer",
    "runner_args",
    "write_result",
]

STAGES = 5
SCHEMA_NAME = "StageAnswer"

# About 2.5 KB, like aidsafe's deliberator system message with the five built-in policies
# (the benchmark prints each framework's mean request size so the match can be checked).
SYSTEM = "You are one of five reviewers of an assistant's safety reasoning. Policies in force:\n\n" + "\n".join(
    f"[P{i}] Policy {i}. The assistant must weigh the request against rule {i}: help where the "
    f"request is allowed, decline only the part the rule forbids, and say which rule applies and why."
    for i in range(1, 15)
)


def prompt_texts(count: int) -> list[str]:
    """The benchmark's prompts; the same strings the aidsafe side reads from its JSONL file."""
    return [f"[b{i}] benchmark prompt {i}" for i in range(count)]


def stage_message(prompt: str, stage: int, previous: str | None) -> str:
    """The user message of call `stage` (1-based): the prompt and, after the first, the previous answer."""
    if not 1 <= stage <= STAGES:
        raise ValueError(f"stage must be 1..{STAGES}, got {stage}")
    head = f"Stage {stage} of {STAGES}. User prompt:\n<<<\n{prompt}\n>>>\n"
    if previous is None:
        return head + "List the thoughts that matter and a response. Reply with JSON only."
    return (
        head
        + f"The previous reviewer answered:\n{previous}\n"
        + "Correct or extend the thoughts and the response. Reply with JSON only."
    )


class StageAnswer(BaseModel):
    """One call's answer; its JSON schema is what every framework sends. Module level, because
    distilabel pickles it into each step's process."""

    model_config = ConfigDict(extra="forbid", title=SCHEMA_NAME)

    thoughts: list[str] = Field(min_length=1, max_length=4, description="Reasoning steps.")
    response: str = Field(description="The full response to the user.")
    complete: bool = Field(description="True if nothing is missing.")


def check_answer(text: str) -> str:
    """`text` re-encoded if it is a valid answer object; raises ValueError otherwise (so a
    framework that silently drops the structure is caught, not counted)."""
    value = json.loads(text)
    if not isinstance(value, dict) or not isinstance(value.get("thoughts"), list) or "response" not in value:
        raise ValueError(f"not a {SCHEMA_NAME}: {text[:80]!r}")
    return json.dumps(value, ensure_ascii=False)


def runner_args(description: str) -> argparse.Namespace:
    """The command line every framework's runner takes from the benchmark."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompts", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True, help="requests in flight at most")
    parser.add_argument("--work-dir", type=Path, required=True, help="caches and outputs of this run")
    parser.add_argument("--out", type=Path, required=True, help="where the result JSON goes")
    parser.add_argument(
        "--batch", type=int, default=None, help="distilabel: input_batch_size (default concurrency // 5)"
    )
    return parser.parse_args()


def write_result(path: Path, *, version: str, rows: int, config: dict[str, Any]) -> None:
    """What the runner hands back: the framework's version, how many prompts came back with all
    five valid answers, and the settings it ran with (printed beside the numbers)."""
    path.write_text(json.dumps({"version": version, "rows": rows, "config": config}))
