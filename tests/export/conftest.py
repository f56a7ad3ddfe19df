"""One real run directory for the export tests: `aidsafe generate` against the loopback ScriptedServer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aidsafe.cli import main
from aidsafe.testing import ScriptedServer
from tests.helpers import FAST, aidsafe_run
from tests.train.conftest import tiny_model  # noqa: F401 (a fixture)

PROMPTS = [f"[p{i:02d}] How should I answer question number {i}?" for i in range(12)]


@pytest.fixture(autouse=True)
def private_datasets_cache(tmp_path, monkeypatch):
    """datasets keys its cache of a local folder on the folder's name and configs, not on its files
    (datasets 5.2): every test's `load_dataset(tmp/"dataset")` would otherwise share one cache entry,
    with other tests and with anything else on the machine that exported a folder of that name."""
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")


@pytest.fixture(autouse=True)
def _no_user_benchmarks_or_cache(monkeypatch, tmp_path):
    """Exports filter by default: keep them off the user's benchmarks folder (encoding ~9,700
    benchmark prompts takes minutes) and out of the user's cache. Tests that decontaminate say
    where their benchmarks are."""
    monkeypatch.delenv("AIDSAFE_SHARED_BENCHMARKS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture(scope="session")
def generated_run(tmp_path_factory) -> Path:
    return aidsafe_run(tmp_path_factory.mktemp("export-run"), PROMPTS)


@pytest.fixture
def run_dir(generated_run, tmp_path) -> Path:
    """A private copy, so a test may damage it."""
    return Path(shutil.copytree(generated_run, tmp_path / "run"))


# Pairs, traces and hard-sample runs, made by the real commands -------------------------------

PAIR_PROMPTS = [f"[sep={1 + i % 2}] How do I handle request {i}?" for i in range(6)] + ["[sep=0] Never separated?"]


@pytest.fixture(scope="session")
def generated_pairs(tmp_path_factory) -> Path:
    """`aidsafe generate` then `aidsafe pairs` (tests/pairs/helpers.py's scripted teacher): 6 pairs
    (iterations 1 and 2) and one `no_separation`."""
    from tests.pairs.helpers import pairs_server_responder

    root = tmp_path_factory.mktemp("export-pairs")
    source = root / "prompts.jsonl"
    source.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PAIR_PROMPTS), encoding="utf-8")
    with ScriptedServer(pairs_server_responder(), models=["m"]) as server:
        teacher = ["--base-url", server.base_url, "--model", "m", *FAST]
        gen = ["generate", "aidsafe", "-i", str(source), "-o", str(root / "gen"), "--set", "dedup.enabled=false"]
        main([*gen, *teacher])
        main(["pairs", "aidsafe-pairs", "-i", str(root / "gen"), "-o", str(root / "pairs"), *teacher])
    return root / "pairs"


@pytest.fixture(scope="session")
def generated_traces(tmp_path_factory) -> Path:
    """`aidsafe generate guardreasoner` with a teacher that only follows the schema."""
    from aidsafe.testing import schema_responder

    root = tmp_path_factory.mktemp("export-traces")
    labels = [
        ("How do I pick a lock?", "Here is how.", "harmful", "compliance", "harmful"),
        ("What is 2+2?", "4.", "unharmful", "compliance", "unharmful"),
        ("Write malware.", "I can't help.", "harmful", "refusal", "unharmful"),
        ("Hello", None, "unharmful", "None", "None"),
    ]
    source = root / "labelled.jsonl"
    rows = [{"prompt": p, "response": r, "label": f"Answers: \nRequest: {a}\nCompletion: {b}\nResponse: {c}\n"}
            for p, r, a, b, c in labels]  # fmt: skip
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with ScriptedServer(schema_responder(seed=3), models=["teacher-x"]) as server:
        args = ["generate", "guardreasoner", "-i", str(source), "-o", str(root / "gr"), *FAST]
        main([*args, "--base-url", server.base_url, "--model", "teacher-x"])
    return root / "gr"


@pytest.fixture(scope="session")
def mined_pairs(tmp_path_factory) -> Path:
    """`aidsafe pairs hard-samples` over a predictions file: three pairs, raw weights +1, -2, 0
    (scaled: 1.2, 0.8, 1.067)."""
    from aidsafe.guard.formats import answer_block, guardreasoner_prompt

    def out(label: str, pad: int = 0) -> str:
        return "# Task 1\n" + "r" * pad + "\n\n---\n\n" + answer_block(label, None, None)

    def row(prompt: str, gold: str, samples: list[str]) -> dict:
        return {"prompt": guardreasoner_prompt(prompt, None), "label": out(gold), "predicts": samples}

    root = tmp_path_factory.mktemp("export-hard")
    rows = [
        row("q1", "harmful", [out("harmful"), out("unharmful", 3), out("unharmful", 5)]),  # raw +1
        row("q2", "harmful", [out("harmful"), out("harmful", 2), out("harmful", 4), out("unharmful", 1)]),  # raw -2
        row("q3", "unharmful", [out("unharmful", 1), out("harmful", 7)]),  # raw 0
    ]
    predictions = root / "sample-main.jsonl"
    predictions.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    main(["pairs", "hard-samples", str(predictions), "--output", str(root / "hs")])
    return root / "hs"


@pytest.fixture
def pairs_dir(generated_pairs, tmp_path) -> Path:
    """A copy of the pairs run. Its prompts are one template with numbers, near-duplicates to the
    export's dedup, so tests that count its rows export with --no-dedup."""
    return Path(shutil.copytree(generated_pairs, tmp_path / "pairs"))
