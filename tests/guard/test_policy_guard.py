"""`aidsafe generate policy-guard` end to end: the real CLI and HTTP client against the loopback
server (its default replies) and against a teacher that only follows the schema; resume after a
kill; export in the three target modes; the recipe through `validate`; the run as SFT data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest

from aidsafe.agents.policies import load_policies
from aidsafe.guard.policy_bench import is_heldout
from aidsafe.guard.policy_format import GENERIC_INSTRUCTION, parse_answer, render_policy_text, target_messages
from aidsafe.testing import Fault, ScriptedServer, loopback_responder, schema_responder
from tests.conftest import REPO, read_jsonl
from tests.helpers import FAST

EXAMPLE = REPO / "examples" / "policy-guard.jsonl"
ROWS = [json.loads(line) for line in EXAMPLE.read_text(encoding="utf-8").splitlines()]
BASE = ("--model", "demo")


def _schema_name(request) -> str | None:
    return ((request.json.get("response_format") or {}).get("json_schema") or {}).get("name")


def _asked(requests, name: str) -> list:
    return [r for r in requests if _schema_name(r) == name]


@pytest.fixture(scope="module")
def loopback_run(tmp_path_factory):
    """The example rows through the loopback teacher, and what the server was asked."""
    from aidsafe.cli import main

    out = tmp_path_factory.mktemp("policy-guard") / "run"
    with ScriptedServer(loopback_responder(), models=["demo"]) as server:
        main(["generate", "policy-guard", "-i", str(EXAMPLE), "-o", str(out), "--base-url", server.base_url, *BASE,
              *FAST])  # fmt: skip
        asked = list(server.requests)
        main(["generate", "policy-guard", "-i", str(EXAMPLE), "-o", str(out), "--base-url", server.base_url, *BASE,
              *FAST])  # fmt: skip
        again = server.requests[len(asked) :]
    return out, asked, again


def test_twenty_rows_finish_with_counterfactual_variants(loopback_run):
    out, asked, again = loopback_run
    records = read_jsonl(out / "samples.jsonl")
    originals = [r for r in records if r["policy"]["variant"] is None]
    variants = [r for r in records if r["policy"]["variant"] is not None]
    assert len(originals) >= 0.95 * len(ROWS) and len(originals) == len(ROWS) == 20
    assert variants and read_jsonl(out / "rejected.jsonl") == []
    assert again == []  # a rerun asks nothing, in either pass
    base = load_policies("aidsafe")
    by_id = {row["id"]: row for row in ROWS}
    for record in originals:
        row = by_id[record["id"]]
        assert (record["source_id"], record["prompt"], record["response"]) == (row["id"], row["prompt"],
                                                                                row.get("response"))  # fmt: skip
        assert record["policy"] == {"set_id": "aidsafe", "version": "1.0", "rule_ids": base.ids,
                                    "text": render_policy_text(base), "variant": None}  # fmt: skip
        assert record["gold"] == row.get("gold") and (record["verdict"] == row["gold"] if "gold" in row else True)
        assert record["label_source"] == ("gold" if "gold" in row else "judges_agree")
        assert [c["role"] for c in record["metadata"]["calls"]] == (["judge"] if "gold" in row else
                                                                     ["judge", "second_judge"])  # fmt: skip
        assert (record["rules"] == []) == (record["verdict"] == "allowed")
        assert set(record["rules"]) <= set(base.ids) and record["reasoning"] and record["rationale"]
    for record in variants:
        variant = record["policy"]["variant"]
        assert record["id"] == f"{record['source_id']}~cf-{variant['edit']}-{variant['rule']}"
        assert record["gold"] is None and record["label_source"] == "judges_agree" and variant["note"]
        assert set(record["rules"]) <= set(record["policy"]["rule_ids"])
        roles = [c["role"] for c in record["metadata"]["calls"]]
        assert roles == (
            ["judge", "second_judge"] if variant["edit"] == "drop" else ["editor", "judge", "second_judge"]
        )
        if variant["edit"] == "drop":
            assert variant["rule"] not in record["policy"]["rule_ids"]
        elif variant["edit"] == "add":
            assert record["policy"]["rule_ids"] == [*base.ids, "P6"] and variant["rule"] == "P6"
            assert record["verdict"] == "violation" and record["rules"] == ["P6"]  # the stand-in breaks its own rule
        assert record["policy"]["text"] != render_policy_text(base)
    # What the judges were asked: the policy in the system message, its ids the schema's enum.
    judged = _asked(asked, "PolicyJudgement")
    assert len(judged) == sum(c["role"] != "editor" for r in records for c in r["metadata"]["calls"])
    texts = {r["policy"]["text"] for r in records}
    for request in judged:
        system, user = (m["content"] for m in request.json["messages"])
        schema = request.json["response_format"]["json_schema"]["schema"]
        branches = schema.get("anyOf") or [schema]
        text = next(t for t in texts if system.rstrip().endswith(t))  # one of the texts a record holds
        ids = [line.split("]")[0][4:] for line in text.splitlines() if line.startswith("## [")]
        assert all(b["properties"]["rules"]["items"]["enum"] == ids for b in branches)
        gold = user.split("Verdict: ", 1)[1].split("\n", 1)[0]
        pinned = [b["properties"]["verdict"]["enum"] for b in branches]
        assert pinned == ([["allowed"], ["violation"]] if gold.startswith("not given") else [[gold]])
    stats = json.loads((out / "stats.json").read_text())
    section = stats["policy_guard"]
    assert (stats["rows"], stats["variants_planned"], stats["samples"], stats["pending"]) == (
        20, len(variants), len(records), 0
    )  # fmt: skip
    assert stats["inputs"] == 20 + len(variants)
    assert section["originals"]["records"] == 20 and section["variants"]["records"] == len(variants)
    assert sum(section["variants"]["by_edit"].values()) == len(variants)
    assert section["originals"]["label_sources"] == {"gold": 10, "judges_agree": 10}
    assert sum(section["originals"]["verdicts"].values()) == 20


def test_a_teacher_knowing_only_the_schema_ends_every_row_as_a_record_or_a_counted_reason(tmp_path, run_cli):
    """Its judges disagree at random; one row's judges name a rule outside the set (no guided
    decoding), one row's replies never parse: none is a crash or an `error`."""
    rows = [*ROWS, {"id": "outside", "prompt": "Which rule is this? [outside]"},
            {"id": "garbled", "prompt": "Say something. [garbled]"}]  # fmt: skip
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    follow = schema_responder(seed=11)

    def teacher(request):
        text = json.dumps(request.get("messages"))
        reply = follow(request)
        if "[outside]" in text and "PolicyJudgement" in json.dumps(request.get("response_format")):
            return json.dumps({**json.loads(reply), "verdict": "violation", "rules": ["P9"]})
        return reply

    def garble(index, request):
        return Fault.MALFORMED_JSON if "[garbled]" in json.dumps(request.get("messages")) else None

    out = tmp_path / "run"
    with ScriptedServer(teacher, models=["m"], fault_plan=garble) as server:
        code, said, err = run_cli("generate", "policy-guard", "-i", path, "-o", out, "--base-url", server.base_url,
                                  "--model", "m", *FAST)  # fmt: skip
    assert code == 0, err
    records, rejected = read_jsonl(out / "samples.jsonl"), read_jsonl(out / "rejected.jsonl")
    reasons = {r["id"]: r["reason"] for r in rejected}
    assert {r["id"] for r in records if r["policy"]["variant"] is None} | {k for k in reasons if "~" not in k} == {
        r["id"] for r in rows
    }  # every row: a record or a reason
    assert reasons["outside"] == "unknown_rule" and reasons["garbled"] == "invalid_output"
    assert "judges_disagree" in reasons.values() and "error" not in reasons.values()
    assert set(reasons.values()) <= {"judges_disagree", "unknown_rule", "invalid_output"}
    assert all(r["label_source"] == "gold" for r in records if r["policy"]["variant"] is None)  # pinned: kept
    stats = json.loads((out / "stats.json").read_text())
    assert stats["pending"] == 0 and stats["samples"] + stats["rejected"] == stats["inputs"]
    assert stats["rejected_by_reason"]["judges_disagree"] == list(reasons.values()).count("judges_disagree")


