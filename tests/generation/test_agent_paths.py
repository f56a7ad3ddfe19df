"""A Python agent named in a recipe (`file.py:Attr`) is looked up next to the recipe only, never in
the current directory: `validate` imports (runs) it, so a file the recipe's author did not put
there must not be picked up."""

from __future__ import annotations

RECIPE = """name: r
policies: aidsafe
teacher: {model: m}
agents:
  initial_cot: helper.py:Agent
deliberation: {max_rounds: 0}
"""
AGENT = """
from pathlib import Path
Path(__file__).with_name("ran.txt").write_text("ran")

class Agent:
    name = "helper"
    async def __call__(self, state, ctx):
        raise NotImplementedError
"""


def test_an_agent_file_in_the_current_directory_is_not_imported(tmp_path, monkeypatch, run_cli):
    recipes, elsewhere = tmp_path / "recipes", tmp_path / "cwd"
    recipes.mkdir(), elsewhere.mkdir()
    (recipes / "r.yaml").write_text(RECIPE, encoding="utf-8")
    (elsewhere / "helper.py").write_text(AGENT, encoding="utf-8")
    monkeypatch.chdir(elsewhere)
    code, _, err = run_cli("validate", recipes / "r.yaml")
    assert code == 2 and "agents.initial_cot: agent file helper.py not found at" in err
    assert "relative to the recipe" in err
    assert not (elsewhere / "ran.txt").exists()  # never imported


def test_an_agent_file_next_to_the_recipe_is_used(tmp_path, monkeypatch, run_cli):
    (tmp_path / "r.yaml").write_text(RECIPE, encoding="utf-8")
    (tmp_path / "helper.py").write_text(AGENT, encoding="utf-8")
    monkeypatch.chdir(tmp_path.parent)
    code, _, err = run_cli("validate", tmp_path / "r.yaml")
    assert code == 0, err
    assert (tmp_path / "ran.txt").exists()
