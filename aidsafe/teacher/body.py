"""The JSON body of one request: the model, the conversation or prompt, the sampling settings, and
the structured-output fields for the endpoint's mode. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

__all__ = ["chat_body", "completion_body", "flat_sampling", "structured_output_fields"]

# The chat API's `max_tokens` is deprecated, and OpenAI's reasoning models refuse it; vLLM, SGLang
# and current llama.cpp read `max_completion_tokens` (docs/teacher.md "Sampling").
_CHAT_RENAMES = {"max_tokens": "max_completion_tokens"}


def chat_body(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    sampling: Mapping[str, Any],
    schema: type[BaseModel] | None = None,
    mode: str = "json_schema",
    named_tool: bool = False,
) -> dict[str, Any]:
    """`POST /chat/completions`: with `schema`, the fields that make the server produce it."""
    body = {"model": model, "messages": list(messages), **flat_sampling(sampling, _CHAT_RENAMES)}
    if schema is not None:
        body.update(structured_output_fields(schema, mode, named_tool))
    return body


def completion_body(model: str, prompt: str, sampling: Mapping[str, Any]) -> dict[str, Any]:
    """`POST /completions`: the prompt as it is, no chat template."""
    return {"model": model, "prompt": prompt, **flat_sampling(sampling)}


def flat_sampling(sampling: Mapping[str, Any], renames: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The sampling settings as top-level body fields, a few under the name the endpoint reads
    (`renames`). An `extra_body` mapping (the openai SDK's name for server-specific fields, which
    recipes written for it use) is merged in unchanged, as the SDK does: that is how a field can
    travel under its own name next to a renamed one."""
    renames = renames or {}
    flat = {renames.get(name, name): value for name, value in sampling.items() if name != "extra_body"}
    flat.update(sampling.get("extra_body") or {})
    return flat


@lru_cache(maxsize=256)
def structured_output_fields(schema: type[BaseModel], mode: str, named_tool: bool = False) -> dict[str, Any]:
    """Request body fields that make the server produce `schema`.

    Cached: building a JSON schema costs about a millisecond of CPU, on every call otherwise.
    """
    json_schema = schema.model_json_schema()
    name = schema.__name__
    if mode == "json_schema":
        # What vLLM's guided decoding serves; strict=False because OpenAI's strict mode rejects
        # ordinary pydantic schemas (defaults, optional fields).
        spec = {"name": name, "schema": json_schema, "strict": False}
        return {"response_format": {"type": "json_schema", "json_schema": spec}}
    if mode == "function_calling":
        function = {"name": name, "parameters": json_schema}
        if "description" in json_schema:
            function["description"] = json_schema["description"]
        # With the one tool, "required" forces the same call as naming it, and more servers honour
        # it: current llama-server ignores the named (object) form and lets the model answer in
        # prose (langchain-openai's with_structured_output sends the named form). `named_tool`:
        # the pre-flight found a server that forces a tool only by name (llama-cpp-python).
        choice = {"type": "function", "function": {"name": name}} if named_tool else "required"
        return {"tools": [{"type": "function", "function": function}], "tool_choice": choice}
    raise ValueError(f"unknown structured_output mode {mode!r}")
