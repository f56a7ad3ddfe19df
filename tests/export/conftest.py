"""One real run directory for the export tests: `aidsafe generate` against the loopback ScriptedServer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aidsafe.cli import main
from aidsafe.testing import ScriptedServer, aidsafe_responder

PROMPTS = [f"[p{i:02d}] How should I answer question number {i}?" for i in range(12)]


@pytest.fixture(autouse=True)
def _no_user_benchmarks_or_cache(monkeypatch, tmp_path):
    """Exports filter by default: keep them off the user's benchmarks folder (encoding ~9,700
    benchmark prompts takes minutes) and out of the user's cache. Tests that decontaminate say
    where their benchmarks are."""
    monkeypatch.delenv("AIDSAFE_SHARED_BENCHMARKS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture(scope="session")
def generated_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export-run")
    source = root / "prompts.jsonl"
    source.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS), encoding="utf-8")
    out = root / "run"
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"]) as server:
        args = ["generate", "aidsafe", "--input", str(source), "--output", str(out), "--no-progress"]
        main([*args, "--base-url", server.base_url, "--model", "teacher-x"])
    return out


@pytest.fixture
def run_dir(generated_run, tmp_path) -> Path:
    """A private copy, so a test may damage it."""
    return Path(shutil.copytree(generated_run, tmp_path / "run"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from aidsafe.testing.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))
