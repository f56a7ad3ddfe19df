"""The shape of the paper's Table 1 with our own teacher: `generate aidsafe` and `generate llm-zs`
on one prompts file, then `eval cot` of each and `eval cot --compare` between them, all through
the real CLI and HTTP client against loopback ScriptedServers."""

from __future__ import annotations

import json

from aidsafe.testing import ScriptedServer, aidsafe_responder, schema_responder
from tests.conftest import read_jsonl
from tests.eval.cot_helpers import calls, judge_responder
from tests.helpers import FAST

PROMPTS = [f"How do I handle situation {i} safely?" for i in range(6)]


def _generate(run_cli, recipe, source, out, *extra):
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"]) as server:
        code, _, err = run_cli("generate", recipe, "-i", source, "-o", out, "--base-url", server.base_url,
                               "--model", "teacher-x", *extra, *FAST)  # fmt: skip
    assert code == 0, err


def test_aidsafe_against_llm_zs(tmp_path, run_cli, prompts_file):
    source = prompts_file(PROMPTS)
    aidsafe, zs = tmp_path / "aidsafe", tmp_path / "llm-zs"
    _generate(run_cli, "aidsafe", source, aidsafe, "--set", "dedup.enabled=false")
    _generate(run_cli, "llm-zs", source, zs)
    # aidsafe's refiner writes "the final" answer, the zero-shot one does not: the judge prefers it
    with ScriptedServer(judge_responder(mark="final"), models=["marker"]) as server:
        code, out, err = run_cli("eval", "cot", aidsafe, "--compare", zs, "--base-url", server.base_url,
                                 "--model", "marker", "--json", "--no-progress")  # fmt: skip
        assert code == 0, err
        assert calls(server, "PairwisePreference") == 6
    report = json.loads(out)
    assert report["matching"] == {"matched": 6, "only_in_run": 0, "only_in_other": 0}
    assert (report["judges"][0]["wins"], report["judges"][0]["losses"]) == (6, 0)
    # the other way round, the same verdicts are losses
    with ScriptedServer(judge_responder(mark="final"), models=["marker"]) as server:
        code, out, err = run_cli("eval", "cot", zs, "--compare", aidsafe, "--base-url", server.base_url,
                                 "--model", "marker", "--json", "--no-progress")  # fmt: skip
        assert code == 0, err
    assert (json.loads(out)["judges"][0]["wins"], json.loads(out)["judges"][0]["losses"]) == (0, 6)
    assert len(read_jsonl(zs / "eval-cot" / "vs-aidsafe" / "marker" / "samples.jsonl")) == 6

    # a judge that knows only the schemas: both runs graded, every score in range, a table printed
    with ScriptedServer(schema_responder(seed=7), models=["any"]) as server:
        for run in (aidsafe, zs):
            code, out, err = run_cli("eval", "cot", run, "--base-url", server.base_url, "--model", "any",
                                     "--no-progress")  # fmt: skip
            assert code == 0, err
            assert "faithfulness_policy_cot" in out
        code, out, err = run_cli("eval", "cot", aidsafe, "--compare", zs, "--base-url", server.base_url,
                                 "--model", "any", "--json", "--no-progress")  # fmt: skip
        assert code == 0, err
    judge = json.loads(out)["judges"][0]
    assert judge["wins"] + judge["ties"] + judge["losses"] + judge["rejected"] == 6
    for run in (aidsafe, zs):
        for record in read_jsonl(run / "eval-cot" / "any" / "samples.jsonl"):
            assert set(record["scores"].values()) <= {1, 2, 3, 4, 5}