def test_resume_after_a_limit_and_after_a_kill_in_the_variant_pass(tmp_path, run_cli):
    out = tmp_path / "run"
    base = ["generate", "policy-guard", "-i", str(EXAMPLE), "-o", str(out), *BASE]
    lock, edits, proc = threading.Lock(), [], []
    loopback = loopback_responder()

    def killer(request):  # SIGKILL the CLI when the 2nd editor request of the full run arrives
        with lock:
            if "PolicyEdit" in json.dumps(request.get("response_format")) and proc:
                edits.append(1)
                if len(edits) == 2:
                    os.kill(proc[0].pid, signal.SIGKILL)
                    proc[0].wait()
        return loopback(request)

    with ScriptedServer(killer, models=["demo"]) as server:
        code, _, err = run_cli(*base, "--limit", "5", "--base-url", server.base_url, *FAST)
        assert code == 0, err
        first = read_jsonl(out / "samples.jsonl")
        assert {r["source_id"] for r in first} == {row["id"] for row in ROWS[:5]}
        cmd = [sys.executable, "-m", "aidsafe", *base, "--base-url", server.base_url, "--set",
               "teacher.concurrency=1", *FAST]  # fmt: skip
        proc.append(subprocess.Popen(cmd, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)}))
        assert proc[0].wait(timeout=120) == -signal.SIGKILL
        proc.clear()
        killed = read_jsonl(out / "samples.jsonl")
        assert len({r["source_id"] for r in killed if r["policy"]["variant"] is None}) == 20  # pass 1 was done
        before = len(server.requests)
        rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                               env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
        assert rerun.returncode == 0, rerun.stderr
        redone = [r for r in server.requests[before:] if _schema_name(r) in ("PolicyJudgement", "PolicyEdit")]
    records = read_jsonl(out / "samples.jsonl")
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) and {r["source_id"] for r in records} == {row["id"] for row in ROWS}
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["pending"], stats["rejected"], stats["samples"]) == (0, 0, len(records))
    # The rerun asked only for the variants the kill left undone, each once.
    undone = [r for r in records if r["id"] not in {k["id"] for k in killed}]
    assert undone and all(r["policy"]["variant"] is not None for r in undone)
    assert len(redone) == sum(len(r["metadata"]["calls"]) for r in undone)


