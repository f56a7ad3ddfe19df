"""One run hash for every stage (aidsafe.run.identity), with the bytes each stage always hashed:
a recipe or policy with non-ASCII text keeps the hash the code before the stage contract gave it
(the values below were computed by that code, commit 8c67e26), so its run directories resume."""

from __future__ import annotations

import json

import pytest

from aidsafe.run.identity import run_hash

NON_ASCII = "description=Sûreté d'abord, «pas de mal» ☂"


def test_the_two_json_styles_hash_non_ascii_text_apart():
    payload = {"policies": {"title": "Sûreté ☂"}, "model": "m"}
    assert run_hash(payload) == "7e27fbd02305c618"  # ensure_ascii=False: generation, pairs
    assert run_hash(payload, ensure_ascii=True) == "5f793e296d5638ca"  # json's default: guard data, eval
    assert run_hash({"b": 1, "a": [1, 2]}) == run_hash({"a": [1, 2], "b": 1})  # key order is not identity


def _generation(overrides):
    from aidsafe.generation.pipeline import load_pipeline

    return load_pipeline("aidsafe", overrides).recipe_hash


def _pairs(overrides):
    from aidsafe.pairs.recipe import load_pairs_pipeline

    return load_pairs_pipeline("aidsafe-pairs", overrides).recipe_hash


def _traces(overrides):
    from aidsafe.guard.traces import load_trace_recipe

    return load_trace_recipe("guardreasoner", overrides).recipe_hash


def _critiques(overrides):
    from aidsafe.guard.critiques import load_critique_recipe

    return load_critique_recipe("thinkguard", overrides).loaded.recipe_hash


@pytest.mark.parametrize(
    ("load", "before"),
    [
        (_generation, "37570b24ad8f9b4a"),  # ensure_ascii=False
        (_pairs, "b41f4284af409b51"),  # ensure_ascii=False
        (_traces, "062e60676b21c9a4"),  # ensure_ascii=True
        (_critiques, "ae07c2d3d7775248"),  # ensure_ascii=True
    ],
)
def test_a_non_ascii_recipe_keeps_the_hash_it_had(load, before):
    assert load([NON_ASCII]) == before


@pytest.mark.parametrize(
    ("load", "policies", "before"),
    [(_generation, "aidsafe", "2e83fae68f3465bc"), (_critiques, "beavertails", "15e70b38e9393853")],
)
def test_a_non_ascii_policy_keeps_the_hash_it_had(load, policies, before, tmp_path, monkeypatch):
    from aidsafe.agents.policies import load_policies

    data = load_policies(policies).model_dump(mode="json")
    data["policies"][0]["rule"] += " Règle: «ne pas nuire» ☂."
    monkeypatch.chdir(tmp_path)  # the recipe names the file: the same relative name every run
    (tmp_path / "mine.yaml").write_text(json.dumps(data), encoding="utf-8")  # JSON is YAML
    assert load(["policies=mine.yaml"]) == before
