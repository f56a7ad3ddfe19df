"""Files aidsafe reads and writes, from hostile or broken places: links planted in a run directory
(from a tarball or a CI artifact) never make aidsafe write outside it; a line of many megabytes,
JSON nested past the stack, a FIFO or a device is one line naming the file, at once."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from aidsafe.testing import schema_responder
from aidsafe.testing.server import ScriptedServer
from tests.cli.test_cli_errors import _one_line_error
from tests.helpers import FAST_NO_RETRY as FAST

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_runs"
REPO = FIXTURES.parents[2]
SECRET = "a file outside the run that must not change\n"


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "victim.txt"
    path.write_text(SECRET, encoding="utf-8")
    return path


def test_a_planted_tmp_link_does_not_redirect_stats_on_resume(tmp_path, victim, run_cli):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "generation", run)
    (run / "stats.json.tmp").symlink_to(victim)
    with ScriptedServer(schema_responder(seed=3), models=["m"]) as server:
        args = ["-i", REPO / "examples" / "prompts.jsonl", "-o", run, "--set", "dedup.enabled=false"]
        code, _, err = run_cli("generate", "aidsafe", *args, "--base-url", server.base_url, "--model", "m", *FAST)
    assert code == 0, err
    assert victim.read_text(encoding="utf-8") == SECRET
    assert json.loads((run / "stats.json").read_text())["samples"] == 6  # written, as a file of its own


def test_a_planted_tmp_link_is_not_truncated_by_retry_rejected(tmp_path, victim, run_cli):
    run, source = tmp_path / "pairs", tmp_path / "generation"
    shutil.copytree(FIXTURES / "pairs", run)
    shutil.copytree(FIXTURES / "generation", source)
    (run / "rejected.jsonl.tmp").symlink_to(victim)
    with ScriptedServer(schema_responder(seed=3), models=["m"]) as server:
        run_cli("pairs", "make", "aidsafe-pairs", "-i", source, "-o", run, "--retry-rejected", "--limit", "2",
                "--base-url", server.base_url, "--model", "m", *FAST)  # fmt: skip
    assert victim.read_text(encoding="utf-8") == SECRET


def test_a_report_html_link_is_refused_not_followed(tmp_path, victim, run_cli):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "generation", run)
    (run / "report.html").symlink_to(victim)
    _one_line_error(*run_cli("report", run)[::2], "report.html: is a symbolic link")
    assert victim.read_text(encoding="utf-8") == SECRET and (run / "report.html").is_symlink()


def test_a_journal_link_is_never_appended_through(tmp_path, victim):
    from aidsafe.errors import AidsafeError
    from aidsafe.run.jsonl import append_jsonl, cut_partial_tail

    link = tmp_path / "samples.jsonl"
    link.symlink_to(victim)
    with pytest.raises(AidsafeError, match="is a symbolic link"):
        append_jsonl(link, {"id": "x"})
    with pytest.raises(AidsafeError, match="is a symbolic link"):
        cut_partial_tail(link)
    assert victim.read_text(encoding="utf-8") == SECRET


def test_a_line_past_the_cap_is_one_line_at_once(tmp_path, run_cli):
    prompts = tmp_path / "prompts.jsonl"
    with prompts.open("wb") as handle:  # 80 MB without a newline
        handle.write(b'{"prompt": "' + b"x" * (80 << 20))
    started = time.monotonic()
    _one_line_error(*run_cli("generate", "aidsafe", "-i", prompts, "-o", tmp_path / "out", "--model", "m")[::2],
                    "prompts.jsonl:1: a line longer than 64 MB")  # fmt: skip
    assert time.monotonic() - started < 20  # measured: more than 20 s before, for the tail scan alone


def test_an_unterminated_tail_is_found_in_one_pass(tmp_path):
    """The tail scan read 64 KB blocks backwards and prepended each: quadratic in the tail's length."""
    from aidsafe.run.jsonl import cut_partial_tail

    journal = tmp_path / "samples.jsonl"
    journal.write_bytes(b'{"id": "a"}\n' + b"y" * (48 << 20))
    cut_partial_tail(journal)
    assert journal.read_bytes() == b'{"id": "a"}\n'


@pytest.mark.parametrize("name,body", [("p.jsonl", "[" * 100_000 + "]" * 100_000 + "\n"),
                                       ("p.json", "[" * 100_000 + "]" * 100_000)])  # fmt: skip
def test_json_nested_past_the_stack_is_one_line(tmp_path, run_cli, name, body):
    prompts = tmp_path / name
    prompts.write_text(body, encoding="utf-8")
    _one_line_error(*run_cli("generate", "aidsafe", "-i", prompts, "-o", tmp_path / "out", "--model", "m")[::2],
                    name, "nested too deeply")  # fmt: skip


def test_a_fifo_input_is_named_as_such(tmp_path, run_cli):
    os.mkfifo(tmp_path / "p.jsonl")
    _one_line_error(*run_cli("generate", "aidsafe", "-i", tmp_path / "p.jsonl", "-o", tmp_path / "out",
                             "--model", "m")[::2], "p.jsonl: is a FIFO, not a regular file")  # fmt: skip


def test_a_full_disk_mid_run_is_one_line_and_leaves_no_temporary_file(tmp_path, run_cli, monkeypatch):
    import errno

    import aidsafe.run.jsonl as jsonl

    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "generation", run)
    real_write = os.write
    state = {"journal_lines": 0}

    def write(fd, data):  # the disk fills up after one more journal line
        if data.startswith(b'{"id": '):
            state["journal_lines"] += 1
            if state["journal_lines"] > 1:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(jsonl.os, "write", write)
    with ScriptedServer(schema_responder(seed=3), models=["m"]) as server:
        args = ["-i", REPO / "examples" / "prompts.jsonl", "-o", run, "--set", "dedup.enabled=false"]
        code, _, err = run_cli("generate", "aidsafe", *args, "--base-url", server.base_url, "--model", "m", *FAST)
    _one_line_error(code, err, "disk full writing", "samples.jsonl; free space and rerun to resume")
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
