"""Pair recipes: the teacher, which agents fill the three pair roles, and the loop's budget.

Loaded and checked (cards, templates, Python agents) before any teacher call, as generation
recipes are; the run hash (aidsafe.run.identity) leaves out what changes speed, not output.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from aidsafe.agents.context import ResolvedAgent
from aidsafe.agents.policies import PolicySet, load_policies
from aidsafe.agents.resolve import resolve_agent
from aidsafe.agents.settings import AgentSlot, EnvVarName, TeacherSettings, semantic_slot, semantic_teacher
from aidsafe.config.resources import resolve_resource
from aidsafe.config.yamlio import load_yaml, register_config_model, validate_model
from aidsafe.guard.judge import GUARD_JUDGE_FORMATS
from aidsafe.pairs.guard_judge import resolve_guard_judge
from aidsafe.pairs.roles import PAIR_ROLES
from aidsafe.run.identity import run_hash
from aidsafe.teacher.types import Endpoint

__all__ = [
    "GuardJudgeSettings",
    "MARGINS",
    "PairAgents",
    "PairSettings",
    "PairsRecipe",
    "PairPipeline",
    "load_pairs_pipeline",
]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


@register_config_model
class PairAgents(_Config):
    ear_whisperer: AgentSlot
    rejected_cot: AgentSlot
    judge: AgentSlot | None = Field(
        default=None, description="The LLM judge (pairs.judge: llm); none for a guard judge."
    )


@register_config_model
class GuardJudgeSettings(_Config):
    """A guard model served over the completions API, judging each side by P(unsafe)."""

    format: Literal[GUARD_JUDGE_FORMATS] = Field(description="The guard's prompt format.")  # type: ignore[valid-type]
    model: str
    base_url: str | None = Field(default=None, description="Default: the teacher's base_url.")
    api_key_env: EnvVarName | None = Field(default=None, description="Default: the teacher's api_key_env.")
    timeout_s: float | None = Field(default=None, gt=0, description="Default: the teacher's timeout_s.")
    policies: str | None = Field(
        default=None, description="Policy set the guard judges by; default the recipe's (the chosen sides' own)."
    )


# The judge kinds' margin scales and defaults. LLM judge: chosen minus rejected faithfulness
# (1-5); ours: 2 points keeps only pairs the judge tells apart clearly. Guard judge: rejected
# minus chosen P(unsafe) (0-1); ours: 0.5, e.g. 0.2 against 0.7, so a pair is not two coin flips
# either side of the 0.5 threshold.
MARGINS = {"llm": (4.0, 2.0), "guard": (1.0, 0.5)}  # kind -> (largest, default)


@register_config_model
class PairSettings(_Config):
    judge: Literal["llm", "guard"] = Field(default="llm", description="llm: a judge card; guard: pairs.guard_judge.")
    guard_judge: GuardJudgeSettings | None = Field(default=None, validate_default=True)
    margin: float | None = Field(
        default=None, ge=0, validate_default=True, description="Judge scale points; default per judge kind."
    )
    # Ours: the paper improves the belief over "a few" in-context iterations.
    max_iterations: int = Field(default=3, ge=1, description="Beliefs tried per sample at most.")

    @field_validator("guard_judge")
    @classmethod
    def _guard_judge_for_guard(cls, value: GuardJudgeSettings | None, info: ValidationInfo) -> Any:
        kind = info.data.get("judge")
        if kind == "guard" and value is None:
            formats = " | ".join(GUARD_JUDGE_FORMATS)
            raise PydanticCustomError(
                "guard_judge", f"pairs.judge is guard: add this section (format: {formats}, model, base_url)"
            )
        if kind == "llm" and value is not None:
            raise PydanticCustomError("guard_judge", "only used with pairs.judge: guard (the judge is llm)")
        return value

    @field_validator("margin")
    @classmethod
    def _margin_on_the_judge_scale(cls, value: float | None, info: ValidationInfo) -> float:
        largest, default = MARGINS.get(info.data.get("judge", "llm"), MARGINS["llm"])
        if value is None:
            return default
        if value > largest:
            kind = info.data.get("judge")
            raise PydanticCustomError("margin", f"{value:g} is off the {kind} judge's scale; expected 0 to {largest:g}")
        return value


@register_config_model
class PairsRecipe(_Config):
    # The recipe's kind (aidsafe.kinds), optional here: a `pairs:` section says it too. Not dumped,
    # so neither the recipe hash nor the run's recipe.yaml changes with it.
    kind: Literal["pairs"] = Field(default="pairs", exclude=True)
    name: str
    description: str = ""
    policies: str = Field(description="Built-in policy set name or a path; the generation run's own set.")
    teacher: TeacherSettings
    agents: PairAgents
    pairs: PairSettings = Field(default_factory=PairSettings, validate_default=True)
    min_text_chars: int = Field(default=8, ge=1)
    seed: int = 0

    base_dir: Path = Field(default=Path("."), exclude=True)

    @field_validator("pairs")
    @classmethod
    def _judge_agent_for_llm(cls, value: PairSettings, info: ValidationInfo) -> PairSettings:
        agents = info.data.get("agents")
        if agents is None:
            return value  # agents itself failed: that error is the one to show
        if value.judge == "llm" and agents.judge is None:
            raise PydanticCustomError("judge", "judge is llm but agents.judge names no judge agent (built-in: judge)")
        if value.judge == "guard" and agents.judge is not None:
            raise PydanticCustomError(
                "judge", "judge is guard (pairs.guard_judge) but agents.judge names an LLM judge too; remove one"
            )
        return value


@dataclass
class PairPipeline:
    recipe: PairsRecipe
    policies: PolicySet
    agents: dict[str, ResolvedAgent]  # role -> its one agent
    recipe_hash: str

    @property
    def endpoints(self) -> list[Endpoint]:
        unique = {
            (a.endpoint.base_url, a.endpoint.model, a.endpoint.chat_model): a.endpoint for a in self.agents.values()
        }
        return list(unique.values())

    @property
    def guard_endpoint(self) -> Endpoint | None:
        """The guard judge's endpoint (raw completions only), or None for an LLM judge."""
        return self.agents["judge"].endpoint if self.recipe.pairs.judge == "guard" else None

    def resolved_recipe(self) -> dict[str, Any]:
        data = self.recipe.model_dump(mode="json")
        data["resolved"] = {
            "recipe_hash": self.recipe_hash,
            "policy_set": {"id": self.policies.id, "version": self.policies.version},
            "policies": self.policies.model_dump(mode="json"),  # the texts as run (see generation's)
            "agents": {role: a.provenance() for role, a in self.agents.items()},
        }
        return data


