"""The request body of one call: the sampling settings split into the SDK's own parameters and
the extra body, and the structured-output fields for the endpoint's mode. Pure."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from openai.resources.chat.completions import AsyncCompletions as AsyncChatCompletions
from openai.resources.completions import AsyncCompletions as AsyncTextCompletions
from pydantic import BaseModel

__all__ = ["CHAT_PARAMS", "TEXT_PARAMS", "request_kwargs", "split_sampling"]

# The SDK's `create` takes only OpenAI's own parameters; server-specific sampling settings such as
# vLLM's top_k, min_p or repetition_penalty must travel in `extra_body`.
CHAT_PARAMS = frozenset(inspect.signature(AsyncChatCompletions.create).parameters) - {"self"}
TEXT_PARAMS = frozenset(inspect.signature(AsyncTextCompletions.create).parameters) - {"self", "model", "prompt"}


def request_kwargs(
    sampling: Mapping[str, Any], schema: type[BaseModel], mode: str, named_tool: bool = False
) -> dict[str, Any]:
    """Keyword arguments for `ChatOpenAI.ainvoke`: the sampling settings, and the structured-output
    fields in `extra_body`."""
    kwargs = split_sampling(sampling, CHAT_PARAMS)
    kwargs["extra_body"] = {**kwargs.get("extra_body", {}), **_structured_output_fields(schema, mode, named_tool)}
    return kwargs


def split_sampling(sampling: Mapping[str, Any], sdk_params: frozenset[str]) -> dict[str, Any]:
    """The SDK method's own parameters as they are; the other settings (and a given `extra_body`)
    merged into `extra_body`, which the SDK sends untouched."""
    kwargs = {name: value for name, value in sampling.items() if name in sdk_params}
    extra_body = {name: value for name, value in sampling.items() if name not in sdk_params}
    extra_body.update(kwargs.pop("extra_body", None) or {})
    if extra_body:
        kwargs["extra_body"] = extra_body
    return kwargs


@lru_cache(maxsize=256)
def _structured_output_fields(schema: type[BaseModel], mode: str, named_tool: bool = False) -> dict[str, Any]:
    """Request body fields that make the server produce `schema`.

    They go in the extra body, which the openai SDK sends untouched: as typed parameters the SDK
    walks the whole schema on every call, and a `response_format` makes langchain-openai take the
    SDK's `parse()` path, which re-parses the reply we parse ourselves (together about a
    millisecond of CPU per call). Cached, since building a JSON schema costs about as much.
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
