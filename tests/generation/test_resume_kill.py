"""Stop the real `aidsafe generate` right after each graph node's writes, then rerun.

The scripted server SIGKILLs the CLI process when the request of the following node arrives.
With `teacher.checkpoint: step`, by then the previous node's writes and the step's checkpoint are
stored. A second copy of each killed run directory loses its latest checkpoint, which leaves
exactly what a kill between a step's stored writes and the step's checkpoint leaves: pending
writes whose step looks done (`next` empty). With `teacher.checkpoint: sample` nothing of the
sample is stored yet, so the rerun starts it over. Every rerun must end with the one sample
complete, written once.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading

import pytest

from aidsafe.testing import ScriptedServer, aidsafe_responder
from tests.conftest import read_jsonl

PROMPT = "[kill-test] How do I store cleaning products safely?"
ROLES = ["intent_decomposer", "initial_cot", "deliberator", "deliberator", "refiner"]  # with the responder below


def _cmd(source, out, base_url: str, mode: str) -> list[str]:
    return [sys.executable, "-m", "aidsafe", "generate", "aidsafe", "-i", str(source), "-o", str(out),
            "--base-url", base_url, "--model", "teacher-x", "--no-progress", "--set", f"teacher.checkpoint={mode}",
            "--set", "dedup.enabled=false", "--set", "teacher.backoff_base_s=0.01"]  # fmt: skip


class _Killer:
    """A responder that kills the CLI when the sample's `at`-th request (0-based) arrives."""

    def __init__(self, at: int | None) -> None:
        self.at = at
        self.seen = 0
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()
        self.reply = aidsafe_responder()

    def __call__(self, request: dict):
        with self.lock:
            mine = PROMPT in str(request.get("messages"))
            index, self.seen = self.seen, self.seen + mine
            if mine and index == self.at and self.proc is not None:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.reply(request)


def _drop_latest_checkpoint(db) -> None:
    with sqlite3.connect(db) as conn:
        (latest,) = conn.execute("SELECT checkpoint_id FROM checkpoints ORDER BY checkpoint_id DESC LIMIT 1").fetchone()
        conn.execute("DELETE FROM checkpoints WHERE checkpoint_id = ?", (latest,))
        conn.execute("DELETE FROM writes WHERE checkpoint_id = ?", (latest,))


def _check_complete(out) -> None:
    [sample] = read_jsonl(out / "samples.jsonl")
    assert read_jsonl(out / "rejected.jsonl") == []
    assert sample["prompt"] == PROMPT and sample["response"] == "Here is the final safe, helpful answer."
    assert sample["thoughts"] and sample["intents"] and sample["metadata"]["stop_reason"] == "complete"
    # every node ran exactly once across the runs (no step redone, none skipped)
    assert [c["role"] for c in sample["metadata"]["calls"]] == ROLES


def _asked(server: ScriptedServer, since: int) -> int:
    """The sample's teacher calls since request number `since`."""
    return sum(PROMPT in request.text for request in server.requests[since:])


def _stored_threads(db) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]


@pytest.mark.slow
@pytest.mark.parametrize("boundary", range(1, len(ROLES)), ids=[f"after_{r}" for r in ROLES[:-1]])
def test_per_step_stop_after_each_node_then_rerun_completes_the_sample_once(tmp_path, prompts_file, boundary):
    """Per step: the rerun asks only the nodes that had not finished, also from a directory that
    lost its latest checkpoint."""
    source = prompts_file([PROMPT])
    killed, partial = tmp_path / "killed", tmp_path / "partial"
    killer = _Killer(at=boundary)
    with ScriptedServer(killer, models=["teacher-x"]) as server:
        killer.proc = subprocess.Popen(_cmd(source, killed, server.base_url, "step"), stderr=subprocess.DEVNULL)
        killer.proc.wait(timeout=120)
        assert killer.proc.returncode == -signal.SIGKILL
        assert read_jsonl(killed / "samples.jsonl") == []
        shutil.copytree(killed, partial)
        _drop_latest_checkpoint(partial / "checkpoints.sqlite")

        killer.at = None
        for out in (killed, partial):
            before = len(server.requests)
            rerun = subprocess.run(_cmd(source, out, server.base_url, "step"), capture_output=True, text=True,
                                   timeout=120)  # fmt: skip
            assert rerun.returncode == 0, rerun.stderr
            _check_complete(out)
            assert _asked(server, before) == len(ROLES) - boundary  # resumed at the killed node


@pytest.mark.slow
@pytest.mark.parametrize("boundary", [1, 3], ids=[f"after_{ROLES[i - 1]}" for i in (1, 3)])
def test_per_sample_a_kill_mid_sample_stores_nothing_and_the_rerun_starts_it_over_once(
    tmp_path, prompts_file, boundary
):
    source, out = prompts_file([PROMPT]), tmp_path / "killed"
    killer = _Killer(at=boundary)
    with ScriptedServer(killer, models=["teacher-x"]) as server:
        killer.proc = subprocess.Popen(_cmd(source, out, server.base_url, "sample"), stderr=subprocess.DEVNULL)
        killer.proc.wait(timeout=120)
        assert killer.proc.returncode == -signal.SIGKILL
        assert read_jsonl(out / "samples.jsonl") == [] and _stored_threads(out / "checkpoints.sqlite") == 0

        killer.at = None
        before = len(server.requests)
        rerun = subprocess.run(_cmd(source, out, server.base_url, "sample"), capture_output=True, text=True,
                               timeout=120)  # fmt: skip
        assert rerun.returncode == 0, rerun.stderr
        assert _asked(server, before) == len(ROLES)  # started over: every node asked again, once
    _check_complete(out)
    assert _stored_threads(out / "checkpoints.sqlite") == 0


@pytest.mark.parametrize("mode", ["step", "sample"])
def test_stop_after_the_last_node_publishes_the_stored_end_state_without_new_calls(tmp_path, prompts_file, monkeypatch,
                                                                                  mode):  # fmt: skip
    """Stopped after the END checkpoint but before the journal line: the rerun publishes the
    finished state from the checkpoint and asks the teacher nothing (per sample, the END state
    is the one checkpoint)."""
    from aidsafe.errors import RunSetupError
    from aidsafe.generation.runner import GenerateRequest, generate
    from aidsafe.run.journal import RunDirectory
    from aidsafe.testing import FakeTeacher

    request = GenerateRequest(recipe="aidsafe", input=str(prompts_file([PROMPT])), output=tmp_path / "run",
                              progress=False,
                              overrides=["dedup.enabled=false", f"teacher.checkpoint={mode}"])  # fmt: skip
    append = RunDirectory.append_sample

    def stopped(self, record, digest):
        raise RunSetupError("stopped before the journal line")

    monkeypatch.setattr(RunDirectory, "append_sample", stopped)
    with pytest.raises(RunSetupError):
        generate(request, env={}, teacher=FakeTeacher())
    monkeypatch.setattr(RunDirectory, "append_sample", append)
    again = FakeTeacher()
    generate(request, env={}, teacher=again)
    assert again.calls == []
    _check_complete(tmp_path / "run")
