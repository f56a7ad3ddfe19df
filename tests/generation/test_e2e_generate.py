"""`aidsafe generate` end to end: the real HTTP client stack against the loopback ScriptedServer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from aidsafe.testing import Fault, ScriptedServer, aidsafe_responder
from tests.conftest import read_jsonl
from tests.helpers import FAST, first_try_faults, free_port, killed_after, wait_until


def _prompts(n: int) -> list[str]:
    return [f"[p{i:03d}] How should I handle request number {i}?" for i in range(n)]


def _ids_in(run_dir) -> tuple[list[str], list[str]]:
    return [r["id"] for r in read_jsonl(run_dir / "samples.jsonl")], [
        r["id"] for r in read_jsonl(run_dir / "rejected.jsonl")
    ]


def test_every_prompt_ends_exactly_once_despite_faults(tmp_path, run_cli, prompts_file):
    prompts = _prompts(24)
    source = prompts_file(prompts)
    doomed_refine = prompts[3]  # its refiner always answers malformed JSON: a permanent rejection
    down = prompts[5]  # every call for it fails with 500: a transient rejection, retried on rerun

    # Faults hit only the first try of an original request (a re-ask has more messages), chosen
    # by the request's content, so the outcome does not depend on the order calls arrive in.
    cycle = [Fault.HTTP_500, Fault.HTTP_429, Fault.MALFORMED_JSON, Fault.TRUNCATED, Fault.RESET, Fault.SLOW]
    first_try = first_try_faults(cycle, every=3)

    def plan(index, request):
        text = json.dumps(request)
        if down in text and not plan.healed:
            return Fault.HTTP_500
        if doomed_refine in text and "Refinement" in text:
            return Fault.MALFORMED_JSON
        return first_try(request)

    plan.healed = False

    out = tmp_path / "run"
    args = [
        "generate",
        "aidsafe",
        "--input",
        source,
        "--output",
        out,
        "--concurrency",
        "6",
        "--set",
        "teacher.timeout_s=1",
        "--set",
        "teacher.max_transport_retries=3",
        *FAST,
    ]
    with ScriptedServer(
        aidsafe_responder(), models=["teacher-x"], fault_plan=plan, retry_after_s=0.05, slow_s=1.5
    ) as server:
        code, _, err = run_cli(*args, "--base-url", server.base_url, "--model", "teacher-x")
        assert code == 0, err
        assert {r.fault for r in server.requests} >= set(cycle)  # every kind was met
        done, rejected = _ids_in(out)
        assert len(done) + len(rejected) == len(prompts)
        assert len(set(done) | set(rejected)) == len(prompts)
        reasons = {r["prompt"]: r for r in read_jsonl(out / "rejected.jsonl")}
        assert reasons[doomed_refine]["stage"] == "refine"
        assert reasons[doomed_refine]["reason"] == "invalid_output" and not reasons[doomed_refine]["transient"]
        assert reasons[down]["reason"] == "teacher_unavailable" and reasons[down]["transient"]
        stats = json.loads((out / "stats.json").read_text())
        assert stats["samples"] == len(done) and stats["rejected"] == len(rejected) and stats["pending"] == 0
        assert stats["last_run"]["transport_retries"] > 0 and stats["last_run"]["parse_retries"] > 0

        # Rerun: the transient failure is retried and lands in samples; nothing is duplicated.
        plan.healed = True
        before = len(server.requests)
        code, _, err = run_cli(*args, "--base-url", server.base_url, "--model", "teacher-x")
        assert code == 0, err
        done2, rejected2 = _ids_in(out)
        assert sorted(done2 + rejected2) == sorted(done + rejected)
        assert len(done2) == len(set(done2)) and len(rejected2) == len(set(rejected2))
        assert reasons[down]["id"] in done2 and reasons[doomed_refine]["id"] in rejected2
        rerun_texts = [r.text for r in server.requests[before:]]
        assert all(down in text for text in rerun_texts if "[p" in text)


def test_record_format(tmp_path, run_cli, prompts_file):
    source = prompts_file(_prompts(2))
    out = tmp_path / "run"
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"]) as server:
        code, _, err = run_cli(
            "generate", "aidsafe", "-i", source, "-o", out, "--base-url", server.base_url, "--model", "teacher-x", *FAST
        )
    assert code == 0, err
    record = read_jsonl(out / "samples.jsonl")[0]
    assert list(record)[:2] == ["id", "input_sha"]  # the journal's scan reads only this prefix
    assert set(record) == {
        "id",
        "input_sha",
        "prompt",
        "intents",
        "thoughts",
        "response",
        "deliberation",
        "removed",
        "metadata",
        "finished_at",  # when the sample finished; run.json says which aidsafe wrote it
    }
    assert all(set(t) == {"id", "text", "policies"} for t in record["thoughts"])
    assert {r["reason"] for r in record["removed"]} == {"near_duplicate", "redundant"}
    meta = record["metadata"]
    assert meta["policy_set"] == {"id": "aidsafe", "version": "1.0"}
    assert meta["stop_reason"] == "complete" and meta["rounds_used"] == 2
    assert [c["agent"] for c in meta["calls"]] == [
        "intent_decomposer",
        "initial_cot",
        "deliberator_a",
        "deliberator_b",
        "refiner",
    ]
    assert all(c["model"] == "teacher-x" and c["completion_tokens"] > 0 for c in meta["calls"])
    assert (out / "recipe.yaml").exists() and json.loads((out / "run.json").read_text())["recipe_hash"] == meta[
        "recipe_hash"
    ]


def test_unreachable_teacher_fails_before_any_sample(tmp_path, run_cli, prompts_file):
    out = tmp_path / "run"
    code, _, err = run_cli(
        "generate",
        "aidsafe",
        "-i",
        prompts_file(["hi"]),
        "-o",
        out,
        "--base-url",
        f"http://127.0.0.1:{free_port()}/v1",
        *FAST,
    )
    assert code == 2
    assert "not reachable" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (out / "samples.jsonl").exists()


def _generate_cmd(source, out, base_url: str, concurrency: int, *more: str) -> list[str]:
    """`aidsafe generate` as a separate process, so it can be killed."""
    return [sys.executable, "-m", "aidsafe", "generate", "aidsafe", "-i", str(source), "-o", str(out),
            "--base-url", base_url, "--model", "teacher-x", "--concurrency", str(concurrency),
            *FAST, *more]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["step", "sample"])
def test_kill_9_then_rerun_loses_and_duplicates_nothing(tmp_path, prompts_file, mode):
    prompts = _prompts(40)
    source = prompts_file(prompts)
    out = tmp_path / "run"
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"], latency_s=0.05) as server:
        cmd = _generate_cmd(source, out, server.base_url, 4, "--set", f"teacher.checkpoint={mode}")
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        finished_before = killed_after(cmd, out, 8)
        assert 8 <= len(finished_before) < len(prompts)
        calls_before = len(server.requests)

        rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
        done, rejected = _ids_in(out)
        assert rejected == []
        assert len(done) == len(set(done)) == len(prompts)
        assert set(finished_before) <= set(done)
        rerun_requests = server.requests[calls_before:]
        for prompt in finished_before.values():
            assert not any(prompt in r.text for r in rerun_requests), f"finished sample called again: {prompt}"
        # An unfinished sample's calls in the rerun, against the calls its record holds: per step
        # the samples in flight resumed from their checkpoints (some asked only their last
        # nodes); per sample each was started over (all its calls) or had reached END unjournaled.
        records = {r["prompt"]: r for r in read_jsonl(out / "samples.jsonl")}
        asked = {p: (sum(p in r.text for r in rerun_requests), len(records[p]["metadata"]["calls"]))
                 for p in prompts if p not in finished_before.values()}  # fmt: skip
        if mode == "step":
            assert all(k <= calls for k, calls in asked.values())
            assert any(0 < k < calls for k, calls in asked.values()), asked
        else:
            assert all(k in (0, calls) for k, calls in asked.values()), asked
            assert any(k == calls for k, calls in asked.values())


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_stops_cleanly_and_rerun_finishes(tmp_path, prompts_file, stop):
    # SIGTERM is how Slurm, Ray and container runtimes stop a job: it must not cost what kill -9 does.
    prompts = _prompts(20)
    source = prompts_file(prompts)
    out = tmp_path / "run"
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"], latency_s=0.1) as server:
        cmd = _generate_cmd(source, out, server.base_url, concurrency=2)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_until(proc, lambda: len(server.requests) >= 12)
        proc.send_signal(stop)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert err.strip().splitlines()[-1] == "interrupted; rerun the same command to resume"
        assert json.loads((out / "stats.json").read_text())["pending"] > 0

        rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
    done, rejected = _ids_in(out)
    assert rejected == [] and len(done) == len(set(done)) == len(prompts)


def test_unloadable_dedup_model_stops_the_run_without_rejecting_samples(tmp_path, run_cli, prompts_file):
    out = tmp_path / "run"
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"]) as server:
        code, _, err = run_cli("generate", "aidsafe", "-i", prompts_file(_prompts(4)), "-o", out,
                               "--base-url", server.base_url, "--model", "teacher-x",
                               "--set", f"dedup.model={tmp_path / 'no-such-model'}", *FAST)  # fmt: skip
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(f"error: dedup.model: cannot load '{tmp_path / 'no-such-model'}' (")
    assert read_jsonl(out / "rejected.jsonl") == [] and read_jsonl(out / "samples.jsonl") == []


def test_function_calling_mode_end_to_end(tmp_path, run_cli, prompts_file):
    out = tmp_path / "run"
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"]) as server:
        code, _, err = run_cli("generate", "aidsafe", "-i", prompts_file(_prompts(2)), "-o", out,
                               "--base-url", server.base_url, "--model", "teacher-x",
                               "--set", "teacher.structured_output=function_calling", *FAST)  # fmt: skip
        assert code == 0, err
        chat = [r.json for r in server.requests if r.path.endswith("/chat/completions")]
    assert len(read_jsonl(out / "samples.jsonl")) == 2
    assert chat and all("tools" in body and "response_format" not in body for body in chat)


def test_per_agent_model_override_reaches_the_endpoint_and_the_record(tmp_path, run_cli, prompts_file):
    out = tmp_path / "run"
    with ScriptedServer(aidsafe_responder(), models=["teacher-x", "refiner-y"]) as server:
        code, _, err = run_cli("generate", "aidsafe", "-i", prompts_file(_prompts(1)), "-o", out,
                               "--base-url", server.base_url, "--model", "teacher-x",
                               "--set", "agents.refiner={agent: refiner, model: refiner-y}", *FAST)  # fmt: skip
        assert code == 0, err
        samples = [r for r in server.requests if "AidsafePreflight" not in json.dumps(r.json)]  # one per endpoint
        models = {(r.json["model"], "Refinement" in json.dumps(r.json)) for r in samples if "model" in r.json}
    assert models == {("teacher-x", False), ("refiner-y", True)}
    calls = read_jsonl(out / "samples.jsonl")[0]["metadata"]["calls"]
    assert {c["agent"]: c["model"] for c in calls}["refiner"] == "refiner-y"
