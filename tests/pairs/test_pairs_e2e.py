"""generate -> pairs end to end: the real CLI and HTTP client against the loopback ScriptedServer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import pytest

from aidsafe.testing import ScriptedServer, aidsafe_responder, schema_responder
from tests.conftest import read_jsonl
from tests.helpers import FAST
from tests.pairs.helpers import pairs_server_responder

TEACHER = ["--model", "teacher-x"]


def _generate(run_cli, server, source, out) -> None:
    code, _, err = run_cli("generate", "aidsafe", "-i", source, "-o", out, "--base-url", server.base_url, *TEACHER,
                           "--set", "dedup.enabled=false", *FAST)  # fmt: skip
    assert code == 0, err


def test_generate_then_pairs_makes_dpo_ready_pairs(tmp_path, run_cli, prompts_file):
    prompts = [f"[sep={k}] How do I handle request {i}?" for i, k in enumerate([1, 1, 2, 3, 0, 1])]
    gen, out = tmp_path / "gen", tmp_path / "pairs"
    with ScriptedServer(pairs_server_responder(), models=["teacher-x"]) as server:
        _generate(run_cli, server, prompts_file(prompts), gen)
        code, _, err = run_cli("pairs", "aidsafe-pairs", "-i", gen, "-o", out, "--base-url", server.base_url, *TEACHER,
                               "--concurrency", "4", *FAST)  # fmt: skip
        assert code == 0, err
        assert "5 pairs, 1 no_separation" in err
    samples = {s["id"]: s for s in read_jsonl(gen / "samples.jsonl")}
    pairs = read_jsonl(out / "samples.jsonl")
    [rejected] = read_jsonl(out / "rejected.jsonl")
    assert rejected["reason"] == "no_separation" and rejected["prompt"] == prompts[4] and len(rejected["attempts"]) == 3
    assert sorted(p["iterations"] for p in pairs) == [1, 1, 1, 2, 3]
    for pair in pairs:
        sample = samples[pair["id"]]
        assert pair["prompt"] == sample["prompt"] and pair["chosen"]["response"] == sample["response"]
        assert [t["text"] for t in pair["chosen"]["thoughts"]] == [t["text"] for t in sample["thoughts"]]
        assert "STEERED" in pair["rejected"]["response"] and "STEERED" not in pair["prompt"]
        assert pair["metadata"]["source_recipe_hash"] == sample["metadata"]["recipe_hash"]
        assert pair["metadata"]["judge"] == {"kind": "llm", "agent": "judge", "model": "teacher-x"}
        roles = [c["role"] for c in pair["metadata"]["calls"]]
        assert roles == ["ear_whisperer", "rejected_cot", "judge"] * pair["iterations"]
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["pairs"], stats["no_separation"], stats["pending"]) == (5, 1, 0)
    assert stats["iterations"]["histogram"] == {"1": 3, "2": 1, "3": 1}
    assert stats["judge"]["pairs"]["chosen"]["faithfulness_mean"] == 5
    assert stats["judge"]["pairs"]["rejected"]["faithfulness_mean"] == 1
    assert stats["judge"]["all_attempts"]["attempts"] == 3 + 2 + 3 + 3  # 3 first-time, 2, 3, and 3 never

    # a rerun has nothing to do and makes no teacher call
    with ScriptedServer(pairs_server_responder(), models=["teacher-x"]) as server:
        code, _, err = run_cli("pairs", "aidsafe-pairs", "-i", gen, "-o", out, "--base-url", server.base_url, *TEACHER,
                               *FAST)  # fmt: skip
        assert code == 0, err
        assert server.requests == []
    assert len(read_jsonl(out / "samples.jsonl")) == 5


@pytest.mark.parametrize("mode", ["json_schema", "function_calling"])
def test_pairs_against_a_teacher_that_knows_only_the_schemas(tmp_path, run_cli, prompts_file, mode):
    prompts = [f"Question {i}: how do I stay safe doing thing {i}?" for i in range(12)]
    gen, out = tmp_path / "gen", tmp_path / "pairs"
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"]) as server:
        _generate(run_cli, server, prompts_file(prompts), gen)
    with ScriptedServer(schema_responder(seed=3), models=["teacher-x"]) as server:
        code, _, err = run_cli("pairs", "aidsafe-pairs", "-i", gen, "-o", out, "--base-url", server.base_url, *TEACHER,
                               "--set", f"teacher.structured_output={mode}", *FAST)  # fmt: skip
        assert code == 0, err
    pairs, rejected = read_jsonl(out / "samples.jsonl"), read_jsonl(out / "rejected.jsonl")
    assert {r["reason"] for r in rejected} <= {"no_separation"}, rejected[:1]
    assert len(pairs) + len(rejected) == len(prompts)
    for pair in pairs:  # a pair is only ever one the judge separated
        final = pair["scores"][-1]
        assert final["separated"] and final["rejected"]["violates"] and not final["chosen"]["violates"]
        assert final["gap"] >= 2


def _pair_call(request: dict) -> bool:
    return any(word in json.dumps(request) for word in ('"Belief"', '"JudgeVerdict"', "STEERED"))


class _Killer:
    """Answers like pairs_server_responder; SIGKILLs the CLI at the `at`-th pair-role request."""

    def __init__(self, at: int) -> None:
        self.at, self.seen, self.proc = at, 0, None
        self.lock = threading.Lock()
        self.reply = pairs_server_responder()

    def __call__(self, request: dict):
        with self.lock:
            if _pair_call(request):
                self.seen += 1
                if self.seen == self.at and self.proc is not None:
                    os.kill(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
        return self.reply(request)


@pytest.mark.slow
@pytest.mark.parametrize(("at", "mode"), [(2, "step"), (5, "step"), (7, "step"), (5, "sample")])
def test_rerun_after_kill_makes_no_duplicate_pair_and_repeats_no_finished_call(tmp_path, run_cli, prompts_file, at,
                                                                               mode):  # fmt: skip
    """Per step the rerun repeats no finished call; per sample it starts the killed sample over
    (its finished calls are asked again) and still makes each pair once."""
    prompts = ["[sep=3] Kill test: how do I store cleaning products?", "[sep=1] Kill test two?"]
    gen, out = tmp_path / "gen", tmp_path / "pairs"
    killer = _Killer(at)
    with ScriptedServer(killer, models=["teacher-x"]) as server:
        _generate(run_cli, server, prompts_file(prompts), gen)
        cmd = [sys.executable, "-m", "aidsafe", "pairs", "aidsafe-pairs", "-i", str(gen), "-o", str(out),
               "--base-url", server.base_url, *TEACHER, "--concurrency", "1",
               "--set", f"teacher.checkpoint={mode}", *FAST]  # fmt: skip
        killer.proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        killer.proc.wait(timeout=120)
        assert killer.proc.returncode == -signal.SIGKILL
        killer.proc = None
        killed_at = len(server.requests)
        rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        sent = {p: [r for r in server.requests if _pair_call(r.json) and p in r.text] for p in prompts}
        again = {p: [r for r in server.requests[killed_at:] if _pair_call(r.json) and p in r.text] for p in prompts}
    pairs = read_jsonl(out / "samples.jsonl")
    assert sorted(p["id"] for p in pairs) == sorted({p["id"] for p in pairs}) and len(pairs) == 2
    assert read_jsonl(out / "rejected.jsonl") == []
    restarted = 0
    for pair in pairs:  # every step in the record once: none redone into it, none skipped
        roles = [c["role"] for c in pair["metadata"]["calls"]]
        assert roles == ["ear_whisperer", "rejected_cot", "judge"] * pair["iterations"]
        total, rerun_calls = len(sent[pair["prompt"]]), len(again[pair["prompt"]])
        if mode == "step":  # the teacher saw each call once, plus at most the one in flight at the kill
            assert len(roles) <= total <= len(roles) + 1
        else:  # finished before the kill, or started over: every call asked again in the rerun
            assert rerun_calls in (0, len(roles)), (rerun_calls, roles)
            restarted += rerun_calls == len(roles) < total
    assert mode == "step" or restarted >= 1  # a sample killed mid-way redid its finished calls
