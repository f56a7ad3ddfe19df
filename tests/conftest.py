"""Shared test setup: offline always; helpers for running the CLI in-process."""

from __future__ import annotations

import os

# Tests never reach the Hugging Face Hub (CI has no route to it); set before anything imports hf.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

import json  # noqa: E402
from collections.abc import Mapping  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
_MACHINE_BENCHMARKS = Path("/work/shared/benchmarks")  # where the team's machines keep them


def locate_shared_benchmarks(environ: Mapping[str, str], repo: Path, machine: Path = _MACHINE_BENCHMARKS) -> Path:
    """The shared benchmarks folder (read in place, never copied into the repository):
    $AIDSAFE_SHARED_BENCHMARKS when set, else ../shared/benchmarks next to the repository, else
    `machine` when it exists. When none exists, the ../shared path, so a skip names where we looked."""
    if environ.get("AIDSAFE_SHARED_BENCHMARKS"):
        return Path(environ["AIDSAFE_SHARED_BENCHMARKS"])
    beside = repo.parent / "shared" / "benchmarks"
    return machine if not beside.is_dir() and machine.is_dir() else beside


# Read once, before any test: the autouse fixture below takes the variable away from the code under test.
SHARED_BENCHMARKS = locate_shared_benchmarks(os.environ, REPO)


def shared_benchmarks() -> Path:
    return SHARED_BENCHMARKS


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` skip, with the reason, where no CUDA GPU is visible (torch is imported
    only when such a test was collected)."""
    gpu = [item for item in items if "gpu" in item.keywords]
    if not gpu:
        return
    import torch

    if not torch.cuda.is_available():
        for item in gpu:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU (marker gpu)"))


@pytest.fixture(autouse=True)
def _benchmarks_folder_is_only_for_the_tests(monkeypatch):
    """`aidsafe export` decontaminates against $AIDSAFE_SHARED_BENCHMARKS by default (minutes of
    encoding); the variable says where the tests find their files (.ci/run sets it), not what the
    commands under test should do. A test that wants the folder used passes it explicitly."""
    monkeypatch.delenv("AIDSAFE_SHARED_BENCHMARKS", raising=False)


@pytest.fixture
def run_cli(capsys):
    """Run `aidsafe ARGS` in-process; return (exit code, stdout, stderr)."""
    from aidsafe.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def prompts_file(tmp_path):
    def make(prompts: list[str], name: str = "prompts.jsonl") -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts), encoding="utf-8")
        return path

    return make


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSONL file ([] when there is none). Lines end at "\\n" only, as the
    journal reader's do: str.splitlines() would also cut at U+2028/U+2029 inside a JSON string."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
