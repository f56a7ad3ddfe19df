"""What a role is, for every stage: the recipe slot that names its agents, its output model and
per-call schema, the template fields its cards may use, and how its output changes the state.

Each stage keeps its own table of roles (aidsafe.generation.roles.ROLES for the AIDSAFE graph,
aidsafe.pairs.roles.PAIR_ROLES, aidsafe.eval.cot_judge.COT_ROLES); the shape is this one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from aidsafe.agents.policies import PolicySet
from aidsafe.agents.schemas import DEFAULT_MIN_CHARS, call_model

__all__ = ["RoleSpec", "Turn", "thought_ids"]


@dataclass(frozen=True)
class Turn:
    """What an `apply` needs besides the output and the state: who spoke, and the budget."""

    agent: str
    max_rounds: int


@dataclass(frozen=True)
class RoleSpec:
    name: str  # the role: a card's `role`, the key of the recipe's agents
    slot: str  # where the recipe names its agents: agents.<slot> (a list for the deliberators)
    node: str  # the graph node that runs it
    output: type[BaseModel]  # what its agents return; cards name it in `output_schema`
    fields: frozenset[str]  # template placeholders its cards may use
    apply: Callable[[Any, dict, Turn], dict]  # the state update its output makes
    # The thought ids its per-call schema enumerates (none for roles that see no thoughts).
    sees_thoughts: bool = False
    # What JSON Schema cannot say, raised as ValueError (the teacher is re-asked with it). None of
    # the built-in roles needs one: their schemas say everything.
    check: Callable[[Any, dict, PolicySet], None] | None = None

    def call_model(self, state: dict, policies: PolicySet, min_chars: int = DEFAULT_MIN_CHARS) -> type[BaseModel]:
        """The schema for one call of this role on `state`."""
        ids = thought_ids(state) if self.sees_thoughts else ()
        return call_model(self.output, policy_ids=tuple(policies.ids), thought_ids=ids, min_chars=min_chars)

    def validate(self, output: BaseModel, state: dict, policies: PolicySet, min_chars: int = DEFAULT_MIN_CHARS) -> None:
        """Raise ValueError unless `output` is valid for the schema of this call (and `check`).

        Teacher replies were validated against that schema already; Python agents may build their
        outputs themselves, and are held to the same contract."""
        self.call_model(state, policies, min_chars).model_validate(output.model_dump())
        if self.check is not None:
            self.check(output, state, policies)


def thought_ids(state: dict) -> tuple[str, ...]:
    return tuple(thought["id"] for thought in state.get("thoughts", []))
