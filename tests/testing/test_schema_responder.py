"""The schema-only responder: random JSON valid for the request's own schema, and nothing more."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys

import httpx
import pytest

from aidsafe.agents.policies import load_policies
from aidsafe.agents.schemas import text_pattern
from aidsafe.generation.roles import ROLES
from aidsafe.testing import ScriptedServer, example_state, schema_responder
from aidsafe.testing.schema_responder import random_instance, random_matching

GENERIC = {
    "type": "object",
    "$defs": {
        "Item": {
            "type": "object",
            "properties": {
                "label": {"enum": ["a", "b"]},
                "score": {"type": "integer", "minimum": 1, "maximum": 5},
                "weight": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "note": {"anyOf": [{"type": "string", "maxLength": 4}, {"type": "null"}]},
                "tag": {"type": ["string", "null"], "minLength": 2, "maxLength": 3},
                "fixed": {"const": "yes"},
                "flag": {"type": "boolean"},
            },
            "required": ["label", "score", "weight", "note", "tag", "fixed", "flag"],
            "additionalProperties": False,
        }
    },
    "properties": {
        "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "minItems": 2, "maxItems": 3},
        "code": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$"},
        "optional": {"type": "string"},
        "map": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
    "required": ["items", "code", "map"],
    "additionalProperties": False,
}


def test_generic_schema_features_are_honoured():
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(GENERIC)
    for seed in range(200):
        value = random_instance(GENERIC, random.Random(seed))
        errors = [e.message for e in validator.iter_errors(value)]
        assert not errors, (seed, value, errors)


def test_every_role_reply_validates_against_its_call_schema():
    policies = load_policies("aidsafe")
    for spec in ROLES.values():
        state = example_state(spec.name, policies)
        model = spec.call_model(state, policies)
        schema = model.model_json_schema()
        for seed in range(100):
            model.model_validate(random_instance(schema, random.Random(seed)))


def test_strings_without_a_floor_are_adversarial():
    # What the responder writes where a schema allows it: a guided-decoding teacher may too.
    strings = [random_instance({"type": "string"}, random.Random(seed)) for seed in range(200)]
    assert any(s and not s.strip() for s in strings) and "..." in strings and "" in strings


@pytest.mark.parametrize("min_chars", [1, 2, 8, 30])
def test_patterns_are_matched_within_lengths(min_chars):
    pattern = text_pattern(min_chars)
    for seed in range(50):
        text = random_matching(pattern, random.Random(seed))
        assert re.search(pattern, text) and len(text.strip()) >= min_chars and text == text.strip()


def _request(schema: dict, mode: str, messages: list | None = None) -> dict:
    request = {"model": "m", "messages": messages or [{"role": "user", "content": "hi"}]}
    if mode == "json_schema":
        request["response_format"] = {"type": "json_schema", "json_schema": {"name": "S", "schema": schema}}
    else:
        request["tools"] = [{"type": "function", "function": {"name": "S", "parameters": schema}}]
        request["tool_choice"] = {"type": "function", "function": {"name": "S"}}
    return request


@pytest.mark.parametrize("mode", ["json_schema", "function_calling"])
def test_answers_as_content_or_as_the_forced_tool(mode):
    reply = schema_responder(seed=1)(_request(GENERIC, mode))
    if mode == "json_schema":
        value = json.loads(reply)
    else:
        [call] = reply["tool_calls"]
        assert call["name"] == "S"
        value = json.loads(call["arguments"])
    assert set(value) >= {"items", "code", "map"}


def test_replies_are_seeded_by_seed_and_request():
    respond = schema_responder(seed=1)
    first = respond(_request(GENERIC, "json_schema"))
    assert respond(_request(GENERIC, "json_schema")) == first
    assert schema_responder(seed=2)(_request(GENERIC, "json_schema")) != first
    reask = _request(GENERIC, "json_schema", [{"role": "user", "content": "hi"}, {"role": "user", "content": "again"}])
    assert respond(reask) != first


def test_a_request_without_a_schema_fails_loudly():
    with pytest.raises(RuntimeError, match="asks for no schema"):
        with ScriptedServer(schema_responder()) as server:
            httpx.post(server.base_url + "/chat/completions", json={"model": "scripted-model", "messages": []})


def test_runs_on_the_scripted_servers_command_line():
    process = subprocess.Popen(
        [sys.executable, "-m", "aidsafe.testing.server", "--port", "0", "--model", "m",
         "--responder", "aidsafe.testing:schema_responder"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        with httpx.Client(timeout=5) as http:
            reply = http.post(base_url + "/chat/completions", json=_request(GENERIC, "json_schema"))
            assert reply.status_code == 200
            assert "items" in json.loads(reply.json()["choices"][0]["message"]["content"])
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        process.stdout.close()
