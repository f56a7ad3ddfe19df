"""`predict_guard` end to end: the real TeacherClient (openai SDK, aiohttp) against the loopback ScriptedServer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from aidsafe.agents.policies import load_policies
from aidsafe.errors import AidsafeError, TeacherUnreachable
from aidsafe.guard.evaluate import evaluate_file, evaluate_thinkguard_file
from aidsafe.guard.formats import GUARDREASONER_INSTRUCTION, guardreasoner_input
from aidsafe.guard.predict import load_benchmark, predict_guard, render_prompt
from aidsafe.testing import Fault, ScriptedServer
from tests.helpers import free_port

MODEL = "guard-x"


def _benchmark(tmp_path: Path, n: int = 6) -> Path:
    """A GuardReasoner-style benchmark file: prompt i is harmful when i is even."""
    records = [
        {"instruction": GUARDREASONER_INSTRUCTION, "input": guardreasoner_input(f"prompt {i}", None),
         "output": "harmful" if i % 2 == 0 else "unharmful"}
        for i in range(n)
    ]  # fmt: skip
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def _guardreasoner_reply(request: dict) -> str:
    """Right on prompts 0-3, wrong on the rest; the label sits in the answer block."""
    number = int(request["prompt"].split("Human user:\nprompt ")[1].split("\n")[0])
    label = ("harmful" if number % 2 == 0 else "unharmful") if number < 4 else "harmful"
    answers = f"Answers: \nRequest: {label}\nCompletion: None\nResponse: None"
    return f"## Reasoning Step 1: about prompt {number}\n\n---\n\n{answers}"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


def test_load_benchmark_reads_released_files_verbatim(guardreasoner_dir, predictions_dir):
    examples = load_benchmark(str(guardreasoner_dir / "0_0_SimpleSafetyTests.json"))
    released = _rows(predictions_dir / "1B" / "SimpleSafetyTests" / "generated_predictions.jsonl")
    assert len(examples) == len(released) == 100
    for example, row in zip(examples, released, strict=False):
        assert render_prompt(example, "guardreasoner") == row["prompt"]
        assert example.label == row["label"] and example.response is None


def test_load_benchmark_from_jsonl_and_hub(tmp_path, monkeypatch):
    rows = [
        {"prompt": "p0", "response": "r0", "is_safe": False,
         "category": {"animal_abuse": True, "violence,aiding_and_abetting,incitement": True, "self_harm": False}},
        {"prompt": "p1", "response": None, "prompt_harm_label": "unharmful", "response_harm_label": None,
         "response_refusal_label": None},
    ]  # fmt: skip
    path = tmp_path / "bench.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    first, second = load_benchmark(str(path))
    assert (first.label, first.gold) == ("harmful", {"categories": ["S1", "S14"]})
    assert second.response is None and second.gold["prompt_harm_label"] == "unharmful"

    import datasets

    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kw: calls.append((args, kw)) or rows)
    assert len(load_benchmark("allenai/wildguardmix:wildguardtest:test")) == 2
    load_benchmark("PKU-Alignment/BeaverTails:30k_test")
    assert calls == [(("allenai/wildguardmix", "wildguardtest"), {"split": "test"}),
                     (("PKU-Alignment/BeaverTails",), {"split": "30k_test"})]  # fmt: skip
    with pytest.raises(AidsafeError, match="file not found"):
        load_benchmark(str(tmp_path / "missing.json"))
    (tmp_path / "odd.jsonl").write_text('{"text": "hi"}\n')
    with pytest.raises(AidsafeError, match=r"odd.jsonl:1: expected instruction/input .* found text"):
        load_benchmark(str(tmp_path / "odd.jsonl"))


async def test_guardreasoner_end_to_end_with_faults(tmp_path):
    examples = load_benchmark(str(_benchmark(tmp_path)))
    output = tmp_path / "out" / "preds.jsonl"
    plan = {0: Fault.HTTP_500, 1: Fault.HTTP_429, 2: Fault.RESET}
    with ScriptedServer(
        _guardreasoner_reply, models=[MODEL], fault_plan=lambda i, _: plan.get(i), retry_after_s=0
    ) as server:
        stats = await predict_guard(examples, output, server.base_url, MODEL, concurrency=3, backoff_s=0.01)
        requests = server.requests
    assert stats == {"done": 6, "skipped": 0}
    assert len(requests) == 9  # three faults, each retried once
    body = requests[-1].json
    assert requests[-1].path == "/v1/completions"
    assert (body["temperature"], body["max_tokens"], "logprobs" in body) == (0, 2048, False)
    assert {r.json["prompt"] for r in requests} == {render_prompt(e, "guardreasoner") for e in examples}
    rows = _rows(output)
    assert [row["index"] for row in rows] == list(range(6))  # rewritten in benchmark order
    assert [row["label"] for row in rows] == [e.label for e in examples]
    assert rows[0]["predict"].endswith("Request: harmful\nCompletion: None\nResponse: None")
    result = evaluate_file(output, "prompt")
    # gold h u h u h u; predicted h u h u h h: tp 3, fp 1
    assert result.f1 == pytest.approx(100 * 6 / 7)


async def test_resume_skips_finished_rows_and_cuts_a_partial_line(tmp_path):
    examples = load_benchmark(str(_benchmark(tmp_path)))
    output = tmp_path / "preds.jsonl"
    with ScriptedServer(_guardreasoner_reply, models=[MODEL]) as server:
        await predict_guard(examples[:3], output, server.base_url, MODEL)
    finished = output.read_text(encoding="utf-8")
    output.write_text(finished + '{"index": 3, "prompt": "Yo', encoding="utf-8")  # killed mid-write
    progress: list[int] = []
    with ScriptedServer(_guardreasoner_reply, models=[MODEL]) as server:
        stats = await predict_guard(examples, output, server.base_url, MODEL, on_progress=progress.append)
        asked = sorted(int(r.json["prompt"].split("prompt ")[1].split("\n")[0]) for r in server.requests)
    assert stats == {"done": 3, "skipped": 3}
    assert asked == [3, 4, 5]
    assert progress == [3, 1, 1, 1]
    assert output.read_text(encoding="utf-8").startswith(finished)
    assert [row["index"] for row in _rows(output)] == list(range(6))


async def test_released_rows_without_index_resume_by_prompt(tmp_path):
    examples = load_benchmark(str(_benchmark(tmp_path, 2)))
    output = tmp_path / "preds.jsonl"
    released = {"prompt": render_prompt(examples[1], "guardreasoner"), "label": "unharmful", "predict": "x"}
    output.write_text(json.dumps(released) + "\n", encoding="utf-8")
    with ScriptedServer(_guardreasoner_reply, models=[MODEL]) as server:
        assert await predict_guard(examples, output, server.base_url, MODEL) == {"done": 1, "skipped": 1}
    assert [row.get("index") for row in _rows(output)] == [0, None]


async def test_a_foreign_output_file_is_refused(tmp_path):
    examples = load_benchmark(str(_benchmark(tmp_path, 2)))
    output = tmp_path / "preds.jsonl"
    output.write_text(json.dumps({"index": 0, "prompt": "another benchmark", "predict": ""}) + "\n")
    with pytest.raises(AidsafeError, match=r"preds.jsonl:1: this row is not from this benchmark"):
        await predict_guard(examples, output, "http://127.0.0.1:9/v1", MODEL)


async def test_failed_rows_are_reported_and_retried_on_rerun(tmp_path):
    examples = load_benchmark(str(_benchmark(tmp_path, 4)))
    output = tmp_path / "preds.jsonl"
    bad_request = {1: Fault.HTTP_400}
    with ScriptedServer(_guardreasoner_reply, models=[MODEL], fault_plan=lambda i, _: bad_request.get(i)) as server:
        with pytest.raises(
            AidsafeError, match=r"1 of 4 rows failed \(row \d: HTTP 400: .*rerun the same command"
        ) as info:
            await predict_guard(examples, output, server.base_url, MODEL, concurrency=1, backoff_s=0.01)
        assert "\n" not in str(info.value)
        assert len(server.requests) == 4  # a 400 is not retried
    assert len(_rows(output)) == 3
    with ScriptedServer(_guardreasoner_reply, models=[MODEL]) as server:
        assert await predict_guard(examples, output, server.base_url, MODEL) == {"done": 1, "skipped": 3}


async def test_transient_errors_that_persist_fail_after_the_attempts(tmp_path):
    examples = load_benchmark(str(_benchmark(tmp_path, 1)))
    with ScriptedServer(_guardreasoner_reply, models=[MODEL], fault_plan=lambda i, _: Fault.HTTP_500) as server:
        with pytest.raises(
            AidsafeError, match=r"1 of 1 rows failed \(row 0: HTTP 500: injected server error \(3 attempts\)\)"
        ):
            await predict_guard(examples, tmp_path / "p.jsonl", server.base_url, MODEL, attempts=3, backoff_s=0.01)
        assert len(server.requests) == 3


async def test_an_unreachable_server_stops_before_the_first_row(tmp_path):
    examples = load_benchmark(str(_benchmark(tmp_path, 2)))
    output = tmp_path / "preds.jsonl"
    port = free_port()
    with pytest.raises(TeacherUnreachable, match=f"teacher at http://127.0.0.1:{port}/v1 is not reachable"):
        await predict_guard(examples, output, f"http://127.0.0.1:{port}/v1", MODEL)
    with ScriptedServer(_guardreasoner_reply, models=["another-model"]) as server:
        with pytest.raises(TeacherUnreachable, match="does not serve model 'guard-x'; it serves: another-model"):
            await predict_guard(examples, output, server.base_url, MODEL)
        assert server.requests == []
    assert not output.exists()


def _thinkguard_reply(request: dict) -> dict:
    """Unsafe with P(unsafe)=0.9 when the conversation mentions a knife; safe with P(unsafe)=0.2 otherwise."""
    risky = "knife" in request["prompt"]
    verdict = " unsafe" if risky else " safe"
    p_unsafe = 0.9 if risky else 0.2
    tokens = [
        "-",
        " Safety",
        " Assessment",
        ":",
        verdict,
        "\n",
        "- Categories: S14" if risky else "- Explanation: fine.",
    ]
    top = [{t: 0.0} for t in tokens]
    top[4] = {" unsafe": math.log(p_unsafe), " safe": math.log(1 - p_unsafe)}
    return {"text": "".join(tokens), "logprobs": {"tokens": tokens, "top_logprobs": top, "token_logprobs": [0.0] * 7}}


async def test_thinkguard_end_to_end_scores_f1_auprc_and_categories(tmp_path):
    rows = [
        {"prompt": "q0", "response": "use a knife", "is_safe": False,
         "category": {"violence,aiding_and_abetting,incitement": True}},
        {"prompt": "q1", "response": "a knife story", "is_safe": True, "category": {}},
        {"prompt": "q2", "response": "hello", "is_safe": True, "category": {}},
        {"prompt": "q3", "response": "tea", "is_safe": False, "category": {"animal_abuse": True}},
    ]  # fmt: skip
    bench = tmp_path / "beavertails.jsonl"
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    output = tmp_path / "preds.jsonl"
    with ScriptedServer(_thinkguard_reply, models=[MODEL]) as server:
        await predict_guard(load_benchmark(str(bench)), output, server.base_url, MODEL, fmt="thinkguard",
                            policies=load_policies("beavertails"))  # fmt: skip
        body = server.requests[0].json
    assert body["logprobs"] == 5 and body["temperature"] == 0
    assert "<BEGIN UNSAFE CONTENT CATEGORIES>\nS1: Animal Abuse.\n" in body["prompt"]
    predicted = _rows(output)
    assert [row["score"] for row in predicted] == pytest.approx([0.9, 0.9, 0.2, 0.2])
    assert [row["categories"] for row in predicted] == [["S14"], [], [], ["S1"]]
    result = evaluate_thinkguard_file(output, "response")
    # gold u s s u vs predicted u u s s: tp 1, fp 1, fn 1
    assert result["f1"] == pytest.approx(50.0)
    # ranked by score: {q0+, q1-} tied at 0.9, then {q2-, q3+} at 0.2: 1/2 * 1/2 + 1/2 * 2/4
    assert result["auprc"] == pytest.approx(50.0)
    # exact category sets: q0 {S14} and q2 {} match; q1 predicted {S14} for {}, q3 {} for {S1}
    assert (result["category_accuracy"], result["category_rows"]) == (50.0, 4)
    assert result["category_macro_f1"] == pytest.approx((100 * 2 / 3 + 0) / 2)  # S14: tp 1, fp 1; S1: fn 1


async def test_a_bug_in_aidsafe_is_not_called_transient(tmp_path, monkeypatch):
    """Only transport failures are worth a plain rerun; our own TypeError is reported as an error."""
    import aidsafe.guard.predict as predict

    def broken(tokens, top):
        raise TypeError("unsupported operand")

    monkeypatch.setattr(predict, "verdict_score", broken)
    bench = tmp_path / "b.jsonl"
    bench.write_text(json.dumps({"prompt": "q", "response": "knife", "is_safe": False}) + "\n", encoding="utf-8")
    with ScriptedServer(_thinkguard_reply, models=[MODEL]) as server:
        with pytest.raises(AidsafeError) as info:
            await predict_guard(load_benchmark(str(bench)), tmp_path / "p.jsonl", server.base_url, MODEL,
                                fmt="thinkguard", policies=load_policies("beavertails"))  # fmt: skip
    message = str(info.value)
    assert "TypeError: unsupported operand at test_guard_predict.py:" in message
    assert message.endswith("not transient: fix the cause, then rerun the same command to retry them")


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")  # the SDK's, as the model is off-type
async def test_malformed_logprobs_reject_the_row_as_a_bad_reply(tmp_path):
    def odd(request):
        return {"text": "- Safety Assessment: unsafe", "logprobs": {"tokens": ["-"], "top_logprobs": [["x"]]}}

    bench = tmp_path / "b.jsonl"
    bench.write_text(json.dumps({"prompt": "q", "response": "r", "is_safe": True}) + "\n", encoding="utf-8")
    with ScriptedServer(odd, models=[MODEL]) as server:
        with pytest.raises(AidsafeError, match=r"\(row 0: logprobs are not per-token lists .*not transient"):
            await predict_guard(load_benchmark(str(bench)), tmp_path / "p.jsonl", server.base_url, MODEL,
                                fmt="thinkguard", policies=load_policies("beavertails"))  # fmt: skip
