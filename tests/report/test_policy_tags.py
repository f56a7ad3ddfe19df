"""A policy tag (`P3`) in the report carries its title and rule as the run used them: read from
the run's own snapshot (recipe.yaml `resolved.policies`), never from today's built-ins; a run
written before the snapshot still renders, its tags bare. (The browser side: test_report_browser.)"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import yaml

from aidsafe.agents.policies import load_policies
from aidsafe.report import gather
from aidsafe.report.page import render_page

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_runs" / "generation"
OLD_TITLE = "A title from an older release"
OLD_RULE = "The wording | this run used, <not> today's & tomorrow's."


def with_old_snapshot(run: Path) -> Path:
    """A copy of the legacy run given the snapshot a run made today writes, P3 as an older release
    worded it (what a run made before a rewording holds)."""
    shutil.copytree(LEGACY, run)
    recipe = yaml.safe_load((run / "recipe.yaml").read_text(encoding="utf-8"))
    snapshot = load_policies("aidsafe").model_dump(mode="json")
    p3 = next(p for p in snapshot["policies"] if p["id"] == "P3")
    p3.update(title=OLD_TITLE, rule=OLD_RULE + "\n")
    recipe["resolved"]["policies"] = snapshot
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return run


def _embedded(page: str) -> dict:
    return json.loads(re.search(r'id="aidsafe-samples">(.*?)</script>', page, re.DOTALL)[1])


def test_the_page_carries_the_runs_own_policy_texts(tmp_path):
    data = gather(with_old_snapshot(tmp_path / "run"))
    assert data.view.policies["P3"] == {"title": OLD_TITLE, "rule": OLD_RULE}  # not today's wording
    today = load_policies("aidsafe").policies[0]
    assert data.view.policies[today.id] == {"title": today.title, "rule": " ".join(today.rule.split())}
    embedded = _embedded(render_page(data))
    assert embedded["policies"] == data.view.policies  # once per page, read by page.js
    assert any("P3" in row["tags"] for s in embedded["samples"] for sec in s["sections"] for row in sec["rows"])


def test_a_real_run_reports_the_texts_it_was_made_with(generation_run):
    today = load_policies("aidsafe").policies  # what the fixture's run was made with, this session
    expected = {p.id: {"title": p.title, "rule": " ".join(p.rule.split())} for p in today}
    assert gather(generation_run).view.policies == expected


def test_a_run_without_the_snapshot_renders_with_bare_tags(tmp_path):
    run = Path(shutil.copytree(LEGACY, tmp_path / "run"))
    data = gather(run)
    assert data.view.policies == {} and data.samples
    assert _embedded(render_page(data))["policies"] == {}
    # A damaged snapshot is not a reason to refuse the report either.
    recipe = yaml.safe_load((run / "recipe.yaml").read_text(encoding="utf-8"))
    recipe["resolved"]["policies"] = {"policies": "not a list"}
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    assert gather(run).view.policies == {}
