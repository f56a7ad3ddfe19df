"""Hard-sample mining on hand-built predictions; every pair and weight is worked out here by hand."""

from __future__ import annotations

import json

import pytest

from aidsafe.errors import AidsafeError
from aidsafe.guard.formats import GUARDREASONER_INSTRUCTION, answer_block, guardreasoner_input, guardreasoner_prompt
from aidsafe.guard.mining import mine_files, mine_row, scale_weights
from tests.conftest import read_jsonl
from tests.helpers import write_jsonl


def out(request: str | None, completion: str | None, response: str | None, pad: int = 0) -> str:
    """A sampled output: `pad` characters of reasoning, then the answer block."""
    return "# Task 1\n" + "r" * pad + "\n\n---\n\n" + answer_block(request, completion, response)


def target(request: str | None, completion: str | None, response: str | None) -> str:
    # The reasoning mentions a wrong label on purpose: gold comes from the answers block only.
    return "# Task 1\n## Reasoning Step 1: not Request: unharmful\n\n---\n\n" + answer_block(
        request, completion, response
    )


def row(prompt: str, response: str | None, gold: tuple, samples: list[str], index: int = 0) -> dict:
    return {
        "prompt": guardreasoner_prompt(prompt, response),
        "label": target(*gold),
        "predicts": samples,
        "index": index,
    }


UNPARSEABLE_TEXT = "I cannot decide." * 30  # no answer block at all: dropped for every task


def test_request_first_longest_right_and_wrong():
    gold = {"prompt": "harmful", "refusal": "refusal", "response": "unharmful"}
    samples = [
        out("harmful", "refusal", "unharmful", pad=5),
        out("unharmful", "refusal", "harmful", pad=50),  # wrong, longest overall
        out("harmful", "compliance", "harmful", pad=20),  # right, longest right
        out("unharmful", "refusal", "unharmful", pad=10),
    ]
    pair = mine_row("p", gold, "the response", samples)
    # Request is mixed (right: 0, 2; wrong: 1, 3), so it wins although Response is mixed too.
    assert (pair.task, pair.gold, pair.chosen, pair.rejected) == ("prompt", "harmful", samples[2], samples[1])
    assert (pair.right, pair.wrong, pair.raw_weight) == (2, 2, 0)


def test_response_before_completion_and_only_with_a_response():
    gold = {"prompt": "harmful", "refusal": "refusal", "response": "unharmful"}
    samples = [
        out("harmful", "compliance", "harmful", pad=1),
        out("harmful", "refusal", "unharmful", pad=2),
        out("harmful", "compliance", "harmful", pad=3),
    ]
    pair = mine_row("p", gold, "the response", samples)
    # Request all right -> not hard; Response mixed: right [1], wrong [0, 2] -> longest wrong is 2.
    assert (pair.task, pair.chosen, pair.rejected, pair.raw_weight) == ("response", samples[1], samples[2], 1)
    # No response in the conversation: Response and Completion are not mined at all.
    assert mine_row("p", gold, None, samples) is None


def test_completion_when_response_gold_is_none():
    gold = {"prompt": "unharmful", "refusal": "compliance", "response": None}
    samples = [out("unharmful", "compliance", "harmful"), out("unharmful", "refusal", "unharmful", pad=4)]
    pair = mine_row("p", gold, "r", samples)
    assert (pair.task, pair.chosen, pair.rejected, pair.raw_weight) == ("refusal", samples[0], samples[1], 0)


def test_ties_in_length_keep_the_first():
    gold = {"prompt": "harmful", "refusal": None, "response": None}
    samples = [out("unharmful", None, None, 7), out("harmful", None, None, 7), out("harmful", None, None, 7),
               out("unharmful", None, None, 7)]  # fmt: skip
    pair = mine_row("p", gold, None, samples)
    assert pair.chosen is samples[1] and pair.rejected is samples[0]


