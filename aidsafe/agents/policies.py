"""Policy sets: the written safety policies agents reason over and cite by id."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aidsafe.config.resources import resolve_resource
from aidsafe.config.yamlio import load_yaml, register_config_model, validate_model

__all__ = ["Policy", "PolicySet", "load_policies", "render_policies"]


@register_config_model
class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    title: str
    rule: str
    allowed: list[str] = Field(default_factory=list)
    disallowed: list[str] = Field(default_factory=list)


@register_config_model
class PolicySet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    version: str
    description: str = ""
    policies: list[Policy] = Field(min_length=1)

    @field_validator("policies")
    @classmethod
    def _unique_ids(cls, policies: list[Policy]) -> list[Policy]:
        seen: set[str] = set()
        for policy in policies:
            if policy.id in seen:
                raise ValueError(f"policy id {policy.id!r} appears twice")
            seen.add(policy.id)
        return policies

    @property
    def ids(self) -> list[str]:
        return [policy.id for policy in self.policies]


def load_policies(ref: str | Path) -> PolicySet:
    """Load a policy set from a YAML path or a built-in name (e.g. "aidsafe")."""
    path = resolve_resource(ref, "policies")
    data, lines = load_yaml(path)
    return validate_model(PolicySet, data, str(path), lines)


def render_policies(policy_set: PolicySet) -> str:
    """The policy text agents see: each policy with its id, so thoughts can cite it."""
    blocks = []
    for policy in policy_set.policies:
        lines = [f"[{policy.id}] {policy.title}", policy.rule.strip()]
        if policy.allowed:
            lines.append("Allowed: " + "; ".join(policy.allowed))
        if policy.disallowed:
            lines.append("Disallowed: " + "; ".join(policy.disallowed))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
