"""`--data` that names a missing local path is "not found" at once, never a request to the Hub."""

from __future__ import annotations

import pytest

from aidsafe.errors import AidsafeError
from aidsafe.sources import looks_like_hub_id
from aidsafe.train import load_train_recipe
from aidsafe.train.data import load_train_data


@pytest.mark.parametrize(
    ("ref", "hub"),
    [
        ("owner/name", True),
        ("owner/name:test", True),
        ("runs/nosuch", False),  # runs/ is a folder here (made by the test)
        ("./nosuch", False),
        ("../x/y", False),
        ("/abs/path", False),
        ("~/data", False),
        ("a/b/c", False),
        ("owner/name.jsonl", False),
        ("Qwen/Qwen2.5-7B-Instruct", True),  # a dot in a Hub name is not a file suffix
        ("AmazonScience/AIDSAFE.v2:train", True),
        ("nosuch", False),
    ],
)
def test_path_like_refs_are_not_hub_ids(tmp_path, monkeypatch, ref, hub):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    assert looks_like_hub_id(ref) is hub


@pytest.mark.parametrize("ref", ["runs/nosuch", "./runs/nosuch", "runs/a/b", "data.jsonl"])
def test_missing_local_data_is_not_found_without_asking_the_hub(tmp_path, monkeypatch, ref):
    import datasets

    def hub(*args, **kwargs):
        raise AssertionError("the Hub was asked")

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    monkeypatch.setattr(datasets, "load_dataset", hub)
    with pytest.raises(AidsafeError, match=rf"^{ref}: no such file or folder"):
        load_train_data(ref, load_train_recipe("sft"))


@pytest.mark.parametrize("ref", ["./nosuch", "../nosuch", "/no/such/model", "runs/a/model"])
def test_a_missing_model_folder_is_not_found_before_loading(tmp_path, monkeypatch, ref):
    import json

    from aidsafe.train.run import train_model

    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data.jsonl"
    row = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    data.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(AidsafeError, match=rf"^--model {ref}: no such folder"):
        train_model(load_train_recipe("sft"), ref, str(data), tmp_path / "out")
