"""Run directories written before the stage contract (tests/fixtures/legacy_runs, made by the code
of commit 71f2223, each stage part-way) still resume: the same command appends what is missing,
keeps every journaled line, and is not refused as "made with a different recipe". The built-in
recipes' hashes are pinned for the same reason: a changed hash would refuse every existing run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aidsafe.testing import schema_responder
from aidsafe.testing.server import ScriptedServer
from tests.helpers import FAST_NO_RETRY as FAST

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_runs"

# What each fixture was made with (tests/fixtures/legacy_runs/README.md) and how far it got: (args, done, total).
COMMANDS = {
    "generation": (
        ["generate", "aidsafe", "-i", "{repo}/examples/prompts.jsonl", "--set", "dedup.enabled=false"],
        4,
        6,
    ),
    "guardreasoner": (["generate", "guardreasoner", "-i", "{fixtures}/labelled.jsonl"], 2, 4),
    "thinkguard": (["generate", "thinkguard", "-i", "{fixtures}/beavertails.jsonl"], 3, 5),
}


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line] if path.exists() else []


@pytest.mark.parametrize("kind", sorted(COMMANDS))
def test_a_run_written_before_the_contract_resumes(kind, tmp_path, run_cli):
    run = tmp_path / kind
    shutil.copytree(FIXTURES / kind, run)
    before = _lines(run / "samples.jsonl")
    args, done, total = COMMANDS[kind]
    args = [a.format(repo=FIXTURES.parents[2], fixtures=FIXTURES) for a in args]
    assert len(before) == done
    with ScriptedServer(schema_responder(seed=3), models=["m"]) as server:
        code, _, err = run_cli(*args, "-o", run, "--base-url", server.base_url, "--model", "m", *FAST)
    assert code == 0, err
    after = _lines(run / "samples.jsonl")
    assert after[:done] == before  # nothing journaled is rewritten
    assert len(after) + len(_lines(run / "rejected.jsonl")) == total
    assert (
        json.loads((run / "run.json").read_text())["recipe_hash"]
        == json.loads((FIXTURES / kind / "run.json").read_text())["recipe_hash"]
    )


def test_a_pairs_run_written_before_the_contract_resumes(tmp_path, run_cli):
    run, source = tmp_path / "pairs", tmp_path / "generation"
    shutil.copytree(FIXTURES / "pairs", run)
    shutil.copytree(FIXTURES / "generation", source)
    rejected = _lines(run / "rejected.jsonl")
    with ScriptedServer(schema_responder(seed=3), models=["m"]) as server:
        code, _, err = run_cli("pairs", "make", "aidsafe-pairs", "-i", source, "-o", run, "--limit", "3",
                               "--base-url", server.base_url, "--model", "m", *FAST)  # fmt: skip
    assert code == 0, err
    assert _lines(run / "rejected.jsonl")[:2] == rejected  # the two verdicts kept, not asked again
    assert len(_lines(run / "samples.jsonl")) + len(_lines(run / "rejected.jsonl")) == 3


BUILT_IN_HASHES = {
    "aidsafe": "5f318045e353c1f1",
    "llm-zs": "c719ca3de731e51a",
    "aidsafe-pairs": "152b48fba4fb0221",
    "aidsafe-pairs-shieldgemma": "0d23d21f222502f9",
    "guardreasoner": "4703356f25107238",
    "thinkguard": "503b761ac2b2678a",
}


@pytest.mark.parametrize("name", sorted(BUILT_IN_HASHES))
def test_built_in_recipe_hashes_are_unchanged(name, run_cli):
    code, out, err = run_cli("validate", name)
    assert code == 0, err
    assert f"({BUILT_IN_HASHES[name]})" in out
