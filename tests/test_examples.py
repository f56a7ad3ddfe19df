"""The examples a newcomer copies actually run."""

from __future__ import annotations

import subprocess
import sys

from aidsafe.agents.schemas import DeliberationTurn
from aidsafe.testing import ScriptedServer, aidsafe_responder, check_agent
from tests.conftest import REPO, read_jsonl


def test_custom_agent_conforms_to_the_deliberator_role():
    from aidsafe.agents.resolve import _import_file

    module = _import_file(REPO / "examples" / "custom_agent.py")
    output = check_agent(module.OverRefusalReviewer(), "deliberator")
    assert isinstance(output, DeliberationTurn)


def test_custom_recipe_validates(run_cli):
    code, out, err = run_cli("validate", REPO / "examples" / "custom_recipe.yaml")
    assert code == 0, err
    assert "safety_reviewer/over_refusal_reviewer" in out


def test_python_api_example_runs_the_custom_agent_end_to_end(tmp_path):
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"]) as server:
        result = subprocess.run(
            [
                sys.executable,
                str(REPO / "examples" / "python_api.py"),
                "--base-url",
                server.base_url,
                "--model",
                "teacher-x",
                "--output",
                str(tmp_path / "run"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        assert "6 samples, 0 rejected" in result.stdout
        custom_calls = [r for r in server.requests if "over-refusal" in r.text]
        assert custom_calls, "the custom agent never called the teacher"
    records = read_jsonl(tmp_path / "run" / "samples.jsonl")
    agents = {turn["agent"] for record in records for turn in record["deliberation"]}
    assert agents == {"safety_reviewer", "over_refusal_reviewer"}


def test_the_custom_stage_example_runs_resumes_and_counts(tmp_path):
    """docs/architecture.md's "how to add a stage": examples/custom_stage.py, run as a user runs it
    (its own process, real HTTP), on a generation run; a rerun asks the teacher nothing."""
    import json
    import shutil

    from aidsafe.testing import schema_responder

    run = tmp_path / "generation"
    shutil.copytree(REPO / "tests" / "fixtures" / "legacy_runs" / "generation", run)
    with ScriptedServer(schema_responder(seed=1), models=["m"]) as server:
        args = [sys.executable, str(REPO / "examples" / "custom_stage.py"), str(run), "--output",
                str(tmp_path / "refusals"), "--base-url", server.base_url, "--model", "m"]  # fmt: skip
        for _ in range(2):
            done = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            calls = [r for r in server.requests if "refuses the user's request" in r.text]
            assert len(calls) == 4  # one per finished sample, and none on the rerun
    records = read_jsonl(tmp_path / "refusals" / "samples.jsonl")
    assert len(records) == 4 and {r["label"] for r in records} <= {"complies", "refuses", "partial"}
    stats = json.loads((tmp_path / "refusals" / "stats.json").read_text())
    assert stats["samples"] == 4 and stats["last_run"]["calls"] == 4
