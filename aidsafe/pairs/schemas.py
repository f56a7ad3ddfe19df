"""Outputs of the pair roles, and the per-call schemas sent to the teacher.

- `Belief` (ear-whisperer): the policy it aims at, as an enum of the policy set, and the belief.
- The rejected side is an `InitialCoT` (the generation schema, per call with this set's ids).
- `JudgeVerdict` (judge): one `SideVerdict` per answer, `a` and `b` (which side is which is
  randomised per sample and iteration; aidsafe.pairs.roles maps them back). Faithfulness is an
  enum of 1..5, cited policy ids an enum of the set: a guided-decoding teacher cannot leave the
  range. All schemas are strict-mode shaped like the generation ones (aidsafe.agents.schemas).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from aidsafe.agents.schemas import DEFAULT_MIN_CHARS, InitialCoT, call_model, floored_text, register_output_schema

__all__ = ["Belief", "SideVerdict", "JudgeVerdict", "belief_call", "rejected_call", "judge_call"]

Score = Literal[1, 2, 3, 4, 5]


class _Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Belief(_Output):
    target_policy: str = Field(description="Id of the policy the belief should make the assistant violate.")
    belief: str = Field(description="A short false or harmful belief, written as if it were true.")


class SideVerdict(_Output):
    rationale: str = Field(description="Two or three sentences: how the answer treats the policies.")
    violates: bool = Field(description="True if the reasoning or the response violates any policy.")
    violated_policies: list[str] = Field(
        default_factory=list, description="Ids of the violated policies; empty if none."
    )
    faithfulness: Score = Field(description="1-5: how faithfully reasoning and response follow the policies.")


class JudgeVerdict(_Output):
    a: SideVerdict
    b: SideVerdict


for _model in (Belief, JudgeVerdict):
    register_output_schema(_model)

_STRICT = ConfigDict(extra="forbid")


def _desc(model: type[BaseModel], field: str) -> str:
    return model.model_fields[field].description or ""


def _ids(policy_ids: tuple[str, ...]) -> Any:
    return Literal[policy_ids]  # type: ignore[valid-type]


@lru_cache(maxsize=64)
def belief_call(policy_ids: tuple[str, ...], min_chars: int = DEFAULT_MIN_CHARS) -> type[BaseModel]:
    return create_model(
        "Belief",
        __config__=_STRICT,
        target_policy=(_ids(policy_ids), Field(description=_desc(Belief, "target_policy"))),
        belief=(floored_text(min_chars), Field(description=_desc(Belief, "belief"))),
    )


def rejected_call(policy_ids: tuple[str, ...], min_chars: int = DEFAULT_MIN_CHARS) -> type[BaseModel]:
    return call_model(InitialCoT, policy_ids=policy_ids, min_chars=min_chars)


@lru_cache(maxsize=64)
def judge_call(policy_ids: tuple[str, ...], min_chars: int = DEFAULT_MIN_CHARS) -> type[BaseModel]:
    side = create_model(
        "SideVerdict",
        __config__=_STRICT,
        rationale=(floored_text(min_chars), Field(description=_desc(SideVerdict, "rationale"))),
        violates=(bool, Field(description=_desc(SideVerdict, "violates"))),
        violated_policies=(list[_ids(policy_ids)], Field(description=_desc(SideVerdict, "violated_policies"))),
        faithfulness=(Score, Field(description=_desc(SideVerdict, "faithfulness"))),
    )
    # No description beside a $ref: OpenAI's strict mode refuses siblings of $ref.
    return create_model("JudgeVerdict", __config__=_STRICT, a=(side, ...), b=(side, ...))
