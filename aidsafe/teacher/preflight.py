"""The pre-flight's structured request: one tiny call in the endpoint's structured-output mode,
so a server that refuses the mode, or ignores the schema, stops the run before the first sample,
not after every sample's retries. Kept free of the client so the scripted test server can answer
it by name.

The probe's schema admits exactly one value, `{"probe": "aidsafe-probe-<random hex>"}`, a token
that appears nowhere but in the schema: the prompt asks only for "a JSON object". A server that
applies the schema (guided decoding, a forced tool call) can answer nothing else; a model left
unconstrained (vLLM >= 0.12 given the old `guided_*` fields, a proxy that strips
`response_format`, a server that ignores `tools`) cannot guess it. Every call of a run would
otherwise still answer 200, and only the share of rejected samples would say something is wrong.
"""

from __future__ import annotations

import re
import secrets
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, WithJsonSchema, create_model

__all__ = [
    "PREFLIGHT_MESSAGES",
    "PREFLIGHT_SAMPLING",
    "PROBE_SCHEMA_NAME",
    "mode_refused",
    "names_mode",
    "probe_schema",
    "schema_ignored",
]

OTHER_MODE = {"json_schema": "function_calling", "function_calling": "json_schema"}
# Words a server's error uses for the request fields of each mode (vLLM, OpenAI, llama.cpp's two
# servers, SGLang): only an answer that names them says the mode itself was refused.
_MODE_WORDS = {
    "json_schema": re.compile(r"response_format|json_schema|json schema|structured output|guided", re.IGNORECASE),
    "function_calling": re.compile(r"tool_choice|\btools?\b|tool call|function[ _]call|\bfunctions\b", re.IGNORECASE),
}

# The name the server sees (and what the scripted test server answers by).
PROBE_SCHEMA_NAME = "AidsafePreflight"
# Nothing here names the value the schema allows: an unconstrained model must not be able to write it.
PREFLIGHT_MESSAGES = [{"role": "user", "content": "Reply with a JSON object."}]
# Enough for the one allowed object under any tokenizer (about 15 tokens); a model that rambles
# is cut off, and a cut-off reply proves nothing either way (`aidsafe check` says "not known").
PREFLIGHT_SAMPLING = {"max_tokens": 32, "temperature": 0}


def probe_schema() -> type[BaseModel]:
    """A fresh probe: a model whose schema allows one value, a new random token each time (a
    one-value `enum`, which every guided-decoding backend reads, as the guard stages' pinned
    labels are)."""
    token = f"aidsafe-probe-{secrets.token_hex(4)}"
    pinned = Annotated[Literal[token], WithJsonSchema({"type": "string", "enum": [token]})]  # type: ignore[valid-type]
    return create_model(PROBE_SCHEMA_NAME, __config__=ConfigDict(extra="forbid"), probe=(pinned, ...))


def names_mode(failure: Any, mode: str) -> bool:
    """Whether a failed request's answer (a wire StatusError) names `mode`'s request fields."""
    words = _MODE_WORDS.get(mode)
    return words is not None and bool(words.search(f"{failure.server_message} {failure.text}"))


def mode_refused(base_url: str, mode: str, failure: str) -> str:
    """The one line for a server that answers the model list but refuses a structured request."""
    other = OTHER_MODE.get(mode, "function_calling")
    return (
        f"teacher at {base_url} refused a structured-output request in {mode} mode ({failure}); "
        f"if the server does not support {mode}, use the other mode: "
        f"--set teacher.structured_output={other} (or structured_output in the agent's slot)"
    )


def schema_ignored(base_url: str, model: str, mode: str, reply: str) -> str:
    """The one line for a server that answered the probe with something its schema does not allow."""
    fields = "response_format" if mode == "json_schema" else "tools and tool_choice"
    other = OTHER_MODE.get(mode, "function_calling")
    return (
        f"teacher {model} at {base_url} ignores the structured-output schema ({mode} mode): asked for the one "
        f"value its schema allows, it answered {reply!r}; the server (or a proxy in front of it) does not apply "
        f"{fields}, so replies would only follow the prompt (vLLM >= 0.12 ignores the old guided_* fields): "
        f"fix the server, or try --set teacher.structured_output={other}"
    )
