"""The executor: circuit breaker, retry of transient rejections, digests, checkpoint pruning, progress."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from aidsafe.errors import AidsafeError
from aidsafe.generation.runner import GenerateRequest, GenerationTask, NothingFinished, generate
from aidsafe.run.executor import BREAKER_WINDOW, RecipeJournal, execute
from aidsafe.run.journal import RunDirectory
from aidsafe.run.progress import progress_line
from aidsafe.run.task import Rejection, RunContext, Task
from aidsafe.teacher.types import TeacherStats, TransientTeacherError
from aidsafe.testing import FakeTeacher, default_reply
from tests.conftest import read_jsonl


class _Echo(Task[str]):
    """Items are strings; `fail(item)` returns a Rejection to raise, or None to finish."""

    noun = "items"

    def __init__(self, fail=lambda item: None) -> None:
        self.fail = fail
        self.ran: list[str] = []

    def key(self, item: str) -> str:
        return item

    def digest(self, item: str) -> str:
        return "d-" + item

    async def run(self, item: str, ctx: RunContext) -> dict:
        self.ran.append(item)
        rejection = self.fail(item)
        if rejection is not None:
            raise rejection
        return {"id": item}


def _journal(tmp_path) -> RecipeJournal:
    return RecipeJournal(RunDirectory(tmp_path / "run"), "h" * 16, {"name": "test"})


async def test_breaker_stops_when_the_first_items_all_fail_alike(tmp_path):
    items = [f"i{n:02d}" for n in range(BREAKER_WINDOW + 10)]
    wrong = _Echo(lambda item: Rejection("run", "teacher_error", "HTTP 404: model `x` does not exist"))
    with pytest.raises(AidsafeError) as info:
        await execute(wrong, items, _journal(tmp_path), workers=1, progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"stopped: the first {BREAKER_WINDOW} items all failed at run (teacher_error: HTTP 404")
    assert len(wrong.ran) == BREAKER_WINDOW  # it did not go on through the rest
    assert read_jsonl(tmp_path / "run" / "rejected.jsonl") == []  # nothing written: a rerun retries them all


async def test_breaker_does_not_trip_on_mixed_outcomes(tmp_path):
    items = [f"i{n:02d}" for n in range(BREAKER_WINDOW + 5)]
    mostly = _Echo(lambda item: None if item == "i07" else Rejection("run", "invalid_output", "bad"))
    outcome = await execute(mostly, items, _journal(tmp_path), workers=3, progress=False)
    assert outcome.finished == 1 and len(outcome.rejected) == len(items) - 1
    rejected = read_jsonl(tmp_path / "run" / "rejected.jsonl")
    assert sorted(r["id"] for r in rejected) == sorted(set(items) - {"i07"})
    assert all(r["reason"] == "invalid_output" and not r["transient"] for r in rejected)


async def test_breaker_ignores_content_verdicts_even_when_all_alike(tmp_path):
    # 20+ identical no_separation rejections: a weak judge or teacher, not a broken endpoint
    items = [f"i{n:02d}" for n in range(BREAKER_WINDOW + 5)]
    verdict = Rejection("judge", "no_separation", "no belief separated the sides in 3 iterations (#1 5/5)")
    assert not verdict.signals_setup
    task = _Echo(lambda item: verdict)
    outcome = await execute(task, items, _journal(tmp_path), workers=2, progress=False)
    assert len(task.ran) == len(items) and len(outcome.rejected) == len(items)
    assert len(read_jsonl(tmp_path / "run" / "rejected.jsonl")) == len(items)


@pytest.mark.parametrize("reason", ["teacher_error", "invalid_output", "malformed_reply", "error"])
async def test_breaker_still_trips_on_setup_failures_after_content_verdicts_are_ruled_out(tmp_path, reason):
    assert Rejection("run", reason, "x").signals_setup
    items = [f"i{n:02d}" for n in range(BREAKER_WINDOW + 5)]
    task = _Echo(lambda item: Rejection("run", reason, "the same failure"))
    with pytest.raises(AidsafeError, match=f"stopped: the first {BREAKER_WINDOW} items all failed at run .{reason}"):
        await execute(task, items, _journal(tmp_path), workers=2, progress=False)
    assert read_jsonl(tmp_path / "run" / "rejected.jsonl") == []


async def test_a_content_verdict_first_ends_the_watch_like_a_finished_item(tmp_path):
    # the setup answered (the judge judged): later identical setup failures are written, not held
    items = [f"i{n:02d}" for n in range(BREAKER_WINDOW + 5)]
    task = _Echo(lambda item: Rejection("judge", "no_separation", "n") if item == "i00"
                 else Rejection("run", "teacher_error", "HTTP 404"))  # fmt: skip
    outcome = await execute(task, items, _journal(tmp_path), workers=1, progress=False)
    assert len(outcome.rejected) == len(items) == len(read_jsonl(tmp_path / "run" / "rejected.jsonl"))


async def test_fewer_items_than_the_window_are_written_not_tripped(tmp_path):
    task = _Echo(lambda item: Rejection("run", "error", "TypeError: boom at x.py:1"))
    outcome = await execute(task, ["a", "b"], _journal(tmp_path), workers=2, progress=False)
    assert len(outcome.rejected) == 2 and len(read_jsonl(tmp_path / "run" / "rejected.jsonl")) == 2


async def test_transient_rejections_are_retried_and_permanent_ones_kept(tmp_path):
    def first(item):
        if item == "down":
            return Rejection("run", "teacher_unavailable", "503", transient=True)
        return Rejection("run", "invalid_output", "bad") if item == "bad" else None

    await execute(_Echo(first), ["ok", "down", "bad"], _journal(tmp_path), workers=1, progress=False)
    second = _Echo()
    outcome = await execute(second, ["ok", "down", "bad"], _journal(tmp_path), workers=1, progress=False)
    assert second.ran == ["down"] and (outcome.skipped, outcome.finished) == (2, 1)
    assert [r["id"] for r in read_jsonl(tmp_path / "run" / "rejected.jsonl")] == ["bad"]

    third = _Echo()
    await execute(third, ["ok", "down", "bad"], _journal(tmp_path), workers=1, progress=False, retry_rejected=True)
    assert third.ran == ["bad"] and read_jsonl(tmp_path / "run" / "rejected.jsonl") == []
    assert sorted(r["id"] for r in read_jsonl(tmp_path / "run" / "samples.jsonl")) == ["bad", "down", "ok"]


def _request(source, out, **kw) -> GenerateRequest:
    return GenerateRequest(
        recipe="aidsafe", input=str(source), output=out, progress=False, overrides=["dedup.enabled=false"], **kw
    )


def _threads(db) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT DISTINCT thread_id FROM checkpoints")}


def test_checkpoints_are_kept_only_for_transient_rejections(tmp_path, prompts_file):
    source = prompts_file(["fine", "doomed", "flaky"])
    out = tmp_path / "run"

    def refiner(call):
        if "doomed" in call.text:
            return {"kept": [], "removed": [], "response": ""}  # invalid every time: permanent
        if "flaky" in call.text:
            raise TransientTeacherError("refiner: 503 after 6 retries")
        return default_reply("Refinement", call.messages)

    generate(_request(source, out), env={}, teacher=FakeTeacher({"refiner": refiner}))
    by_prompt = {r["prompt"]: r for r in read_jsonl(out / "rejected.jsonl")}
    assert by_prompt["doomed"]["transient"] is False and by_prompt["flaky"]["transient"] is True
    assert _threads(out / "checkpoints.sqlite") == {by_prompt["flaky"]["id"]}


def test_threads_left_by_earlier_runs_are_pruned_at_start(tmp_path, prompts_file):
    source = prompts_file(["one", "two"])
    out = tmp_path / "run"
    generate(_request(source, out, limit=1), env={}, teacher=FakeTeacher())
    [done] = read_jsonl(out / "samples.jsonl")
    with sqlite3.connect(out / "checkpoints.sqlite") as conn:  # what a kill after the journal line leaves
        conn.execute(
            "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, type, checkpoint, metadata) "
            "VALUES (?, '', 'x', 'msgpack', x'80', x'80')",
            (done["id"],),
        )
    generate(_request(source, out), env={}, teacher=FakeTeacher())
    assert _threads(out / "checkpoints.sqlite") == set()


def test_a_changed_prompt_under_an_existing_id_is_refused(tmp_path):
    source = tmp_path / "prompts.jsonl"
    source.write_text('{"id": "q1", "prompt": "first wording"}\n', encoding="utf-8")
    out = tmp_path / "run"
    generate(_request(source, out), env={}, teacher=FakeTeacher())
    source.write_text('{"id": "q1", "prompt": "another wording"}\n', encoding="utf-8")
    untouched = FakeTeacher()
    with pytest.raises(AidsafeError, match=r"^sample 'q1': its input changed since it was journaled") as info:
        generate(_request(source, out), env={}, teacher=untouched)
    assert "\n" not in str(info.value) and untouched.calls == []


def test_a_run_that_finishes_nothing_fails_and_says_so(tmp_path, run_cli, prompts_file):
    out = tmp_path / "run"
    broken = FakeTeacher({"initial_cot": lambda call: {"thoughts": [], "response": ""}})
    with pytest.raises(NothingFinished, match=r"no sample finished: 2 of 2 rejected, 2 at initial_cot") as info:
        generate(_request(prompts_file(["a", "b"]), out), env={}, teacher=broken)
    assert info.value.stats["rejected"] == 2 and json.loads((out / "stats.json").read_text())["samples"] == 0


def test_a_failed_preflight_writes_nothing(tmp_path, run_cli, prompts_file):
    out = tmp_path / "run"
    code, _, err = run_cli("generate", "aidsafe", "-i", prompts_file(["a"]), "-o", out,
                           "--base-url", "http://127.0.0.1:9/v1", "--no-progress")  # fmt: skip
    assert code == 2 and "not reachable" in err
    assert not out.exists()


async def test_the_embedding_model_load_is_named_on_the_progress_line(monkeypatch, tmp_path):
    from aidsafe.generation import dedup
    from aidsafe.generation.pipeline import load_pipeline

    loading = threading.Event()
    release = threading.Event()

    class SlowModel:
        def __init__(self, *args) -> None:
            pass

        def warm_up(self) -> None:
            loading.set()
            release.wait(30)

    monkeypatch.setattr(dedup, "ThoughtDeduplicator", SlowModel)
    notes: list[str] = []
    ctx = RunContext(note=notes.append)
    task = GenerationTask(load_pipeline("aidsafe", []), FakeTeacher())
    await task.start(ctx)
    [warm] = ctx._background
    import asyncio

    running = asyncio.ensure_future(warm)
    await asyncio.to_thread(loading.wait, 30)
    assert notes == ["loading the embedding model all-MiniLM-L6-v2 (dedup)"]
    release.set()
    await running
    assert notes[-1] == ""


def test_the_progress_line_fits_the_terminal_without_cutting_a_figure():
    stats = TeacherStats(calls=123456, in_flight=64, prompt_tokens=98_765_432, completion_tokens=1_234_567,
                         parse_retries=321, transport_retries=4321)  # fmt: skip
    for width in (40, 60, 80, 120, 200):
        line = progress_line("samples", 123456, 1_000_000, 789, stats, "", width, eta="12:34:56")
        assert len(line) <= width, (width, line)
        assert line.startswith("samples") and "123456/1000000" in line
        whole = {"789 rejected", "123456 calls (64 out)", "4642 retries", "100,000.0k tokens", "ETA 12:34:56"}
        for part in line.split(" · ")[1:]:  # every figure shown is shown whole
            assert part in whole
    wide = progress_line("samples", 1, 2, 0, stats, "", 200, eta="0:00:01")
    assert "4642 retries" in wide and "100,000.0k tokens" in wide
    note = progress_line("samples", 0, 6, 0, stats, "loading the embedding model m (dedup)", 80)
    assert note == "samples ╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌ 0/6 · loading the embedding model m (dedup)"


def test_the_progress_line_names_the_timeout_setting_when_timeouts_dominate():
    stats = TeacherStats(calls=10, transport_retries=6)
    stats.timeouts = 5  # the teacher client's counter (read with getattr, absent on older clients)
    assert "5 timeouts: raise teacher.timeout_s?" in progress_line("samples", 1, 9, 1, stats, "", 120)
    stats.timeouts = 1
    assert "timeout" not in progress_line("samples", 1, 9, 1, stats, "", 120)
