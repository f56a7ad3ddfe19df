"""The runner with the in-process fake teacher: limits, resume from checkpoints, rejections."""

from __future__ import annotations

import json

import pytest

from aidsafe.generation.runner import GenerateRequest, NothingFinished, generate
from aidsafe.teacher.types import TransientTeacherError
from aidsafe.testing import FakeTeacher, default_reply
from tests.conftest import read_jsonl


def _request(source, out, **kw) -> GenerateRequest:
    return GenerateRequest(
        recipe="aidsafe", input=str(source), output=out, progress=False, overrides=["dedup.enabled=false"], **kw
    )


def test_limit_takes_the_first_prompts(tmp_path, prompts_file):
    source = prompts_file(["a", "b", "c"])
    stats = generate(_request(source, tmp_path / "run", limit=2), env={}, teacher=FakeTeacher())
    assert [r["prompt"] for r in read_jsonl(tmp_path / "run" / "samples.jsonl")] == ["a", "b"]
    assert stats["inputs"] == 2 and stats["samples"] == 2


def test_transient_failure_resumes_from_the_failed_step(tmp_path, prompts_file):
    source = prompts_file(["fine", "flaky"])
    out = tmp_path / "run"

    def refine_down(call):
        if "flaky" in call.text:
            raise TransientTeacherError("refiner: 503 after 6 retries")
        return default_reply("Refinement", call.messages)

    first = FakeTeacher({"refiner": refine_down})
    stats = generate(_request(source, out), env={}, teacher=first)
    assert stats["samples"] == 1 and stats["rejected"] == 1
    [rejection] = read_jsonl(out / "rejected.jsonl")
    assert rejection["prompt"] == "flaky" and rejection["stage"] == "refine" and rejection["transient"]

    second = FakeTeacher()
    stats = generate(_request(source, out), env={}, teacher=second)
    # Only the failed step ran again: the earlier steps came from the checkpoint.
    assert [c.role for c in second.calls] == ["refiner"]
    assert stats["samples"] == 2 and stats["rejected"] == 0
    assert read_jsonl(out / "rejected.jsonl") == []
    flaky = next(r for r in read_jsonl(out / "samples.jsonl") if r["prompt"] == "flaky")
    # Provenance survives the resume: all five calls are recorded, across both runs.
    assert [c["role"] for c in flaky["metadata"]["calls"]] == [
        "intent_decomposer",
        "initial_cot",
        "deliberator",
        "deliberator",
        "refiner",
    ]


def test_permanent_rejection_is_kept_unless_asked(tmp_path, prompts_file):
    source = prompts_file(["bad"])
    out = tmp_path / "run"
    broken = FakeTeacher({"intent_decomposer": lambda call: {"intents": []}})
    with pytest.raises(NothingFinished, match=r"no sample finished: 1 of 1 rejected, 1 at decompose \(invalid_output"):
        generate(_request(source, out), env={}, teacher=broken)
    [rejection] = read_jsonl(out / "rejected.jsonl")
    assert rejection["reason"] == "invalid_output" and not rejection["transient"]

    untouched = FakeTeacher()
    generate(_request(source, out), env={}, teacher=untouched)
    assert untouched.calls == [] and len(read_jsonl(out / "rejected.jsonl")) == 1

    generate(_request(source, out, retry_rejected=True), env={}, teacher=FakeTeacher())
    assert read_jsonl(out / "rejected.jsonl") == [] and len(read_jsonl(out / "samples.jsonl")) == 1


def test_partial_last_line_from_a_kill_is_cut_and_the_sample_redone(tmp_path, prompts_file):
    source = prompts_file(["one", "two"])
    out = tmp_path / "run"
    generate(_request(source, out), env={}, teacher=FakeTeacher())
    lines = (out / "samples.jsonl").read_text().splitlines(keepends=True)
    (out / "samples.jsonl").write_text(lines[0] + lines[1][: len(lines[1]) // 2])  # a write cut short

    generate(_request(source, out), env={}, teacher=FakeTeacher())
    records = read_jsonl(out / "samples.jsonl")
    assert sorted(r["prompt"] for r in records) == ["one", "two"]
    assert json.loads((out / "stats.json").read_text())["samples"] == 2


def test_limit_does_not_drop_rejections_outside_it(tmp_path, prompts_file):
    source = prompts_file(["first", "second"])
    out = tmp_path / "run"

    def down(call):
        raise TransientTeacherError("503")

    with pytest.raises(NothingFinished, match="2 of 2 rejected.*rerun the same command to retry"):
        generate(_request(source, out), env={}, teacher=FakeTeacher({"intent_decomposer": down}))
    assert len(read_jsonl(out / "rejected.jsonl")) == 2

    generate(_request(source, out, limit=1), env={}, teacher=FakeTeacher())
    assert [r["prompt"] for r in read_jsonl(out / "samples.jsonl")] == ["first"]
    assert [r["prompt"] for r in read_jsonl(out / "rejected.jsonl")] == ["second"]
