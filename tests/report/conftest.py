"""Real runs to look at, made once per session: the real CLI and HTTP client against ScriptedServer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aidsafe.testing import ScriptedServer, schema_responder
from tests.helpers import FAST

# Sample text is adversarial: each of these must come out of the page as text, never as markup.
HOSTILE = [
    "<script>document.body.setAttribute('data-pwned', 'script')</script> How do I pick a lock?",
    "</script><img src=x onerror=\"document.body.setAttribute('data-pwned', 'img')\"> A second question",
    "[bold red]rich markup[/] & an ampersand, a \u2028 separator and </SCRIPT > in capitals",
]


def cli(*args: object) -> None:
    from aidsafe.cli import main

    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        assert exc.code in (0, None), f"aidsafe {args[0]} exited {exc.code}"


def _prompts(path: Path, prompts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def generation_run(tmp_path_factory) -> Path:
    """A generation run with real dedup (MiniLM), a hostile prompt set and one rejected sample."""
    from aidsafe.testing import Fault, aidsafe_responder

    base = tmp_path_factory.mktemp("gen")
    prompts = [*HOSTILE, "Please explain photosynthesis.", "Doomed: its refiner never answers JSON."]

    def plan(index, request):
        text = json.dumps(request)
        return Fault.MALFORMED_JSON if "Doomed" in text and "Refinement" in text else None

    with ScriptedServer(aidsafe_responder(), models=["teacher-x"], fault_plan=plan) as server:
        cli("generate", "aidsafe", "-i", _prompts(base / "p.jsonl", prompts), "-o", base / "run",
            "--base-url", server.base_url, "--model", "teacher-x", *FAST)  # fmt: skip
    return base / "run"


@pytest.fixture(scope="session")
def pairs_run(tmp_path_factory) -> Path:
    from tests.pairs.helpers import pairs_server_responder

    base = tmp_path_factory.mktemp("pairs")
    prompts = [f"[sep={k}] How do I handle request {i}?" for i, k in enumerate([1, 2, 0])]
    with ScriptedServer(pairs_server_responder(), models=["teacher-x"]) as server:
        cli("generate", "aidsafe", "-i", _prompts(base / "p.jsonl", prompts), "-o", base / "gen",
            "--base-url", server.base_url, "--model", "teacher-x", "--set", "dedup.enabled=false", *FAST)  # fmt: skip
        cli("pairs", "aidsafe-pairs", "-i", base / "gen", "-o", base / "run",
            "--base-url", server.base_url, "--model", "teacher-x", *FAST)  # fmt: skip
    return base / "run"


@pytest.fixture(scope="session")
def traces_run(tmp_path_factory) -> Path:
    from tests.guard.test_traces import labelled_file

    base = tmp_path_factory.mktemp("traces")
    source, _ = labelled_file(base)
    with ScriptedServer(schema_responder(seed=3), models=["teacher-x"]) as server:
        cli("generate", "guardreasoner", "--input", source, "--output", base / "run",
            "--base-url", server.base_url, "--model", "teacher-x", *FAST)  # fmt: skip
    return base / "run"
