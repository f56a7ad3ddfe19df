"""`aidsafe launch ray`: shards as Ray tasks on a local Ray instance (CPU), merged into one run."""

from __future__ import annotations

import json

import pytest

from aidsafe.testing import ScriptedServer, aidsafe_responder
from tests.conftest import read_jsonl

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow


def test_launch_ray_runs_every_shard_and_merges(tmp_path, run_cli, prompts_file, monkeypatch):
    monkeypatch.setenv("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    prompts = [f"[ray{i:02d}] How do I keep my bike from rusting, case {i}?" for i in range(8)]
    source = prompts_file(prompts)
    out = tmp_path / "big"
    with ScriptedServer(aidsafe_responder(), models=["t"]) as server:
        args = ["launch", "ray", "aidsafe", "--input", source, "--output", out, "--shards", "3",
                "--base-url", server.base_url, "--model", "t", "--set", "dedup.enabled=false"]  # fmt: skip
        code, _, err = run_cli(*args)
        assert code == 0, err
        served = len(server.requests)
        # A rerun of the same command resumes: every shard is finished, so no teacher call, and
        # merged/ is rebuilt from the shards.
        code, _, err = run_cli(*args)
        assert code == 0, err
        assert len(server.requests) == served
    shards = sorted(p.name for p in out.iterdir() if p.name.startswith("shard-"))
    assert shards == ["shard-0-of-3", "shard-1-of-3", "shard-2-of-3"]
    merged = read_jsonl(out / "merged" / "samples.jsonl")
    assert sorted(r["prompt"] for r in merged) == sorted(prompts)
    assert json.loads((out / "merged" / "stats.json").read_text())["samples"] == 8
    assert served > 0
