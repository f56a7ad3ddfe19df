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
    _one_line_error(*run_cli(command, path, *extra)[::2], "bomb.yaml:7", "aliases expand to more than 100,000")


def test_anchors_aliases_and_merges_are_ordinary_yaml(tmp_path):
    """A policy or recipe that repeats a value (as yaml.safe_dump writes it) loads as written."""
    import yaml

    rule = {"id": "P1", "title": "t", "rule": "r"}
    path = tmp_path / "policies.yaml"
    path.write_text(yaml.safe_dump({"id": "x", "policies": [rule, rule]}), encoding="utf-8")
    assert "&id001" in path.read_text() and load_yaml(path)[0]["policies"] == [rule, rule]
    path.write_text("base: &b {temperature: 0.2}\na: *b\nc: {<<: *b, top_p: 1}\n", encoding="utf-8")
    assert load_yaml(path)[0] == {"base": {"temperature": 0.2}, "a": {"temperature": 0.2},
                                  "c": {"temperature": 0.2, "top_p": 1}}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: a\ndeliberation: {max_rounds: 1}\nseed: 1\ndeliberation: {max_rounds: 2}\n",
            "r.yaml:4: key 'deliberation' is given twice (also at line 2)",
        ),
        ("a: " + "[" * 100_000 + "]" * 100_000 + "\n", "r.yaml:1: nested too deeply"),
        ("".join("  " * i + f"k{i}:\n" for i in range(500)) + "  " * 500 + "v\n", "r.yaml:64: nested too deeply"),
        ("a: &a [1, *a]\n", "r.yaml:1: an alias refers to itself"),
        ("a: " + "x" * (9 << 20) + "\n", "r.yaml: 9,437,188 bytes; a YAML file is at most 8 MB"),
    ],
    ids=["duplicate-key", "deep-flow", "deep-block", "self-alias", "too-big"],
)
def test_hostile_config_files_are_one_line(tmp_path, run_cli, text, expected):
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    _one_line_error(*run_cli("validate", path)[::2], *expected.split(": ", 1))


def test_a_fifo_or_a_device_is_named_as_such(tmp_path, run_cli):
    import os

    os.mkfifo(tmp_path / "r.yaml")
    _one_line_error(*run_cli("validate", tmp_path / "r.yaml")[::2], "r.yaml", "is a FIFO, not a regular file")
    _one_line_error(*run_cli("validate", "/dev/zero")[::2], "/dev/zero", "is a device, not a regular file")


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