def test_all_right_all_wrong_and_unparseable_give_no_pair():
    gold = {"prompt": "harmful", "refusal": None, "response": None}
    assert mine_row("p", gold, None, [out("harmful", None, None)] * 4) is None
    assert mine_row("p", gold, None, [out("unharmful", None, None)] * 4) is None
    # One right and unparseable ones: the unparseable are dropped, so nothing is mixed.
    assert mine_row("p", gold, None, [out("harmful", None, None), UNPARSEABLE_TEXT, UNPARSEABLE_TEXT]) is None


def test_unparseable_samples_count_neither_right_nor_wrong():
    gold = {"prompt": "harmful", "refusal": None, "response": None}
    long_unparseable = UNPARSEABLE_TEXT * 3  # longer than any parsed one: must never be picked
    samples = [
        long_unparseable,
        out("harmful", None, None),
        out("unharmful", None, None),
        out("unharmful", None, None, 1),
    ]
    pair = mine_row("p", gold, None, samples)
    assert (pair.right, pair.wrong, pair.raw_weight) == (1, 2, 1)
    assert (pair.chosen, pair.rejected) == (samples[1], samples[3])


def test_scaling_is_min_max_into_0_8_1_2_and_1_when_equal():
    gold = {"prompt": "harmful", "refusal": None, "response": None}
    right, wrong = out("harmful", None, None), out("unharmful", None, None)
    pairs = [
        mine_row(str(i), gold, None, [right] * r + [wrong] * w) for i, (r, w) in enumerate([(3, 1), (2, 2), (1, 3)])
    ]
    assert [p.raw_weight for p in pairs] == [-2, 0, 2]
    assert [p.weight for p in scale_weights(pairs)] == pytest.approx([0.8, 1.0, 1.2])
    assert [p.weight for p in scale_weights(pairs[1:2] * 3)] == [1.0, 1.0, 1.0]
    assert scale_weights([]) == []


def test_files_scaled_separately_and_deduplicated_first_file_wins(tmp_path):
    g = ("harmful", None, None)
    right, wrong = out("harmful", None, None), out("unharmful", None, None, pad=3)
    first = write_jsonl(tmp_path / "a.jsonl", [
        row("q1", None, g, [right, wrong, wrong, wrong]),  # raw 3 - 1 = 2
        row("q2", None, g, [right, right, right, wrong]),  # raw 1 - 3 = -2
        row("q3", None, g, [right] * 4),  # all right: no pair
    ])  # fmt: skip
    second = write_jsonl(tmp_path / "b.jsonl", [
        row("q1", None, g, [right, wrong]),  # q1 again: dropped, a.jsonl gave it first
        row("q4", None, g, [right, right, wrong]),  # raw -1
        row("q5", None, g, [right, wrong, wrong]),  # raw 1
    ])  # fmt: skip
    pairs, stats = mine_files([first, second])
    by_prompt = {p.prompt.rsplit("Human user:\n", 1)[1].split("\n")[0]: p for p in pairs}
    assert list(by_prompt) == ["q1", "q2", "q4", "q5"]
    # a.jsonl: raws [2, -2] -> [1.2, 0.8]; b.jsonl: raws [0 (q1), -1, 1] -> q4 0.8, q5 1.2 (q1's 1.0 is dropped)
    assert [by_prompt[q].weight for q in ("q1", "q2", "q4", "q5")] == pytest.approx([1.2, 0.8, 0.8, 1.2])
    assert by_prompt["q1"].source == f"{first}:1"
    assert stats["files"][str(second)]["duplicates_dropped"] == 1
    assert stats["files"][str(first)]["inputs"] == 3 and stats["pairs"] == 4


def test_cli_writes_pairs_readable_by_the_dpo_loader(run_cli, tmp_path):
    g = ("harmful", None, None)
    rows = [row("q", None, g, [out("harmful", None, None), out("unharmful", None, None)])]
    path = write_jsonl(tmp_path / "p.jsonl", rows)
    code, _, err = run_cli("pairs", "hard-samples", path, "--output", tmp_path / "hs")
    assert code == 0, err
    [record] = read_jsonl(tmp_path / "hs" / "pairs.jsonl")
    assert {k: record[k] for k in ("weight", "task", "raw_weight")} == {
        "weight": 1.0,
        "task": "prompt",
        "raw_weight": 0,
    }
    from aidsafe.train.data import load_train_data  # what `train dpo` reads before any model loads
    from aidsafe.train.recipe import load_train_recipe

    dataset = load_train_data(str(tmp_path / "hs" / "pairs.jsonl"), load_train_recipe("guardreasoner-hsdpo"))
    assert dataset[0]["weight"] == 1.0 and dataset[0]["chosen"] == record["chosen"]


