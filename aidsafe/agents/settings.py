"""Teacher settings and agent slots: how every stage's recipe names its teacher and its agents.

A stage's recipe has a `teacher:` section (one endpoint or replicas, the structured-output mode,
concurrency, retries) and names agents in slots (a card, a path, or Python, with per-slot model,
endpoint and sampling). What changes the output is hashed into the run's identity; where and how
fast the teacher runs (`NON_SEMANTIC_TEACHER` of aidsafe.run.identity, a slot's
`NON_SEMANTIC_SLOT`) is not, so changing it keeps a run resumable.

The teacher, or one slot, may name a LangChain chat model (`chat_model: module:Class`, with
`chat_model_args` for its constructor) to take its calls instead of aidsafe's wire client
(aidsafe.teacher.langchain). The class is part of the run's identity; of its arguments, those that
say where or how fast it runs (`NON_SEMANTIC_CHAT_ARGS`) are not. Unset, neither key appears in a
dump, so the hash of a recipe without them is what it always was.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from aidsafe.config.yamlio import register_config_model
from aidsafe.errors import AidsafeError
from aidsafe.run.checkpoints import CheckpointEvery
from aidsafe.run.identity import NON_SEMANTIC_CHAT_ARGS, NON_SEMANTIC_TEACHER
from aidsafe.teacher.types import ChatModel, Endpoint

__all__ = [
    "NON_SEMANTIC_SLOT",
    "AgentSlot",
    "ChatModelArgs",
    "ChatModelRef",
    "EnvVarName",
    "TeacherSettings",
    "check_env_var_name",
    "semantic_slot",
    "semantic_teacher",
]

_ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CHAT_MODEL_REF = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
# Argument names that hold a secret: recipe.yaml, in the run directory and beside an export,
# would keep it.
_SECRET_NAME = re.compile(r"(^|_)(api_key|key_id|secret|secret_key|password|token)$|secret", re.IGNORECASE)


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


def _check_chat_model_ref(value: str) -> str:
    """`value` if it is written `module:Class`; whether it imports is checked when the recipe's
    agents are resolved (`TeacherSettings.endpoint`), since reading a recipe must not need it."""
    if not _CHAT_MODEL_REF.fullmatch(value):
        raise ValueError(
            f"expected a LangChain chat model as module:Class (e.g. langchain_openai:ChatOpenAI), got {value!r}"
        )
    return value


def _check_chat_model_args(value: dict[str, Any]) -> dict[str, Any]:
    secret = next((name for name in value if _SECRET_NAME.search(name)), None)
    if secret is not None:
        raise ValueError(
            f"{secret}: a secret does not belong in a recipe (the run directory keeps recipe.yaml); leave it "
            "to the provider's own environment variables (the class reads them), or api_key_env for ChatOpenAI"
        )
    return value


# A LangChain chat model by reference, and further arguments for its constructor.
ChatModelRef = Annotated[str, AfterValidator(_check_chat_model_ref)]
ChatModelArgs = Annotated[dict[str, Any], AfterValidator(_check_chat_model_args)]


def _unset(value: Any) -> bool:
    return not value  # None or {}: left out of every dump, so the recipe hash does not change


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
    chat_model: ChatModelRef | None = Field(
        default=None,
        exclude_if=_unset,
        description="A LangChain chat model for every agent's calls, module:Class (langchain_openai:ChatOpenAI, "
        "langchain_aws:ChatBedrockConverse, ...); unset: aidsafe's own OpenAI wire client.",
    )
    chat_model_args: ChatModelArgs = Field(
        default_factory=dict,
        exclude_if=_unset,
        description="Further arguments of chat_model's constructor (region_name, temperature, ...); no secrets.",
    )

    @model_validator(mode="after")
    def _args_need_a_model(self) -> TeacherSettings:
        if self.chat_model_args and self.chat_model is None:
            raise ValueError("chat_model_args is given without chat_model")
        return self

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

    def endpoint(
        self,
        base_url: str | None = None,
        *,
        chat_model: str | None = None,
        chat_model_args: dict[str, Any] | None = None,
        where: str = "teacher",
        langchain: bool = True,
        **fields: object,
    ) -> Endpoint:
        """The Endpoint these settings describe; a per-agent `base_url` replaces the replicas.

        A slot's `chat_model` replaces the teacher's; a slot without one takes the teacher's, its
        `chat_model_args` over the teacher's. `where` names the slot in errors (agents.refiner);
        `langchain=False`: raw completions (a guard judge), which no chat model makes."""
        spec = self._chat_model(chat_model, chat_model_args or {}, where) if langchain else None
        urls = (base_url,) if base_url else self.base_urls
        if spec is not None and not spec.openai_compatible:
            for key, value in (("base_url", base_url), ("api_key_env", fields.get("api_key_env"))):
                if value is not None:
                    raise AidsafeError(
                        f"{where}.{key}: {spec.ref} does not take aidsafe's {key} (only ChatOpenAI does); give "
                        f"its endpoint in chat_model_args (e.g. base_url, region_name) and its key in its provider's "
                        "environment variables"
                    )
            urls = (spec.ref,)  # it finds its own endpoint: the reference names it in messages and lanes
        values = {
            "model": self.model,
            "api_key_env": self.api_key_env,
            "structured_output": self.structured_output,
            "timeout_s": self.timeout_s,
            **{key: value for key, value in fields.items() if value is not None},
        }
        return Endpoint(base_url=urls[0], replicas=urls[1:], chat_model=spec, **values)

    def _chat_model(self, ref: str | None, args: dict[str, Any], where: str) -> ChatModel | None:
        key = f"{where}.chat_model"
        if ref is None and self.chat_model is not None:
            ref, args, key = self.chat_model, {**self.chat_model_args, **args}, "teacher.chat_model"
        if ref is None:
            if args:
                raise AidsafeError(
                    f"{where}.chat_model_args: no chat_model takes them; name one in the slot or in teacher.chat_model"
                )
            return None
        from aidsafe.teacher.langchain import chat_model_class, openai_compatible  # only when one is named

        try:
            cls = chat_model_class(ref)
        except ValueError as exc:
            raise AidsafeError(f"{key}: {exc}") from None
        return ChatModel(ref, args, openai_compatible=openai_compatible(cls))


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
    chat_model: ChatModelRef | None = Field(
        default=None, exclude_if=_unset, description="A LangChain chat model for this agent, module:Class."
    )
    chat_model_args: ChatModelArgs = Field(
        default_factory=dict, exclude_if=_unset, description="Further arguments of the chat model's constructor."
    )

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
    return _semantic_chat_args({key: value for key, value in teacher.items() if key not in NON_SEMANTIC_TEACHER})


def semantic_slot(slot: dict[str, Any]) -> dict[str, Any]:
    """A dumped agent slot without what changes only where its agent runs."""
    return _semantic_chat_args({key: value for key, value in slot.items() if key not in NON_SEMANTIC_SLOT})


def _semantic_chat_args(section: dict[str, Any]) -> dict[str, Any]:
    args = {
        key: value for key, value in section.get("chat_model_args", {}).items() if key not in NON_SEMANTIC_CHAT_ARGS
    }
    section.pop("chat_model_args", None)
    return {**section, "chat_model_args": args} if args else section
