"""Structured outputs of the AIDSAFE agents.

The teacher is asked for JSON matching these models (vLLM guided decoding serves the JSON schema);
agent cards name them by class name. Descriptions become part of the schema the teacher sees, so
they are written as instructions.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Intent",
    "IntentList",
    "ThoughtDraft",
    "InitialCoT",
    "DeliberationTurn",
    "RemovedThought",
    "Refinement",
    "REMOVAL_REASONS",
    "OUTPUT_SCHEMAS",
    "output_schema",
]

REMOVAL_REASONS = ("repetitive", "redundant", "deceptive", "policy_inconsistent")


class _Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Intent(_Output):
    text: str = Field(description="One intent of the user, in one sentence.")
    kind: Literal["explicit", "implicit"] = Field(description="Stated outright, or inferred.")
    nature: Literal["benign", "harmful"] = Field(description="Whether serving it could cause harm.")


class IntentList(_Output):
    intents: list[Intent] = Field(min_length=1, description="Explicit intents first, then implicit ones.")


class ThoughtDraft(_Output):
    text: str = Field(min_length=1, description="One reasoning step.")
    policies: list[str] = Field(default_factory=list, description="Ids of the policies this step applies.")


class InitialCoT(_Output):
    thoughts: list[ThoughtDraft] = Field(min_length=1)
    response: str = Field(description="The response to the user that follows from the thoughts.")


class CorrectedThought(ThoughtDraft):
    replaces: str | None = Field(
        default=None, description="Id of the existing thought this one corrects (e.g. 't3'); null to add."
    )


class DeliberationTurn(_Output):
    thoughts: list[CorrectedThought] = Field(
        default_factory=list, description="New thoughts, or corrections of existing ones. Empty if none."
    )
    response: str = Field(description="The response to the user after this turn (updated or unchanged).")
    complete: bool = Field(description="True if you agree with the thoughts and response and nothing is missing.")


class RemovedThought(_Output):
    id: str = Field(description="Id of the thought to drop.")
    reason: Literal["repetitive", "redundant", "deceptive", "policy_inconsistent"]


class Refinement(_Output):
    kept: list[str] = Field(description="Ids of the thoughts to keep, in order.")
    removed: list[RemovedThought] = Field(default_factory=list)
    response: str = Field(description="The final response to the user.")


OUTPUT_SCHEMAS: dict[str, type[BaseModel]] = {
    model.__name__: model for model in (IntentList, InitialCoT, DeliberationTurn, Refinement)
}


def output_schema(name: str) -> type[BaseModel]:
    """The output model named `name`; KeyError lists the known names."""
    try:
        return OUTPUT_SCHEMAS[name]
    except KeyError:
        raise KeyError(f"unknown output schema {name!r}; expected one of: {', '.join(OUTPUT_SCHEMAS)}") from None