def test_no_pair_at_all_is_a_failure_that_says_why(run_cli, tmp_path):
    g = ("harmful", None, None)
    rows = [row(f"q{i}", None, g, ["no verdict here", "nor here"]) for i in range(20)]
    path = write_jsonl(tmp_path / "p.jsonl", rows)
    code, _, err = run_cli("pairs", "hard-samples", path, "--output", tmp_path / "hs")
    assert code == 2
    assert "no hard-sample pairs in 1 file(s): 20 rows, 40 sampled outputs, 40 of them unparseable" in err
    assert not (tmp_path / "hs").exists()  # nothing written that looks like a result


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"predicts": "x"}, "p.jsonl:1: predicts: expected a list"),
        ({"label": "harmful"}, "p.jsonl:1: label: expected the training target with its Answers: block"),
        ({"prompt": "no input block"}, "p.jsonl:1: prompt: not a GuardReasoner input block"),
    ],
)
def test_bad_rows_name_file_line_and_key(tmp_path, change, expected):
    path = write_jsonl(tmp_path / "p.jsonl", [{**row("q", None, ("harmful", None, None), []), **change}])
    with pytest.raises(AidsafeError, match=expected):
        mine_files([path])


def test_predict_samples_writes_the_layout_that_mining_reads(run_cli, tmp_path):
    from aidsafe.testing import ScriptedServer

    records = [
        {"instruction": GUARDREASONER_INSTRUCTION, "input": guardreasoner_input(f"q{i}", None),
         "output": target("harmful", None, None)}
        for i in range(2)
    ]  # fmt: skip
    bench = tmp_path / "train.json"
    bench.write_text(json.dumps(records), encoding="utf-8")

    def sampler(request):  # sample k of row q0 is right only for k = 0; row q1 always right
        right = request["seed"] == 0 or "q1" in request["prompt"]
        return out("harmful" if right else "unharmful", None, None, pad=request["seed"])

    preds = tmp_path / "preds.jsonl"
    with ScriptedServer(sampler, models=["gr"]) as server:
        args = ["predict", "guard", "--benchmark", bench, "--base-url", server.base_url, "--model", "gr"]
        code, _, err = run_cli(*args, "--output", preds, "--samples", "3", "--temperature", "0.7", "--top-p", "0.95")
        bodies = [r.json for r in server.requests if r.path == "/v1/completions"]
    assert code == 0, err
    assert sorted(b["seed"] for b in bodies) == [0, 0, 1, 1, 2, 2]
    assert {(b["temperature"], b["top_p"]) for b in bodies} == {(0.7, 0.95)}
    rows = read_jsonl(preds)
    assert [len(r["predicts"]) for r in rows] == [3, 3] and rows[0]["predict"] == rows[0]["predicts"][0]
    [pair], _ = mine_files([preds])  # q0: right [k0], wrong [k1, k2] -> rejected the longest, k2
    assert (pair.chosen, pair.rejected, pair.raw_weight, pair.weight) == (
        out("harmful", None, None, 0), out("unharmful", None, None, 2), 1, 1.0
    )  # fmt: skip


def test_samples_without_temperature_is_refused(run_cli, tmp_path):
    code, _, err = run_cli("predict", "guard", "--benchmark", tmp_path / "x.json", "--base-url", "http://127.0.0.1:9/v1",
                           "--model", "m", "--output", tmp_path / "p.jsonl", "--samples", "4")  # fmt: skip
    assert code == 2 and "--samples 4 with --temperature 0 gives 4 equal outputs" in err
