"""`generate --shard K/N` and `aidsafe merge`: disjoint shards that cover the input, a merged run
that holds every sample once with stats recomputed, and the refusals."""

from __future__ import annotations

import json

import pytest

from aidsafe.errors import AidsafeError
from aidsafe.run.shards import Shard, parse_shard
from aidsafe.testing import ScriptedServer, aidsafe_responder
from tests.conftest import read_jsonl
from tests.helpers import FAST

RUN = [*FAST, "--set", "dedup.enabled=false", "--model", "t"]


def test_shards_split_by_id_disjointly_and_cover_everything():
    ids = [f"id-{i}" for i in range(500)]
    parts = [set(Shard(k, 3).select(ids, key=str)) for k in range(3)]
    assert set.union(*parts) == set(ids) and sum(len(p) for p in parts) == 500
    assert all(120 < len(p) < 215 for p in parts)  # a hash split, not all in one
    assert parse_shard("2/4") == Shard(2, 4)
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(AidsafeError, match="expected K/N"):
            parse_shard(bad)


def test_two_shards_merge_into_one_run_with_every_sample_once(tmp_path, run_cli, prompts_file):
    prompts = [f"[s{i:02d}] What should I know about topic {i}?" for i in range(10)]
    source = prompts_file(prompts)
    with ScriptedServer(aidsafe_responder(), models=["t"]) as server:
        for k in (0, 1):
            code, _, err = run_cli("generate", "aidsafe", "-i", source, "-o", tmp_path / f"s{k}", "--shard", f"{k}/2",
                                   "--base-url", server.base_url, *RUN)  # fmt: skip
            assert code == 0, err
        # A rerun with another shard would mix two splits in one directory: refused.
        code, _, err = run_cli("generate", "aidsafe", "-i", source, "-o", tmp_path / "s0", "--shard", "1/2",
                               "--base-url", server.base_url, *RUN)  # fmt: skip
        assert code != 0 and "was started with shard 0/2" in err
    shard_ids = [{r["id"] for r in read_jsonl(tmp_path / f"s{k}" / "samples.jsonl")} for k in (0, 1)]
    assert not shard_ids[0] & shard_ids[1] and all(shard_ids)

    code, _, err = run_cli("merge", tmp_path / "s0", tmp_path / "s1", "--output", tmp_path / "all")
    assert code == 0, err
    merged = read_jsonl(tmp_path / "all" / "samples.jsonl")
    assert sorted(r["prompt"] for r in merged) == sorted(prompts)
    stats = json.loads((tmp_path / "all" / "stats.json").read_text())
    assert stats["samples"] == 10 and stats["inputs"] == 10 and stats["pending"] == 0
    run_json = json.loads((tmp_path / "all" / "run.json").read_text())
    assert run_json == json.loads((tmp_path / "s0" / "run.json").read_text())

    # Only one shard of two: merged, with the missing one named.
    code, _, err = run_cli("merge", tmp_path / "s0", "--output", tmp_path / "half")
    assert code == 0 and "shards 1/2 not given" in err
    # Into a directory that holds samples: refused, nothing touched.
    before = (tmp_path / "all" / "samples.jsonl").read_bytes()
    code, _, err = run_cli("merge", tmp_path / "s0", "--output", tmp_path / "all")
    assert code != 0 and "already holds samples" in err
    assert (tmp_path / "all" / "samples.jsonl").read_bytes() == before


def test_merge_refuses_runs_of_different_recipes(tmp_path, run_cli, prompts_file):
    source = prompts_file(["[d] How do I dispose of old paint?"])
    with ScriptedServer(aidsafe_responder(), models=["t"]) as server:
        for name, extra in (("a", []), ("b", ["--set", "deliberation.max_rounds=1"])):
            code, _, err = run_cli("generate", "aidsafe", "-i", source, "-o", tmp_path / name,
                                   "--base-url", server.base_url, *RUN, *extra)  # fmt: skip
            assert code == 0, err
    code, _, err = run_cli("merge", tmp_path / "a", tmp_path / "b", "--output", tmp_path / "m")
    assert code != 0 and "only shards of one recipe merge" in err
