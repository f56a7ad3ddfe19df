"""The recipe hash guards an output directory: it must move with what changes the corpus and stay
put for what only changes speed or where the teacher lives (design.md, principle 6)."""

from __future__ import annotations

import pytest

from aidsafe.generation.pipeline import load_pipeline

BASE = load_pipeline("aidsafe").recipe_hash


@pytest.mark.parametrize(
    "override",
    [
        "dedup.threshold=0.8",
        "dedup.model=sentence-transformers/all-mpnet-base-v2",
        "dedup.enabled=false",
        "deliberation.max_rounds=1",
        "seed=7",
        "teacher.model=another-teacher",
        "teacher.structured_output=function_calling",
    ],
)
def test_what_changes_the_corpus_changes_the_hash(override):
    assert load_pipeline("aidsafe", [override]).recipe_hash != BASE


@pytest.mark.parametrize(
    "override",
    [
        "teacher.concurrency=7",
        "teacher.base_url=http://elsewhere:9000/v1",
        "teacher.api_key_env=MY_KEY",
        "teacher.timeout_s=5",
        "dedup.device=cuda:1",
        "license=cc-by-4.0",
    ],
)
def test_what_changes_only_speed_or_place_keeps_the_hash(override):
    assert load_pipeline("aidsafe", [override]).recipe_hash == BASE
