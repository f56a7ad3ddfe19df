"""How many prompt tokens a request holds: counted by the server's own tokenizer where it has an
endpoint for it (vLLM's `POST /tokenize`, at the server's root next to `/v1`), else estimated from
its characters, on the high side. `aidsafe check` says which one it used.

vLLM's endpoint takes the chat request's `messages` (and `tools`, which a chat template renders
into the prompt) and applies the model's chat template, so its count is the prompt the server
will see; it answers `{"count": N, "max_model_len": M, "tokens": [...]}`. A server without the
endpoint (OpenAI, llama-server's takes another shape) answers an error, and the estimate is used.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aidsafe.teacher.types import Endpoint
from aidsafe.teacher.wire import WireError

__all__ = ["CHARS_PER_TOKEN", "count_served_tokens", "estimate_tokens", "server_root"]

# Chosen to overcount: ordinary English text takes more characters per token in the tokenizers of
# current teachers, so an estimate errs towards "does not fit", never the other way.
CHARS_PER_TOKEN = 3
# The chat template's own tokens around each message (role headers, separators), on the high side.
_TOKENS_PER_MESSAGE = 8
_TIMEOUT_S = 10.0


def server_root(base_url: str) -> str:
    """The server's root: `base_url` without its trailing API version (`.../v1`)."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    last = path.rsplit("/", 1)[-1]
    if len(last) > 1 and last[0] == "v" and last[1:].isdigit():
        path = path[: -len(last) - 1]
    return urlunsplit(parts._replace(path=path))


async def count_served_tokens(client: Any, endpoint: Endpoint, body: Mapping[str, Any]) -> int | None:
    """The server tokenizer's count for the chat or completion request `body`; None when the
    server has no such endpoint or its answer holds no count. One try: a count is worth no retry."""
    request: dict[str, Any] = {"model": endpoint.model}
    if "messages" in body:
        request.update(messages=body["messages"], add_generation_prompt=True)
        if body.get("tools"):
            request["tools"] = body["tools"]
    else:
        request["prompt"] = body.get("prompt", "")
    url = server_root(endpoint.base_url) + "/tokenize"
    try:
        reply = await client._wire.request(
            "POST", url, api_key=client._api_key(endpoint), timeout_s=_TIMEOUT_S, body=request
        )
    except WireError:
        return None
    count = reply.get("count")
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None


def estimate_tokens(body: Mapping[str, Any]) -> int:
    """Prompt tokens of the chat or completion request `body`, estimated from its characters (a
    tool's schema counts: chat templates render it into the prompt)."""
    if "messages" not in body:
        return math.ceil(len(str(body.get("prompt", ""))) / CHARS_PER_TOKEN)
    chars = sum(len(str(message.get("content") or "")) for message in body["messages"])
    if body.get("tools"):
        chars += len(json.dumps(body["tools"]))
    return math.ceil(chars / CHARS_PER_TOKEN) + _TOKENS_PER_MESSAGE * len(body["messages"])
