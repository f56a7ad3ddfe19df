"""`aidsafe generate` with LangChain chat models as teachers, end to end: ChatOpenAI (langchain-openai
over the openai SDK) against the loopback ScriptedServer over real HTTP, through the whole graph;
for every agent (`--set teacher.chat_model=...`), and mixed in one recipe with the wire client
(the deliberators through ChatOpenAI, the other roles through aidsafe's own client). Which client
sent a request is told by its User-Agent."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import datasets
import pytest
import yaml

from aidsafe.testing import Fault, ScriptedServer, aidsafe_responder
from tests.conftest import read_jsonl
from tests.helpers import FAST, first_try_faults, killed_after

CHAT_OPENAI = "langchain_openai:ChatOpenAI"
MIXED_RECIPE = """\
# The deliberators through ChatOpenAI, the other roles through aidsafe's wire client.
kind: generation
name: mixed-teachers
policies: aidsafe
teacher:
  model: teacher-x
agents:
  intent_decomposer: intent_decomposer
  initial_cot: initial_cot
  deliberators:
    - {agent: deliberator, name: deliberator_a, chat_model: "langchain_openai:ChatOpenAI"}
    - agent: deliberator
      name: deliberator_b
      chat_model: langchain_openai:ChatOpenAI
      chat_model_args: {frequency_penalty: 0.25}
  refiner: refiner
dedup: {enabled: false}
"""


def _prompts(n: int) -> list[str]:
    return [f"[lc{i:03d}] How should I handle request number {i}?" for i in range(n)]


def _by_langchain(request) -> bool:
    return request.headers.get("user-agent", "").startswith("AsyncOpenAI/Python")


def _schema(request) -> str:
    return ((request.json.get("response_format") or {}).get("json_schema") or {}).get("name", "")


def _ids(out) -> tuple[list[str], list[str]]:
    return [r["id"] for r in read_jsonl(out / "samples.jsonl")], [r["id"] for r in read_jsonl(out / "rejected.jsonl")]


def test_every_agent_through_chat_openai(tmp_path, run_cli, prompts_file):
    out = tmp_path / "run"
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"]) as server:
        code, _, err = run_cli("generate", "aidsafe", "-i", prompts_file(_prompts(3)), "-o", out,
                               "--base-url", server.base_url, "--model", "teacher-x",
                               "--set", f"teacher.chat_model={CHAT_OPENAI}",
                               "--set", "dedup.enabled=false", *FAST)  # fmt: skip
        assert code == 0, err
        asked = server.requests
    samples = read_jsonl(out / "samples.jsonl")
    assert len(samples) == 3 and read_jsonl(out / "rejected.jsonl") == []
    assert asked and all(_by_langchain(r) for r in asked)
    assert {_schema(r) for r in asked} >= {"AidsafePreflight", "IntentList", "DeliberationTurn", "Refinement"}
    calls = samples[0]["metadata"]["calls"]
    assert [c["role"] for c in calls][0] == "intent_decomposer" and all(c["prompt_tokens"] > 0 for c in calls)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["last_run"]["prompt_tokens"] == sum(
        c["prompt_tokens"] for s in samples for c in s["metadata"]["calls"]
    )
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    assert recipe["teacher"]["chat_model"] == CHAT_OPENAI  # the resolved recipe names it ...
    assert {a["chat_model"] for agents in recipe["resolved"]["agents"].values() for a in agents} == {CHAT_OPENAI}


def test_every_prompt_ends_once_as_a_record_or_a_counted_rejection_despite_faults(tmp_path, run_cli, prompts_file):
    """The fault matrix through ChatOpenAI and the whole graph: a fault on a first try is retried
    or re-asked into a record; a fault on every try is a rejection with the wire's reason."""
    prompts = _prompts(18)
    doomed, down = prompts[3], prompts[5]  # its refiner always answers malformed JSON; every call of it fails
    cycle = [Fault.HTTP_500, Fault.HTTP_429, Fault.MALFORMED_JSON, Fault.TRUNCATED, Fault.RESET, Fault.HTML_200]
    first_try = first_try_faults(cycle, every=2)

    def plan(index, request):
        text = json.dumps(request)
        if down in text:
            return Fault.HTTP_500
        if doomed in text and "Refinement" in text:
            return Fault.MALFORMED_JSON
        return first_try(request)

    out = tmp_path / "run"
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"], fault_plan=plan, retry_after_s=0.05) as server:
        code, _, err = run_cli("generate", "aidsafe", "-i", prompts_file(prompts), "-o", out,
                               "--base-url", server.base_url, "--model", "teacher-x", "--concurrency", "6",
                               "--set", f"teacher.chat_model={CHAT_OPENAI}", "--set", "dedup.enabled=false",
                               "--set", "teacher.max_transport_retries=3", *FAST)  # fmt: skip
        assert code == 0, err
        faults = {r.fault for r in server.requests if r.fault is not None}
    assert faults == set(cycle)  # every kind was met, by ChatOpenAI's requests
    done, rejected = _ids(out)
    assert sorted(done + rejected) == sorted({*done, *rejected}) and len(done) + len(rejected) == len(prompts)
    reasons = {r["prompt"]: r for r in read_jsonl(out / "rejected.jsonl")}
    assert set(reasons) == {doomed, down}
    assert (reasons[doomed]["stage"], reasons[doomed]["reason"], reasons[doomed]["transient"]) == (
        "refine", "invalid_output", False)  # fmt: skip
    assert (reasons[down]["reason"], reasons[down]["transient"]) == ("teacher_unavailable", True)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["samples"] == len(done) == len(prompts) - 2 and stats["pending"] == 0
    assert stats["last_run"]["transport_retries"] > 0 and stats["last_run"]["parse_retries"] > 0


