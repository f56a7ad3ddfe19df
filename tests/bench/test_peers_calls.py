"""The side-by-side benchmark's server side: which calls count as the workload's, and that the
one responder answers all three frameworks' request shapes validly (benchmarks/peers/calls.py)."""

from __future__ import annotations

from benchmarks.peers import workload
from benchmarks.peers.calls import is_workload_call, requested_schema, workload_responder

_SCHEMA = workload.StageAnswer.model_json_schema()
_MESSAGES = [
    {"role": "system", "content": workload.SYSTEM},
    {"role": "user", "content": workload.stage_message("p", 1, None)},
]


def _curator_call() -> dict:  # Curator's json_schema response_format, named "output_schema"
    return {
        "messages": _MESSAGES,
        "response_format": {"type": "json_schema", "json_schema": {"name": "output_schema", "schema": _SCHEMA}},
    }


def _instructor_call() -> dict:  # distilabel through instructor: a forced tool named after the model
    parameters = {k: v for k, v in _SCHEMA.items() if k not in ("title", "description")}
    return {
        "messages": _MESSAGES,
        "tools": [{"type": "function", "function": {"name": "StageAnswer", "parameters": parameters}}],
        "tool_choice": {"type": "function", "function": {"name": "StageAnswer"}},
    }


def _aidsafe_call(name: str) -> dict:
    return {
        "messages": [{"role": "user", "content": "[P1] Policy\nUser prompt: x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": name, "schema": {"type": "object"}}},
    }


def test_the_workload_calls_of_every_framework_count_and_probes_do_not():
    assert is_workload_call(_curator_call())
    assert is_workload_call(_instructor_call())
    assert is_workload_call(_aidsafe_call("IntentList"))
    assert not is_workload_call(_aidsafe_call("AidsafePreflight"))  # aidsafe's pre-flight
    assert not is_workload_call({"messages": []})  # Curator's rate-limit probe
    user = {"type": "object", "title": "User", "properties": {"name": {"type": "string"}}}
    probe = {
        "messages": _MESSAGES,
        "response_format": {"type": "json_schema", "json_schema": {"name": "User", "schema": user}},
    }
    assert not is_workload_call(probe)  # Curator's structured-output check


def test_requested_schema_reads_both_ways_of_asking():
    assert requested_schema(_curator_call()) == ("output_schema", _SCHEMA)
    name, parameters = requested_schema(_instructor_call())
    assert name == "StageAnswer" and parameters["required"] == _SCHEMA["required"]
    assert requested_schema({"messages": []}) == (None, None)


def test_the_responder_answers_each_shape_validly():
    respond = workload_responder()
    content = respond(_curator_call())
    workload.StageAnswer.model_validate_json(content)
    tool = respond(_instructor_call())["tool_calls"][0]
    assert tool["name"] == "StageAnswer"
    workload.StageAnswer.model_validate_json(tool["arguments"])
    assert respond({"messages": []}) == "ok"
