"""A run keeps the policy texts and agent cards it ran with (recipe.yaml `resolved`), so `P3` keeps
its meaning after a later release rewords the built-in policies: the dataset card lists the
rules as run, and `eval cot` judges against them."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from aidsafe.agents.policies import load_policies
from aidsafe.testing import schema_responder
from aidsafe.testing.server import ScriptedServer
from tests.helpers import FAST_NO_RETRY as FAST

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_runs"
PROMPTS = FIXTURES.parents[2] / "examples" / "prompts.jsonl"


def _generate(out: Path, run_cli) -> dict:
    with ScriptedServer(schema_responder(seed=3), models=["m"]) as server:
        args = ["-i", PROMPTS, "-o", out, "--limit", "2", "--set", "dedup.enabled=false"]
        code, _, err = run_cli("generate", "aidsafe", *args, "--base-url", server.base_url, "--model", "m", *FAST)
    assert code == 0, err
    return yaml.safe_load((out / "recipe.yaml").read_text())["resolved"]


def test_the_run_keeps_its_policy_texts_and_cards(tmp_path, run_cli):
    resolved = _generate(tmp_path / "run", run_cli)
    assert resolved["policies"] == load_policies("aidsafe").without_cases().model_dump(mode="json")
    refiner = resolved["agents"]["refiner"][0]
    assert refiner["card"]["role"] == "refiner" and "{thoughts}" in refiner["card"]["user"]


def test_the_dataset_card_lists_the_rules_as_run_even_after_they_change(tmp_path, run_cli):
    run = tmp_path / "run"
    _generate(run, run_cli)
    stored = yaml.safe_load((run / "recipe.yaml").read_text())
    stored["resolved"]["policies"]["policies"][0]["rule"] = "The wording this run used | not today's."
    (run / "recipe.yaml").write_text(yaml.safe_dump(stored))
    code, _, err = run_cli("export", run, "-o", tmp_path / "d", "-f", "sft", "--no-decontaminate", "--no-dedup")
    assert code == 0, err
    card = (tmp_path / "d" / "README.md").read_text()
    assert "The wording this run used \\| not today's." in card


def test_eval_cot_judges_against_the_runs_own_policy_texts(tmp_path):
    from aidsafe.eval.cot import _run_policies

    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "generation", run)  # written before the snapshot: loaded by name
    assert _run_policies(run, None).model_dump() == load_policies("aidsafe").without_cases().model_dump()
    stored = yaml.safe_load((run / "recipe.yaml").read_text())
    snapshot = load_policies("aidsafe").without_cases().model_dump(mode="json")
    snapshot["policies"][0]["title"] = "A title from an older release"
    stored["resolved"]["policies"] = snapshot
    stored["policies"] = "no-longer-a-built-in"
    (run / "recipe.yaml").write_text(yaml.safe_dump(stored))
    assert _run_policies(run, None).policies[0].title == "A title from an older release"
