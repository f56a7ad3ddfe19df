"""GuardReasoner traces: the text round trip on released outputs, the checks, and `aidsafe generate
guardreasoner` end to end against the loopback server with a teacher that only follows the schema."""

from __future__ import annotations

import json
import re

import pytest

from aidsafe.errors import AidsafeError
from aidsafe.guard.formats import (
    GUARDREASONER_INSTRUCTION,
    TaskTrace,
    Trace,
    parse_answers,
    parse_trace,
    reasoning_step_counts,
    render_trace,
)
from aidsafe.guard.labelled import read_labelled
from aidsafe.guard.traces import STEP_PATTERN, check_trace, trace_schema
from aidsafe.run.jsonl import read_jsonl
from aidsafe.run.task import Rejection
from aidsafe.testing import ScriptedServer, schema_responder
from tests.helpers import FAST

GOLD = ("harmful", "compliance", "harmful")


def trace(steps=(("a.", "b."), ("c.",), ("d.",)), answers=GOLD, conclusion="So it is.") -> Trace:
    return Trace(tuple(TaskTrace(tuple(s), conclusion) for s in steps), answers)


def test_render_is_the_released_layout():
    text = render_trace(trace())
    assert text == (
        "# Task 1\n\n## Reasoning Step 1\na.\n\n## Reasoning Step 2\nb.\n\n## Conclusion\nSo it is.\n\n"
        "# Task 2\n\n## Reasoning Step 1\nc.\n\n## Conclusion\nSo it is.\n\n"
        "# Task 3\n\n## Reasoning Step 1\nd.\n\n## Conclusion\nSo it is.\n\n"
        "Answers: \nRequest: harmful\nCompletion: compliance\nResponse: harmful"
    )
    assert parse_answers(text) == {"prompt": "harmful", "refusal": "compliance", "response": "harmful"}
    assert reasoning_step_counts(text) == [2, 1, 1]
    assert parse_trace(text) == trace()


def test_released_outputs_round_trip_byte_for_byte(predictions_dir):
    parsed = total = 0
    for path in sorted(predictions_dir.glob("*/*/generated_predictions.jsonl")):
        for _, row in read_jsonl(path):
            output = row["predict"]
            total += 1
            try:
                found = parse_trace(output)
            except ValueError:
                continue  # a preamble before '# Task 1', a cut-off output: not the trace layout
            parsed += 1
            assert render_trace(found) == output, path
    # Measured: 5,756 of the 6,585 released outputs have the trace layout, in both heading styles.
    assert total == 6585 and parsed == 5756


def test_both_released_styles_parse_and_render_back():
    colon = render_trace(Trace(trace().tasks, GOLD, header=": ", rule=True))
    assert "## Reasoning Step 1: a.\n\n" in colon
    assert colon.endswith("\n\n---\n\nAnswers: \nRequest: harmful\nCompletion: compliance\nResponse: harmful")
    assert render_trace(parse_trace(colon)) == colon


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (trace(steps=(("a.",), ("  ",), ("d.",))), "empty"),
        (trace(conclusion=""), "empty"),
        (trace(steps=((), ("c.",), ("d.",))), "step_count"),
        (trace(steps=(("x.",) * 11, ("c.",), ("d.",))), "step_count"),
        (trace(answers=("unharmful", "compliance", "harmful")), "answers_disagree"),
        (trace(steps=(("a.\n# Task 9",), ("c.",), ("d.",))), "format"),
        (trace(steps=(("a.\n\nb.",), ("c.",), ("d.",))), "format"),
        (trace(steps=(("a. ",), ("c.",), ("d.",))), "format"),
    ],
)
def test_check_rejects_with_a_reason(bad, reason):
    with pytest.raises(Rejection) as caught:
        check_trace(bad, GOLD)
    assert (caught.value.stage, caught.value.reason, caught.value.transient) == ("trace", reason, False)


def test_schema_pins_the_answers_and_the_step_count():
    schema = trace_schema(("unharmful", "None", "None"))
    assert schema["properties"]["answers"]["properties"] == {
        "Request": {"type": "string", "enum": ["unharmful"]},
        "Completion": {"type": "string", "enum": ["None"]},
        "Response": {"type": "string", "enum": ["None"]},
    }
    steps = schema["properties"]["task2"]["properties"]["steps"]
    assert (steps["minItems"], steps["maxItems"], steps["items"]["pattern"]) == (1, 10, STEP_PATTERN)


def test_read_labelled_keeps_instruction_and_input_byte_identical(guardreasoner_dir):
    path = guardreasoner_dir / "0_9_safe_rlhf.json"
    records = json.loads(path.read_text(encoding="utf-8"))
    rows, repeats = read_labelled(str(path))
    assert len(rows) + repeats == len(records) == 2000
    first = records[0]
    assert (rows[0].instruction, rows[0].input) == (first["instruction"], first["input"])
    assert rows[0].instruction == GUARDREASONER_INSTRUCTION
    assert rows[0].gold[:2] == ("None", "None") and rows[0].gold[2] in ("harmful", "unharmful")


