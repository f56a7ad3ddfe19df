"""The schema sent to the teacher carries the contract: any reply valid for it is usable.

End to end with the real client against a loopback teacher that answers from the request's
schema alone (random, schema-valid JSON: what guided decoding guarantees and nothing more).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace

import pytest

from aidsafe.agents.policies import load_policies
from aidsafe.agents.roles import Turn
from aidsafe.agents.schemas import DeliberationTurn, InitialCoT, Refinement, call_model
from aidsafe.generation.graph import GraphDeps, build_graph
from aidsafe.generation.pipeline import load_pipeline
from aidsafe.generation.roles import ROLES, apply_refinement, apply_turn
from aidsafe.teacher.body import structured_output_fields
from aidsafe.teacher.types import InvalidOutputError
from aidsafe.testing import FakeTeacher, ScriptedServer, aidsafe_responder, example_state, schema_responder
from tests.conftest import read_jsonl
from tests.helpers import FAST

POLICIES = load_policies("aidsafe")


def _strict_problems(schema: dict, where: str = "$") -> list[str]:
    """What OpenAI's strict mode (the strictest common subset) would refuse in `schema`."""
    problems = []
    if "$ref" in schema and len(schema) > 1:
        problems.append(f"{where}: $ref with siblings {sorted(set(schema) - {'$ref'})}")
    for key in ("default", "minLength", "maxLength", "uniqueItems", "propertyNames", "patternProperties"):
        if key in schema:
            problems.append(f"{where}: {key}")
    if re.search(r"\\[sSdDwW]", schema.get("pattern", "")):
        problems.append(f"{where}: regex shorthand in pattern (llama.cpp's grammar converter has none)")
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            problems.append(f"{where}: additionalProperties is not false")
        if set(schema.get("required", ())) != set(schema.get("properties", {})):
            problems.append(f"{where}: not every property is required")
    for name, sub in schema.get("properties", {}).items():
        problems += _strict_problems(sub, f"{where}.{name}")
    for name, sub in schema.get("$defs", {}).items():
        problems += _strict_problems(sub, f"{where}.$defs.{name}")
    if isinstance(schema.get("items"), dict):
        problems += _strict_problems(schema["items"], f"{where}[]")
    for i, sub in enumerate(schema.get("anyOf", [])):
        problems += _strict_problems(sub, f"{where}|{i}")
    return problems


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("mode", ["json_schema", "function_calling"])
def test_what_the_client_sends_is_strict_mode_compatible(role, mode):
    spec = ROLES[role]
    model = spec.call_model(example_state(role, POLICIES), POLICIES)
    fields = structured_output_fields(model, mode)
    if mode == "json_schema":
        assert fields["response_format"]["json_schema"]["name"] == spec.output.__name__
        sent = fields["response_format"]["json_schema"]["schema"]
    else:
        assert fields["tools"][0]["function"]["name"] == spec.output.__name__
        sent = fields["tools"][0]["function"]["parameters"]
    assert _strict_problems(sent) == []


def test_ids_are_enums_of_this_call():
    state = example_state("deliberator", POLICIES)
    turn = ROLES["deliberator"].call_model(state, POLICIES).model_json_schema()
    thought = turn["$defs"]["CorrectedThought"]["properties"]
    assert thought["policies"]["items"]["enum"] == POLICIES.ids
    assert thought["replaces"]["anyOf"][0]["enum"] == ["t1", "t2"]
    refine = ROLES["refiner"].call_model(state, POLICIES).model_json_schema()
    verdicts = refine["$defs"]["Verdicts"]
    assert verdicts["required"] == ["t1", "t2"] and verdicts["additionalProperties"] is False
    assert verdicts["properties"]["t1"]["enum"] == [
        "keep",
        "repetitive",
        "redundant",
        "deceptive",
        "policy_inconsistent",
    ]


def test_per_call_models_are_cached_by_their_ids():
    one = call_model(Refinement, policy_ids=("P1",), thought_ids=("t1", "t2"))
    assert call_model(Refinement, policy_ids=("P1",), thought_ids=("t1", "t2")) is one
    assert call_model(Refinement, policy_ids=("P1",), thought_ids=("t1", "t3")) is not one


@pytest.mark.parametrize(("mode", "dedup"), [("json_schema", "true"), ("function_calling", "false")])
def test_a_teacher_that_only_honours_the_schema_completes_samples(tmp_path, run_cli, prompts_file, mode, dedup):
    prompts = [f"[q{i:02d}] How should I handle situation {i}?" for i in range(30)]
    out = tmp_path / "run"
    with ScriptedServer(schema_responder(seed=7), models=["teacher-x"]) as server:
        code, _, err = run_cli(
            "generate", "aidsafe", "-i", prompts_file(prompts), "-o", out, "--base-url", server.base_url,
            "--model", "teacher-x", "--set", f"teacher.structured_output={mode}", "--set", f"dedup.enabled={dedup}",
            *FAST,
        )  # fmt: skip
    assert code == 0, err
    samples = read_jsonl(out / "samples.jsonl")
    rejected = read_jsonl(out / "rejected.jsonl")
    assert len(samples) >= 0.95 * len(prompts), [r["error"] for r in rejected][:3]
    for sample in samples:
        assert sample["thoughts"] and sample["response"] == sample["response"].strip()
        assert all(len(t["text"]) >= 8 and set(t["policies"]) <= set(POLICIES.ids) for t in sample["thoughts"])


# The lenient rules for replies the schema cannot rule out -----------------------------------------


