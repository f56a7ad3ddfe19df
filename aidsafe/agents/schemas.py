"""Structured outputs of the chain-of-thought agents, and the per-call schemas sent to the teacher.

Shared by every stage that writes or reads a policy-citing chain of thought: generation writes it,
pairs writes a rejected one in the same shape, the CoT judges grade it; later stages register
their own outputs here (`register_output_schema`) so a card can name them.

Two kinds of model:

- The role outputs (`IntentList`, `InitialCoT`, `DeliberationTurn`, `Refinement`): what every
  agent returns and what cards name in `output_schema`. Loose types (`str` ids).
- The per-call models (`call_model(...)`): the same shapes with everything JSON Schema can say
  about this one call written into the schema: policy ids as an enum of the policy set, thought
  ids as an enum of the sample's current ids, one required verdict key per thought for the
  refiner, a content floor on every text. A guided-decoding teacher then cannot produce a reply
  the graph cannot apply, and a teacher without guided decoding is re-asked with pydantic's
  error for the same rules. Every per-call schema is strict-mode compatible: all properties
  required (nullable instead of optional), `additionalProperties: false`, no defaults, no
  `minLength` (the floor is a `pattern`, which OpenAI's strict mode, vLLM, SGLang and
  llama.cpp's grammar converter all accept; no `\\s`/`\\S` shorthands, which llama.cpp cannot).

Descriptions become part of the schema the teacher sees, so they are written as instructions.
Per-call models keep their role output's class name, which is the schema name on the wire.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema, create_model

__all__ = [
    "Intent",
    "IntentList",
    "ThoughtDraft",
    "InitialCoT",
    "CorrectedThought",
    "DeliberationTurn",
    "Refinement",
    "VERDICTS",
    "REMOVAL_REASONS",
    "DEFAULT_MIN_CHARS",
    "OUTPUT_SCHEMAS",
    "output_schema",
    "known_output_schema",
    "register_output_schema",
    "text_pattern",
    "floored_text",
    "call_model",
]

REMOVAL_REASONS = ("repetitive", "redundant", "deceptive", "policy_inconsistent")
VERDICTS = ("keep", *REMOVAL_REASONS)
Verdict = Literal["keep", "repetitive", "redundant", "deceptive", "policy_inconsistent"]
# The content floor: a text shorter than this after trimming is re-asked ("...", a bare "P1").
DEFAULT_MIN_CHARS = 8

# Whitespace is stripped before a text is validated, so "   " is re-asked instead of saved empty.
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Intent(_Output):
    text: Text = Field(description="One intent of the user, in one sentence.")
    kind: Literal["explicit", "implicit"] = Field(description="Stated outright, or inferred.")
    nature: Literal["benign", "harmful"] = Field(description="Whether serving it could cause harm.")


class IntentList(_Output):
    intents: list[Intent] = Field(min_length=1, description="Explicit intents first, then implicit ones.")


class ThoughtDraft(_Output):
    text: Text = Field(description="One reasoning step.")
    policies: list[str] = Field(default_factory=list, description="Ids of the policies this step applies.")


class InitialCoT(_Output):
    thoughts: list[ThoughtDraft] = Field(min_length=1)
    response: Text = Field(description="The response to the user that follows from the thoughts.")


class CorrectedThought(ThoughtDraft):
    replaces: str | None = Field(
        default=None, description="Id of the existing thought this one corrects (e.g. 't3'); null to add."
    )


class DeliberationTurn(_Output):
    thoughts: list[CorrectedThought] = Field(
        default_factory=list, description="New thoughts, or corrections of existing ones. Empty if none."
    )
    response: Text = Field(description="The response to the user after this turn (updated or unchanged).")
    complete: bool = Field(description="True if you agree with the thoughts and response and nothing is missing.")


class Refinement(_Output):
    verdicts: dict[str, Verdict] = Field(description="For every thought id: keep, or the reason to remove it.")
    response: Text = Field(description="The final response to the user.")


OUTPUT_SCHEMAS: dict[str, type[BaseModel]] = {
    model.__name__: model for model in (IntentList, InitialCoT, DeliberationTurn, Refinement)
}


def register_output_schema(model: type[BaseModel]) -> type[BaseModel]:
    """Make `model` nameable in a card's `output_schema` (later stages register their roles' outputs)."""
    OUTPUT_SCHEMAS.setdefault(model.__name__, model)
    return model


# Later stages whose cards name their own output schemas (registered when the module loads). A
# card is valid whichever command loads it, so a name not yet known loads these, by name: this
# stage still imports no later one.
_STAGE_SCHEMA_MODULES = ("aidsafe.pairs.schemas", "aidsafe.eval.cot_judge", "aidsafe.eval.judges")


def known_output_schema(name: str) -> bool:
    if name not in OUTPUT_SCHEMAS:
        import importlib

        for module in _STAGE_SCHEMA_MODULES:
            importlib.import_module(module)
    return name in OUTPUT_SCHEMAS


def output_schema(name: str) -> type[BaseModel]:
    """The output model named `name`; KeyError lists the known names."""
    if not known_output_schema(name):
        raise KeyError(f"unknown output schema {name!r}; expected one of: {', '.join(OUTPUT_SCHEMAS)}")
    return OUTPUT_SCHEMAS[name]


# Per-call models -------------------------------------------------------------------------------

_EDGE = r"[^ \t\n\r]"  # not ASCII whitespace, spelled out: llama.cpp's converter has no \S
_ANY = r"(.|\n)"


def text_pattern(min_chars: int) -> str:
    """A regex for a trimmed text of at least `min_chars` characters (JSON Schema `pattern`)."""
    if min_chars <= 1:
        return f"^{_EDGE}({_ANY}*{_EDGE})?$"
    return f"^{_EDGE}{_ANY}{{{min_chars - 2},}}{_EDGE}$"


@lru_cache(maxsize=16)
def floored_text(min_chars: int) -> Any:
    """A stripped text of at least `min_chars` characters. The schema says it as a `pattern`;
    pydantic checks the stripped length (the same rule) and says so in words for the re-ask."""

    def floor(text: str) -> str:
        if len(text) < min_chars:
            raise ValueError(
                f"{len(text)} characters after trimming; write at least {min_chars} characters of real "
                "content, not a placeholder"
            )
        return text

    return Annotated[
        str,
        StringConstraints(strip_whitespace=True),
        AfterValidator(floor),
        WithJsonSchema({"type": "string", "pattern": text_pattern(min_chars)}),
    ]


def _text(min_chars: int, description: str) -> Any:
    return (floored_text(min_chars), Field(description=description))


def _enum(values: tuple[str, ...]) -> Any:
    """`Literal[values]`; a single value is still an enum (`Literal` of one is a `const`)."""
    return Literal[values] if values else None  # type: ignore[valid-type]


_STRICT = ConfigDict(extra="forbid")


def _model(name: str, **fields: Any) -> type[BaseModel]:
    return create_model(name, __config__=_STRICT, **fields)


def _description(model: type[BaseModel], field: str) -> str:
    return model.model_fields[field].description or ""


@lru_cache(maxsize=64)
def _intent_list(min_chars: int) -> type[BaseModel]:
    intent = _model(
        "Intent",
        text=_text(min_chars, _description(Intent, "text")),
        kind=(Intent.model_fields["kind"].annotation, Field(description=_description(Intent, "kind"))),
        nature=(Intent.model_fields["nature"].annotation, Field(description=_description(Intent, "nature"))),
    )
    intents = Field(min_length=1, description=_description(IntentList, "intents"))
    return _model("IntentList", intents=(list[intent], intents))


def _policies_field(policy_ids: tuple[str, ...]) -> Any:
    cited = _enum(policy_ids)
    return (list[cited], Field(description="Ids of the policies this step applies (empty if none)."))


@lru_cache(maxsize=64)
def _initial_cot(policy_ids: tuple[str, ...], min_chars: int) -> type[BaseModel]:
    thought = _model(
        "ThoughtDraft",
        text=_text(min_chars, _description(ThoughtDraft, "text")),
        policies=_policies_field(policy_ids),
    )
    return _model(
        "InitialCoT",
        thoughts=(list[thought], Field(min_length=1)),
        response=_text(min_chars, _description(InitialCoT, "response")),
    )


@lru_cache(maxsize=1024)
def _deliberation_turn(policy_ids: tuple[str, ...], thought_ids: tuple[str, ...], min_chars: int) -> type[BaseModel]:
    target = _enum(thought_ids)
    replaces = (target | None) if target is not None else None
    thought = _model(
        "CorrectedThought",
        text=_text(min_chars, _description(CorrectedThought, "text")),
        policies=_policies_field(policy_ids),
        replaces=(replaces, Field(description="Id of the existing thought this one corrects; null to add a new one.")),
    )
    return _model(
        "DeliberationTurn",
        thoughts=(list[thought], Field(description=_description(DeliberationTurn, "thoughts"))),
        response=_text(min_chars, _description(DeliberationTurn, "response")),
        complete=(bool, Field(description=_description(DeliberationTurn, "complete"))),
    )


@lru_cache(maxsize=1024)
def _refinement(thought_ids: tuple[str, ...], min_chars: int) -> type[BaseModel]:
    # One required key per thought: accounting for every thought is structural, and no id can be
    # named twice or left out. (A list of {id, verdict} could do neither.)
    verdicts = create_model(
        "Verdicts",
        __config__=_STRICT,
        __doc__="For every thought id: keep, or the reason to remove it.",
        **{tid: (Verdict, Field(description=f"keep {tid}, or why it goes")) for tid in thought_ids},
    )
    return _model(
        "Refinement",
        # No description beside a $ref: OpenAI's strict mode refuses siblings of $ref.
        verdicts=(verdicts, ...),
        response=_text(min_chars, _description(Refinement, "response")),
    )


def call_model(
    output: type[BaseModel],
    *,
    policy_ids: tuple[str, ...],
    thought_ids: tuple[str, ...] = (),
    min_chars: int = DEFAULT_MIN_CHARS,
) -> type[BaseModel]:
    """The model to send the teacher for one call of a role whose output is `output`.

    Cached by its arguments (building a model costs about a millisecond), so a run makes one per
    distinct id tuple; the teacher client's schema cache keys on the class and hits too.
    """
    if output is IntentList:
        return _intent_list(min_chars)
    if output is InitialCoT:
        return _initial_cot(policy_ids, min_chars)
    if output is DeliberationTurn:
        return _deliberation_turn(policy_ids, thought_ids, min_chars)
    if output is Refinement:
        return _refinement(thought_ids, min_chars)
    raise KeyError(f"no per-call schema for {output.__name__}")
