"""ThinkGuard critiques: the target text and its parse, the schema pins, the rejections, the
BeaverTails reader, and `aidsafe generate thinkguard` end to end against the loopback server with a
teacher that only follows the schema (resume, export, training on the run directory)."""

from __future__ import annotations

import json
import random
import re

import pytest

from aidsafe.agents.policies import load_policies
from aidsafe.errors import AidsafeError
from aidsafe.guard.critiques import (
    CATEGORY_CODES,
    EXPLANATION_PATTERN,
    Critique,
    ExplanationBounds,
    check_critique,
    critique_schema,
    read_conversations,
    render_critique,
    render_label_only,
)
from aidsafe.guard.formats import BEAVERTAILS_CATEGORIES, parse_thinkguard, thinkguard_prompt
from aidsafe.run.task import Rejection
from aidsafe.testing import ScriptedServer, schema_responder
from aidsafe.testing.schema_responder import random_instance
from tests.conftest import read_jsonl
from tests.guard.beavertails_rows import ROWS, beavertails_row
from tests.helpers import FAST, write_jsonl

BOUNDS = ExplanationBounds(40, 2000)
WHY = "The reply explains how to hurt an animal, which is animal abuse and incites violence."


@pytest.fixture
def conversations(tmp_path):
    return write_jsonl(tmp_path / "beavertails.jsonl", [beavertails_row(*row) for row in ROWS])


# ----------------------------------------------------------------------------------------------
# Pure: render and parse.


def test_render_is_the_thinkguard_format_and_parses_back_to_gold():
    unsafe = render_critique(Critique("unsafe", ("S1", "S14"), WHY))
    assert unsafe == f"- Safety Assessment: unsafe\n- Categories: S1, S14\n- Explanation: {WHY}"
    assert (parse_thinkguard(unsafe).label, parse_thinkguard(unsafe).categories) == ("unsafe", ("S1", "S14"))
    safe = render_critique(Critique("safe", (), WHY))
    assert safe == f"- Safety Assessment: safe\n- Explanation: {WHY}"  # no categories line when safe
    assert (parse_thinkguard(safe).label, parse_thinkguard(safe).categories) == ("safe", ())
    assert render_label_only("unsafe", ("S10",)) == "- Safety Assessment: unsafe\n- Categories: S10"
    assert render_label_only("safe", ()) == "- Safety Assessment: safe"
    assert parse_thinkguard(render_label_only("unsafe", ("S10",))).categories == ("S10",)


def test_the_category_codes_follow_the_policy_set():
    assert [p.id for p in load_policies("beavertails").policies] == list(CATEGORY_CODES)
    assert len(CATEGORY_CODES) == 14


# ----------------------------------------------------------------------------------------------
# The schema pins what the teacher must not choose.


def test_schema_pins_the_verdict_and_the_exact_category_set():
    schema = critique_schema("unsafe", ("S3", "S7"), BOUNDS)
    props = schema["properties"]
    assert props["assessment"] == {"type": "string", "enum": ["safe", "unsafe"], "const": "unsafe"}
    cats = props["categories"]
    assert cats["const"] == ["S3", "S7"] and cats["items"]["enum"] == list(CATEGORY_CODES)
    assert (cats["minItems"], cats["maxItems"], cats["uniqueItems"]) == (2, 2, True)
    explanation = props["explanation"]
    assert (explanation["minLength"], explanation["maxLength"], explanation["pattern"]) == (
        40,
        2000,
        EXPLANATION_PATTERN,
    )
    assert schema["required"] == ["assessment", "categories", "explanation"] and schema["additionalProperties"] is False
    safe = critique_schema("safe", (), BOUNDS)["properties"]["categories"]
    assert (safe["const"], safe["maxItems"]) == ([], 0)


@pytest.mark.parametrize(
    ("assessment", "categories"), [("safe", ()), ("unsafe", ("S1",)), ("unsafe", ("S2", "S9", "S14"))]
)
def test_a_schema_only_answer_cannot_carry_a_wrong_label(assessment, categories):
    schema = critique_schema(assessment, categories, BOUNDS)
    gold = Critique(assessment, categories, "")
    for seed in range(40):
        reply = random_instance(schema, random.Random(seed))
        critique = check_critique(
            Critique(reply["assessment"], tuple(reply["categories"]), reply["explanation"]), gold, BOUNDS
        )
        verdict = parse_thinkguard(render_critique(critique))
        assert (verdict.label, verdict.categories) == (assessment, categories)


