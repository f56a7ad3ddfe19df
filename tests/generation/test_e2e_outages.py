"""`aidsafe generate` against a teacher with outages, with default retry settings (issue 22,
items 1 and 2): the fault matrix's outage kind scaled down in time, a run started during an
outage, and a teacher that fails every request the same way."""

from __future__ import annotations

import time

import pytest

from aidsafe.testing import Fault, ScriptedServer, aidsafe_responder
from tests.conftest import read_jsonl

# The default backoff (1 s doubling to 30 s, six retries) a quarter as long, as the outages are.
SCALED = ["--set", "teacher.backoff_base_s=0.25", "--set", "teacher.backoff_max_s=7.5"]


def _prompts(n: int) -> list[str]:
    return [f"[p{i:03d}] How should I handle request number {i}?" for i in range(n)]


def windows(fault: Fault, down_s: float, every_s: float | None = None):
    """A plan answering `fault` for `down_s` at the start of every `every_s` (once when None),
    timed from the first request: the run starts inside an outage."""
    started: list[float] = []

    def plan(index, request):
        now = time.monotonic()
        if not started:
            started.append(now)
        since = now - started[0]
        return fault if (since % every_s if every_s else since) < down_s else None

    return plan


def _generate(run_cli, server, source, out, *extra):
    return run_cli(
        "generate", "aidsafe", "--input", source, "--output", out, "--base-url", server.base_url,
        "--model", "teacher-x", "--no-progress", *extra,
    )  # fmt: skip


def test_a_teacher_down_5s_of_every_20s_loses_no_sample(tmp_path, run_cli, prompts_file):
    # The fault matrix's outage kind, everything a quarter as long: a 503 outage of 1.25 s every
    # 5 s (from the pre-flight on), and the default backoff (1 s doubling to 30 s) divided by 4.
    source = prompts_file(_prompts(30))
    out = tmp_path / "run"
    plan = windows(Fault.HTTP_503, down_s=1.25, every_s=5.0)
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"], fault_plan=plan, latency_s=0.15) as server:
        code, _, err = _generate(run_cli, server, source, out, "--concurrency", "4", *SCALED)
        requests = server.requests
    assert code == 0, err
    assert len(read_jsonl(out / "samples.jsonl")) == 30 and read_jsonl(out / "rejected.jsonl") == []
    # The outages hit the pre-flight and the run itself (about 7 s of calls), not only its start.
    start = requests[0].time
    assert requests[0].fault is Fault.HTTP_503
    assert any(r.fault is Fault.HTTP_503 and r.time - start > 5 for r in requests)


@pytest.mark.parametrize("fault", [Fault.HTTP_500, Fault.RESET, Fault.HTML_200])
def test_a_run_started_while_the_teacher_fails_starts_once_it_recovers(tmp_path, run_cli, prompts_file, fault):
    source = prompts_file(_prompts(2))
    out = tmp_path / "run"
    # Default backoff divided by 4, as above: 1 s of failures outlasts the old pre-flight's three
    # tries (at most 0.75 s of backoff) and is well within the retry budget.
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"], fault_plan=windows(fault, 1.0)) as server:
        code, _, err = _generate(run_cli, server, source, out, *SCALED)
    assert code == 0, err
    assert len(read_jsonl(out / "samples.jsonl")) == 2


def test_an_outage_past_the_retries_stops_the_run_naming_the_outage(tmp_path, run_cli, prompts_file):
    out = tmp_path / "run"
    quick = ["--set", "teacher.backoff_base_s=0.01", "--set", "teacher.backoff_max_s=0.05"]
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"], fault_plan=lambda i, r: Fault.HTTP_503) as server:
        code, _, err = _generate(run_cli, server, prompts_file(_prompts(2)), out, *quick)
    assert code == 2
    assert "failed 7 times in a row, last: HTTP 503: service unavailable" in err
    assert "structured-output" not in err and "json_schema" not in err
    assert not out.exists()  # a failed pre-flight leaves nothing behind


def test_a_teacher_failing_every_request_alike_stops_the_run_early(tmp_path, run_cli, prompts_file):
    def plan(index, request):
        return None if "AidsafePreflight" in str(request.get("response_format")) else Fault.HTTP_500

    out = tmp_path / "run"
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"], fault_plan=plan) as server:
        started = time.monotonic()
        code, _, err = _generate(run_cli, server, prompts_file(_prompts(40)), out)
        took = time.monotonic() - started
        sent = len(server.requests)
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "failed the first requests of this run the same way" in lines[0]
    assert "(HTTP 500: injected server error)" in lines[0] and "rerun the same command to retry" not in err
    # Default settings: each call used to wait out six backoffs (about a minute) before its
    # sample was rejected as transient; now one backoff, and a few requests.
    assert took < 20 and sent < 60
