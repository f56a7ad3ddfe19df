"""One writer per run directory (aidsafe.run.lock): a second command that would write the run, or
export it, refuses at once in one line naming the holder's pid; a stale lock file blocks nobody;
a run stopped before its first write leaves no directory behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aidsafe.run.lock import LOCK_FILE, run_lock
from aidsafe.testing import schema_responder
from aidsafe.testing.server import ScriptedServer
from tests.cli.test_cli_errors import _one_line_error
from tests.helpers import FAST_NO_RETRY as FAST

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_runs"
REPO = FIXTURES.parents[2]
PROMPTS = REPO / "examples" / "prompts.jsonl"


@pytest.fixture
def runs(tmp_path):
    for kind in ("generation", "pairs", "thinkguard"):
        shutil.copytree(FIXTURES / kind, tmp_path / kind)
    return tmp_path


@pytest.mark.parametrize(
    "command",
    [
        ["generate", "aidsafe", "-i", PROMPTS, "-o", "{runs}/generation", "--set", "dedup.enabled=false"],
        ["pairs", "make", "aidsafe-pairs", "-i", "{runs}/generation", "-o", "{runs}/pairs"],
        ["generate", "thinkguard", "-i", FIXTURES / "beavertails.jsonl", "-o", "{runs}/thinkguard"],
        ["export", "{runs}/generation", "-o", "{runs}/export", "--no-decontaminate", "--no-dedup"],
        ["merge", "{runs}/generation", "-o", "{runs}/merged"],
    ],
    ids=["generate", "pairs", "thinkguard", "export", "merge"],
)
def test_a_second_command_on_a_run_in_use_refuses_naming_the_holder(runs, run_cli, command):
    args = [str(a).format(runs=runs) for a in command]
    held = Path(args[args.index("-o") + 1]) if command[0] != "export" and command[0] != "merge" else runs / "generation"
    before = {p.name: p.read_bytes() for p in held.iterdir() if p.is_file()}
    with run_lock(held):
        code, _, err = run_cli(*args, *(["--base-url", "http://127.0.0.1:9/v1", "--model", "m", *FAST]
                                         if command[0] in ("generate", "pairs") else []))  # fmt: skip
    _one_line_error(code, err, f"another aidsafe (pid {os.getpid()}) is writing this run")
    after = {p.name: p.read_bytes() for p in held.iterdir() if p.is_file() and p.name != LOCK_FILE}
    assert after == {k: v for k, v in before.items() if k != LOCK_FILE}  # nothing written


def test_a_stale_lock_file_blocks_nobody(runs, run_cli):
    run = runs / "generation"
    (run / LOCK_FILE).write_text("999999 writing\n")  # left by a process that was killed
    with ScriptedServer(schema_responder(seed=3), models=["m"]) as server:
        code, _, err = run_cli("generate", "aidsafe", "-i", PROMPTS, "-o", run, "--set", "dedup.enabled=false",
                               "--base-url", server.base_url, "--model", "m", *FAST)  # fmt: skip
    assert code == 0, err


def test_a_run_stopped_before_its_first_write_leaves_no_directory(tmp_path, run_cli):
    out = tmp_path / "never"
    code, _, err = run_cli("generate", "aidsafe", "-i", PROMPTS, "-o", out, "--base-url", "http://127.0.0.1:9/v1",
                           "--model", "m", *FAST)  # fmt: skip
    assert code == 2 and "not reachable" in err
    assert not out.exists()


@pytest.mark.slow
def test_two_generates_on_one_output_never_both_write(tmp_path):
    """The measured defect: a second `aidsafe generate` started 0.3 s after the first; both exited
    0 and every sample was written twice. Now the second refuses and the first writes each id once."""
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with ScriptedServer(schema_responder(seed=3), models=["m"], latency_s=0.2) as server:
        args = [sys.executable, "-m", "aidsafe", "generate", "aidsafe", "-i", PROMPTS, "-o", out,
                "--set", "dedup.enabled=false", "--base-url", server.base_url, "--model", "m", *FAST]  # fmt: skip
        first = subprocess.Popen([str(a) for a in args], env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not (out / LOCK_FILE).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        second = subprocess.run([str(a) for a in args], env=env, capture_output=True, text=True, timeout=120)
        first_err = first.communicate(timeout=300)[1]
    assert first.returncode == 0, first_err
    assert second.returncode == 2 and f"another aidsafe (pid {first.pid}) is writing this run" in second.stderr
    ids = [json.loads(line)["id"] for line in (out / "samples.jsonl").read_text().splitlines() if line]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 6