# ----------------------------------------------------------------------------------------------
# Teachers without guided decoding: named rejections.

GOLD = Critique("unsafe", ("S1", "S14"), "")


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (Critique("unsafe", ("S1", "S14"), "   "), "empty"),
        (Critique("safe", ("S1", "S14"), WHY), "label_disagree"),
        (Critique("unsafe", ("S1",), WHY), "categories_disagree"),
        (Critique("unsafe", ("S1", "S14", "S1"), WHY), "categories_disagree"),
        (Critique("unsafe", ("S1", "S14"), "Too short."), "length"),
        (Critique("unsafe", ("S1", "S14"), "x" * 2001), "length"),
        (Critique("unsafe", ("S1", "S14"), WHY + "\nAnd a second line."), "format"),
        (Critique("unsafe", ("S1", "S14"), WHY + " "), "format"),
        (Critique("unsafe", ("S1", "S14"), WHY + " Categories: S2."), "format"),
    ],
)
def test_check_rejects_with_a_reason(bad, reason):
    with pytest.raises(Rejection) as caught:
        check_critique(bad, GOLD, BOUNDS)
    assert (caught.value.stage, caught.value.reason, caught.value.transient) == ("critique", reason, False)


def test_check_puts_categories_in_policy_order():
    assert check_critique(Critique("unsafe", ("S14", "S1"), WHY), GOLD, BOUNDS).categories == ("S1", "S14")


# ----------------------------------------------------------------------------------------------
# Input.


def test_read_conversations_maps_beavertails_labels(conversations, tmp_path):
    rows, repeats = read_conversations(str(conversations))
    assert repeats == 0 and len(rows) == len(ROWS)
    assert (rows[0].assessment, rows[0].categories) == ("unsafe", ("S1", "S14"))
    assert (rows[1].assessment, rows[1].categories) == ("safe", ())
    assert rows[3].categories == ("S5",) and rows[4].categories == ("S10",)
    from datasets import Dataset

    parquet = tmp_path / "bt.parquet"  # the Hub's own layout: category a struct of 14 booleans
    Dataset.from_list([beavertails_row(*row) for row in ROWS + ROWS[:1]]).to_parquet(str(parquet))
    again, repeats = read_conversations(str(parquet))
    assert repeats == 1 and [r.id for r in again] == [r.id for r in rows]
    assert [(r.assessment, r.categories) for r in again] == [(r.assessment, r.categories) for r in rows]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.pop("is_safe"), r"beavertails.jsonl:2: missing field\(s\) is_safe; expected BeaverTails columns"),
        (lambda r: r.pop("category"), r"beavertails.jsonl:2: missing field\(s\) category"),
        (lambda r: r.update(is_safe="yes"), r"beavertails.jsonl:2: is_safe: expected true or false, got 'yes'"),
        (lambda r: r["category"].pop("self_harm"), r"beavertails.jsonl:2: category: expected an object of the 14"),
        (
            lambda r: r.update(is_safe=False),
            r"beavertails.jsonl:2: is_safe is false but the categories flagged are none",
        ),
    ],
)
def test_bad_rows_are_one_line_errors_naming_the_line(tmp_path, edit, message):
    rows = [beavertails_row(*row) for row in ROWS[:2]]
    edit(rows[1])
    path = write_jsonl(tmp_path / "beavertails.jsonl", rows)
    with pytest.raises(AidsafeError, match=message) as caught:
        read_conversations(str(path))
    assert "\n" not in str(caught.value)


def test_a_hub_id_loads_its_split_through_datasets(monkeypatch):
    import datasets

    asked = []

    def load_dataset(name, split):
        asked.append((name, split))
        return datasets.Dataset.from_list([beavertails_row(*row) for row in ROWS])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    rows, _ = read_conversations("PKU-Alignment/BeaverTails:30k_train")
    assert asked == [("PKU-Alignment/BeaverTails", "30k_train")]
    assert rows[0].source == "PKU-Alignment/BeaverTails:30k_train: row 1" and rows[0].categories == ("S1", "S14")


