"""`teacher.checkpoint` (aidsafe.run.checkpoints): how often a sample's thread is stored, what each
mode keeps when a sample fails or is cancelled, and that switching modes keeps a run resumable.

The real generation graph and the real SQLite checkpointer; the in-process fake teacher.
"""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from aidsafe.errors import AidsafeError
from aidsafe.generation.runner import GenerateRequest, generate, generate_async
from aidsafe.teacher.types import TransientTeacherError
from aidsafe.testing import FakeTeacher, default_reply
from tests.conftest import read_jsonl

ROLES = ["intent_decomposer", "initial_cot", "deliberator", "deliberator", "refiner"]  # the fake's replies
MODES = ["step", "sample"]


def _request(source, out, mode: str | None) -> GenerateRequest:
    checkpoint = [f"teacher.checkpoint={mode}"] if mode else []
    return GenerateRequest(recipe="aidsafe", input=str(source), output=out, progress=False,
                           overrides=["dedup.enabled=false", *checkpoint])  # fmt: skip


def _threads(db) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT thread_id, COUNT(*) FROM checkpoints GROUP BY thread_id"))


@pytest.mark.parametrize(("mode", "expected"), [("step", "many"), ("sample", 1), (None, 1)])
def test_sample_mode_stores_a_sample_once_step_mode_after_every_step(tmp_path, prompts_file, monkeypatch, mode,
                                                                     expected):  # fmt: skip
    puts: list[str] = []
    original = AsyncSqliteSaver.aput

    async def counted(self, config, *args, **kwargs):
        puts.append(config["configurable"]["thread_id"])
        return await original(self, config, *args, **kwargs)

    monkeypatch.setattr(AsyncSqliteSaver, "aput", counted)
    generate(_request(prompts_file(["one", "two"]), tmp_path / "run", mode), env={}, teacher=FakeTeacher())
    assert len(read_jsonl(tmp_path / "run" / "samples.jsonl")) == 2
    per_sample = {thread: puts.count(thread) for thread in set(puts)}
    assert len(per_sample) == 2
    if expected == "many":  # the input checkpoint and one per node, at least
        assert all(count > len(ROLES) for count in per_sample.values()), per_sample
    else:
        assert set(per_sample.values()) == {expected}, per_sample


@pytest.mark.parametrize("mode", MODES)
def test_a_transient_failure_keeps_the_finished_steps_in_both_modes(tmp_path, prompts_file, mode):
    """LangGraph stores the thread on an exception in `exit` durability too: the retry asks only
    the failed step again."""
    source, out = prompts_file(["flaky"]), tmp_path / "run"

    def deliberator_down(call):
        raise TransientTeacherError("deliberator: 503 after 6 retries")

    with pytest.raises(AidsafeError, match="no sample finished"):
        generate(_request(source, out, mode), env={}, teacher=FakeTeacher({"deliberator": deliberator_down}))
    [rejection] = read_jsonl(out / "rejected.jsonl")
    assert rejection["stage"] == "deliberate" and rejection["transient"]
    assert list(_threads(out / "checkpoints.sqlite")) == [rejection["id"]]

    again = FakeTeacher()
    generate(_request(source, out, mode), env={}, teacher=again)
    assert [c.role for c in again.calls] == ROLES[2:]
    [sample] = read_jsonl(out / "samples.jsonl")
    assert [c["role"] for c in sample["metadata"]["calls"]] == ROLES


@pytest.mark.parametrize("mode", MODES)
def test_a_cancelled_run_keeps_the_finished_steps_in_both_modes(tmp_path, prompts_file, mode):
    """Ctrl-C cancels the run: each mode stores what the sample finished, so the rerun does not
    start it over."""
    source, out = prompts_file(["stopped"]), tmp_path / "run"
    running: list[asyncio.Task] = []

    def cancel_at_refiner(call):
        running[0].cancel()  # delivered at the next await: the refiner's step never completes
        return default_reply("Refinement", call.messages)

    async def interrupted() -> None:
        running.append(asyncio.current_task())
        await generate_async(_request(source, out, mode), env={}, teacher=FakeTeacher({"refiner": cancel_at_refiner}))

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(interrupted())
    assert read_jsonl(out / "samples.jsonl") == [] and read_jsonl(out / "rejected.jsonl") == []

    again = FakeTeacher()
    generate(_request(source, out, mode), env={}, teacher=again)
    assert [c.role for c in again.calls] == ["refiner"]
    [sample] = read_jsonl(out / "samples.jsonl")
    assert [c["role"] for c in sample["metadata"]["calls"]] == ROLES


def test_switching_the_mode_keeps_the_run_resumable(tmp_path, prompts_file):
    """Not in the recipe hash, and both modes read the same threads: a run stored per step
    resumes per sample and the other way round."""
    source, out = prompts_file(["fine", "flaky"]), tmp_path / "run"

    def refine_down(call):
        if "flaky" in call.text:
            raise TransientTeacherError("refiner: 503 after 6 retries")
        return default_reply("Refinement", call.messages)

    generate(_request(source, out, "step"), env={}, teacher=FakeTeacher({"refiner": refine_down}))
    again = FakeTeacher()
    stats = generate(_request(source, out, "sample"), env={}, teacher=again)
    assert [c.role for c in again.calls] == ["refiner"]
    assert stats["samples"] == 2 and stats["rejected"] == 0
    assert _threads(out / "checkpoints.sqlite") == {}


@pytest.mark.parametrize("value", ["every", "Sample", "steps"])
def test_an_unknown_mode_is_one_line_naming_the_key_and_the_choices(tmp_path, prompts_file, value):
    with pytest.raises(AidsafeError) as caught:
        generate(_request(prompts_file(["x"]), tmp_path / "run", value), env={}, teacher=FakeTeacher())
    message = str(caught.value)
    assert "\n" not in message and "teacher.checkpoint" in message
    assert "'step'" in message and "'sample'" in message
    assert not (tmp_path / "run").exists()


def test_an_unknown_mode_in_a_recipe_file_names_its_line(tmp_path, prompts_file):
    from aidsafe.config.resources import resolve_resource

    text = resolve_resource("aidsafe", "recipes").read_text(encoding="utf-8")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text.replace("teacher:\n", "teacher:\n  checkpoint: often\n", 1), encoding="utf-8")
    line = recipe.read_text(encoding="utf-8").splitlines().index("  checkpoint: often") + 1
    request = GenerateRequest(recipe=str(recipe), input=str(prompts_file(["x"])), output=tmp_path / "run",
                              progress=False)  # fmt: skip
    with pytest.raises(AidsafeError, match=rf"recipe\.yaml:{line}: teacher\.checkpoint: .*'step' or 'sample'"):
        generate(request, env={}, teacher=FakeTeacher())
