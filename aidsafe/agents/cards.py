"""Agent cards: one YAML file per agent with its prompts, output schema and sampling defaults.

Templates use Python format fields (`{prompt}`, `{policies}` ...); literal braces are doubled.
Which fields a template may use depends on the graph role it fills (see aidsafe.generation.roles); the
recipe loader checks this before any LLM call.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aidsafe.agents.schemas import OUTPUT_SCHEMAS, known_output_schema
from aidsafe.config.resources import resolve_resource
from aidsafe.config.yamlio import load_yaml, register_config_model, validate_model

__all__ = ["AgentCard", "load_card", "template_fields", "render_template"]


@register_config_model
class AgentCard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    role: str = Field(description="The graph role this card is written for.")
    description: str = ""
    output_schema: str
    sampling: dict[str, Any] = Field(default_factory=dict)
    system: str
    user: str

    @field_validator("output_schema")
    @classmethod
    def _known_schema(cls, name: str) -> str:
        if not known_output_schema(name):
            raise ValueError(f"unknown output schema {name!r}; expected one of: {', '.join(OUTPUT_SCHEMAS)}")
        return name

    @field_validator("system", "user")
    @classmethod
    def _parsable_template(cls, template: str) -> str:
        template_fields(template)  # raises ValueError on unbalanced braces
        return template


def load_card(ref: str | Path, base_dir: Path | None = None) -> tuple[AgentCard, Path]:
    """Load a card by path (relative to `base_dir` if given) or by built-in name."""
    candidate = Path(ref) if base_dir is None else base_dir / ref
    path = resolve_resource(candidate if candidate.is_file() else ref, "agents")
    data, lines = load_yaml(path)
    return validate_model(AgentCard, data, str(path), lines), path


def template_fields(template: str) -> set[str]:
    """The placeholder names a template uses."""
    try:
        return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
    except ValueError as exc:
        raise ValueError(f"bad template ({exc}); write literal braces as {{{{ and }}}}") from None


def render_template(template: str, values: dict[str, Any]) -> str:
    return template.format_map(values)
