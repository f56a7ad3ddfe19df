"""Policy sets: the written safety policies agents reason over and cite by id."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from aidsafe.config.resources import resolve_resource
from aidsafe.config.yamlio import load_yaml, register_config_model, validate_model

__all__ = [
    "Case",
    "Policy",
    "PolicySet",
    "describe_policies",
    "is_policy_file",
    "load_policies",
    "policy_lines",
    "render_policies",
]


class _DropEmptyCases(BaseModel):
    """A set without cases dumps exactly as before cases existed, so the recipe hashes of every
    run written before them (which hash the dumped policy set) stay the same."""

    @model_serializer(mode="wrap")
    def _without_empty_cases(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if not data.get("cases"):
            data.pop("cases", None)
        return data


@register_config_model
class Case(BaseModel):
    """A worked precedent: a short piece of content, the verdict the policy gives it, the rule ids
    it turns on and why. Short rules plus cases teach a guard to apply a policy better than long
    rule text alone (CADA)."""

    model_config = ConfigDict(extra="forbid")

    content: str = Field(min_length=1, description="A short example of content a guard may see.")
    verdict: Literal["allowed", "violation"]
    rules: list[str] = Field(
        default_factory=list,
        description="The rule ids the case turns on; a violation names one at least (under a rule: that rule).",
    )
    rationale: str = Field(min_length=1, description="One line: why the policy gives this verdict.")


@register_config_model
class Policy(_DropEmptyCases):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    title: str
    rule: str
    allowed: list[str] = Field(default_factory=list)
    disallowed: list[str] = Field(default_factory=list)
    cases: list[Case] = Field(default_factory=list, description="Precedents under this rule.")

    @model_validator(mode="after")
    def _cases_default_to_this_rule(self) -> Policy:
        for case in self.cases:
            if case.verdict == "violation" and not case.rules:
                case.rules = [self.id]
        return self


@register_config_model
class PolicySet(_DropEmptyCases):
    model_config = ConfigDict(extra="forbid")

    id: str
    version: str
    description: str = ""
    policies: list[Policy] = Field(min_length=1)
    cases: list[Case] = Field(default_factory=list, description="Precedents across rules.")

    @field_validator("policies")
    @classmethod
    def _unique_ids(cls, policies: list[Policy]) -> list[Policy]:
        seen: set[str] = set()
        for policy in policies:
            if policy.id in seen:
                raise ValueError(f"policy id {policy.id!r} appears twice")
            seen.add(policy.id)
        return policies

    @model_validator(mode="after")
    def _cases_name_known_rules(self) -> PolicySet:
        ids = set(self.ids)
        for loc, case in self._located_cases():
            unknown = [rule for rule in case.rules if rule not in ids]
            if unknown:
                _fail(
                    loc + ("rules",),
                    case.rules,
                    f"rule id {unknown[0]!r} is not in this set; expected one of: {', '.join(self.ids)}",
                )
            if case.verdict == "violation" and not case.rules:
                _fail(loc + ("rules",), case.rules, "a violation case names the rule ids it breaks")
        return self

    @property
    def ids(self) -> list[str]:
        return [policy.id for policy in self.policies]

    def all_cases(self) -> list[Case]:
        """Every case: those under a rule first, in file order, then the set's own."""
        return [case for _, case in self._located_cases()]

    def _located_cases(self) -> list[tuple[tuple[str | int, ...], Case]]:
        found = [(("policies", i, "cases", j), c) for i, p in enumerate(self.policies) for j, c in enumerate(p.cases)]
        return found + [(("cases", j), case) for j, case in enumerate(self.cases)]

    def without_cases(self) -> PolicySet:
        """The set as the AIDSAFE roles read it: rules only (their prompts never showed cases)."""
        policies = [policy.model_copy(update={"cases": []}) for policy in self.policies]
        return self.model_copy(update={"policies": policies, "cases": []})


def load_policies(ref: str | Path) -> PolicySet:
    """Load a policy set from a YAML path or a built-in name (e.g. "aidsafe")."""
    path = resolve_resource(ref, "policies")
    data, lines = load_yaml(path)
    return validate_model(PolicySet, data, str(path), lines)


def _fail(loc: tuple[str | int, ...], value: Any, message: str) -> None:
    """Raise as pydantic would for the field at `loc`, so the one-line error names its key and line."""
    detail = InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=value)
    raise ValidationError.from_exception_data("PolicySet", [detail])


def is_policy_file(ref: str | Path) -> bool:
    """Whether `ref` is an existing YAML file holding a policy set (its `policies:` is a list of
    rules; in a recipe it names a set), so `aidsafe validate` can check one on its own."""
    path = Path(ref)
    if not path.is_file():
        return False
    data, _ = load_yaml(path)
    return isinstance(data, dict) and isinstance(data.get("policies"), list)


def describe_policies(policy_set: PolicySet) -> str:
    cases = len(policy_set.all_cases())
    return f"policy set {policy_set.id} v{policy_set.version}: {len(policy_set.policies)} rules, {cases} cases"


def policy_lines(policy: Policy, *, heading: str = "", disallowed: str = "Disallowed") -> list[str]:
    """One rule as text lines: its id and title (after `heading`), the rule, its examples."""
    lines = [f"{heading}[{policy.id}] {policy.title}", policy.rule.strip()]
    if policy.allowed:
        lines.append("Allowed: " + "; ".join(policy.allowed))
    if policy.disallowed:
        lines.append(f"{disallowed}: " + "; ".join(policy.disallowed))
    return lines


def render_policies(policy_set: PolicySet) -> str:
    """The policy text agents see: each policy with its id, so thoughts can cite it."""
    return "\n\n".join("\n".join(policy_lines(policy)) for policy in policy_set.policies)
