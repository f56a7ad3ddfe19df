"""One YAML dialect (1.2 core) for files and `--set`; hostile files fail with one line, at once."""

from __future__ import annotations

import pytest

from aidsafe.config.overrides import apply_overrides
from aidsafe.config.yamlio import load_yaml
from aidsafe.errors import AidsafeError
from tests.cli.test_cli_errors import _one_line_error
from tests.conftest import REPO

RECIPE = (REPO / "recipes" / "aidsafe.yaml").read_text(encoding="utf-8")

# (YAML text, what YAML 1.2's core schema makes of it); PyYAML's 1.1 differs on each.
SCALARS = [
    ("no", "no"),
    ("on", "on"),
    ("yes", "yes"),
    ("9e-1", 0.9),
    ("1e3", 1000.0),
    ("0o17", 15),
    ("017", 17),
    ("2024-01-01", "2024-01-01"),
    ("1_000", "1_000"),
]


@pytest.mark.parametrize(("text", "value"), SCALARS)
def test_files_and_set_read_scalars_the_same_way(tmp_path, text, value):
    path = tmp_path / "c.yaml"
    path.write_text(f"key: {text}\n", encoding="utf-8")
    from_file = load_yaml(path)[0]["key"]
    from_set = apply_overrides({}, [f"key={text}"])["key"]
    assert from_file == from_set == value
    assert type(from_file) is type(from_set) is type(value)


def test_a_trainer_setting_no_reaches_trl_as_the_word(tmp_path):
    from aidsafe.train import load_train_recipe

    path = tmp_path / "t.yaml"
    path.write_text("mode: sft\ntrainer:\n  save_strategy: no\n  learning_rate: 9e-1\n", encoding="utf-8")
    assert load_train_recipe(path).trainer == {"save_strategy": "no", "learning_rate": 0.9}


BOMB = 'name: x\na: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(9)
)


@pytest.mark.parametrize("command", ["validate", "generate"])
def test_alias_bomb_is_refused_at_once(tmp_path, run_cli, command):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB, encoding="utf-8")
    extra = ["-i", tmp_path / "p.jsonl", "-o", tmp_path / "out"] if command == "generate" else []
    _one_line_error(*run_cli(command, path, *extra)[::2], "bomb.yaml:3", "alias *a is not allowed")


def test_aliases_are_refused_in_cards_and_policies(tmp_path):
    path = tmp_path / "policies.yaml"
    path.write_text("id: x\nbase: &b {text: t}\npolicies:\n  - *b\n", encoding="utf-8")
    with pytest.raises(AidsafeError, match=r"policies.yaml:4: YAML syntax error: alias \*b is not allowed"):
        load_yaml(path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("name: caf\xe9\n".encode("latin-1"), ("r.yaml:1", "not UTF-8", "0xe9", "offset 9")),
        (b"name: x\nteacher:\n  model: \xff\n", ("r.yaml:3", "not UTF-8", "0xff", "offset 26")),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ("r.yaml:1", "not UTF-8", "0x89", "offset 0")),
        (b"name: x\x00\x01\x02\n", ("r.yaml", "YAML syntax error", "#x0000")),
    ],
    ids=["latin-1", "latin-1-line-3", "binary", "nul-bytes"],
)
@pytest.mark.parametrize("command", ["validate", "generate"])
def test_non_utf8_recipe_names_file_and_offset(tmp_path, run_cli, command, content, expected):
    path = tmp_path / "r.yaml"
    path.write_bytes(content)
    extra = ["-i", tmp_path / "p.jsonl", "-o", tmp_path / "out"] if command == "generate" else []
    _one_line_error(*run_cli(command, path, *extra)[::2], *expected)


def test_set_errors_blame_the_set_not_the_builtin_recipe(run_cli):
    code, _, err = run_cli("validate", "aidsafe", "--set", "deliberation.max_round=3")
    _one_line_error(code, err, "--set deliberation.max_round=3: unknown key; expected one of: max_rounds")
    assert "aidsafe.yaml" not in err
    code, _, err = run_cli("validate", "aidsafe", "--set", "teacher={model: m, foo: 1}")
    _one_line_error(code, err, "--set teacher={model: m, foo: 1}: teacher.foo: unknown key")


def test_top_level_keys_listed_without_internal_ones(run_cli):
    code, _, err = run_cli("validate", "aidsafe", "--set", "nosuch=1")
    _one_line_error(code, err, "--set nosuch=1: unknown key; expected one of: agents, dedup")
    assert "base_dir" not in err


def test_recipe_path_that_is_a_directory(tmp_path, run_cli):
    _one_line_error(*run_cli("validate", tmp_path)[::2], str(tmp_path), "is a directory")


def test_unknown_trainer_key_from_set_blames_the_set():
    from aidsafe.train import load_train_recipe

    with pytest.raises(AidsafeError, match=r"^--set trainer.max_step=3: trainer.max_step: not a field of TRL's"):
        load_train_recipe("sft", ["trainer.max_step=3"])
