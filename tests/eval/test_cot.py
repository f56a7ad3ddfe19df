"""`aidsafe eval cot` end to end: the real CLI and HTTP client against the loopback ScriptedServer,
with hand-written judges (tests/eval/cot_helpers.py) and the schema-only responder."""

from __future__ import annotations

import json
import math
import re

import pytest

from aidsafe.eval.cot_judge import CRITERIA
from aidsafe.eval.intervals import bootstrap_mean
from aidsafe.pairs.roles import judge_order
from aidsafe.testing import ScriptedServer, schema_responder
from tests.conftest import read_jsonl
from tests.eval.cot_helpers import calls, judge_responder, write_run

FAST = ["--no-progress", "--concurrency", "4"]
# Six scores per sample, in CRITERIA order; means by hand: 5, 3, 3, 3, 2, 5.
SCORES = ["5,4,3,2,1,5", "5,2,3,4,1,5", "5,3,3,3,5,5", "5,3,3,3,1,5"]
MEANS = dict(zip(CRITERIA, [5, 3, 3, 3, 2, 5], strict=True))


def _graded_run(tmp_path):
    tags = [f"[scores={s}]{' [b+coherence]' if i < 2 else ''}" for i, s in enumerate(SCORES)]
    samples = [(f"s{i}", f"{tag} Question {i}?") for i, tag in enumerate(tags)]
    return write_run(tmp_path / "run", samples)


def _eval(run_cli, *args):
    code, out, err = run_cli("eval", "cot", *args, *FAST)
    assert code == 0, err
    return out


def test_grade_means_and_intervals_from_the_judges_scores(tmp_path, run_cli):
    run = _graded_run(tmp_path)
    with ScriptedServer(judge_responder(), models=["judge-a"]) as server:
        report = json.loads(_eval(run_cli, run, "--base-url", server.base_url, "--model", "judge-a", "--json"))
    [judge] = report["judges"]
    assert judge["samples"] == 4 and judge["rejected"] == 0
    for criterion, mean in MEANS.items():
        assert judge["criteria"][criterion]["value"] == mean, criterion
    assert judge["criteria"]["relevance"] | {} == {"value": 5, "low": 5, "high": 5, "n": 4}  # every score 5
    coherence = judge["criteria"]["coherence"]
    assert coherence == bootstrap_mean([4, 2, 3, 3]).as_dict() and coherence["low"] < 3 < coherence["high"]
    records = read_jsonl(run / "eval-cot" / "judge-a" / "samples.jsonl")
    assert {r["id"]: ",".join(str(r["scores"][c]) for c in CRITERIA) for r in records} == {
        f"s{i}": s for i, s in enumerate(SCORES)
    }
    assert all(r["metadata"]["judge"] == {"agent": "cot_grader", "model": "judge-a"} for r in records)
    # the judge read the policies: their ids and text are in every grading request
    grading = [r for r in server.requests if "[scores=" in r.text]
    assert len(grading) == 4 and all("[P1]" in r.text and "[P5]" in r.text for r in grading)
    schema = grading[0].json["response_format"]["json_schema"]["schema"]
    assert all(schema["properties"][c]["enum"] == [1, 2, 3, 4, 5] for c in CRITERIA)
    assert json.loads((run / "eval-cot" / "report.json").read_text()) == report


def test_table_output_names_every_criterion(tmp_path, run_cli):
    run = _graded_run(tmp_path)
    with ScriptedServer(judge_responder(), models=["judge-a"]) as server:
        out = _eval(run_cli, run, "--base-url", server.base_url, "--model", "judge-a")
    assert all(c in out for c in CRITERIA)
    assert "3.000 [" in out and "5.000 [5.000, 5.000]" in out


def test_resume_asks_only_for_unfinished_samples(tmp_path, run_cli):
    run = _graded_run(tmp_path)
    args = ["--model", "judge-a", "--json"]
    with ScriptedServer(judge_responder(), models=["judge-a"]) as server:
        partial = json.loads(_eval(run_cli, run, "--base-url", server.base_url, *args, "--limit", "2"))
        assert calls(server, "CotScores") == 2 and partial["judges"][0]["samples"] == 2
    with ScriptedServer(judge_responder(), models=["judge-a"]) as server:
        full = json.loads(_eval(run_cli, run, "--base-url", server.base_url, *args))
        assert calls(server, "CotScores") == 2  # s2 and s3 only
        asked = sorted(r.text.split("Question ")[1][0] for r in server.requests if "[scores=" in r.text)
        assert asked == ["2", "3"]
    with ScriptedServer(judge_responder(), models=["judge-a"]) as server:
        again = json.loads(_eval(run_cli, run, "--base-url", server.base_url, *args))
        assert server.requests == []  # nothing left: no pre-flight either
    assert full["judges"][0]["criteria"] == again["judges"][0]["criteria"]
    assert full["judges"][0]["criteria"]["coherence"]["value"] == 3
    assert len(read_jsonl(run / "eval-cot" / "judge-a" / "samples.jsonl")) == 4