def load_pairs_pipeline(ref: str | Path, overrides: list[str] | None = None) -> PairPipeline:
    path = resolve_resource(ref, "recipes")
    data, lines = load_yaml(path)
    if overrides:
        from aidsafe.config.overrides import apply_overrides

        data = apply_overrides(data, overrides)
    recipe = validate_model(PairsRecipe, data, str(path), lines, overrides or ())
    recipe = recipe.model_copy(update={"base_dir": path.parent})
    policy_path = recipe.base_dir / recipe.policies
    policies = load_policies(policy_path if policy_path.is_file() else recipe.policies).without_cases()  # rules only
    agents = {
        role: resolve_agent(getattr(recipe.agents, spec.slot), spec, recipe, f"agents.{spec.slot}")
        for role, spec in PAIR_ROLES.items()
        if not (role == "judge" and recipe.pairs.judge == "guard")
    }
    if recipe.pairs.judge == "guard":
        agents["judge"] = _guard_judge(recipe, policies)
    fingerprints = {role: a.fingerprint for role, a in agents.items()}
    return PairPipeline(recipe, policies, agents, _semantic_hash(recipe, policies, fingerprints))


def _guard_judge(recipe: PairsRecipe, policies: PolicySet) -> ResolvedAgent:
    settings = recipe.pairs.guard_judge
    assert settings is not None  # PairSettings refuses a guard judge without its section
    if settings.policies is not None:
        path = recipe.base_dir / settings.policies
        policies = load_policies(path if path.is_file() else settings.policies).without_cases()
    # Its own URL if given, else the teacher's (replicas included); completions, so no structured mode.
    endpoint = recipe.teacher.endpoint(settings.base_url, model=settings.model, api_key_env=settings.api_key_env,
                                       timeout_s=settings.timeout_s, langchain=False)  # fmt: skip
    return resolve_guard_judge(settings.format, policies, endpoint)


def _semantic_hash(recipe: PairsRecipe, policies: PolicySet, fingerprints: dict[str, str]) -> str:
    body = recipe.model_dump(mode="json")
    body["teacher"] = semantic_teacher(body["teacher"])
    body["agents"] = {role: None if slot is None else semantic_slot(slot) for role, slot in body["agents"].items()}
    for key in ("base_url", "api_key_env", "timeout_s"):  # where the guard runs, not what it says
        (body["pairs"].get("guard_judge") or {}).pop(key, None)
    return run_hash({"recipe": body, "policies": policies.model_dump(mode="json"), "agents": fingerprints})