def _state() -> dict:
    return {**example_state("deliberator", POLICIES), "rounds": 0}


def test_two_corrections_of_one_thought_in_a_turn_the_last_wins():
    turn = DeliberationTurn(
        thoughts=[
            {"text": "First correction of t1.", "policies": ["P1", "P1"], "replaces": "t1"},
            {"text": "A new thought entirely.", "policies": []},
            {"text": "Second correction of t1.", "policies": ["P2"], "replaces": "t1"},
        ],
        response="An updated response.",
        complete=False,
    )
    update = apply_turn(turn, _state(), Turn("d", 4))
    assert [(t["id"], t["text"]) for t in update["thoughts"]] == [
        ("t4", "Second correction of t1."),
        ("t2", "A block or magnetic strip keeps blades covered."),
        ("t3", "A new thought entirely."),
    ]
    assert [r["id"] for r in update["removed"]] == ["t1"] and update["next_thought"] == 5


def test_a_verdict_key_given_twice_the_last_wins():
    model = ROLES["refiner"].call_model(_state(), POLICIES)
    reply = model.model_validate_json(
        '{"verdicts": {"t1": "redundant", "t2": "keep", "t1": "keep"}, "response": "The final response."}'
    )
    update = apply_refinement(Refinement.model_validate(reply.model_dump()), _state(), Turn("r", 4))
    assert [t["id"] for t in update["thoughts"]] == ["t1", "t2"] and update["removed"] == []


def test_a_refiner_that_removes_every_thought_is_overruled():
    output = Refinement(verdicts={"t1": "redundant", "t2": "deceptive"}, response="The final response.")
    update = apply_refinement(output, _state(), Turn("r", 4))
    assert [t["id"] for t in update["thoughts"]] == ["t1", "t2"] and update["removed"] == []


def test_a_thought_a_python_refiner_leaves_out_is_rejected_not_guessed():
    # Python agents are held to the schema of the call, like the teacher.
    output = Refinement(verdicts={"t1": "keep"}, response="The final response.")
    with pytest.raises(ValueError, match="verdicts.t2"):
        ROLES["refiner"].validate(output, _state(), POLICIES)


def test_a_python_agent_citing_an_unknown_policy_is_invalid_output():
    class Writer:
        name = "writer"

        async def __call__(self, state, ctx):
            return InitialCoT(thoughts=[{"text": "A reasoning step.", "policies": ["P9"]}], response="A response.")

    pipeline = load_pipeline("aidsafe", ["dedup.enabled=false"])
    [slot] = pipeline.agents["initial_cot"]
    agents = {**pipeline.agents, "initial_cot": [replace(slot, agent=Writer(), name="writer")]}
    deps = GraphDeps(agents, pipeline.policies, FakeTeacher(), 4, 0, None)
    with pytest.raises(InvalidOutputError, match=r"writer \(initial_cot\).*policies"):
        asyncio.run(build_graph().ainvoke({"id": "s", "prompt": "p"}, context=deps))


# The content floor (issue 9, items 8 and 17) -------------------------------------------------------


def _degenerate_first(kind: str):
    """aidsafe_responder, except that every first try of `kind` is degenerate; re-asks are fine."""
    normal = aidsafe_responder()

    def respond(request):
        reply = normal(request)
        if len(request["messages"]) > 2:
            return reply
        name = request["response_format"]["json_schema"]["name"]
        value = json.loads(reply)
        if kind == "blank_response" and name == "InitialCoT":
            value["response"] = "   \n "
        elif kind == "placeholder_response" and name == "Refinement":
            value["response"] = "..."
        elif kind == "bare_policy_thought" and name == "InitialCoT":
            value["thoughts"][0]["text"] = "P1"
        elif kind == "blank_intent" and name == "IntentList":
            value["intents"][0]["text"] = " "
        return json.dumps(value)

    return respond


@pytest.mark.parametrize("kind", ["blank_response", "placeholder_response", "bare_policy_thought", "blank_intent"])
def test_degenerate_text_is_re_asked(tmp_path, run_cli, prompts_file, kind):
    out = tmp_path / "run"
    with ScriptedServer(_degenerate_first(kind), models=["teacher-x"]) as server:
        code, _, err = run_cli(
            "generate", "aidsafe", "-i", prompts_file(["How do I sharpen a knife?"]), "-o", out,
            "--base-url", server.base_url, "--model", "teacher-x", "--set", "dedup.enabled=false", *FAST,
        )  # fmt: skip
        reasks = [r for r in server.requests if len(r.json["messages"]) > 2]
    assert code == 0, err
    [sample] = read_jsonl(out / "samples.jsonl")
    assert len(reasks) == 1 and "at least 8 characters" in reasks[0].json["messages"][-1]["content"]
    assert len(sample["response"]) >= 8 and all(len(t["text"]) >= 8 for t in sample["thoughts"])
    assert all(len(i["text"]) >= 8 for i in sample["intents"])


def test_the_floor_is_a_recipe_setting():
    deps = GraphDeps.from_pipeline(load_pipeline("aidsafe", ["min_text_chars=2"]), FakeTeacher())
    assert deps.min_chars == 2
    loose = call_model(InitialCoT, policy_ids=("P1",), min_chars=2)
    loose.model_validate({"thoughts": [{"text": "P1", "policies": []}], "response": "ok"})
    with pytest.raises(ValueError, match="at least 8 characters"):
        call_model(InitialCoT, policy_ids=("P1",)).model_validate(
            {"thoughts": [{"text": "P1", "policies": []}], "response": "A long enough response."}
        )
