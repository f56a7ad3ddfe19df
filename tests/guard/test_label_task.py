"""Guard files with one bare gold label per row, in the shape of the shared benchmark files
(`instruction`/`input`/`output: "unharmful"`), read when the user names the label's task with
`--label-task` (issue 22, item 12); rows are named as docs/inputs.md shows, counted from 1."""

from __future__ import annotations

import json

import pytest

from aidsafe.errors import AidsafeError
from aidsafe.guard.labelled import read_labelled
from aidsafe.run.jsonl import read_jsonl
from aidsafe.testing import ScriptedServer, schema_responder

FAST = ["--set", "teacher.backoff_base_s=0.01", "--set", "teacher.backoff_max_s=0.05", "--no-progress"]


def test_a_request_label_pins_the_request_and_leaves_no_response_tasks(guardreasoner_dir):
    path = guardreasoner_dir / "0_0_SimpleSafetyTests.json"
    records = json.loads(path.read_text(encoding="utf-8"))
    rows, repeats = read_labelled(str(path), label_task="request")
    assert len(rows) + repeats == len(records)
    first = rows[0]
    assert first.gold == (records[0]["output"], "None", "None")  # no response: nothing else to judge
    assert (first.instruction + "\n" + first.input) == records[0]["instruction"] + "\n" + records[0]["input"]
    assert first.source == f"{path}: record 1"


@pytest.mark.parametrize(
    ("name", "task", "position"),
    [("0_6_xstest_response_harmful.json", "response", 2), ("0_7_xstest_response_refusal.json", "completion", 1)],
)
def test_a_response_or_completion_label_leaves_the_other_tasks_to_the_teacher(guardreasoner_dir, name, task, position):
    path = guardreasoner_dir / name
    records = json.loads(path.read_text(encoding="utf-8"))
    rows, _ = read_labelled(str(path), label_task=task)
    gold = rows[0].gold
    assert gold[position] == records[0]["output"]
    assert [g for i, g in enumerate(gold) if i != position] == [None, None]  # the teacher decides
    assert rows[0].decided_by_teacher


def test_without_label_task_a_bare_label_says_how_to_name_its_task(guardreasoner_dir):
    path = guardreasoner_dir / "0_1_AegisSafetyTest.json"
    with pytest.raises(AidsafeError) as caught:
        read_labelled(str(path))
    assert str(caught.value) == (
        f"{path}: record 1: output: 'unharmful' is a bare label; say which task it is for with "
        "--label-task request|completion|response"
    )


def test_a_label_of_another_task_is_refused_naming_the_row(guardreasoner_dir):
    path = guardreasoner_dir / "0_1_AegisSafetyTest.json"
    with pytest.raises(AidsafeError, match=r"AegisSafetyTest.json: record 1: output: 'unharmful' is not a completion"):
        read_labelled(str(path), label_task="completion")
    simple = guardreasoner_dir / "0_0_SimpleSafetyTests.json"
    with pytest.raises(
        AidsafeError, match=r"SimpleSafetyTests.json: record 1: output: --label-task response: this row"
    ):
        read_labelled(str(simple), label_task="response")


def test_rows_are_numbered_from_one_in_jsonl_too(tmp_path):
    path = tmp_path / "labelled.jsonl"
    rows = [{"prompt": "Hello", "label": "unharmful"}, {"prompt": "Write malware.", "label": "maybe"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(AidsafeError, match=rf"^{path}:2: label: 'maybe' is not a request label \(harmful/unharmful"):
        read_labelled(str(path), label_task="request")


def _three_aegis_rows(guardreasoner_dir, tmp_path):
    """The first rows of a shared file, as a user's own file of that shape (in tmp_path)."""
    records = json.loads((guardreasoner_dir / "0_1_AegisSafetyTest.json").read_text(encoding="utf-8"))[:3]
    path = tmp_path / "aegis.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    return path, records


def test_generate_guardreasoner_reads_bare_labels_with_label_task(guardreasoner_dir, tmp_path, run_cli):
    source, records = _three_aegis_rows(guardreasoner_dir, tmp_path)
    out = tmp_path / "gr"
    with ScriptedServer(schema_responder(seed=3), models=["teacher-x"]) as server:
        args = [
            "generate",
            "guardreasoner",
            "-i",
            source,
            "-o",
            out,
            "--base-url",
            server.base_url,
            "--model",
            "teacher-x",
        ]
        code, _, err = run_cli(*args, *FAST)
        code2, _, err2 = run_cli(*args, "--label-task", "request", *FAST)
    assert code == 2 and err.count("\n") == 1
    assert f"{source}: record 1: output: 'unharmful' is a bare label; say which task it is for with --label-task" in err
    assert code2 == 0, err2
    gold = {record["input"]: record["output"] for record in records}
    samples = [row for _, row in read_jsonl(out / "samples.jsonl")]
    assert len(samples) == len(records)
    assert all(sample["labels"]["prompt"] == gold[sample["input"]] for sample in samples)


def test_label_task_is_refused_for_recipes_that_read_no_gold_labels(tmp_path, run_cli, prompts_file):
    code, _, err = run_cli(
        "generate", "aidsafe", "-i", prompts_file(["a"]), "-o", tmp_path / "o", "--label-task", "request"
    )
    assert code == 2 and "--label-task: only for guardreasoner recipes" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
