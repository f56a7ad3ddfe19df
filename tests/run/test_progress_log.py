"""Progress without a terminal (CI logs, nohup, pipes) is whole lines (issue 22, item 7): the last
progress figures and the command's result never share a line, and lines come at a bounded rate."""

from __future__ import annotations

import sys
import time

from aidsafe.run import progress
from aidsafe.run.progress import RunProgress
from aidsafe.teacher.types import TeacherStats
from aidsafe.testing import ScriptedServer, aidsafe_responder


def test_the_last_progress_line_ends_before_the_result(capsys):
    with RunProgress(3, 0, TeacherStats()) as bar:
        for _ in range(3):
            bar.item_done(ok=True)
    print("3 samples, 0 rejected", file=sys.stderr)
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err
    lines = err.splitlines()
    assert lines[-1] == "3 samples, 0 rejected"
    assert lines[-2].startswith("samples 3/3 · 0 rejected · 0 calls")


def test_a_long_run_logs_a_line_every_interval_not_a_frame_per_refresh(capsys, monkeypatch):
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.1)
    with RunProgress(10, 0) as bar:
        for _ in range(5):
            time.sleep(0.1)
            bar.item_done(ok=True)
    lines = capsys.readouterr().err.splitlines()
    assert 3 <= len(lines) <= 7  # about one per 0.1 s of a 0.5 s run, plus the last
    assert all(line.startswith("samples ") and "━" not in line for line in lines)
    assert lines[-1].startswith("samples 5/10 · 0 rejected")


def test_generate_without_a_terminal_puts_its_result_on_its_own_line(tmp_path, run_cli, prompts_file):
    out = tmp_path / "run"
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"]) as server:
        code, _, err = run_cli(
            "generate", "aidsafe", "-i", prompts_file(["How do I bake bread?"]), "-o", out,
            "--base-url", server.base_url, "--model", "teacher-x",
        )  # fmt: skip
    assert code == 0, err
    lines = err.splitlines()
    result = [line for line in lines if "samples, 0 rejected" in line]
    assert len(result) == 1 and result[0].startswith("1 samples, 0 rejected, 0 pending -> ")
    assert any(line.startswith("samples 1/1 · 0 rejected") for line in lines)


def test_an_error_after_progress_starts_its_own_line(tmp_path, run_cli, prompts_file):
    def plan(index, request):
        return None if "AidsafePreflight" in str(request.get("response_format")) else "http_400"

    out = tmp_path / "run"
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"], fault_plan=plan) as server:
        code, _, err = run_cli(
            "generate", "aidsafe", "-i", prompts_file(["How do I bake bread?"]), "-o", out,
            "--base-url", server.base_url, "--model", "teacher-x",
        )  # fmt: skip
    assert code == 2
    assert [line for line in err.splitlines() if line.startswith("error: ")], err
