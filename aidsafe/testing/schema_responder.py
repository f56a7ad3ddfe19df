"""A teacher that knows nothing of aidsafe's prompts: it answers every structured request with
random JSON that is valid for the request's own schema, and nothing more. That is exactly what
guided decoding guarantees, so a run against it shows whether the schemas we send carry the
whole contract (docs/agents.md: any reply valid for the schema that was sent is usable).

    ScriptedServer(schema_responder(seed=1))
    python -m aidsafe.testing.server --responder aidsafe.testing:schema_responder

It reads `response_format.json_schema.schema` (answering as content) or the forced tool's
`parameters` (answering as that tool's call), and supports what the schemas of LLM tools use:
`type` (one or a list), `enum`, `const`, `anyOf`/`oneOf`, `allOf` of one, `$ref` into
`$defs`/`definitions`, nullable, objects (every required property, optional ones at random),
arrays (`minItems`/`maxItems`), strings (`minLength`/`maxLength`, `pattern`), and numbers with
bounds. Strings are adversarial where the schema allows it: whitespace only, "...", one
character. Replies are seeded by the seed and the request, so a run is reproducible even though
requests arrive in any order; a re-ask (more messages) draws a new reply.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import re._parser as regex_parser  # the stdlib's own regex parser: a pattern's syntax tree
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["schema_responder", "random_instance", "random_matching"]

_WORDS = (
    "the request policy answer safe user harm help step refuse explain because allowed reason "
    'détail 安全 — risk context (note) 42 it\'s "quoted" back\\slash'
).split()
_POOL = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?-_'\"()[]{}/\\\n\téß中—"
_DEGENERATE = ("", " ", "   ", "\n", "...", "x", "P1")
_MAX_ITEMS = 4  # arrays without maxItems get at most this many more than minItems
_TRIES = 200


def schema_responder(seed: int = 0) -> Callable[[dict[str, Any]], str | dict[str, Any]]:
    """A ScriptedServer responder answering from the request's schema alone."""

    def respond(request: dict[str, Any]) -> str | dict[str, Any]:
        schema, tool = _requested(request)
        key = json.dumps([seed, request.get("messages"), schema], sort_keys=True, ensure_ascii=False)
        rng = random.Random(hashlib.sha256(key.encode()).digest())
        text = json.dumps(random_instance(schema, rng), ensure_ascii=False)
        return {"tool_calls": [{"name": tool, "arguments": text}]} if tool else text

    return respond


def random_instance(schema: Mapping[str, Any], rng: random.Random, root: Mapping[str, Any] | None = None) -> Any:
    """A random value valid for JSON Schema `schema` (refs resolve against `root`)."""
    root = schema if root is None else root
    if "$ref" in schema:
        return random_instance(_resolve(schema["$ref"], root), rng, root)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return rng.choice(list(schema["enum"]))
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return random_instance(rng.choice(schema[key]), rng, root)
    if "allOf" in schema:
        if len(schema["allOf"]) != 1:
            raise ValueError("allOf with more than one schema is not supported")
        return random_instance(schema["allOf"][0], rng, root)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = rng.choice(kind)
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "null":
        return None
    if kind == "boolean":
        return rng.random() < 0.5
    if kind in ("integer", "number"):
        return _number(schema, rng, kind == "integer")
    if kind == "string":
        return _string(schema, rng)
    if kind == "array":
        low = schema.get("minItems", 0)
        count = rng.randint(low, schema.get("maxItems", low + _MAX_ITEMS))
        return [random_instance(schema.get("items", {}), rng, root) for _ in range(count)]
    if kind == "object":
        return _object(schema, rng, root)
    raise ValueError(f"unsupported schema type {kind!r}")


def random_matching(pattern: str, rng: random.Random, min_length: int = 0, max_length: int | None = None) -> str:
    """A random string in which `pattern` is found (JSON Schema's rule), within the lengths."""
    tree = regex_parser.parse(pattern)
    compiled = re.compile(pattern)
    for _ in range(_TRIES):
        spread = rng.randint(0, max(8, min_length + 24))
        text = _from_tree(tree, rng, spread)
        if min_length <= len(text) <= (max_length if max_length is not None else len(text)) and compiled.search(text):
            return text
    raise ValueError(f"no string of {min_length}..{max_length} characters found for pattern {pattern!r}")


def _requested(request: Mapping[str, Any]) -> tuple[Mapping[str, Any], str | None]:
    """(the schema, the tool's name when the request forces a tool call)."""
    response_format = request.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return response_format.get("json_schema", {}).get("schema") or {}, None
    tools = request.get("tools") or []
    choice = request.get("tool_choice")
    wanted = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    for tool in tools:
        function = tool.get("function", {})
        if wanted in (None, function.get("name")):
            return function.get("parameters") or {}, function.get("name")
    raise ValueError("the request asks for no schema (no json_schema response_format, no tool)")


