"""The kinds registry (aidsafe.kinds): each kind declared once, recipes and runs told apart in one
place, and the commands that take a recipe say which command runs one of another kind.

What consumes each kind's output is tested on real outputs in tests/export/test_kind_consumers.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from aidsafe.errors import AidsafeError
from aidsafe.kinds import KINDS, load_object, recipe_kind, recipe_kinds, run_kind
from tests.conftest import REPO

BUILT_IN = sorted([*(REPO / "recipes").glob("*.yaml"), *(REPO / "recipes" / "train").glob("*.yaml")])


def test_every_name_a_kind_gives_is_there():
    from aidsafe.config.schemas import SCHEMAS
    from aidsafe.export.formats import FORMATS
    from aidsafe.report.kinds import VIEWS

    for kind in KINDS.values():
        for spec in (kind.recipe, kind.load, kind.describe, kind.graph, kind.run, *kind.train.values()):
            assert spec is None or callable(load_object(spec)), (kind.name, spec)
        assert kind.schema is None or kind.schema in SCHEMAS
        assert kind.report is None or kind.report in VIEWS
        assert set(kind.export) <= set(FORMATS) and set(kind.train) <= {"sft", "dpo", "grpo"}
        assert (kind.recipe is None) == (kind.load is None) == (kind.schema is None)


def test_export_report_and_train_read_kinds_without_importing_a_stage():
    script = (
        "import sys\n"
        "import aidsafe.kinds, aidsafe.export, aidsafe.report, aidsafe.train.data, aidsafe.config.schemas\n"
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in (['aidsafe', 'generation'], "
        "['aidsafe', 'pairs'], ['aidsafe', 'eval']) or m in ('aidsafe.guard.traces', 'aidsafe.guard.critiques', "
        "'aidsafe.guard.policy_guard')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("path", BUILT_IN, ids=lambda p: str(p.relative_to(REPO)))
def test_a_built_in_recipe_says_its_kind_on_its_first_lines(path):
    first, second = path.read_text(encoding="utf-8").split("\n")[:2]
    assert first.startswith("# yaml-language-server:") and second.startswith(f"kind: {recipe_kind(path).name} ")


@pytest.mark.parametrize("name", ["aidsafe", "llm-zs", "aidsafe-pairs", "aidsafe-pairs-shieldgemma", "sft", "dpo"])
def test_a_recipe_without_kind_is_inferred_as_before_and_hashes_the_same(name, tmp_path, run_cli):
    declared = recipe_kind(name)
    source = REPO / "recipes" / declared.builtin_dir / f"{name}.yaml"
    legacy = tmp_path / f"{name}.yaml"
    legacy.write_text(
        "".join(line for line in source.read_text().splitlines(keepends=True) if not line.startswith("kind:"))
    )
    assert recipe_kind(legacy) == declared
    outputs = [run_cli("validate", ref) for ref in (source, legacy)]
    assert all(code == 0 for code, _, _ in outputs) and outputs[0][1] == outputs[1][1]  # same hash printed


def test_an_unknown_kind_is_one_line_naming_file_line_and_the_kinds(tmp_path, run_cli):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("# a comment\nkind: pair\nname: x\n")
    code, _, err = run_cli("validate", recipe)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{recipe}:2: kind: 'pair' is not a recipe kind; expected one of: generation, pairs" in err


IO = ("-i", "prompts.jsonl", "-o", "out")  # never read: the kind is checked first


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("generate", "aidsafe-pairs", *IO), "aidsafe-pairs is a pairs recipe: use `aidsafe pairs make`"),
        (("pairs", "make", "aidsafe", *IO), "aidsafe is a generation recipe: use `aidsafe generate`"),
        (("pairs", "llm-zs", *IO), "llm-zs is a generation recipe: use `aidsafe generate`"),
        (("generate", "dpo", *IO), "dpo is a train recipe: use `aidsafe train sft|dpo|grpo`"),
        (("train", "sft", "aidsafe-pairs", "-m", "m", "-d", "d", "-o", "o"), "is a pairs recipe: use `aidsafe pairs"),
        (("graph", "thinkguard"), "thinkguard is a thinkguard recipe: it runs no graph"),
    ],
)
def test_a_recipe_given_to_the_wrong_command_names_the_right_one(args, expected, run_cli):
    code, _, err = run_cli(*args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err, err


def test_validate_checks_every_kind_of_recipe(run_cli):
    for kind in recipe_kinds():
        path = next(p for p in BUILT_IN if recipe_kind(p) == kind)
        code, out, err = run_cli("validate", path)
        assert code == 0 and out.startswith("ok: "), (path, err)
    code, out, _ = run_cli("validate", "sft")  # a training recipe by its built-in name
    assert code == 0 and out.startswith("ok: training recipe (sft, LoRA r16)")


def test_graph_draws_the_pairs_loop_for_a_pairs_recipe(run_cli):
    code, out, err = run_cli("graph", "aidsafe-pairs")
    assert code == 0, err
    assert "whisper --> rejected_cot" in out and "judge -.-> whisper" in out


def test_opening_a_run_directory_writes_its_kind_even_into_an_old_one(tmp_path):
    from aidsafe.run.journal import RunDirectory

    run = RunDirectory(tmp_path / "run")
    run.open("h1", {"name": "x"}, "guardreasoner")
    info = json.loads(run.run_info_path.read_text())
    assert (info["recipe_hash"], info["kind"]) == ("h1", "guardreasoner")
    run.run_info_path.write_text(json.dumps({"recipe_hash": "h1"}))  # as written before kinds
    run.open("h1", {"name": "x"}, "guardreasoner")
    info = json.loads(run.run_info_path.read_text())
    assert (info["recipe_hash"], info["kind"]) == ("h1", "guardreasoner")
    assert run_kind(run.path) == "guardreasoner"


def test_run_kind_reads_run_json_first_and_says_none_for_nothing_it_knows(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text(json.dumps({"recipe_hash": "h", "kind": "thinkguard"}))
    (tmp_path / "run" / "recipe.yaml").write_text("pairs: {}\n")  # run.json wins over inference
    assert run_kind(tmp_path / "run") == "thinkguard"
    assert run_kind(tmp_path) is None and run_kind(tmp_path / "missing") is None
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.json").write_text("{")
    with pytest.raises(AidsafeError, match=r"run.json: cannot be parsed"):
        run_kind(tmp_path / "broken")
