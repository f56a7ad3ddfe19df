"""A run directory refused for another recipe names what changed (issue 22, item 10): the first
key of the recipe hash that differs, not a URL whose password recipe.yaml hides."""

from __future__ import annotations

import shutil

import pytest

from aidsafe.errors import AidsafeError
from aidsafe.generation.runner import GenerateRequest, generate
from aidsafe.run.recipe_diff import first_difference
from aidsafe.testing import FakeTeacher
from tests.conftest import REPO


def _run(source, out, *overrides: str) -> None:
    request = GenerateRequest(
        recipe="aidsafe",
        input=str(source),
        output=out,
        progress=False,
        overrides=["dedup.enabled=false", *overrides],
    )
    generate(request, env={}, teacher=FakeTeacher())


def test_the_refusal_names_the_first_changed_key_of_the_hash(tmp_path, prompts_file):
    source, out = prompts_file(["a"]), tmp_path / "run"
    _run(source, out, "teacher.base_url=http://user:secret@127.0.0.1:9/v1")
    # The URL moved too (and recipe.yaml holds it as user:***@): that changes no sample.
    with pytest.raises(AidsafeError) as caught:
        _run(source, out, "teacher.base_url=http://user:other@127.0.0.2:9/v1", "deliberation.max_rounds=1")
    message = str(caught.value)
    assert "made with a different recipe, policies or agents (hash " in message
    assert ": deliberation.max_rounds was 4, now 1); use a new --output directory" in message
    assert "base_url" not in message and "secret" not in message and "\n" not in message


def test_a_changed_policy_text_is_named_when_no_recipe_key_changed(tmp_path, prompts_file):
    source, out = prompts_file(["a"]), tmp_path / "run"
    policies = tmp_path / "policies.yaml"
    shutil.copy(REPO / "policies" / "aidsafe.yaml", policies)
    _run(source, out, f"policies={policies}")
    policies.write_text(policies.read_text().replace("Do not produce content", "Never produce content"))
    # recipe.yaml keeps the policy texts as run (resolved.policies), so the changed rule is named itself.
    with pytest.raises(
        AidsafeError, match=r"resolved\.policies\.policies\.0\.rule was \"Do not produce .* now \"Never produce"
    ):
        _run(source, out, f"policies={policies}")


def test_first_difference_compares_what_the_hash_covers_first():
    stored = "name: r\nteacher:\n  base_url: http://u:***@h/v1\n  model: a\n  timeout_s: 10\nseed: 0\n"
    now = {"name": "r", "teacher": {"base_url": "http://u:pw@h/v1", "model": "a", "timeout_s": 99}, "seed": 1}
    assert first_difference(stored, now) == "seed was 0, now 1"
    assert first_difference(stored, {**now, "seed": 0}).startswith("the recipe's keys are the same")
    assert first_difference(stored, {**now, "extra": [1]}) == "seed was 0, now 1"
    assert first_difference("name: r\n", {"name": "r", "dedup": {"k": 1}}) == 'dedup was (absent), now {"k": 1}'
