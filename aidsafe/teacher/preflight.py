"""The pre-flight's structured request: one tiny call in the endpoint's structured-output mode,
so a server that refuses the mode stops the run before the first sample, not after every
sample's retries. Kept free of the client so the scripted test server can answer it by name."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

__all__ = ["PREFLIGHT_MESSAGES", "PREFLIGHT_SAMPLING", "AidsafePreflight", "mode_refused", "names_mode"]

OTHER_MODE = {"json_schema": "function_calling", "function_calling": "json_schema"}
# Words a server's error uses for the request fields of each mode (vLLM, OpenAI, llama.cpp's two
# servers, SGLang): only an answer that names them says the mode itself was refused.
_MODE_WORDS = {
    "json_schema": re.compile(r"response_format|json_schema|json schema|structured output|guided", re.IGNORECASE),
    "function_calling": re.compile(r"tool_choice|\btools?\b|tool call|function[ _]call|\bfunctions\b", re.IGNORECASE),
}


class AidsafePreflight(BaseModel):
    """Whether the server can produce a schema at all; what the model writes does not matter.
    The name is what the server sees (and what the scripted test server answers)."""

    ok: bool


PREFLIGHT_MESSAGES = [{"role": "user", "content": 'Reply with the JSON object {"ok": true}.'}]
# Enough for '{"ok": true}' under any tokenizer; a model that rambles is cut off, which is fine.
PREFLIGHT_SAMPLING = {"max_tokens": 32, "temperature": 0}


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
