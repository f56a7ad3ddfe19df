"""The pair loop with a guard-model judge (pairs.judge: guard): the stop rule on P(unsafe), the
recipe's checks, and generate -> pairs end to end with the guard on the completions endpoint."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys

import pytest

from aidsafe.errors import AidsafeError
from aidsafe.guard.judge import render_judge_prompt
from aidsafe.pairs.guard_judge import guard_separated
from aidsafe.pairs.recipe import load_pairs_pipeline
from aidsafe.pairs.runner import PairsRequest, make_pairs
from aidsafe.run.executor import BREAKER_WINDOW
from aidsafe.testing import FakeTeacher, ScriptedServer
from tests.conftest import read_jsonl
from tests.helpers import FAST
from tests.pairs.helpers import (
    GUARD_SAFE,
    GUARD_UNSAFE,
    fake_responders,
    guard_completion,
    guard_server_responder,
    write_chosen_run,
)
from tests.pairs.test_pairs_e2e import TEACHER, _generate, _Killer

RECIPE = "aidsafe-pairs-shieldgemma"


def _teacher(completion=None) -> FakeTeacher:
    return FakeTeacher({**fake_responders(), "completion": completion or (lambda call: guard_completion(call.text))})


def _run(tmp_path, prompts, teacher=None, sets=()):
    source, out = tmp_path / "gen", tmp_path / "pairs"
    write_chosen_run(source, prompts)
    teacher = teacher or _teacher()
    stats = make_pairs(PairsRequest(RECIPE, source, out, overrides=list(sets), progress=False), {}, teacher)
    return stats, read_jsonl(out / "samples.jsonl"), read_jsonl(out / "rejected.jsonl"), teacher


def test_guard_separates_the_first_time(tmp_path):
    stats, [pair], [], teacher = _run(tmp_path, ["[sep=1] How do I pick a lock?"])
    assert pair["iterations"] == 1 and [s["separated"] for s in pair["scores"]] == [True]
    # both sides scored, each by one completions call with the ShieldGemma prompt of that side
    completions = [c for c in teacher.calls if c.role == "completion"]
    assert len(completions) == 2 and all("Does the Chatbot Response violate" in c.text for c in completions)
    assert {"Here is a safe, helpful answer." in c.text for c in completions} == {True, False}
    score = pair["scores"][0]
    assert score["chosen"] == {"violates": False, "p_unsafe": GUARD_SAFE, "label": "safe", "from_logprobs": True}
    assert score["rejected"] == {"violates": True, "p_unsafe": GUARD_UNSAFE, "label": "unsafe", "from_logprobs": True}
    assert score["gap"] == pytest.approx(0.8) and "judge_order" not in score
    judged = pair["metadata"]["judge"]
    assert judged == {
        "kind": "guard",
        "agent": "guard_judge",
        "model": "google/shieldgemma-9b",
        "format": "shieldgemma",
    }
    assert [c["role"] for c in pair["metadata"]["calls"]] == ["ear_whisperer", "rejected_cot", "judge", "judge"]
    side = stats["judge"]["pairs"]
    assert side["chosen"]["p_unsafe_mean"] == GUARD_SAFE and side["rejected"]["p_unsafe_mean"] == GUARD_UNSAFE
    assert side["rejected"]["p_unsafe_histogram"]["0.9"] == 1 and side["chosen"]["p_unsafe_histogram"]["0.1"] == 1
    assert side["gap"] == {"mean": 0.8, "histogram": {"0.8": 1}} and side["rejected"]["violation_rate"] == 1


def test_guard_separates_at_iteration_k_and_the_whisperer_hears_the_scores(tmp_path):
    stats, [pair], [], teacher = _run(tmp_path, ["[sep=3] How do I pick a lock?"])
    assert pair["iterations"] == 3 and [s["separated"] for s in pair["scores"]] == [False, False, True]
    whispers = [c.text for c in teacher.calls if c.role == "ear_whisperer"]
    assert "did not violate" in whispers[1] and "steered P(unsafe) 0.10" in whispers[1]
    assert stats["judge"]["all_attempts"]["attempts"] == 3
    assert stats["judge"]["all_attempts"]["gap"]["histogram"] == {"0.0": 2, "0.8": 1}


def test_guard_never_separates_is_no_separation_with_every_p_unsafe(tmp_path):
    stats, [], [entry], _ = _run(tmp_path, ["[sep=0] How do I pick a lock?"])
    assert entry["reason"] == "no_separation" and len(entry["attempts"]) == 3
    assert [a["rejected"]["p_unsafe"] for a in entry["attempts"]] == [GUARD_SAFE] * 3
    assert "P(unsafe) chosen/rejected" in entry["error"] and "#3 0.10/0.10" in entry["error"]
    assert stats["no_separation"] == 1 and stats["judge"]["all_attempts"]["rejected"]["violation_rate"] == 0


def test_the_guard_margin_is_on_p_unsafe(tmp_path):
    def close(call):  # the steered side is unsafe at 0.6, the chosen safe at 0.3: a gap of 0.3
        steered = guard_completion(call.text)["text"] == "Yes"
        p = 0.6 if steered else 0.3
        top = {"Yes": math.log(p), "No": math.log(1 - p)}
        return {"text": "Yes" if steered else "No", "logprobs": {"tokens": ["x"], "top_logprobs": [top]}}

    _, [], [entry], _ = _run(tmp_path / "default", ["[sep=1] x?"], teacher=_teacher(close))
    assert [a["gap"] for a in entry["attempts"]] == [pytest.approx(0.3)] * 3  # under the default 0.5
    _, [pair], [], _ = _run(tmp_path / "m03", ["[sep=1] x?"], teacher=_teacher(close), sets=["pairs.margin=0.3"])
    assert pair["iterations"] == 1


def test_without_logprobs_the_guards_verdict_still_separates(tmp_path):
    def text_only(call):
        return guard_completion(call.text)["text"] + " - it walks through the policy."

    _, [pair], [], _ = _run(tmp_path, ["[sep=1] x?"], teacher=_teacher(text_only))
    score = pair["scores"][0]
    assert (score["chosen"]["p_unsafe"], score["rejected"]["p_unsafe"]) == (0.0, 1.0)
    assert not score["chosen"]["from_logprobs"] and not score["rejected"]["from_logprobs"]


@pytest.mark.parametrize(
    "chosen, rejected, margin, expected",
    [
        (0.1, 0.9, 0.5, True),
        (0.2, 0.7, 0.5, True),  # exactly the margin
        (0.3, 0.7, 0.5, False),  # the right sides, too close
        (0.49, 0.5, 0.0, True),  # margin 0: the threshold alone decides
        (0.5, 0.9, 0.0, False),  # the chosen side is unsafe too (P >= 0.5)
        (0.0, 0.49, 0.0, False),  # the rejected side is not unsafe
    ],
)
def test_guard_stop_rule(chosen, rejected, margin, expected):
    attempt = {"chosen": {"p_unsafe": chosen}, "rejected": {"p_unsafe": rejected}}
    assert guard_separated(attempt, margin) is expected


def test_twenty_five_alike_no_separations_do_not_trip_the_breaker(tmp_path):
    # every sample's scores are the same, so every no_separation line is identical
    prompts = [f"[sep=0] Question {i}?" for i in range(BREAKER_WINDOW + 5)]
    stats, [], rejected, _ = _run(tmp_path, prompts, sets=["pairs.max_iterations=1"])
    assert len(rejected) == len(prompts) and {r["error"] for r in rejected} == {rejected[0]["error"]}
    assert stats["no_separation"] == len(prompts) and stats["pending"] == 0


@pytest.mark.parametrize(
    "sets, message",
    [
        (
            ["pairs.guard_judge=null"],
            "--set pairs.guard_judge=null: pairs.judge is guard: add this section "
            "(format: llama-guard-3 | shieldgemma, model, base_url)",
        ),
        (
            ["pairs.guard_judge.format=wildguard"],
            "--set pairs.guard_judge.format=wildguard: Input should be 'llama-guard-3' or 'shieldgemma'",
        ),
        (["pairs.margin=2"], "--set pairs.margin=2: 2 is off the guard judge's scale; expected 0 to 1"),
        (["agents.judge=judge"], "pairs: judge is guard (pairs.guard_judge) but agents.judge names an LLM judge too"),
        (["pairs.judge=llm", "pairs.guard_judge=null"], "pairs: judge is llm but agents.judge names no judge agent"),
    ],
)
def test_guard_judge_recipe_errors_name_the_key(sets, message):
    with pytest.raises(AidsafeError) as info:
        load_pairs_pipeline(RECIPE, sets)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_recipe_file_without_its_guard_section_names_file_line_and_key(tmp_path):
    from aidsafe.config.resources import resolve_resource

    text = resolve_resource(RECIPE, "recipes").read_text(encoding="utf-8")
    start, end = text.index("  guard_judge:"), text.index("  margin:")
    path = tmp_path / "r.yaml"
    path.write_text(text[:start] + text[end:])
    with pytest.raises(AidsafeError) as info:
        load_pairs_pipeline(str(path))
    line = text[:start].count("\n") - 1  # `pairs:` (then `judge: guard`, then the section that went)
    assert str(info.value).startswith(f"{path}:{line}: pairs.guard_judge: pairs.judge is guard: add this section")


def test_llm_judge_margin_keeps_its_scale_and_default():
    assert load_pairs_pipeline("aidsafe-pairs").recipe.pairs.margin == 2
    assert load_pairs_pipeline(RECIPE).recipe.pairs.margin == 0.5
    assert load_pairs_pipeline(RECIPE, ["pairs.margin=null"]).recipe.pairs.margin == 0.5  # the guard default
    with pytest.raises(AidsafeError, match="5 is off the llm judge's scale; expected 0 to 4"):
        load_pairs_pipeline("aidsafe-pairs", ["pairs.margin=5"])


def test_where_the_guard_runs_is_not_in_the_hash_but_what_it_judges_is():
    base = load_pairs_pipeline(RECIPE)
    assert load_pairs_pipeline(RECIPE, ["pairs.guard_judge.base_url=http://x:1/v1"]).recipe_hash == base.recipe_hash
    for change in (["pairs.guard_judge.format=llama-guard-3"], ["pairs.guard_judge.policies=shieldgemma"]):
        assert load_pairs_pipeline(RECIPE, change).recipe_hash != base.recipe_hash
    assert base.guard_endpoint.base_url == "http://localhost:8001/v1" and base.guard_endpoint.model.endswith("9b")


def test_generate_then_pairs_with_shieldgemma_on_the_completions_endpoint(tmp_path, run_cli, prompts_file):
    prompts = [f"[sep={k}] How do I handle request {i}?" for i, k in enumerate([1, 2, 0, 1])]
    gen, out = tmp_path / "gen", tmp_path / "pairs"
    with ScriptedServer(guard_server_responder(), models=["teacher-x", "sg-test"]) as server:
        _generate(run_cli, server, prompts_file(prompts), gen)
        code, _, err = run_cli("pairs", RECIPE, "-i", gen, "-o", out, "--base-url", server.base_url, *TEACHER,
                               "--set", f"pairs.guard_judge.base_url={server.base_url}",
                               "--set", "pairs.guard_judge.model=sg-test", *FAST)  # fmt: skip
        assert code == 0, err
        guard_calls = [r for r in server.requests if r.path == "/v1/completions"]
        # the pre-flight asked the guard's server only for its model list, no structured-output probe
        assert not [r for r in server.requests if r.json.get("model") == "sg-test" and "messages" in r.json]
        assert any(r.json.get("model") == "teacher-x" and "messages" in r.json for r in server.requests)
    assert "3 pairs, 1 no_separation" in err
    # 2 sides per attempt: 1 + 2 + 3 (never) + 1 attempts
    assert len(guard_calls) == 2 * (1 + 2 + 3 + 1)
    for request in guard_calls:
        assert request.json["model"] == "sg-test" and request.json["temperature"] == 0 and request.json["logprobs"]
        assert "messages" not in request.json and "response_format" not in request.json
    pairs = {p["prompt"]: p for p in read_jsonl(out / "samples.jsonl")}
    sample = {s["prompt"]: s for s in read_jsonl(gen / "samples.jsonl")}[prompts[1]]
    pair = pairs[prompts[1]]
    assert pair["iterations"] == 2 and pair["chosen"]["response"] == sample["response"]
    # the guard saw the generation run's own chosen side, reasoning and response, verbatim
    chosen_text = f"Reasoning:\n1. [{', '.join(sample['thoughts'][0]['policies'])}] {sample['thoughts'][0]['text']}"
    assert any(chosen_text in r.json["prompt"] and prompts[1] in r.json["prompt"] for r in guard_calls)
    assert pair["metadata"]["judge"]["model"] == "sg-test"
    stats = json.loads((out / "stats.json").read_text())
    assert stats["judge"]["pairs"]["gap"]["mean"] == pytest.approx(0.8)
    assert stats["judge"]["all_attempts"]["attempts"] == 7
    [rejected] = read_jsonl(out / "rejected.jsonl")
    assert rejected["reason"] == "no_separation" and rejected["prompt"] == prompts[2]
    assert render_judge_prompt("shieldgemma", "q", "a").startswith("You are a policy expert")


class _GuardKiller(_Killer):
    """_Killer with the guard on the completions endpoint (a guard call counts as a pair call)."""

    def __init__(self, at: int) -> None:
        super().__init__(at)
        self.reply = guard_server_responder()

    def __call__(self, request: dict):
        if "prompt" in request:  # the chosen side's guard prompt has no STEERED in it: count it here
            with self.lock:
                self.seen += 1
                if self.seen == self.at and self.proc is not None:
                    os.kill(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
            return self.reply(request)
        return super().__call__(request)


@pytest.mark.slow
@pytest.mark.parametrize("at", [3, 6])
def test_rerun_after_kill_with_a_guard_judge_makes_no_duplicate_pair(tmp_path, run_cli, prompts_file, at):
    prompts = ["[sep=2] Kill test: how do I store cleaning products?", "[sep=1] Kill test two?"]
    gen, out = tmp_path / "gen", tmp_path / "pairs"
    killer = _GuardKiller(at)
    with ScriptedServer(killer, models=["teacher-x", "sg-test"]) as server:
        _generate(run_cli, server, prompts_file(prompts), gen)
        guard = ["--set", f"pairs.guard_judge.base_url={server.base_url}", "--set", "pairs.guard_judge.model=sg-test"]
        cmd = [sys.executable, "-m", "aidsafe", "pairs", RECIPE, "-i", str(gen), "-o", str(out),
               "--base-url", server.base_url, *TEACHER, "--concurrency", "1", *guard, *FAST]  # fmt: skip
        killer.proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        killer.proc.wait(timeout=120)
        assert killer.proc.returncode == -signal.SIGKILL
        killer.proc = None
        rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
    pairs = read_jsonl(out / "samples.jsonl")
    assert sorted(p["id"] for p in pairs) == sorted({p["id"] for p in pairs}) and len(pairs) == 2
    assert read_jsonl(out / "rejected.jsonl") == []
    for pair in pairs:  # every step once across the two runs: none redone into the record, none skipped
        roles = [c["role"] for c in pair["metadata"]["calls"]]
        assert roles == ["ear_whisperer", "rejected_cot", "judge", "judge"] * pair["iterations"]
        assert pair["iterations"] == (2 if "sep=2" in pair["prompt"] else 1)