def test_two_judges_and_their_agreement(tmp_path, run_cli):
    run = _graded_run(tmp_path)
    with ScriptedServer(judge_responder(), models=["judge-a", "judge-b"]) as server:
        report = json.loads(_eval(run_cli, run, "--model", f"base_url={server.base_url},model=judge-a",
                                  "--base-url", server.base_url, "--model", "judge-b", "--json"))  # fmt: skip
    a, b = report["judges"]
    assert (a["model"], b["model"]) == ("judge-a", "judge-b")
    assert b["criteria"]["coherence"]["value"] == (5 + 3 + 3 + 3) / 4
    [pair] = report["agreement"]
    assert pair["judges"] == ["judge-a", "judge-b"] and pair["common"] == 4
    coherence = pair["criteria"]["coherence"]
    # a: 4,2,3,3; b: 5,3,3,3. |diff| 1,1,0,0; ranks a 4,1,2.5,2.5 and b 4,2,2,2: rho = 3/sqrt(4.5*3)
    assert coherence["mean_abs_diff"]["value"] == 0.5 and coherence["exact"]["value"] == 0.5
    assert math.isclose(coherence["spearman"], math.sqrt(2 / 3))
    relevance = pair["criteria"]["relevance"]
    assert relevance["mean_abs_diff"]["value"] == 0 and relevance["exact"]["value"] == 1
    assert relevance["spearman"] is None  # every score 5: no ranking to correlate
    assert (run / "eval-cot" / "judge-a" / "samples.jsonl").exists()
    assert (run / "eval-cot" / "judge-b" / "samples.jsonl").exists()


def _compare_runs(tmp_path, n, marked):
    prompts = [(f"p{i}", f"Question {i}?") for i in range(n)]
    run = write_run(tmp_path / "run", prompts, response="MARK: a safe, helpful answer." if marked else "Plain answer.")
    other = write_run(tmp_path / "other", prompts[:-2] + [("extra", "Another question?")], response="Plain answer.")
    return run, other


def test_compare_unbiases_a_judge_that_always_says_a(tmp_path, run_cli):
    run, other = _compare_runs(tmp_path, 42, marked=False)
    with ScriptedServer(judge_responder(), models=["always-a", "always-b"]) as server:
        report = json.loads(_eval(run_cli, run, "--compare", other, "--base-url", server.base_url,
                                  "--model", "always-a", "--model", "always-b", "--json"))  # fmt: skip
    assert report["matching"] == {"matched": 40, "only_in_run": 2, "only_in_other": 1}
    first = sum(judge_order(0, f"p{i}", 0) == "chosen_first" for i in range(40))
    always_a, always_b = report["judges"]
    assert (always_a["wins"], always_a["ties"], always_a["losses"]) == (first, 0, 40 - first)
    assert (always_b["wins"], always_b["losses"]) == (40 - first, first)
    assert 12 <= first <= 28 and always_a["run_as_a"] == first  # a seeded coin per prompt, not always A
    assert always_a["win_rate"]["low"] < 0.5 < always_a["win_rate"]["high"]
    assert report["agreement"][0]["exact"]["value"] == 0  # always A and always B never name one winner
    records = read_jsonl(run / "eval-cot" / "vs-other" / "always-a" / "samples.jsonl")
    assert all(r["winner"] == ("run" if r["run_position"] == "A" else "other") for r in records)


def test_compare_maps_positions_back_to_the_runs(tmp_path, run_cli):
    run, other = _compare_runs(tmp_path, 12, marked=True)
    with ScriptedServer(judge_responder(), models=["marker"]) as server:
        report = json.loads(_eval(run_cli, run, "--compare", other, "--base-url", server.base_url, "--model", "marker",
                                  "--json", "--seed", "3"))  # fmt: skip
        shown_first = [r for r in server.requests if "Answer A:\nReasoning" in r.text]
    [judge] = report["judges"]
    assert (judge["wins"], judge["ties"], judge["losses"], judge["pairs"]) == (10, 0, 0, 10)
    assert judge["win_rate"]["value"] == 1 and judge["win_rate"]["low"] > 0.69  # Wilson 10/10: 0.722
    assert 0 < judge["run_as_a"] < 10 and len(shown_first) == 10


