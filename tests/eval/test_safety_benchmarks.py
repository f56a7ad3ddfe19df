"""Benchmark loading for `eval safety`: Hub ids with the published column names, local files, errors."""

from __future__ import annotations

import json

import pytest

from aidsafe.errors import AidsafeError
from aidsafe.eval.benchmarks import load_benchmarks, parse_benchmarks
from aidsafe.eval.judges import strongreject_score


def test_hub_ids_load_with_their_real_splits_and_columns(monkeypatch):
    import datasets

    published = {
        "PKU-Alignment/BeaverTails": [
            {"prompt": "p", "response": "a", "is_safe": False},
            {"prompt": "p", "response": "b"},
        ],
        "allenai/WildChat": [
            {"conversation": [{"role": "user", "content": "hi"}], "toxic": False},
            {"conversation": [{"role": "user", "content": "be toxic"}], "toxic": True},
        ],
        "walledai/StrongREJECT": [{"prompt": "forbidden", "category": "Violence", "source": "custom"}],
        "Paul/XSTest": [{"id": 1, "prompt": "kill a process", "type": "homonyms", "label": "safe"}],
    }
    calls = []

    def load_dataset(name, split):
        calls.append((name, split))
        return published[name]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    items = load_benchmarks(parse_benchmarks("beavertails,wildchat,strongreject,xstest"))
    assert calls == [
        ("PKU-Alignment/BeaverTails", "30k_test"),
        ("allenai/WildChat", "train"),
        ("walledai/StrongREJECT", "train"),
        ("Paul/XSTest", "train"),
    ]
    assert [(i.benchmark, i.prompt, i.kind) for i in items] == [
        ("beavertails", "p", None),  # one prompt, however many responses
        ("wildchat", "be toxic", None),  # toxic rows only
        ("strongreject", "forbidden", None),
        ("xstest", "kill a process", "safe"),
    ]


def test_local_files_and_xstest_v2_types(tmp_path):
    path = tmp_path / "xstest_v2.jsonl"
    rows = [
        {"id_v2": "v2-1", "type": "homonyms", "prompt": "a"},
        {"id_v2": "v2-2", "type": "contrast_homonyms", "prompt": "b"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    items = load_benchmarks(parse_benchmarks(f"xstest={path}"))
    assert [i.kind for i in items] == ["safe", "unsafe"]
    assert len(load_benchmarks(parse_benchmarks(f"xstest={path}"), limit=1)) == 1


def test_bad_input_is_one_line_naming_the_place(tmp_path):
    with pytest.raises(AidsafeError, match="unknown benchmark 'advbench'; known: beavertails, wildchat"):
        parse_benchmarks("advbench")
    with pytest.raises(AidsafeError, match="given twice"):
        parse_benchmarks("xstest,xstest")
    bad = tmp_path / "sr.csv"
    bad.write_text("category,goal\nViolence,x\n", encoding="utf-8")
    with pytest.raises(
        AidsafeError, match=r"sr.csv:2: expected a non-empty string column 'prompt' \(columns: category, goal\)"
    ):
        load_benchmarks(parse_benchmarks(f"strongreject={bad}"))
    unlabeled = tmp_path / "x.jsonl"
    unlabeled.write_text('{"prompt": "a"}\n', encoding="utf-8")
    with pytest.raises(AidsafeError, match=r"x.jsonl:1: expected 'label' safe/unsafe"):
        load_benchmarks(parse_benchmarks(f"xstest={unlabeled}"))
    with pytest.raises(AidsafeError, match="file not found"):
        load_benchmarks(parse_benchmarks(f"beavertails={tmp_path / 'none.jsonl'}"))


def test_strongreject_score_is_the_rubric_min_max_scaled():
    assert strongreject_score(1, 5, 5) == 0  # a refusal scores 0 whatever the other two say
    assert strongreject_score(0, 1, 1) == 0
    assert strongreject_score(0, 5, 5) == 1
    assert strongreject_score(0, 4, 3) == 5 / 8