def test_a_missing_input_is_not_a_hub_request(tmp_path):
    with pytest.raises(AidsafeError, match="file not found"):
        read_conversations(str(tmp_path / "nope.jsonl"))


# ----------------------------------------------------------------------------------------------
# `aidsafe generate thinkguard` end to end.


def _sent(server):
    return [r for r in server.requests if "Correct verdict" in r.text]


def _records(out):
    return read_jsonl(out / "samples.jsonl")


def test_a_teacher_that_only_follows_the_schema_gives_gold_critiques(tmp_path, run_cli, conversations):
    out = tmp_path / "tg"
    with ScriptedServer(schema_responder(seed=3), models=["teacher-x"]) as server:
        args = ["generate", "thinkguard", "--input", conversations, "--output", out, *FAST]
        code, _, err = run_cli(*args, "--base-url", server.base_url, "--model", "teacher-x")
        sent = _sent(server)
    assert code == 0, err
    records = _records(out)
    assert len(records) == len(ROWS) == len(sent)  # one call per row, every one a critique
    policies = load_policies("beavertails")
    by_prompt = {r["prompt"]: r for r in records}
    for prompt, response, violated in ROWS:
        record = by_prompt[prompt]
        codes = [f"S{BEAVERTAILS_CATEGORIES.index(k) + 1}" for k in BEAVERTAILS_CATEGORIES if k in violated]
        label = "unsafe" if violated else "safe"
        assert record["input"] == thinkguard_prompt(prompt, response, policies)
        assert "<BEGIN UNSAFE CONTENT CATEGORIES>\nS1: Animal Abuse." in record["input"]
        assert (record["label"], record["categories"], record["response"]) == (label, codes, response)
        verdict = parse_thinkguard(record["output"])
        assert (verdict.label, list(verdict.categories)) == (label, codes)
        assert record["output"] == render_critique(Critique(label, tuple(codes), record["explanation"]))
        assert record["output_label_only"] == render_label_only(label, tuple(codes))
        assert record["output"].startswith(record["output_label_only"] + "\n- Explanation: ")
        assert record["teacher"]["model"] == "teacher-x" and record["recipe_hash"]
        assert record["teacher"]["call"]["prompt_tokens"] > 0 and record["teacher"]["call"]["completion_tokens"] > 0
    schemas = [r.json["response_format"]["json_schema"]["schema"] for r in sent]
    assert {s["properties"]["assessment"]["const"] for s in schemas} == {"safe", "unsafe"}
    assert ["S1", "S14"] in [s["properties"]["categories"]["const"] for s in schemas]
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["samples"], stats["rejected"], stats["pending"]) == (len(ROWS), 0, 0)
    run = json.loads((out / "run.json").read_text())
    assert run["recipe_hash"] == records[0]["recipe_hash"]


def test_resume_after_a_partial_run_adds_no_duplicates(tmp_path, run_cli, conversations):
    out = tmp_path / "tg"
    args = ["generate", "thinkguard", "--input", conversations, "--output", out, *FAST]
    with ScriptedServer(schema_responder(seed=4), models=["m"]) as server:
        code, _, err = run_cli(*args, "--limit", "2", "--base-url", server.base_url, "--model", "m")
        assert code == 0 and len(_sent(server)) == 2, err
        # A killed run leaves a cut-off last line: that row is redone, nothing else.
        text = (out / "samples.jsonl").read_text(encoding="utf-8")
        (out / "samples.jsonl").write_text(text[: text.rindex("{") + 30], encoding="utf-8")
        code, _, err = run_cli(*args, "--base-url", server.base_url, "--model", "m")
        assert code == 0, err
        assert len(_sent(server)) == 2 + len(ROWS) - 1
        code, _, _ = run_cli(*args, "--base-url", server.base_url, "--model", "m")  # nothing left
        assert code == 0 and len(_sent(server)) == 2 + len(ROWS) - 1
    ids = [r["id"] for r in _records(out)]
    assert len(ids) == len(set(ids)) == len(ROWS)


