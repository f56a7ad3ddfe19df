"""Stop the real `aidsafe generate` right after each graph node's writes, then rerun.

The scripted server SIGKILLs the CLI process when the request of the following node arrives:
by then the previous node's writes and the step's checkpoint are stored. A second copy of each
killed run directory loses its latest checkpoint, which leaves exactly what a kill between a
step's stored writes and the step's checkpoint leaves: pending writes whose step looks done
(`next` empty). Every rerun must end with the one sample complete, written once.
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


def _cmd(source, out, base_url: str) -> list[str]:
    return [sys.executable, "-m", "aidsafe", "generate", "aidsafe", "-i", str(source), "-o", str(out),
            "--base-url", base_url, "--model", "teacher-x", "--no-progress",
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


@pytest.mark.slow
@pytest.mark.parametrize("boundary", range(1, len(ROLES)), ids=[f"after_{r}" for r in ROLES[:-1]])
def test_stop_after_each_node_then_rerun_completes_the_sample_once(tmp_path, prompts_file, boundary):
    source = prompts_file([PROMPT])
    killed, partial = tmp_path / "killed", tmp_path / "partial"
    killer = _Killer(at=boundary)
    with ScriptedServer(killer, models=["teacher-x"]) as server:
        killer.proc = subprocess.Popen(_cmd(source, killed, server.base_url), stderr=subprocess.DEVNULL)
        killer.proc.wait(timeout=120)
        assert killer.proc.returncode == -signal.SIGKILL
        assert read_jsonl(killed / "samples.jsonl") == []
        shutil.copytree(killed, partial)
        _drop_latest_checkpoint(partial / "checkpoints.sqlite")

        killer.at = None
        for out in (killed, partial):
            rerun = subprocess.run(_cmd(source, out, server.base_url), capture_output=True, text=True, timeout=120)
            assert rerun.returncode == 0, rerun.stderr
            _check_complete(out)


def test_stop_after_the_last_node_publishes_the_stored_end_state_without_new_calls(tmp_path, prompts_file, monkeypatch):
    """Stopped after the END checkpoint but before the journal line: the rerun publishes the
    finished state from the checkpoint and asks the teacher nothing."""
    from aidsafe.errors import RunSetupError
    from aidsafe.generation.runner import GenerateRequest, generate
    from aidsafe.run.journal import RunDirectory
    from aidsafe.testing import FakeTeacher

    request = GenerateRequest(recipe="aidsafe", input=str(prompts_file([PROMPT])), output=tmp_path / "run",
                              progress=False, overrides=["dedup.enabled=false"])  # fmt: skip
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
