"""Plot data and sample views per run kind: pure functions of the records, checked by their numbers."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from aidsafe.errors import AidsafeError
from aidsafe.report import gather, open_run
from aidsafe.report.kinds import kind_of
from tests.guard.conftest import shared_guardreasoner
from tests.guard.test_traces import LABELLED


def _write(run, samples, rejected=(), recipe: str = "") -> None:
    run.mkdir()
    (run / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples), encoding="utf-8")
    (run / "rejected.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rejected), encoding="utf-8")
    if recipe:
        (run / "recipe.yaml").write_text(recipe, encoding="utf-8")


def _call(agent, prompt, completion, latency):
    return {
        "agent": agent,
        "model": "m",
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "latency_s": latency,
    }


def _sample(i, stop, rounds, policies, removed, calls):
    return {
        "id": f"s{i}", "prompt": f"prompt {i}", "intents": [],
        "thoughts": [{"id": f"t{n}", "text": "x", "policies": p} for n, p in enumerate(policies)],
        "response": "r", "deliberation": [], "removed": removed,
        "metadata": {"stop_reason": stop, "rounds_used": rounds, "calls": calls},
    }  # fmt: skip


def _plots(run) -> dict:
    return {p.name: p for p in gather(run).plots}


def test_generation_plots_count_every_record(tmp_path):
    dup = {"id": "t9", "text": "y", "stage": "dedup", "reason": "near_duplicate", "duplicate_of": "t1"}
    red = {"id": "t8", "text": "z", "stage": "refine", "reason": "redundant"}
    samples = [
        _sample(0, "complete", 1, [["P1"], ["P1", "P2"]], [dup], [_call("a", 100, 10, 1.0), _call("b", 50, 5, 3.0)]),
        _sample(1, "budget", 3, [[]], [dup, red], [_call("a", 300, 30, 2.0)]),
        _sample(2, "complete", 1, [["P2"]], [], []),
    ]
    rejected = [{"id": "r1", "reason": "invalid_output", "stage": "refine"},
                {"id": "r2", "reason": "invalid_output", "stage": "refine"}]  # fmt: skip
    _write(tmp_path / "run", samples, rejected)
    plots = _plots(tmp_path / "run")
    series = {name: dict(zip(p.categories, p.series["count"], strict=True)) for name, p in plots.items()
              if "count" in p.series}  # fmt: skip
    assert series["stop_reasons"] == {"complete": 2, "budget": 1}
    assert series["rounds_used"] == {"1": 2, "3": 1}
    assert series["thoughts_removed"] == {"dedup: near_duplicate": 2, "refine: redundant": 1}
    assert series["policies_per_thought"] == {"0": 1, "1": 2, "2": 1}
    assert series["policy_citations"] == {"P1": 2, "P2": 2}
    assert series["rejection_reasons"] == {"invalid_output": 2}
    tokens = plots["tokens_per_agent"]
    assert tokens.categories == ["a", "b"]
    assert tokens.series == {"prompt": [200.0, 50.0], "completion": [20.0, 5.0]}  # means per call
    assert plots["latency_per_agent"].series == {"seconds": [1.5, 3.0]}


def test_generation_plots_agree_with_stats_json(generation_run):
    """Counted by the report and by the run's own stats.json (aidsafe.generation.records)."""
    stats = json.loads((generation_run / "stats.json").read_text())
    plots = _plots(generation_run)
    stops = plots["stop_reasons"]
    assert dict(zip(stops.categories, stops.series["count"], strict=True)) == stats["stop_reasons"]
    rejections = plots["rejection_reasons"]
    assert dict(zip(rejections.categories, rejections.series["count"], strict=True)) == stats["rejected_by_reason"]
    removed = plots["thoughts_removed"]
    by_reason = {}
    for category, count in zip(removed.categories, removed.series["count"], strict=True):
        by_reason[category.split(": ")[1]] = by_reason.get(category.split(": ")[1], 0) + count
    assert by_reason == stats["thoughts_removed_by_reason"]


def test_pairs_plots_separate_chosen_from_rejected(pairs_run):
    plots = _plots(pairs_run)
    kept = plots["judge_scores_pairs"]
    assert kept.categories == ["1", "2", "3", "4", "5"]
    # The scripted judge scores the steered side 1 and the policy-following side 5 (tests/pairs/helpers).
    assert kept.series == {"chosen": [0, 0, 0, 0, 2], "rejected": [2, 0, 0, 0, 0]}
    every = plots["judge_scores_all"]  # [sep=2] took 2 attempts; [sep=0] 3 that never separated
    assert sum(every.series["chosen"]) == 1 + 2 + 3 == every.series["chosen"][4]
    assert every.series["rejected"][0] == 2 and every.series["rejected"][4] == 4
    assert dict(zip(plots["iterations"].categories, plots["iterations"].series["count"], strict=True)) == {
        "1": 1,
        "2": 1,
    }
    assert plots["rejection_reasons"].categories == ["no_separation"]


