"""The test suite's own helpers: tests/conftest.py (reading journals back, finding the shared benchmarks)
and tests/helpers.py (the training flags and the loss line)."""

from __future__ import annotations

import pytest

from aidsafe.run.jsonl import append_jsonl, read_jsonl
from tests.conftest import locate_shared_benchmarks
from tests.conftest import read_jsonl as read_back
from tests.helpers import final_loss, tiny_training


def test_a_record_with_line_and_paragraph_separators_reads_back_whole(tmp_path):
    path = tmp_path / "samples.jsonl"
    records = [{"prompt": "one\u2028two\u2029three\x85four\x0bfive", "id": "a"}, {"prompt": "plain", "id": "b"}]
    for record in records:
        append_jsonl(path, record)  # written raw (ensure_ascii=False), as every journal is
    assert "\u2028" in path.read_text(encoding="utf-8")
    assert read_back(path) == records == [row for _, row in read_jsonl(path)]
    assert read_back(tmp_path / "none.jsonl") == []


def test_shared_benchmarks_come_from_the_variable_then_beside_the_repo_then_the_machine(tmp_path):
    repo = tmp_path / "clone" / "aidsafe"
    repo.mkdir(parents=True)
    machine = tmp_path / "machine" / "benchmarks"
    beside = repo.parent / "shared" / "benchmarks"
    # Nothing anywhere: the ../shared path, so the skip message says where it looked.
    assert locate_shared_benchmarks({}, repo, machine) == beside
    machine.mkdir(parents=True)
    assert locate_shared_benchmarks({}, repo, machine) == machine  # a fresh clone elsewhere
    assert locate_shared_benchmarks({"AIDSAFE_SHARED_BENCHMARKS": ""}, repo, machine) == machine
    beside.mkdir(parents=True)
    assert locate_shared_benchmarks({}, repo, machine) == beside
    chosen = tmp_path / "mine"
    assert locate_shared_benchmarks({"AIDSAFE_SHARED_BENCHMARKS": str(chosen)}, repo, machine) == chosen


def test_the_commands_under_test_do_not_see_the_benchmarks_variable():
    import os

    assert "AIDSAFE_SHARED_BENCHMARKS" not in os.environ


# tests/helpers.py ------------------------------------------------------------------------------------


def test_tiny_training_flags_are_recipe_overrides_that_reach_the_trainer(tmp_path):
    from aidsafe.train.config import build_trainer_config
    from aidsafe.train.recipe import load_train_recipe

    flags = tiny_training(steps=3, max_length=512)
    assert flags[::2] == ["--set"] * (len(flags) // 2)
    config = build_trainer_config(load_train_recipe("dpo", flags[1::2]), tmp_path)
    assert (config.max_steps, config.max_length, config.warmup_steps) == (3, 512, 0)
    assert (config.per_device_train_batch_size, config.gradient_accumulation_steps) == (2, 1)


def test_final_loss_reads_the_train_summary_line():
    err = "noise\ndpo: 2 steps, final train loss 0.6931; adapter -> out/dpo\n"
    assert final_loss(err, steps=2) == final_loss(err, steps=2, mode="dpo") == 0.6931
    for wrong in ({"steps": 3}, {"steps": 2, "mode": "sft"}):
        with pytest.raises(AssertionError):
            final_loss(err, **wrong)
