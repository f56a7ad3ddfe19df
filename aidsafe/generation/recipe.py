"""Generation recipes: which agents fill which graph roles, the teacher, budgets and dedup."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aidsafe.config.resources import resolve_resource
from aidsafe.config.yamlio import load_yaml, register_config_model, validate_model
from aidsafe.run.checkpoints import CheckpointEvery
from aidsafe.teacher.types import Endpoint

__all__ = [
    "TeacherSettings",
    "AgentSlot",
    "AgentRoles",
    "Deliberation",
    "Dedup",
    "Recipe",
    "load_recipe",
    "semantic_hash",
]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


@register_config_model
class TeacherSettings(_Config):
    # One URL, or a list of replicas serving the same model (requests go to the least busy).
    base_url: str | list[str] = "http://localhost:8000/v1"
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    structured_output: Literal["json_schema", "function_calling"] = "json_schema"
    timeout_s: float = Field(default=120.0, gt=0)
    concurrency: int | Literal["auto"] = Field(
        default=32, description="Requests in flight at most, or auto: adapt per replica (AIMD) up to max_concurrency."
    )
    max_concurrency: int = Field(default=256, ge=1, description="The ceiling of an auto concurrency, per replica.")
    max_transport_retries: int = Field(default=6, ge=0)
    max_parse_retries: int = Field(default=2, ge=0)
    backoff_base_s: float = Field(default=1.0, gt=0, description="First transport-retry wait; doubles each try.")
    backoff_max_s: float = Field(default=30.0, gt=0, description="Longest wait, Retry-After included.")
    # How often a multi-step sample's LangGraph thread is stored (aidsafe.run.checkpoints): what a
    # hard kill costs, traded against the client's CPU. Not in the recipe hash.
    checkpoint: CheckpointEvery = Field(
        default="sample",
        description="sample: store a sample's graph when it ends, fails or is interrupted (a kill -9 redoes "
        "the samples in flight); step: after every step (a kill -9 redoes only the calls in flight).",
    )

    @field_validator("base_url")
    @classmethod
    def _some_url(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("base_url: give one URL or a non-empty list of replica URLs")
        return value

    @field_validator("concurrency")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("concurrency must be at least 1, or auto")
        return value

    @property
    def base_urls(self) -> tuple[str, ...]:
        return tuple(self.base_url) if isinstance(self.base_url, list) else (self.base_url,)

    @property
    def most_in_flight(self) -> int:
        """Requests the client may ever have in flight (the executor keeps twice as many items busy)."""
        return self.max_concurrency if self.concurrency == "auto" else self.concurrency

    def endpoint(self, base_url: str | None = None, **fields: object) -> Endpoint:
        """The Endpoint these settings describe; a per-agent `base_url` replaces the replicas."""
        urls = (base_url,) if base_url else self.base_urls
        values = {
            "model": self.model,
            "api_key_env": self.api_key_env,
            "structured_output": self.structured_output,
            "timeout_s": self.timeout_s,
            **{key: value for key, value in fields.items() if value is not None},
        }
        return Endpoint(base_url=urls[0], replicas=urls[1:], **values)


@register_config_model
class AgentSlot(_Config):
    """One agent in a role. Written as a bare reference or as a mapping with overrides."""

    agent: str = Field(description="Built-in card name, card path, module:attr or file.py:attr.")
    name: str | None = None
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    structured_output: Literal["json_schema", "function_calling"] | None = None
    sampling: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_reference(cls, value: Any) -> Any:
        return {"agent": value} if isinstance(value, str) else value

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        # `_from_reference` takes a bare string too: the JSON Schema (aidsafe schema) must say so,
        # or editors flag every `judge: judge` in a recipe.
        mapping = handler(core_schema)
        reference = {"type": "string", "description": "A bare reference: the same as {agent: <it>}."}
        return {"anyOf": [reference, mapping]}


@register_config_model
class AgentRoles(_Config):
    """Only initial_cot is required: a recipe that leaves out the other roles runs a shorter graph
    (recipes/llm-zs.yaml, the paper's zero-shot baseline, has initial_cot alone)."""

    intent_decomposer: AgentSlot | None = None
    initial_cot: AgentSlot
    deliberators: list[AgentSlot] = Field(default_factory=list)
    refiner: AgentSlot | None = None


@register_config_model
class Deliberation(_Config):
    # Not published in the paper; 4 turns lets two alternating agents each review twice.
    max_rounds: int = Field(default=4, ge=0, description="Deliberation turns at most; one agent speaks per turn.")


@register_config_model
class Dedup(_Config):
    enabled: bool = True
    model: str = "all-MiniLM-L6-v2"
    threshold: float = Field(default=0.9, gt=0, le=1)
    # Where the embedding model runs: a torch device ("cpu", "cuda", "cuda:1", "mps"); unset lets
    # sentence-transformers pick (CUDA when there is one). Not part of the recipe hash: it changes
    # speed, not which thoughts go.
    device: str | None = None


@register_config_model
class Recipe(_Config):
    name: str
    description: str = ""
    policies: str = Field(description="Built-in policy set name or a path (relative to the recipe).")
    teacher: TeacherSettings
    agents: AgentRoles
    deliberation: Deliberation = Field(default_factory=Deliberation)
    dedup: Dedup = Field(default_factory=Dedup)
    # The content floor (docs/agents.md): a thought, intent or response shorter than this after
    # trimming is re-asked; the schema sent to the teacher says so too.
    min_text_chars: int = Field(default=8, ge=1)
    seed: int = 0
    # The corpus's license as a Hub license id (e.g. cc-by-4.0), for `aidsafe export`'s card;
    # never guessed when absent. It does not change a sample, so it is not in the recipe hash.
    license: str | None = None

    # Where relative paths in the recipe resolve; not part of the YAML.
    base_dir: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _deliberators_for_rounds(self) -> Recipe:
        if self.deliberation.max_rounds > 0 and not self.agents.deliberators:
            raise ValueError(
                f"deliberation.max_rounds is {self.deliberation.max_rounds} but agents.deliberators is empty; "
                "list deliberators or set deliberation.max_rounds: 0"
            )
        return self


def load_recipe(ref: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Load a recipe by path or built-in name, apply `key=value` overrides, validate."""
    path = resolve_resource(ref, "recipes")
    data, lines = load_yaml(path)
    if overrides:
        from aidsafe.config.overrides import apply_overrides

        data = apply_overrides(data, overrides)
    recipe = validate_model(Recipe, data, str(path), lines, overrides or ())
    return recipe.model_copy(update={"base_dir": path.parent})


# Fields that change what the teacher is asked or how outputs are filtered. Endpoint URL, keys,
# concurrency, timeouts, retry budgets and checkpoint frequency do not, so changing them keeps a
# run resumable.
_NON_SEMANTIC_TEACHER = {
    "base_url",
    "api_key_env",
    "timeout_s",
    "concurrency",
    "max_concurrency",
    "max_transport_retries",
    "backoff_base_s",
    "backoff_max_s",
    "checkpoint",
}


def semantic_hash(recipe: Recipe, extra: dict[str, Any]) -> str:
    """Hash of everything that changes the output: recipe fields plus resolved policies and agents."""
    body = recipe.model_dump(mode="json")
    for key in _NON_SEMANTIC_TEACHER:
        body["teacher"].pop(key, None)
    body["dedup"].pop("device", None)
    body.pop("license", None)
    for slot in _all_slots(body["agents"]):
        slot.pop("base_url", None)
        slot.pop("api_key_env", None)
    payload = json.dumps({"recipe": body, **extra}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def _all_slots(agents: dict[str, Any]) -> list[dict[str, Any]]:
    slots = [agents["intent_decomposer"], agents["initial_cot"], *agents["deliberators"], agents["refiner"]]
    return [slot for slot in slots if slot is not None]  # roles a recipe leaves out have none
