"""The one entrance (aidsafe.run.stage.run_stage): the same stats.json, the same "nothing finished"
rule with the task's declared verdicts, and the same client handling for every stage."""

from __future__ import annotations

import contextlib
import json

import pytest

from aidsafe.agents.settings import TeacherSettings
from aidsafe.errors import AidsafeError
from aidsafe.run.executor import NothingFinished, RecipeJournal
from aidsafe.run.journal import JournalIndex, RunDirectory
from aidsafe.run.stage import run_stage
from aidsafe.run.stats import StageCounts
from aidsafe.run.task import Rejection, RunContext, Task
from aidsafe.testing import FakeTeacher

SETTINGS = TeacherSettings(model="m")


class _Judge(Task[str]):
    """Items are strings; "bad" ones are rejected as `reason`, the rest finish after one call."""

    noun = "items"
    stage = "judge"
    verdicts = frozenset({"no_good"})

    def __init__(self, teacher, reason: str = "no_good") -> None:
        self.teacher, self.reason = teacher, reason

    def key(self, item: str) -> str:
        return item

    async def run(self, item: str, ctx: RunContext) -> dict:
        self.teacher.stats.calls += 1
        self.teacher.stats.prompt_tokens += 3
        if item.startswith("bad"):
            raise Rejection(self.stage, self.reason, f"{item} is bad")
        return {"id": item}


def _journal(tmp_path) -> RecipeJournal:
    return RecipeJournal(RunDirectory(tmp_path / "run"), "h" * 16, {"name": "test"})


async def _run(tmp_path, items, reason="no_good", counts=None):
    return await run_stage(
        lambda client, owns: _Judge(client, reason), items, _journal(tmp_path), settings=SETTINGS, seed=0, env={},
        workers=2, teacher=FakeTeacher(), counts=counts, progress=False,
    )  # fmt: skip


async def test_every_stage_writes_the_same_stats_with_its_own_section(tmp_path):
    counts = lambda previous: StageCounts(4, before={"read": 5}, after={"mine": {"x": 1}})  # noqa: E731
    outcome, stats = await _run(tmp_path, ["a", "b", "bad1"], counts=counts)
    assert (outcome.finished, len(outcome.rejected)) == (2, 1)
    assert list(stats) == ["inputs", "read", "samples", "rejected", "pending", "rejected_by_stage",
                           "rejected_by_reason", "mine", "last_run", "spent"]  # fmt: skip
    assert (stats["inputs"], stats["samples"], stats["rejected"], stats["pending"]) == (4, 2, 1, 1)
    assert stats["rejected_by_stage"] == {"judge": 1} and stats["rejected_by_reason"] == {"no_good": 1}
    assert stats["last_run"]["calls"] == 3 and stats["last_run"]["prompt_tokens"] == 9
    assert (stats["spent"]["runs"], stats["spent"]["calls"], stats["spent"]["prompt_tokens"]) == (1, 3, 9)
    assert json.loads((tmp_path / "run" / "stats.json").read_text()) == stats


async def test_a_declared_verdict_is_not_a_failed_run_and_anything_else_is(tmp_path):
    outcome, stats = await _run(tmp_path / "verdict", ["bad1", "bad2"])  # the judge judged: the run did its work
    assert outcome.finished == 0 and stats["rejected"] == 2
    with pytest.raises(NothingFinished, match=r"no item finished: 2 of 2 rejected, 1 at judge \(invalid_output"):
        await _run(tmp_path / "broken", ["bad1", "bad2"], reason="invalid_output")


class _Predictions:
    """A journal that keeps no rejections (as guard.predict's PredictionFile): every item must finish."""

    checkpoints_path = rejected_path = None

    def __init__(self) -> None:
        self.records: list[dict] = []

    def check(self) -> None: ...
    def lock(self) -> contextlib.nullcontext:
        return contextlib.nullcontext()

    def open(self) -> None: ...
    def finish(self) -> None: ...
    def index(self) -> JournalIndex:
        return JournalIndex()

    def forget_rejections(self, ids: set[str]) -> None: ...
    def append_sample(self, record: dict, digest: str) -> None:
        self.records.append(record)

    def append_rejected(self, entry: dict, digest: str) -> None: ...
    def write_stats(self, counts, teacher, wall_s) -> dict:
        return {}