def _resolve(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $refs are supported, got {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _object(schema: Mapping[str, Any], rng: random.Random, root: Mapping[str, Any]) -> dict[str, Any]:
    properties = schema.get("properties", {})
    required = set(schema.get("required", ()))
    value = {
        name: random_instance(sub, rng, root)
        for name, sub in properties.items()
        if name in required or rng.random() < 0.5
    }
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping) and not properties:  # a map: a few random keys
        for _ in range(rng.randint(0, 3)):
            value[_words(rng, 1, 12).replace(" ", "_") or "k"] = random_instance(extra, rng, root)
    return value


def _number(schema: Mapping[str, Any], rng: random.Random, integer: bool) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
    high = schema.get("maximum", schema.get("exclusiveMaximum", low + 100))
    for _ in range(_TRIES):
        value: int | float = rng.randint(int(low), int(high)) if integer else rng.uniform(low, high)
        if value != schema.get("exclusiveMinimum") and value != schema.get("exclusiveMaximum"):
            return value
    raise ValueError(f"no number in the bounds of {dict(schema)}")


def _string(schema: Mapping[str, Any], rng: random.Random) -> str:
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if "pattern" in schema:
        return random_matching(schema["pattern"], rng, low, high)
    if rng.random() < 0.2:  # what a schema with no floor lets through
        fits = [s for s in _DEGENERATE if len(s) >= low and (high is None or len(s) <= high)]
        if fits:
            return rng.choice(fits)
        return " " * low
    text = _words(rng, low, high if high is not None else low + 60)
    return text


def _words(rng: random.Random, low: int, high: int) -> str:
    target = rng.randint(low, max(low, high))
    text = ""
    while len(text) < target:
        text = f"{text} {rng.choice(_WORDS)}" if text else rng.choice(_WORDS)
    text = text[:target]
    return text + "x" * (low - len(text))


# Random strings from a regex's syntax tree -------------------------------------------------------

_CATEGORIES = {
    "CATEGORY_DIGIT": "0123456789",
    "CATEGORY_SPACE": " \t\n",
    "CATEGORY_WORD": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
}


def _from_tree(tree: Any, rng: random.Random, spread: int) -> str:
    return "".join(_from_node(op.name, value, rng, spread) for op, value in tree)


def _from_node(op: str, value: Any, rng: random.Random, spread: int) -> str:
    if op == "LITERAL":
        return chr(value)
    if op == "NOT_LITERAL":
        return rng.choice([c for c in _POOL if ord(c) != value])
    if op == "ANY":
        return rng.choice(_POOL.replace("\n", ""))
    if op == "IN":
        return _from_set(value, rng)
    if op == "CATEGORY":
        return _from_set([(_op("CATEGORY"), value)], rng)
    if op == "BRANCH":
        return _from_tree(rng.choice(value[1]), rng, spread)
    if op == "SUBPATTERN":
        return _from_tree(value[-1], rng, spread)
    if op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, high, tree = value
        count = rng.randint(low, min(high, low + spread))
        return "".join(_from_tree(tree, rng, spread) for _ in range(count))
    if op == "AT":
        return ""
    raise ValueError(f"regex construct {op} is not supported")


def _from_set(items: list, rng: random.Random) -> str:
    negate = any(op.name == "NEGATE" for op, _ in items)

    def member(char: str) -> bool:
        for op, value in items:
            name = op.name
            if name == "LITERAL" and ord(char) == value:
                return True
            if name == "RANGE" and value[0] <= ord(char) <= value[1]:
                return True
            if name == "CATEGORY":
                category = value.name
                plain = category.removeprefix("CATEGORY_NOT_").removeprefix("CATEGORY_")
                inside = char in _CATEGORIES.get(f"CATEGORY_{plain}", "")
                if inside != category.startswith("CATEGORY_NOT_"):
                    return True
        return False

    if not negate:
        candidates = [c for c in _POOL if member(c)]
        for op, value in items:  # ranges beyond the pool, e.g. [\u4e00-\u9fff]
            if op.name == "LITERAL":
                candidates.append(chr(value))
            elif op.name == "RANGE":
                candidates.append(chr(rng.randint(value[0], value[1])))
    else:
        candidates = [c for c in _POOL if not member(c)]
    if not candidates:
        raise ValueError("a regex character set matches nothing this generator can write")
    return rng.choice(candidates)


def _op(name: str) -> Any:
    return getattr(regex_parser, name)
