"""Teacher settings and agent slots: how every stage's recipe names its teacher and its agents.

A stage's recipe has a `teacher:` section (one endpoint or replicas, the structured-output mode,
concurrency, retries) and names agents in slots (a card, a path, or Python, with per-slot model,
endpoint and sampling). What changes the output is hashed into the run's identity; where and how
fast the teacher runs (`NON_SEMANTIC_TEACHER` of aidsafe.run.identity, a slot's
`NON_SEMANTIC_SLOT`) is not, so changing it keeps a run resumable.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from aidsafe.config.yamlio import register_config_model
from aidsafe.run.checkpoints import CheckpointEvery
from aidsafe.run.identity import NON_SEMANTIC_TEACHER
from aidsafe.teacher.types import Endpoint

__all__ = [
    "NON_SEMANTIC_SLOT",
    "AgentSlot",
    "EnvVarName",
    "TeacherSettings",
    "check_env_var_name",
    "semantic_teacher",
]

_ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_env_var_name(value: str) -> str:
    """`value` if it names an environment variable. A key pasted where its variable's name goes
    would be written into recipe.yaml and quoted in messages: refused, and never echoed."""
    if not _ENV_VAR.fullmatch(value):
        raise ValueError(
            "expected the NAME of the environment variable that holds the key (e.g. OPENAI_API_KEY), "
            "not the key itself; the value given is not shown"
        )
    return value


# Where a key is read from: a variable name, never the key (`check_env_var_name`).
EnvVarName = Annotated[str, AfterValidator(check_env_var_name)]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


@register_config_model
class TeacherSettings(_Config):
    # One URL, or a list of replicas serving the same model (requests go to the least busy).
    base_url: str | list[str] = "http://localhost:8000/v1"
    model: str
    api_key_env: EnvVarName = "OPENAI_API_KEY"
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
    api_key_env: EnvVarName | None = None
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


# Where a slot's agent runs, not what it says.
NON_SEMANTIC_SLOT = ("base_url", "api_key_env")


def semantic_teacher(teacher: dict[str, Any]) -> dict[str, Any]:
    """A dumped `teacher:` section without what changes only where or how fast it runs."""
    return {key: value for key, value in teacher.items() if key not in NON_SEMANTIC_TEACHER}
