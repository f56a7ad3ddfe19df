"""The recipe hash guards an output directory: it must move with what changes the corpus and stay
put for what only changes speed or where the teacher lives (design.md, principle 6)."""

from __future__ import annotations

import pytest

from aidsafe.generation.pipeline import load_pipeline
from aidsafe.pairs.recipe import load_pairs_pipeline

BASE = load_pipeline("aidsafe").recipe_hash
CHAT = "teacher.chat_model=langchain_openai:ChatOpenAI"


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


def test_a_chat_model_is_part_of_the_runs_identity_for_the_teacher_or_one_slot():
    with_chat = load_pipeline("aidsafe", [CHAT]).recipe_hash
    one_slot = load_pipeline("aidsafe", ["agents.refiner={agent: refiner, chat_model: 'langchain_openai:ChatOpenAI'}"])
    assert len({BASE, with_chat, one_slot.recipe_hash}) == 3


@pytest.mark.parametrize(
    ("args", "same"),
    [
        ("{timeout: 5, max_retries: 3}", True),
        ("{base_url: 'http://proxy:9000/v1', request_timeout: 9}", True),
        ("{region_name: eu-west-1, credentials_profile_name: team}", True),
        ("{temperature: 0.3}", False),
        ("{timeout: 5, frequency_penalty: 0.5}", False),
    ],
)
def test_a_chat_models_arguments_count_unless_they_say_where_or_how_fast_it_runs(args, same):
    with_chat = load_pipeline("aidsafe", [CHAT]).recipe_hash
    assert (load_pipeline("aidsafe", [CHAT, f"teacher.chat_model_args={args}"]).recipe_hash == with_chat) is same
    slot = "agents.refiner={agent: refiner, chat_model: 'langchain_openai:ChatOpenAI'%s}"
    bare = load_pipeline("aidsafe", [slot % ""]).recipe_hash
    assert (load_pipeline("aidsafe", [slot % f", chat_model_args: {args}"]).recipe_hash == bare) is same


def test_a_pairs_judge_through_a_chat_model_hashes_the_same_way():
    judge = "agents.judge={agent: judge, chat_model: 'langchain_openai:ChatOpenAI'%s}"
    base = load_pairs_pipeline("aidsafe-pairs").recipe_hash
    bare = load_pairs_pipeline("aidsafe-pairs", [judge % ""]).recipe_hash
    assert bare != base
    assert load_pairs_pipeline("aidsafe-pairs", [judge % ", chat_model_args: {timeout: 5}"]).recipe_hash == bare