@pytest.mark.parametrize("test_size", ["0", "0.3"])
def test_export_writes_the_three_targets(loopback_run, tmp_path, run_cli, test_size):
    run = loopback_run[0]
    out = tmp_path / "data"
    code, _, err = run_cli("export", run, "-o", out, "-f", "policy-guard", "-f", "policy-guard-rationale", "-f",
                           "policy-guard-verdict", "--test-size", test_size)  # fmt: skip
    assert code == 0, err
    import datasets

    records = {r["id"]: r for r in read_jsonl(run / "samples.jsonl")}
    sides = {}
    for config, target in (("policy-guard", "full"), ("policy-guard-rationale", "rationale"),
                           ("policy-guard-verdict", "verdict")):  # fmt: skip
        rows = datasets.load_dataset(str(out), config, split=None)
        seen = [row for split in rows.values() for row in split]
        assert sorted(row["id"] for row in seen) == sorted(records)
        for split, part in rows.items():
            for row in part:
                record = records[row["id"]]
                system, user, assistant = row["messages"]
                assert system["content"] == f"{GENERIC_INSTRUCTION}\n\n{record['policy']['text']}"
                assert user["content"].startswith("User request:\n" + record["prompt"])
                answer = parse_answer(assistant["content"], expect_reasoning=target != "verdict")
                assert answer.well_formed and (answer.verdict, list(answer.rules)) == (record["verdict"],
                                                                                       record["rules"])  # fmt: skip
                assert answer.reasoning == {"full": record["reasoning"], "rationale": record["rationale"],
                                            "verdict": None}[target]  # fmt: skip
                assert (row["source_id"], row["verdict"], row["rules"], row["gold"], row["rule_ids"]) == (
                    record["source_id"], record["verdict"], record["rules"], record["gold"],
                    record["policy"]["rule_ids"],
                )  # fmt: skip
                assert (row["variant"] is None) == (record["policy"]["variant"] is None)
                sides.setdefault(record["source_id"], set()).add(split)
    assert all(len(s) == 1 for s in sides.values())  # a row and its variants: one side
    tested = {source for source, s in sides.items() if s == {"test"}}
    # The share `eval guard RUN` scores is always test, never train (--test-size 0 too).
    assert {r["source_id"] for r in records.values() if is_heldout(r["source_id"])} == {"trebuchet"}
    assert tested == {"trebuchet"} if test_size == "0" else {"trebuchet"} < tested < set(sides)
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "counterfactual variants by edit" in card and "by a hash of each record's `source_id`" in card
    assert "held-out share" in card and "are always in the test split" in card