def test_a_mixed_recipe_sends_each_slot_through_its_own_client(tmp_path, run_cli, prompts_file):
    recipe = tmp_path / "mixed.yaml"
    recipe.write_text(MIXED_RECIPE)
    out = tmp_path / "run"
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"]) as server:
        code, _, err = run_cli("generate", recipe, "-i", prompts_file(_prompts(2)), "-o", out,
                               "--base-url", server.base_url, *FAST)  # fmt: skip
        assert code == 0, err
        asked = [r for r in server.requests if _schema(r) != "AidsafePreflight"]
        probes = [r for r in server.requests if _schema(r) == "AidsafePreflight"]
    assert len(read_jsonl(out / "samples.jsonl")) == 2
    assert {(_schema(r), _by_langchain(r)) for r in asked} == {
        ("IntentList", False), ("InitialCoT", False), ("DeliberationTurn", True), ("Refinement", False)
    }  # fmt: skip
    assert sorted(_by_langchain(r) for r in probes) == [False, True, True]  # one pre-flight per endpoint
    by_b = [r for r in asked if _by_langchain(r) and "deliberator_b" in r.text]
    assert by_b and all(r.json["frequency_penalty"] == 0.25 for r in by_b)  # chat_model_args reach the model
    agents = yaml.safe_load((out / "recipe.yaml").read_text())["resolved"]["agents"]
    assert [a.get("chat_model") for a in agents["deliberator"]] == [CHAT_OPENAI, CHAT_OPENAI]
    assert "chat_model" not in agents["refiner"][0]


@pytest.mark.slow
def test_a_mixed_run_resumes_after_kill_9_and_exports(tmp_path, prompts_file, run_cli, monkeypatch):
    prompts = _prompts(40)
    recipe = tmp_path / "mixed.yaml"
    recipe.write_text(MIXED_RECIPE)
    out = tmp_path / "run"
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"], latency_s=0.05) as server:
        cmd = [sys.executable, "-m", "aidsafe", "generate", str(recipe), "-i", str(prompts_file(prompts)),
               "-o", str(out), "--base-url", server.base_url, "--concurrency", "4", *FAST]  # fmt: skip
        finished_before = killed_after(cmd, out, 8)
        assert 8 <= len(finished_before) < len(prompts)
        calls_before = len(server.requests)

        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
        rerun_requests = server.requests[calls_before:]
    done, rejected = _ids(out)
    assert rejected == [] and len(done) == len(set(done)) == len(prompts)
    for prompt in finished_before.values():
        assert not any(prompt in r.text for r in rerun_requests), f"finished sample called again: {prompt}"
    assert any(_by_langchain(r) for r in rerun_requests) and not all(_by_langchain(r) for r in rerun_requests)

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")
    dataset = tmp_path / "dataset"
    code, _, err = run_cli("export", out, "-o", dataset, "-f", "sft", "--no-dedup", "--no-decontaminate")
    assert code == 0, err
    rows = datasets.load_dataset(str(dataset))["train"]
    assert sorted(row["messages"][0]["content"] for row in rows) == sorted(prompts)
