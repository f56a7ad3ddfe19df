"""The guard-data stages write stats.json through the one writer (aidsafe.run.stats), as
generation and pairs do: besides the counts, the teacher's calls, tokens, retries and latency of
the last run (`last_run`), which the report shows and a rerun with nothing to do keeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aidsafe.testing import ScriptedServer, schema_responder

INPUTS = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_runs"
FAST = ["--set", "teacher.backoff_base_s=0.01", "--no-progress"]
# kind -> (input, rows in it, words that mark a row's call, not the pre-flight probe)
STAGES = {
    "guardreasoner": (INPUTS / "labelled.jsonl", 4, "Correct labels"),
    "thinkguard": (INPUTS / "beavertails.jsonl", 5, "Correct verdict"),
}


@pytest.mark.parametrize("kind", sorted(STAGES))
def test_guard_stages_write_the_teacher_calls_tokens_and_latency(kind, tmp_path, run_cli):
    source, rows, marker = STAGES[kind]
    out = tmp_path / kind
    with ScriptedServer(schema_responder(seed=3), models=["m"]) as server:
        args = ["generate", kind, "-i", source, "-o", out, "--base-url", server.base_url, "--model", "m", *FAST]
        code, _, err = run_cli(*args)
        calls = len(server.requests_containing(marker))
        assert code == 0, err
        first = json.loads((out / "stats.json").read_text())
        assert run_cli(*args)[0] == 0  # a rerun with nothing left to do
    last = first["last_run"]
    assert last["calls"] == calls == rows and last["failed_calls"] == 0
    assert last["prompt_tokens"] > 0 and last["completion_tokens"] > 0
    assert last["latency_s"]["mean"] > 0 and last["wall_s"] > 0
    assert (first["samples"], first["rejected"], first["pending"], first["rejected_by_stage"]) == (rows, 0, 0, {})
    again = json.loads((out / "stats.json").read_text())
    assert again["last_run"] == last  # the run that made the output, not the one that had nothing to do