def test_guard_trace_plots_count_labels_per_task(traces_run):
    plot = _plots(traces_run)["label_counts"]
    counts = {task: dict(zip(plot.categories, values, strict=True)) for task, values in plot.series.items()}
    expected = {}  # from the gold labels the run was made from (tests/guard/test_traces.LABELLED)
    for _, _, gold in LABELLED:
        for task, label in zip(("prompt", "refusal", "response"), gold, strict=True):
            expected.setdefault(task, Counter())["None" if label is None else label] += 1
    assert {task: {k: v for k, v in c.items() if v} for task, c in counts.items()} == expected
    assert "tokens_per_agent" in _plots(traces_run)


def test_generation_view_shows_every_part_of_a_sample(generation_run):
    view = open_run(generation_run)
    record = next(r for r in view.iter_samples() if r["removed"])
    sample = kind_of(view).sample(record)
    sections = {s.title: s for s in sample.sections}
    assert sections["Prompt"].rows[0].text == record["prompt"]
    assert len(sections["Intents"].rows) == len(record["intents"])
    assert [r.tags for r in sections["Refined thoughts"].rows] == [t["policies"] for t in record["thoughts"]]
    assert {r.label for r in sections["Deliberation"].rows} == {
        f"round {t['round']} · {t['agent']}" for t in record["deliberation"]
    }
    removed = {r.label: r.tags for r in sections["Removed thoughts"].rows}
    for entry in record["removed"]:
        assert f"{entry['stage']}: {entry['reason']}" in removed[entry["id"]]
        if "duplicate_of" in entry:
            assert any(t.startswith(f"duplicate of {entry['duplicate_of']}") for t in removed[entry["id"]])
    assert sample.facets["stop reason"] == [record["metadata"]["stop_reason"]]


def test_an_unknown_kind_gets_a_summary_and_the_generic_view(tmp_path):
    record = {"id": "e1", "prompt": "what", "verdict": {"score": 0.5}, "metadata": {"calls": [_call("x", 1, 2, 0.5)]}}
    _write(tmp_path / "run", [record], [{"id": "e2", "reason": "timeout"}], recipe="kind: thinkguard\nname: tg\n")
    data = gather(tmp_path / "run")
    assert data.view.kind == "thinkguard"
    assert {p.name for p in data.plots} == {"tokens_per_agent", "latency_per_agent", "rejection_reasons"}
    finished, rejected = data.samples
    assert {s.title: s.rows[0].text for s in finished.sections}["verdict"] == json.dumps({"score": 0.5}, indent=1)
    assert rejected.facets["rejection"] == ["timeout"]
    assert ("recipe", "tg") in data.summary and ("rejected", "1") in data.summary


def test_the_cap_keeps_the_first_records_and_counts_all(tmp_path):
    _write(tmp_path / "run", [_sample(i, "complete", 1, [], [], []) for i in range(7)])
    data = gather(tmp_path / "run", cap=3)
    assert [s.id for s in data.samples] == ["s0", "s1", "s2"] and data.total_samples == 7
    assert sum(_plots(tmp_path / "run")["stop_reasons"].series["count"]) == 7


def test_a_directory_that_is_no_run_is_one_line(tmp_path):
    with pytest.raises(AidsafeError, match="not a run directory"):
        open_run(tmp_path)
    with pytest.raises(AidsafeError, match="no such run directory"):
        open_run(tmp_path / "missing")


def test_a_released_prediction_file_is_a_run_of_its_own(run_cli):
    """A predict output (here a released GuardReasoner one, read in place) is reported and shown."""
    from aidsafe.guard.formats import parse_answers

    source = shared_guardreasoner() / "predictions" / "1B" / "AegisSafetyTest" / "generated_predictions.jsonl"
    if not source.is_file():
        pytest.skip(f"released predictions not found at {source} (set AIDSAFE_SHARED_BENCHMARKS)")
    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").split("\n") if line.strip()]
    data = gather(source)
    assert data.view.kind == "predictions" and data.total_samples == len(rows)
    plots = {p.name: p for p in data.plots}
    gold = plots["gold_labels"]
    assert dict(zip(gold.categories, gold.series["count"], strict=True)) == Counter(r["label"] for r in rows)
    answers = plots["predicted_answers"]
    counted = {a: n for a, n in zip(answers.categories, answers.series["prompt"], strict=True) if n}
    assert counted == Counter(parse_answers(r["predict"])["prompt"] for r in rows)
    code, out, err = run_cli("show", source, data.samples[1].id)
    assert code == 0, err
    assert rows[1]["prompt"].split("Human user:\n", 1)[1].split("\n", 1)[0] in " ".join(out.split())
