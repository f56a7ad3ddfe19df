"""Usage errors through the real console script: click's short usage message, exit 2, no traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO


def aidsafe(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """Run the installed `aidsafe` console script against this tree (PYTHONPATH) and capture it."""
    script = shutil.which("aidsafe")
    command = [script] if script else [sys.executable, "-m", "aidsafe"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "100"}
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd, check=False)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("generate",), "Missing argument 'RECIPE'"),
        (("generate", "aidsafe", "-i", "p.jsonl", "-o", "out", "--limit", "0"), "'--limit'"),
        (("generate", "aidsafe", "-i", "p.jsonl", "-o", "out", "--limit", "abc"), "'--limit'"),
        (("generate", "aidsafe", "-i", "p.jsonl", "-o", "out", "--concurrency", "0"), "'--concurrency'"),
        (("generate", "aidsafe", "-o", "out"), "Missing option '--input'"),
        (("--foo",), "No such option: --foo"),
        (("gen",), "No such command 'gen'"),
        (("train", "sft", "sft"), "Missing option '--model'"),
        (("train", "sft", "sft", "-m", "x", "-d", "y", "-o", "z", "--merge=maybe"), "--merge"),
        (("eval", "guard", "--nope"), "No such option: --nope"),
        (("predict", "guard"), "Missing option '--benchmark'"),
        (("validate", "aidsafe", "extra"), "unexpected extra argument"),
    ],
)
def test_usage_error_is_clicks_short_message(args, expected, tmp_path):
    result = aidsafe(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    # "Usage: ...", "Try 'aidsafe ... --help' for help.", "Error: ..." (click omits the first two
    # for a flag given a value).
    assert len(lines) <= 3 and lines[-1].startswith("Error: ") and expected in lines[-1], result.stderr


@pytest.mark.parametrize("args", [(), ("train",), ("eval",), ("predict",)])
def test_no_arguments_prints_help_exit_2(args):
    # click >= 8.2 treats "no arguments" on a no_args_is_help group as a usage error: help, exit 2.
    result = aidsafe(*args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    shown = result.stdout + result.stderr  # typer's rich help prints to stdout
    assert "Usage: aidsafe" in shown and "Commands" in shown


def test_help_exits_0():
    result = aidsafe("--help")
    assert result.returncode == 0 and "generate" in result.stdout, result.stderr


def test_the_app_is_built_once(run_cli):
    from aidsafe.cli import app

    before = (len(app.registered_commands), len(app.registered_groups))
    for _ in range(2):
        assert run_cli("--help")[0] == 0
    assert (len(app.registered_commands), len(app.registered_groups)) == before
    # generate/validate/graph, export and report/show/schema merge into the root; eval, pairs,
    # predict and train are groups.
    named = {g.name for g in app.registered_groups if isinstance(g.name, str)}
    assert named == {"eval", "pairs", "predict", "train"} and len(app.registered_groups) == 7
