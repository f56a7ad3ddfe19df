"""Pure helpers around one structured reply: the text to validate, the validation, and what a
re-ask sends back. No I/O; the client (client.py) calls them for every reply."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from aidsafe.oneline import one_line

__all__ = [
    "clean_reply",
    "content_text",
    "excerpt",
    "has_tool_call",
    "parse_reply",
    "reask",
    "reply_text",
    "short_error",
    "valid_unicode",
]

M = TypeVar("M", bound=BaseModel)

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)
_JSON_START = ("{", "[")
_FENCE = re.compile(r"```(?:json)?[ \t]*\n?(.*?)```", re.DOTALL)
_MAX_ERROR_CHARS = 400
# About 500 tokens: enough of a rejected reply for the model to see what it did wrong.
_MAX_ECHO_CHARS = 2_000
_CUT_OFF = (
    "the reply was cut off at the token limit (finish_reason=length); "
    "raise max_tokens in the agent's sampling if replies need more"
)


def clean_reply(text: str) -> str:
    """The JSON part of a reply: without reasoning blocks and markdown fences.

    Reasoning models put `<think>...</think>` before the answer. Some chat templates open the
    block in the prompt, so only the closing tag arrives: everything up to it is reasoning too.
    A reply that already starts as JSON is left alone, since its strings may well contain fences
    or tags (a response quoting code, a guard critique quoting a transcript).
    """
    text = text.strip()
    if text.startswith(_JSON_START):
        return text
    text = _THINK_BLOCK.sub("", text)
    _, closing, after = text.rpartition("</think>")
    if closing:
        text = after
    text = text.strip()
    if not text.startswith(_JSON_START) and (fenced := _FENCE.search(text)):
        text = fenced.group(1).strip()
    return text


def reply_text(message: Mapping[str, Any]) -> str:
    """The text to validate, from a reply's `choices[0].message`: the forced tool call's
    arguments, else the content (servers that ignore tool_choice answer in plain content)."""
    if has_tool_call(message):
        arguments = (message["tool_calls"][0].get("function") or {}).get("arguments")
        if arguments is None or isinstance(arguments, str):
            return arguments or ""
        return json.dumps(arguments)  # a few servers send the arguments as an object
    return content_text(message.get("content"))


def has_tool_call(message: Mapping[str, Any] | None) -> bool:
    calls = message.get("tool_calls") if message else None
    return bool(calls) and isinstance(calls, list) and isinstance(calls[0], dict)


def content_text(content: Any) -> str:
    """A message's content as text: a str as it is, a list of content parts joined (the newer
    OpenAI form), anything else (null, when the model only called a tool) empty."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


def parse_reply(text: str, cut_off: bool, schema: type[M], check: Callable[[M], None] | None) -> M:
    if cut_off:
        raise ValueError(_CUT_OFF)
    if (bad := _lone_surrogate(text)) is not None:
        # Such a str cannot be encoded as UTF-8, so it could be neither saved nor sent back.
        raise ValueError(f"the reply is not valid Unicode: a lone surrogate U+{ord(text[bad]):04X} at character {bad}")
    parsed = schema.model_validate_json(text)
    if check is not None:
        check(parsed)
    return parsed


def _lone_surrogate(text: str) -> int | None:
    """Where `text` has a lone UTF-16 surrogate (a JSON string may escape one, "\\ud800"), if
    anywhere. A valid str encodes, which is the common case and fast."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def valid_unicode(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD, so that it can be sent and saved."""
    if _lone_surrogate(text) is None:
        return text
    return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text)


def excerpt(text: str) -> str:
    """The rejected reply as echoed in a re-ask: valid Unicode, and bounded. The model needs to
    see what it wrote, not all of it: a reply cut off at the token limit, or thousands of tokens
    from a server that ignores max_tokens, would fill the context with each re-ask."""
    text = valid_unicode(text)
    if len(text) <= _MAX_ECHO_CHARS:
        return text
    return f"{text[:_MAX_ECHO_CHARS]} [... {len(text) - _MAX_ECHO_CHARS} more characters left out]"


def short_error(exc: ValueError) -> str:
    """A validation error short enough to send back to the model and to print on one line."""
    if isinstance(exc, ValidationError):
        parts = [
            f"{'.'.join(str(part) for part in error['loc']) or 'reply'}: {error['msg']}"
            for error in exc.errors(include_url=False)[:5]
        ]
        text = "; ".join(parts)
    else:
        text = str(exc)
    return one_line(text, _MAX_ERROR_CHARS)


def reask(error: str, schema: type[BaseModel], *, cut_off: bool = False) -> str:
    shorter = "a shorter reply: " if cut_off else ""
    return (
        f"Your previous reply was not accepted: {error}\n"
        f"Reply again with {shorter}only a JSON object that matches the {schema.__name__} schema, "
        "with no other text."
    )