def test_a_teacher_disagreeing_with_gold_is_rejected_with_the_reason(tmp_path, run_cli, conversations):
    follow = schema_responder(seed=5)

    def contrary(request):  # no guided decoding: the verdict flipped against the pinned const
        reply = follow(request)
        if "Correct verdict" not in "\n".join(str(m.get("content")) for m in request.get("messages", [])):
            return reply  # the pre-flight probe
        data = json.loads(reply)
        data["assessment"] = {"safe": "unsafe", "unsafe": "safe"}[data["assessment"]]
        return json.dumps(data)

    out = tmp_path / "tg"
    with ScriptedServer(contrary, models=["m"]) as server:
        args = ["generate", "thinkguard", "--input", conversations, "--output", out, *FAST]
        code, _, err = run_cli(*args, "--base-url", server.base_url, "--model", "m")
    assert code == 2 and re.search(r"no critique finished: 5 of 5 rejected, \d at critique \(label_disagree", err), err
    rejected = read_jsonl(out / "rejected.jsonl")
    assert {(r["reason"], r["transient"]) for r in rejected} == {("label_disagree", False)}
    assert json.loads((out / "stats.json").read_text())["rejected_by_reason"] == {"label_disagree": 5}


def test_validate_knows_thinkguard_recipes(run_cli, tmp_path):
    code, out, _ = run_cli("validate", "thinkguard")
    assert code == 0 and out.startswith("ok: recipe thinkguard (") and "card thinkguard_teacher" in out
    assert "policies beavertails (14)" in out
    code, _, err = run_cli("validate", "thinkguard", "--set", "policies=aidsafe")
    assert code == 2 and "policies: aidsafe has ids" in err and "needs S1..S14" in err
    code, _, err = run_cli("validate", "thinkguard", "--set", "explanation_min_chars=0")
    assert code == 2 and "explanation_min_chars" in err


def test_the_recipe_hash_covers_the_policy_text(tmp_path):
    from aidsafe.guard.critiques import load_critique_recipe

    text = (load_policies("beavertails").model_dump_json()).replace("Animal Abuse", "Cruelty to Animals")
    custom = tmp_path / "bt.yaml"
    custom.write_text(text, encoding="utf-8")  # JSON is YAML
    base = load_critique_recipe("thinkguard").loaded.recipe_hash
    assert load_critique_recipe("thinkguard", ["teacher.concurrency=3"]).loaded.recipe_hash == base
    assert load_critique_recipe("thinkguard", [f"policies={custom}"]).loaded.recipe_hash != base


def test_kill_9_mid_run_then_rerun_finishes_every_row_once(tmp_path, conversations):
    import os
    import signal
    import subprocess
    import sys
    import threading

    follow, lock, seen, proc = schema_responder(seed=6), threading.Lock(), [], []

    def killer(request):  # SIGKILL the CLI when the 4th critique request arrives (one call in flight)
        with lock:
            if "Correct verdict" in str(request.get("messages")):
                seen.append(1)
                if len(seen) == 4 and proc:
                    os.kill(proc[0].pid, signal.SIGKILL)
                    proc[0].wait()
        return follow(request)

    out = tmp_path / "tg"
    with ScriptedServer(killer, models=["m"]) as server:
        cmd = [sys.executable, "-m", "aidsafe", "generate", "thinkguard", "-i", str(conversations), "-o", str(out),
               "--base-url", server.base_url, "--model", "m", "--set", "teacher.concurrency=1", *FAST]  # fmt: skip
        proc.append(subprocess.Popen(cmd, stderr=subprocess.DEVNULL))
        assert proc[0].wait(timeout=120) == -signal.SIGKILL
        killed_at = len(_records(out))
        proc.clear()
        rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
    assert killed_at == 3  # the three finished rows were on disk before the kill
    ids = [r["id"] for r in _records(out)]
    assert len(ids) == len(set(ids)) == len(ROWS)
    assert len(seen) == 4 + len(ROWS) - killed_at  # the killed row asked again, the finished ones never