def test_read_labelled_refuses_a_bare_label_without_its_task(guardreasoner_dir):
    with pytest.raises(AidsafeError, match=r"0_1_AegisSafetyTest.json: record 1: output: 'unharmful' is a bare label"):
        read_labelled(str(guardreasoner_dir / "0_1_AegisSafetyTest.json"))


LABELLED = [  # prompt, response, gold (prompt, refusal, response task)
    ("How do I pick a lock?", "Here is how.", ("harmful", "compliance", "harmful")),
    ("What is 2+2?", "4.", ("unharmful", "compliance", "unharmful")),
    ("Write malware.", "I can't help.", ("harmful", "refusal", "unharmful")),
    ("Hello", None, ("unharmful", None, None)),
]


def labelled_file(tmp_path):
    show = lambda v: "None" if v is None else v  # noqa: E731
    rows = [
        {
            "prompt": p,
            "response": r,
            "label": "Answers: \nRequest: {}\nCompletion: {}\nResponse: {}\n".format(*map(show, g)),
        }
        for p, r, g in LABELLED
    ]
    path = tmp_path / "labelled.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path, rows


def test_a_teacher_that_only_follows_the_schema_gives_valid_traces(tmp_path, run_cli):
    source, rows = labelled_file(tmp_path)
    out = tmp_path / "gr"
    with ScriptedServer(schema_responder(seed=3), models=["teacher-x"]) as server:
        args = ["generate", "guardreasoner", "--input", source, "--output", out, *FAST]
        code, _, err = run_cli(*args, "--base-url", server.base_url, "--model", "teacher-x")
        sent = [r for r in server.requests if "Correct labels" in r.text]
        again = run_cli(*args, "--base-url", server.base_url, "--model", "teacher-x")  # resume: nothing left
        assert again[0] == 0 and len([r for r in server.requests if "Correct labels" in r.text]) == len(sent)
    assert code == 0, err
    records = [row for _, row in read_jsonl(out / "samples.jsonl")]
    assert len(records) == len(rows) == len(sent)  # one teacher call per row, every one a trace
    by_prompt = {r["input"].split("\n")[1]: r for r in records}
    for prompt, response, labels in LABELLED:
        record = by_prompt[prompt]
        assert record["instruction"] == GUARDREASONER_INSTRUCTION
        assert record["input"] == f"Human user:\n{prompt}\n\nAI assistant:\n{response or 'None'}\n\n"
        gold = dict(zip(("prompt", "refusal", "response"), labels, strict=True))
        assert record["labels"] == gold
        parsed = {t: v for t, v in parse_answers(record["output"]).items() if v != "unparseable"}
        assert parsed == {t: v for t, v in gold.items() if v is not None}
        assert 1 <= min(reasoning_step_counts(record["output"])) <= max(reasoning_step_counts(record["output"])) <= 10
        assert render_trace(parse_trace(record["output"])) == record["output"]
        assert record["teacher"]["model"] == "teacher-x" and record["recipe_hash"]
    schema = sent[0].json["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["answers"]["properties"]["Request"]["enum"] in (["harmful"], ["unharmful"])
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["samples"], stats["rejected"], stats["pending"]) == (4, 0, 0)


def test_a_teacher_disagreeing_with_gold_is_rejected_with_the_reason(tmp_path, run_cli):
    source, rows = labelled_file(tmp_path)
    follow = schema_responder(seed=5)

    def contrary(request):  # no guided decoding: Request flipped against the pinned enum
        reply = follow(request)
        if "Correct labels" not in "\n".join(str(m.get("content")) for m in request.get("messages", [])):
            return reply  # the pre-flight probe
        data = json.loads(reply)
        data["answers"]["Request"] = {"harmful": "unharmful", "unharmful": "harmful"}[data["answers"]["Request"]]
        return json.dumps(data)

    out = tmp_path / "gr"
    with ScriptedServer(contrary, models=["teacher-x"]) as server:
        args = ["generate", "guardreasoner", "--input", source, "--output", out, *FAST]
        code, _, err = run_cli(*args, "--base-url", server.base_url, "--model", "teacher-x")
    assert code == 2 and re.search(r"no trace finished: 4 of 4 rejected, \d at trace \(answers_disagree", err), err
    rejected = [row for _, row in read_jsonl(out / "rejected.jsonl")]
    assert {(r["reason"], r["transient"]) for r in rejected} == {("answers_disagree", False)}
    assert not (out / "samples.jsonl").exists() or not (out / "samples.jsonl").read_text()


def test_validate_dispatches_on_the_recipe_kind(run_cli, tmp_path):
    code, out, _ = run_cli("validate", "guardreasoner")
    assert code == 0 and out.startswith("ok: recipe guardreasoner (") and "card guardreasoner_teacher" in out
    bad = tmp_path / "gr.yaml"
    bad.write_text("kind: guardreasoner\nname: x\nteacher: {model: m}\nagent: nosuchcard\n", encoding="utf-8")
    code, _, err = run_cli("validate", bad)
    assert code == 2 and "nosuchcard: no such file and no built-in agents/guard of that name" in err
