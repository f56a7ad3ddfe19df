"""Output-directory faults through the real console command: one line, exit 2, before any call.

The teacher URL points at a closed port: an error about the directory (not "teacher not
reachable") shows the directory was checked before the pre-flight call.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from aidsafe.testing import ScriptedServer, aidsafe_responder

NOWHERE = "http://127.0.0.1:9/v1"


def _generate(tmp_path, output: str, *, base_url: str = NOWHERE, model: str = "teacher-x", unprivileged=False):
    source = tmp_path / "prompts.jsonl"
    source.write_text('{"prompt": "How do I store knives safely?"}\n', encoding="utf-8")
    cmd = [sys.executable, "-m", "aidsafe", "generate", "aidsafe", "-i", str(source), "-o", output,
           "--base-url", base_url, "--model", model, "--no-progress", "--set", "dedup.enabled=false"]  # fmt: skip
    if unprivileged and os.geteuid() == 0:
        # Root ignores file modes; without these capabilities it obeys them like any user.
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: file modes cannot be enforced")
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", *cmd]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    return result.returncode, result.stderr


def _one_line(code: int, err: str, *expected: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert "not reachable" not in err, "the directory must be checked before the pre-flight call"
    for part in expected:
        assert part in lines[0], lines[0]


@pytest.fixture
def read_only_dir(tmp_path):
    path = tmp_path / "locked"
    path.mkdir()
    path.chmod(0o555)
    yield path
    path.chmod(0o755)


def test_output_directory_not_writable(tmp_path, read_only_dir):
    _one_line(*_generate(tmp_path, str(read_only_dir), unprivileged=True), str(read_only_dir), "not writable")


def test_output_parent_not_writable(tmp_path, read_only_dir):
    out = read_only_dir / "run"
    _one_line(*_generate(tmp_path, str(out), unprivileged=True), str(out), f"{read_only_dir} is not writable")
    assert not out.exists()


def test_run_json_not_json(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text("{truncated", encoding="utf-8")
    _one_line(*_generate(tmp_path, str(out)), "run.json: not valid JSON", "new --output")


def test_checkpoints_not_a_database(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoints.sqlite").write_bytes(b"these bytes are not a SQLite database\n")
    _one_line(*_generate(tmp_path, str(out)), "checkpoints.sqlite: not a SQLite database")


def test_output_that_is_a_file(tmp_path):
    (tmp_path / "taken").write_text("x", encoding="utf-8")
    _one_line(*_generate(tmp_path, str(tmp_path / "taken")), "exists and is not a directory")


def test_empty_output_is_refused_not_the_current_directory(tmp_path):
    _one_line(*_generate(tmp_path, ""), "--output", "empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prompts.jsonl"]


def test_failed_pre_flight_writes_nothing_and_the_right_model_then_runs(tmp_path):
    out = tmp_path / "run"
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"]) as server:
        code, err = _generate(tmp_path, str(out), base_url=server.base_url, model="wrong-model")
        assert code == 2 and "wrong-model" in err, err
        assert not out.exists()
        # An empty directory left by something else (or an older version) is adopted, not refused.
        out.mkdir()
        (out / "run.json").write_text(json.dumps({"recipe_hash": "0000000000000000"}), encoding="utf-8")
        sqlite3.connect(out / "checkpoints.sqlite").close()
        code, err = _generate(tmp_path, str(out), base_url=server.base_url)
    assert code == 0, err
    assert len((out / "samples.jsonl").read_text(encoding="utf-8").splitlines()) == 1
    assert (out / "rejected.jsonl").read_text(encoding="utf-8") == ""


def test_output_under_a_directory_we_may_not_look_into(tmp_path):
    sealed = tmp_path / "sealed"
    sealed.mkdir()
    sealed.chmod(0o000)
    try:
        code, err = _generate(tmp_path, str(sealed / "inner" / "run"), unprivileged=True)
    finally:
        sealed.chmod(0o755)
    _one_line(code, err, str(sealed / "inner" / "run"), "Permission denied")
