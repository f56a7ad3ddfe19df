"""`api_key_env` names the variable that holds a key. A key pasted in its place would be written
into recipe.yaml and quoted in messages: refused in one line that never shows the value."""

from __future__ import annotations

import pytest

KEY = "sk-proj-Abc123def456GHI789jkl012"


def _recipe(tmp_path, teacher_key_env: str) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(
        "name: r\npolicies: aidsafe\nteacher:\n  model: m\n"
        f"  api_key_env: {teacher_key_env}\nagents:\n  initial_cot: initial_cot\ndeliberation:\n  max_rounds: 0\n",
        encoding="utf-8",
    )
    return str(path)


def test_a_key_in_a_recipe_is_refused_without_echo(tmp_path, run_cli):
    code, out, err = run_cli("validate", _recipe(tmp_path, KEY))
    assert code == 2 and "recipe.yaml:5: teacher.api_key_env: expected the NAME" in err
    assert KEY not in out + err


@pytest.mark.parametrize("where", ["teacher.api_key_env", "agents.initial_cot.api_key_env"])
def test_a_key_in_a_set_override_is_refused_without_echo(tmp_path, run_cli, where):
    setting = (
        f"{where}={KEY}"
        if where.startswith("teacher")
        else f"agents.initial_cot={{agent: initial_cot, api_key_env: {KEY}}}"
    )
    code, out, err = run_cli("validate", _recipe(tmp_path, "MY_KEY"), "--set", setting)
    assert code == 2 and "expected the NAME" in err and "Traceback" not in err
    assert KEY not in out + err


def test_a_key_on_the_eval_cot_command_line_is_refused_without_echo(tmp_path, run_cli):
    code, out, err = run_cli("eval", "cot", tmp_path, "--model", "m", "--base-url", "http://127.0.0.1:9/v1",
                             "--api-key-env", KEY)  # fmt: skip
    assert code == 2 and err.startswith("error: --api-key-env: expected the NAME")
    assert KEY not in out + err


def test_variable_names_still_work(tmp_path, run_cli):
    code, out, err = run_cli("validate", _recipe(tmp_path, "MY_TEACHER_KEY"))
    assert code == 0, err
