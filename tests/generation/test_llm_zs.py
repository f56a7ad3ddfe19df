"""recipes/llm-zs.yaml, the paper's zero-shot baseline: one teacher call per prompt on the same
graph machinery, and a normal run directory that export and `eval cot --compare` accept."""

from __future__ import annotations

import json

from aidsafe.generation.graph import build_graph
from aidsafe.generation.pipeline import load_pipeline
from aidsafe.testing import ScriptedServer, aidsafe_responder, schema_responder
from tests.conftest import read_jsonl
from tests.helpers import FAST

PROMPTS = [f"How do I handle situation {i} safely?" for i in range(5)]


def _schema(request) -> str | None:
    return (request.json.get("response_format") or {}).get("json_schema", {}).get("name")


def test_the_llm_zs_graph_is_initial_cot_alone():
    pipeline = load_pipeline("llm-zs")
    roles = [role for role, agents in pipeline.agents.items() if agents]
    assert roles == ["initial_cot"] and pipeline.agents["initial_cot"][0].name == "zero_shot_cot"
    nodes = set(build_graph(roles=roles).get_graph().nodes)
    assert nodes == {"__start__", "initial_cot", "__end__"}
    assert set(build_graph().get_graph().nodes) >= {"decompose", "deliberate", "refine"}  # aidsafe's is whole


def test_generate_llm_zs_makes_one_call_per_prompt_and_a_valid_run(tmp_path, run_cli, prompts_file):
    out = tmp_path / "zs"
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"]) as server:
        code, _, err = run_cli("generate", "llm-zs", "-i", prompts_file(PROMPTS), "-o", out,
                               "--base-url", server.base_url, "--model", "teacher-x", *FAST)  # fmt: skip
        assert code == 0, err
        asked = [_schema(r) for r in server.requests if _schema(r) != "AidsafePreflight"]
    assert asked == ["InitialCoT"] * len(PROMPTS)  # no decomposition, deliberation or refinement
    samples = read_jsonl(out / "samples.jsonl")
    assert sorted(s["prompt"] for s in samples) == sorted(PROMPTS)
    for sample in samples:
        assert len(sample["thoughts"]) == 2 and sample["response"] == "Here is a safe, helpful answer."
        assert sample["intents"] == [] and sample["deliberation"] == [] and sample["removed"] == []
        assert sample["metadata"]["stop_reason"] == "no_deliberation" and sample["metadata"]["rounds_used"] == 0
        assert [c["role"] for c in sample["metadata"]["calls"]] == ["initial_cot"]
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["samples"], stats["rejected"], stats["stop_reasons"]) == (5, 0, {"no_deliberation": 5})
    code, _, err = run_cli("export", out, "-o", tmp_path / "data", "-f", "sft", "--test-size", "0.4")
    assert code == 0, err


def test_llm_zs_against_a_teacher_that_knows_only_the_schema(tmp_path, run_cli, prompts_file):
    out = tmp_path / "zs"
    with ScriptedServer(schema_responder(seed=2), models=["teacher-x"]) as server:
        code, _, err = run_cli("generate", "llm-zs", "-i", prompts_file(PROMPTS), "-o", out,
                               "--base-url", server.base_url, "--model", "teacher-x", *FAST)  # fmt: skip
    assert code == 0, err
    stats = json.loads((out / "stats.json").read_text())
    assert stats["samples"] + stats["rejected"] == 5 and stats["samples"] > 0
    assert all(s["thoughts"] and s["response"].strip() for s in read_jsonl(out / "samples.jsonl"))


def test_a_recipe_with_rounds_but_no_deliberators_is_refused(tmp_path, run_cli):
    code, _, err = run_cli("validate", "llm-zs", "--set", "deliberation.max_rounds=2")
    assert code == 2 and "agents.deliberators is empty" in err and "Traceback" not in err