def test_the_run_is_sft_data_for_the_recipes_target_without_its_held_out_share(loopback_run):
    from aidsafe.guard import harmony
    from aidsafe.train.data import load_train_data, policy_guard_row
    from aidsafe.train.recipe import TrainRecipe

    run = loopback_run[0]
    records = read_jsonl(run / "samples.jsonl")
    held = [r for r in records if is_heldout(r["source_id"])]
    kept = [r for r in records if not is_heldout(r["source_id"])]
    assert {r["source_id"] for r in held} == {"trebuchet"} and len(held) >= 1 and kept  # the example's one
    dataset = load_train_data(str(run), TrainRecipe(mode="sft"))
    assert len(dataset) == len(kept)
    record = kept[0]
    assert dataset[0]["prompt"][0]["content"].endswith(record["policy"]["text"])
    assert dataset[0]["completion"][0]["content"].startswith(f"<think>\n{record['reasoning']}")
    assert all(policy_guard_row(r, TrainRecipe(mode="sft")) is None for r in held)
    # The training recipe's target and rendering (fields the training recipe adds; read by name).
    verdict_only = policy_guard_row(record, SimpleNamespace(target="verdict", rendering="generic"))
    assert verdict_only["messages"][-1]["content"].startswith("<result>\nverdict: ")
    assert verdict_only["messages"] == target_messages(record, "verdict")
    rationale = policy_guard_row(record, SimpleNamespace(target="rationale", rendering="harmony"))
    assert rationale["messages"] == harmony.target_messages(record, "rationale")
    assert rationale["messages"][0]["content"].startswith(harmony.HARMONY_HEADER)


def test_predict_and_eval_guard_score_the_runs_held_out_share(loopback_run, tmp_path, run_cli):
    """`predict guard --format policy --benchmark RUN` reads the run's held-out share (policy_bench),
    each record under the policy text it carries; `eval guard` scores it against the judged labels."""
    run = loopback_run[0]
    held = [r for r in read_jsonl(run / "samples.jsonl") if is_heldout(r["source_id"])]
    output = tmp_path / "preds.jsonl"
    with ScriptedServer(loopback_responder(), models=["guard-x"]) as server:
        code, _, err = run_cli("predict", "guard", "--format", "policy", "--benchmark", run, "--model", "guard-x",
                               "--output", output, "--no-progress", "--base-url", server.base_url)  # fmt: skip
        asked = [r.json["messages"] for r in server.requests if r.path.endswith("/chat/completions")]
    assert code == 0, err
    rows = read_jsonl(output)
    assert [(r["id"], r["gold"], r["gold_rules"], r["variant"]) for r in rows] == [
        (h["id"], h["verdict"], h["rules"], h["policy"]["variant"] is not None) for h in held
    ]
    assert [m[0]["content"] for m in asked] == [f"{GENERIC_INSTRUCTION}\n\n{h['policy']['text']}" for h in held]
    code, out, err = run_cli("eval", "guard", "--format", "policy", "--predictions", output, "--json")
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert report["parse_rate"]["value"] == 100.0 and report["accuracy"]["n"] == len(held)
    assert report["rule_f1"] is not None  # a run's rows give gold rule ids
    assert {r["variant"] for r in rows} == {False, True}  # the held-out row and its variant
    assert set(report["by_policy"]) == {"original", "counterfactual"}


def test_validate_and_the_one_line_errors(run_cli, tmp_path):
    code, out, err = run_cli("validate", REPO / "recipes" / "policy-guard.yaml")
    assert (
        code == 0 and out.startswith("ok: recipe policy-guard (") and "policies aidsafe v1.0 (5 rules, 10 cases)" in out
    )
    assert "judges policy_judge and policy_rule_check, editor policy_editor" in out, out
    for override, expected in [
        ("counterfactuals.share=2", "counterfactuals.share"),
        ("counterfactuals.edits=[drop, drop]", "an edit is listed twice"),
        ("agents.editor=nosuch", "nosuch: no such file and no built-in agents/guard"),
    ]:
        code, _, err = run_cli("validate", "policy-guard", "--set", override)
        assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err
    code, _, err = run_cli("generate", "thinkguard", "-i", EXAMPLE, "-o", tmp_path / "x", "--gold-field", "label")
    assert code == 2 and "--gold-field: only for policy-guard recipes" in err


def test_the_second_judge_may_be_another_model(tmp_path, run_cli):
    out = tmp_path / "run"
    second = "agents.second_judge={agent: policy_rule_check, model: checker}"
    with ScriptedServer(loopback_responder(), models=["demo", "checker"]) as server:
        code, _, err = run_cli("generate", "policy-guard", "-i", EXAMPLE, "-o", out, "--limit", "4", "--base-url",
                               server.base_url, *BASE, "--set", second, *FAST)  # fmt: skip
        judged = _asked(server.requests, "PolicyJudgement")
    assert code == 0, err
    by_card = {r.json["model"] for r in judged if "one rule at a time" in r.json["messages"][0]["content"]}
    assert by_card == {"checker"} and {r.json["model"] for r in judged} == {"demo", "checker"}
    calls = [c for r in read_jsonl(out / "samples.jsonl") for c in r["metadata"]["calls"]]
    assert {(c["role"], c["agent"], c["model"]) for c in calls if c["role"] != "editor"} == {
        ("judge", "policy_judge", "demo"), ("second_judge", "policy_rule_check", "checker")
    }  # fmt: skip