async def test_a_journal_without_rejections_fails_when_any_item_failed():
    journal = _Predictions()
    with pytest.raises(AidsafeError, match=r"1 of 3 items failed \(item bad1: bad1 is bad\); not transient"):
        await run_stage(lambda client, owns: _Judge(client), ["a", "bad1", "b"], journal, settings=SETTINGS, seed=0,
                        env={}, workers=1, teacher=FakeTeacher(), progress=False)  # fmt: skip
    assert [r["id"] for r in journal.records] == ["a", "b"]


def test_spent_adds_up_every_run_and_starts_from_an_older_last_run():
    from aidsafe.run.stats import spent
    from aidsafe.teacher.types import TeacherStats

    run = TeacherStats()
    run.calls, run.prompt_tokens, run.completion_tokens = 3, 300, 30
    first = spent(None, run, 1.0)
    assert first == {"runs": 1, "calls": 3, "prompt_tokens": 300, "completion_tokens": 30, "wall_s": 1.0}
    second = spent({"spent": first}, run, 2.0)
    assert (second["runs"], second["calls"], second["prompt_tokens"], second["wall_s"]) == (2, 6, 600, 3.0)
    idle = spent({"spent": second}, TeacherStats(), 0.5)  # a rerun with nothing to do: no new run
    assert (idle["runs"], idle["calls"]) == (2, 6)
    older = {"last_run": {"calls": 5, "prompt_tokens": 50, "completion_tokens": 5, "wall_s": 4.0}}
    assert spent(older, run, 1.0)["prompt_tokens"] == 350 and spent(older, run, 1.0)["runs"] == 2


# ----------------------------------------------------------------------------------------------
# `then`: items that exist once the first ones are journaled (policy-guard's variants).


async def _with_then(tmp_path, items, teacher):
    run_dir = RunDirectory(tmp_path / "run")

    def followers():  # one per finished first item, read back from the journal
        return [f"{r['id']}+" for r in run_dir.iter_samples() if not r["id"].endswith("+")]

    return await run_stage(
        lambda client, owns: _Judge(client), items, _journal(tmp_path), settings=SETTINGS, seed=0, env={},
        workers=2, teacher=teacher, then=followers, progress=False,
    )  # fmt: skip


async def test_then_runs_the_items_that_follow_into_the_same_journal_and_stats(tmp_path):
    teacher = FakeTeacher()
    outcome, stats = await _with_then(tmp_path, ["a", "bad1", "b"], teacher)
    ids = [json.loads(line)["id"] for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert sorted(ids) == ["a", "a+", "b", "b+"]
    assert (outcome.items, outcome.finished, len(outcome.rejected)) == (5, 4, 1)
    assert (stats["samples"], stats["rejected"], stats["last_run"]["calls"]) == (4, 1, 5)  # both passes' calls
    again, stats = await _with_then(tmp_path, ["a", "bad1", "b", "c"], FakeTeacher())  # resumed: only c and c+
    assert (again.finished, again.skipped, stats["samples"], stats["spent"]["calls"]) == (2, 5, 6, 7)


async def test_nothing_finished_counts_both_passes(tmp_path):
    """The first pass finishing something is a run that did its work, whatever the second does."""
    run_dir = RunDirectory(tmp_path / "run")
    outcome, _ = await run_stage(
        lambda client, owns: _Judge(client, "invalid_output"), ["a"], _journal(tmp_path), settings=SETTINGS, seed=0,
        env={}, workers=1, teacher=FakeTeacher(), then=lambda: [f"bad-{r['id']}" for r in run_dir.iter_samples()],
        progress=False,
    )  # fmt: skip
    assert (outcome.finished, list(outcome.rejected)) == (1, ["bad-a"])
