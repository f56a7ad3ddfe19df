"""README's "Try it with no model" block runs as written (parsed from README, so it cannot drift):
the whole chain against the loopback server's default responder, generate to eval guard."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO, read_jsonl
from tests.helpers import free_port

PORT = "8000"  # the port README uses; the test swaps in a free one (other test runs may hold 8000)


def _try_it_commands() -> list[list[str]]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Try it with no model", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block, "README's 'Try it with no model' section has no bash block"
    return [shlex.split(line, comments=True) for line in block.group(1).splitlines() if line.strip()]


def _resolve(argv: list[str], port: str) -> list[str]:
    """`python` is this interpreter, `aidsafe` the console script; the README's port becomes `port`."""
    script = shutil.which("aidsafe")
    head = {"python": [sys.executable], "aidsafe": [script] if script else [sys.executable, "-m", "aidsafe"]}[argv[0]]
    return [*head, *(arg.replace(PORT, port) for arg in argv[1:])]


@pytest.mark.slow  # about 2 minutes: two tiny trainings and the embedding model, each its own process
def test_try_it_with_no_model_block_runs(tmp_path):
    commands = _try_it_commands()
    server, *steps = commands
    assert server[:3] == ["python", "-m", "aidsafe.testing.server"] and server[-1] == "&", server
    assert any(PORT in arg for arg in server) and any(PORT in arg for step in steps for arg in step)
    (tmp_path / "examples").symlink_to(REPO / "examples")  # README runs from the repository root
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    port = str(free_port())
    process = subprocess.Popen(_resolve(server[:-1], port), cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    outputs = {}
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == f"http://127.0.0.1:{port}/v1"
        for step in steps:
            result = subprocess.run(
                _resolve(step, port), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
            )
            assert result.returncode == 0, (step, result.stdout[-2000:], result.stderr[-3000:])
            outputs[" ".join(step[:3])] = result.stdout
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
    runs = tmp_path / "runs"
    prompts = len((REPO / "examples" / "prompts.jsonl").read_text(encoding="utf-8").splitlines())
    assert len(read_jsonl(runs / "try" / "samples.jsonl")) == prompts
    assert read_jsonl(runs / "try" / "rejected.jsonl") == []
    # The loopback judge separates every sample on its first belief, so every prompt makes a pair.
    assert len(read_jsonl(runs / "pairs" / "samples.jsonl")) == prompts
    assert (runs / "tiny-sft").is_dir() and (runs / "tiny-dpo").is_dir()
    assert (runs / "try" / "report.html").is_file()
    guard_rows = len((REPO / "examples" / "guard.jsonl").read_text(encoding="utf-8").splitlines())
    assert len(read_jsonl(runs / "guard" / "samples.jsonl")) == guard_rows
    assert read_jsonl(runs / "guard" / "rejected.jsonl") == []
    predictions = read_jsonl(runs / "guard.jsonl")
    assert len(predictions) == guard_rows and all("Answers:" in row["predict"] for row in predictions)
    assert "0 unparseable" in outputs["aidsafe eval guard"], outputs["aidsafe eval guard"]
    policy_rows = len((REPO / "examples" / "policy-guard.jsonl").read_text(encoding="utf-8").splitlines())
    policy_records = read_jsonl(runs / "policy-guard" / "samples.jsonl")
    assert read_jsonl(runs / "policy-guard" / "rejected.jsonl") == []
    assert len([r for r in policy_records if r["policy"]["variant"] is None]) == policy_rows
    assert any(r["policy"]["variant"] is not None for r in policy_records)  # counterfactual policies
