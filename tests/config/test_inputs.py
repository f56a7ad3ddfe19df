"""Reading prompts: formats, stable ids, repeats, and one-line errors."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aidsafe.errors import AidsafeError
from aidsafe.sources import prompt_id, read_prompts


def test_jsonl_ids_given_or_hashed(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": 7, "prompt": "a"}\n\n{"prompt": "b"}\n{"prompt": "b"}\n', encoding="utf-8")
    prompts, repeats = read_prompts(str(path))
    assert [(p.id, p.prompt) for p in prompts] == [("7", "a"), (prompt_id("b"), "b")]
    assert repeats == 1
    assert prompt_id("b") == prompt_id("b") != prompt_id("c")


def test_csv_and_parquet_with_custom_field(tmp_path):
    csv_path = tmp_path / "p.csv"
    csv_path.write_text("question,id\nhello,q1\nworld,q2\n", encoding="utf-8")
    prompts, _ = read_prompts(str(csv_path), prompt_field="question")
    assert [(p.id, p.prompt) for p in prompts] == [("q1", "hello"), ("q2", "world")]

    parquet_path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"text": ["x", "y"]}), parquet_path)
    prompts, _ = read_prompts(str(parquet_path), prompt_field="text")
    assert [p.prompt for p in prompts] == ["x", "y"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"prompt": "ok"}\n{"prompt": "broken"\n', r"p\.jsonl:2: not valid JSON"),
        ('{"prompt": "ok"}\n{"text": "no prompt"}\n', r"p\.jsonl:2: missing field 'prompt' \(fields: text\)"),
        ('{"prompt": ""}\n', r"p\.jsonl:1: field 'prompt' must be a non-empty string"),
        ("[1, 2]\n", r"p\.jsonl:1: expected a JSON object"),
        ("", r"p\.jsonl: no prompts"),
        ('{"id": 1, "prompt": "a"}\n{"id": 1, "prompt": "b"}\n', r"p\.jsonl:2: id '1' was already used .*p\.jsonl:1"),
    ],
)
def test_bad_jsonl_names_the_line(tmp_path, content, message):
    path = tmp_path / "p.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(AidsafeError, match=message):
        read_prompts(str(path))


def test_missing_file_and_unknown_type(tmp_path):
    with pytest.raises(AidsafeError, match="file not found"):
        read_prompts(str(tmp_path / "nope.jsonl"))
    other = tmp_path / "p.txt"
    other.write_text("x", encoding="utf-8")
    with pytest.raises(AidsafeError, match="unsupported file type .txt"):
        read_prompts(str(other))


def test_hub_id_offline_fails_with_one_line(monkeypatch):
    with pytest.raises(AidsafeError, match=r"^someone/prompts: cannot load Hugging Face dataset"):
        read_prompts("someone/prompts")


@pytest.mark.parametrize(
    ("header", "rows", "expected"),
    [
        ("prompt,id", "hello,q1\nworld,q2\n", [("q1", "hello"), ("q2", "world")]),
        ("id,prompt", "q1,hello\nq2,world\n", [("q1", "hello"), ("q2", "world")]),
    ],
    ids=["prompt-first", "id-first"],
)
def test_csv_with_a_byte_order_mark(tmp_path, header, rows, expected):
    """Excel's "CSV UTF-8" starts with a BOM; it must not stick to the first column's name."""
    path = tmp_path / "p.csv"
    path.write_bytes(f"{header}\n{rows}".encode("utf-8-sig"))
    prompts, _ = read_prompts(str(path))
    assert [(p.id, p.prompt) for p in prompts] == expected


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("p.jsonl", '{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n'.encode("latin-1"), r"p\.jsonl:2: .*0xe9 at offset 32"),
        ("p.csv", "prompt\nok\ncaf\xe9\n".encode("latin-1"), r"p\.csv:3: .*0xe9 at offset 13"),
    ],
)
def test_latin1_prompts_name_file_line_and_offset(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AidsafeError, match=r"not UTF-8 text") as error:
        read_prompts(str(path))
    assert re.search(message, str(error.value)), error.value


def test_parquet_reads_only_the_prompt_and_id_columns(tmp_path, monkeypatch):
    path = tmp_path / "p.parquet"
    blob = "x" * 100_000  # a column many times the prompts' size (responses, embeddings ...)
    pq.write_table(pa.table({"prompt": ["a", "b"], "blob": [blob, blob], "id": ["1", "2"]}), path)
    asked = []
    real = pq.read_table
    monkeypatch.setattr(pq, "read_table", lambda *a, **kw: asked.append(kw.get("columns")) or real(*a, **kw))
    prompts, _ = read_prompts(str(path))
    assert [(p.id, p.prompt) for p in prompts] == [("1", "a"), ("2", "b")]
    assert asked == [["prompt", "id"]]


def test_parquet_missing_prompt_column_lists_all_columns(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"text": ["a"], "blob": ["b"]}), path)
    with pytest.raises(AidsafeError, match=r"p\.parquet: missing field 'prompt' \(fields: text, blob\)"):
        read_prompts(str(path))


def test_hub_dataset_keeps_only_the_prompt_and_id_columns(monkeypatch):
    import datasets

    table = datasets.Dataset.from_dict({"question": ["a", "b"], "blob": ["x" * 1000] * 2, "id": ["1", "2"]})
    seen = []
    real = datasets.Dataset.select_columns

    def spy(self, columns, *args, **kwargs):
        seen.append(list(columns))
        return real(self, columns, *args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", lambda name, split: table)
    monkeypatch.setattr(datasets.Dataset, "select_columns", spy)
    prompts, _ = read_prompts("someone/prompts", prompt_field="question")
    assert [(p.id, p.prompt) for p in prompts] == [("1", "a"), ("2", "b")]
    assert seen == [["question", "id"]]