def test_the_schema_alone_bounds_every_score(tmp_path, run_cli):
    run = write_run(tmp_path / "run", [(f"s{i}", f"Question {i}?") for i in range(10)])
    with ScriptedServer(schema_responder(seed=4), models=["any"]) as server:
        report = json.loads(_eval(run_cli, run, "--base-url", server.base_url, "--model", "any", "--json"))
    assert report["judges"][0]["samples"] + report["judges"][0]["rejected"] == 10
    for record in read_jsonl(run / "eval-cot" / "any" / "samples.jsonl"):
        assert all(record["scores"][c] in (1, 2, 3, 4, 5) for c in CRITERIA)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "m"], "give --base-url"),
        (["--model", "base_url=x"], "expected a model name or base_url=URL,model=NAME"),
        (["--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--policies", "nope"], "nope"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, run_cli, args, message):
    run = _graded_run(tmp_path)
    code, _, err = run_cli("eval", "cot", run, *args, "--no-progress")
    assert code == 2 and message in err and "Traceback" not in err


def test_a_run_without_its_recipe_needs_policies(tmp_path, run_cli):
    run = _graded_run(tmp_path)
    (run / "recipe.yaml").unlink()
    code, _, err = run_cli("eval", "cot", run, "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--no-progress")
    assert code == 2 and "recipe.yaml: policies: missing; pass --policies" in err


def test_a_damaged_run_recipe_is_one_line_naming_its_file_and_line(tmp_path, run_cli):
    """The run's recipe.yaml is read through the one YAML loader (aidsafe.config.yamlio), whose
    errors are `FILE:LINE: ...`, not a raw parser dump."""
    run = _graded_run(tmp_path)
    lines = (run / "recipe.yaml").read_text(encoding="utf-8").splitlines()
    lines.insert(1, "policies: [unclosed")  # line 2 opens a flow sequence that never closes
    (run / "recipe.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, _, err = run_cli("eval", "cot", run, "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--no-progress")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert re.match(rf"error: {re.escape(str(run / 'recipe.yaml'))}:\d+: YAML syntax error: ", err.strip()), err


def test_rejected_samples_are_kept_with_reasons_and_retried_alone(tmp_path, run_cli):
    from aidsafe.testing.server import responder_by_schema_name
    from tests.eval.cot_helpers import grade

    run = _graded_run(tmp_path)
    lines = (run / "samples.jsonl").read_text().splitlines()
    flaky = [line.replace("Question", "[flaky] Question") for line in lines[2:]]
    (run / "samples.jsonl").write_text("\n".join(lines[:2] + flaky) + "\n")

    def out_of_range(request):  # a judge without guided decoding: 7 is outside the enum, re-asked, rejected
        reply = grade(request)
        flaky = any("[flaky]" in str(m.get("content")) for m in request["messages"])
        return {**reply, "coherence": 7} if flaky else reply

    args = ["--model", "judge-a", "--json"]
    with ScriptedServer(responder_by_schema_name({"CotScores": out_of_range}), models=["judge-a"]) as server:
        first = json.loads(_eval(run_cli, run, "--base-url", server.base_url, *args))
    assert (first["judges"][0]["samples"], first["judges"][0]["rejected"]) == (2, 2)
    rejected = read_jsonl(run / "eval-cot" / "judge-a" / "rejected.jsonl")
    assert sorted(r["id"] for r in rejected) == ["s2", "s3"] and {r["reason"] for r in rejected} == {"invalid_output"}
    assert first["judges"][0]["criteria"]["coherence"]["value"] == 3  # s0 and s1: 4 and 2
    with ScriptedServer(judge_responder(), models=["judge-a"]) as server:
        second = json.loads(_eval(run_cli, run, "--base-url", server.base_url, *args, "--retry-rejected"))
        asked = [r for r in server.requests if "[scores=" in r.text]
        assert calls(server, "CotScores") == 2 and all("[flaky]" in r.text for r in asked)
    assert (second["judges"][0]["samples"], second["judges"][0]["rejected"]) == (4, 0)
    assert second["judges"][0]["criteria"]["coherence"]["value"] == 3
