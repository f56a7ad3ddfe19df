"""Every bad input ends with exit code 2 and one line naming the file, line or key; no traceback."""

from __future__ import annotations

import pytest

from tests.conftest import REPO

RECIPE = (REPO / "recipes" / "aidsafe.yaml").read_text(encoding="utf-8")


def _one_line_error(code: int, err: str, *expected: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for part in expected:
        assert part in lines[0], lines[0]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", ("r.yaml", "file is empty")),
        ("name: x\nteacher: [\n", ("r.yaml:3", "YAML syntax error")),
        (
            RECIPE.replace("max_rounds: 4", "max_roundz: 4"),
            ("r.yaml:", "deliberation.max_roundz", "unknown key", "expected one of: max_rounds"),
        ),
        (RECIPE.replace("threshold: 0.9 ", "threshold: 1.5 "), ("dedup.threshold", "less than or equal to 1")),
        (
            RECIPE.replace("initial_cot: initial_cot", "initial_cot: nosuchagent"),
            ("agents.initial_cot", "nosuchagent", "built-in agent"),
        ),
        (RECIPE.replace("refiner: refiner", "refiner: deliberator"), ("deliberator.yaml", "role", "'refiner'")),
        (RECIPE.replace("policies: aidsafe ", "policies: missing.yaml "), ("missing.yaml", "no such file")),
        (RECIPE.replace("  model: Qwen/Qwen2.5-7B-Instruct\n", ""), ("teacher.model", "required key is missing")),
    ],
)
def test_bad_recipe(tmp_path, run_cli, content, expected):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(content, encoding="utf-8")
    _one_line_error(*run_cli("validate", recipe)[::2], *expected)


def test_missing_recipe_lists_builtins(run_cli):
    _one_line_error(*run_cli("validate", "no-such-recipe")[::2], "no-such-recipe", "built-ins: aidsafe")


def test_card_with_unknown_placeholder_names_card_and_key(tmp_path, run_cli):
    card = (REPO / "agents" / "refiner.yaml").read_text(encoding="utf-8").replace("{deliberation}", "{deliberations}")
    (tmp_path / "my_refiner.yaml").write_text(card, encoding="utf-8")
    (tmp_path / "r.yaml").write_text(RECIPE.replace("refiner: refiner", "refiner: my_refiner.yaml"), encoding="utf-8")
    _one_line_error(
        *run_cli("validate", tmp_path / "r.yaml")[::2], "my_refiner.yaml", "user", "{deliberations}", "expected one of"
    )


def test_bad_set_override(run_cli):
    _one_line_error(*run_cli("validate", "aidsafe", "--set", "novalue")[::2], "--set 'novalue'", "key.path=value")
    _one_line_error(
        *run_cli("validate", "aidsafe", "--set", "teacher.concurrency=0")[::2],
        "teacher.concurrency",
        "concurrency must be at least 1, or auto",
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"prompt": "a"}\n{"prompt": \n', ("prompts.jsonl:2", "not valid JSON")),
        ('{"question": "a"}\n', ("prompts.jsonl:1", "missing field 'prompt'", "--prompt-field")),
        ("", ("prompts.jsonl", "no prompts")),
    ],
)
def test_bad_input_fails_before_any_call(tmp_path, run_cli, content, expected):
    source = tmp_path / "prompts.jsonl"
    source.write_text(content, encoding="utf-8")
    # The base URL points nowhere: reaching the teacher check would give a different error.
    code, _, err = run_cli(
        "generate",
        "aidsafe",
        "-i",
        source,
        "-o",
        tmp_path / "out",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--no-progress",
    )
    _one_line_error(code, err, *expected)
    assert not (tmp_path / "out").exists()


def test_output_dir_from_another_recipe_is_refused(tmp_path, run_cli, prompts_file):
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.json").write_text('{"recipe_hash": "0000000000000000"}', encoding="utf-8")
    # Only a directory holding an item is refused (an empty one is adopted: issue 9 item 9).
    (out / "samples.jsonl").write_text('{"id": "x", "prompt": "a"}\n', encoding="utf-8")
    code, _, err = run_cli("generate", "aidsafe", "-i", prompts_file(["a"]), "-o", out, "--no-progress")
    _one_line_error(code, err, str(out), "different recipe", "new --output")


def test_latin1_prompts_file_is_one_line_before_any_call(tmp_path, run_cli):
    source = tmp_path / "prompts.jsonl"
    source.write_bytes('{"prompt": "caf\xe9"}\n'.encode("latin-1"))
    code, _, err = run_cli(
        "generate", "aidsafe", "-i", source, "-o", tmp_path / "out", "--base-url", "http://127.0.0.1:9/v1"
    )
    _one_line_error(code, err, "prompts.jsonl:1", "not UTF-8", "0xe9 at offset 15")
    assert not (tmp_path / "out").exists()
