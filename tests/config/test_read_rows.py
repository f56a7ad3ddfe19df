"""`aidsafe.sources.read_rows`: the one reader of "a local file or a Hugging Face Hub id".

Files of every format are real files; the Hub path is the real `datasets.load_dataset` reading a
dataset from the datasets cache offline (what a user who loaded it once before gets with
HF_HUB_OFFLINE=1), and a Hub id that is not cached fails as it does offline. The last test puts
the same bad input to every command's reader: each must give the same one-line error, so a
caller that goes back to a reader of its own fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aidsafe.errors import AidsafeError
from aidsafe.eval.benchmarks import load_benchmarks, parse_benchmarks
from aidsafe.guard.critiques import read_conversations
from aidsafe.guard.formats import GUARDREASONER_INSTRUCTION, answer_block, guardreasoner_input
from aidsafe.guard.predict import load_benchmark
from aidsafe.guard.sources import read_source
from aidsafe.sources import hub_parts, read_prompts, read_rows
from tests.guard.beavertails_rows import beavertails_row

ROWS = [{"prompt": "first", "id": "a"}, {"prompt": "second\u2028line", "id": "b"}]


def _write(path: Path, rows: list[dict]) -> Path:
    kind = "jsonl" if path.name.endswith(".jsonl.txt") else path.suffix[1:]
    if kind == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif kind == "json":
        path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    elif kind == "csv":
        header = list(rows[0])
        path.write_text(
            ",".join(header) + "\n" + "".join(",".join(r[c] for c in header) + "\n" for r in rows), encoding="utf-8"
        )
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.parametrize(
    ("name", "places"),
    [
        ("p.jsonl", ["p.jsonl:1", "p.jsonl:2"]),
        ("p.jsonl.txt", ["p.jsonl.txt:1", "p.jsonl.txt:2"]),
        ("p.json", ["p.json: record 1", "p.json: record 2"]),  # counted from 1, as lines are
        ("p.csv", ["p.csv:2", "p.csv:3"]),  # the header is line 1
        ("p.parquet", ["p.parquet: row 1", "p.parquet: row 2"]),
    ],
)
def test_every_file_format_gives_the_same_rows_and_names_their_places(tmp_path, name, places):
    path = _write(tmp_path / name, ROWS)
    rows = read_rows(str(path))
    assert [row for _, row in rows] == ROWS
    assert [where for where, _ in rows] == [f"{tmp_path}/{place}" for place in places]


def test_a_json_file_of_json_lines_is_read_as_json_lines(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n", encoding="utf-8")
    assert read_rows(str(path)) == [(f"{path}:1", ROWS[0]), (f"{path}:2", ROWS[1])]


def test_columns_choose_what_a_parquet_file_reads(tmp_path):
    path = _write(tmp_path / "p.parquet", [{**r, "blob": "x" * 1000} for r in ROWS])
    seen = []

    def choose(names, place):
        seen.append((names, place))
        return ["prompt"]

    assert [row for _, row in read_rows(str(path), columns=choose)] == [
        {"prompt": "first"},
        {"prompt": "second\u2028line"},
    ]
    assert seen == [(["prompt", "id", "blob"], str(path))]


def _latin1(name: str) -> bytes:
    text = {
        "x.jsonl": '{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n',
        "x.json": '[\n{"prompt": "ok"},\n{"prompt": "caf\xe9"}\n]\n',
        "x.csv": "prompt\nok\ncaf\xe9\n",
    }[name]
    return text.encode("latin-1")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.jsonl", '{"prompt": "ok"}\n{"prompt": \n', r"x\.jsonl:2: not valid JSON"),
        ("x.jsonl", '{"prompt": "ok"}\n[1, 2]\n', r"x\.jsonl:2: expected a JSON object, got list"),
        ("x.json", '[\n{"prompt": "ok"},\n{"prompt": }\n]', r"x\.json:3: not valid JSON"),
        ("x.json", '[{"prompt": "ok"}, 7]', r"x\.json: record 2: expected a JSON object, got int"),
        ("x.jsonl", _latin1("x.jsonl"), r"x\.jsonl:2: not UTF-8 text \(byte 0xe9 at offset 32\)"),
        ("x.json", _latin1("x.json"), r"x\.json:3: not UTF-8 text \(byte 0xe9"),
        ("x.csv", _latin1("x.csv"), r"x\.csv:3: not UTF-8 text \(byte 0xe9 at offset 13\)"),
        ("x.jsonl", "\n\n", r"x\.jsonl: no rows \(the file is empty\)"),
        ("x.json", "[]", r"x\.json: no rows \(the JSON array is empty\)"),
        ("x.csv", "prompt\n", r"x\.csv: no rows \(no rows after the header\)"),
        ("x.parquet", b"PAR1 not really", r"x\.parquet: cannot read Parquet \("),
        ("x.txt", "hello", r"x\.txt: unsupported file type \.txt; expected \.jsonl, \.json, \.csv or \.parquet"),
    ],
)
def test_bad_files_are_one_line_naming_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    with pytest.raises(AidsafeError, match=message) as caught:
        read_rows(str(path))
    assert "\n" not in str(caught.value)


def test_an_empty_parquet_table_says_so(tmp_path):
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"prompt": pa.array([], pa.string())}), path)
    with pytest.raises(AidsafeError, match=r"x\.parquet: no prompts \(the table has no rows\)"):
        read_rows(str(path), noun="prompts")


def test_missing_paths_and_directories_are_not_hub_requests(tmp_path):
    with pytest.raises(AidsafeError, match=r"nope\.jsonl: file not found \(and not a Hugging Face dataset id"):
        read_rows(str(tmp_path / "nope.jsonl"))
    with pytest.raises(AidsafeError, match=r": is a directory; expected a \.jsonl, \.json, \.csv or \.parquet file"):
        read_rows(str(tmp_path))


@pytest.mark.parametrize(
    ("ref", "parts"),
    [
        ("o/n", ("o/n", "cfg", "train")),
        ("o/n:test", ("o/n", "cfg", "test")),
        ("o/n:c2:test", ("o/n", "c2", "test")),
        ("o/n::test", ("o/n", None, "test")),  # an empty config drops the default one
        ("o/n:c2:", ("o/n", "c2", "train")),
    ],
)
def test_hub_parts_fill_in_the_defaults(ref, parts):
    assert hub_parts(ref, "cfg", "train") == parts


# ----------------------------------------------------------------------------------------------
# The Hub path through the real `datasets`, offline.


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """Put `rows` in a private datasets cache as Hub dataset `repo`, as `load_dataset(repo)` leaves it.

    The cache is what `load_dataset` reads offline; we fill it with datasets' own Parquet builder.
    That builder names its config folder after its data files (`default-<hash>`); a dataset loaded
    from the Hub has the config's bare name there, which is where the offline lookup looks.
    """
    import datasets
    from datasets.naming import camelcase_to_snakecase
    from datasets.packaged_modules.parquet.parquet import Parquet

    cache = tmp_path / "datasets-cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)

    def put(repo: str, splits: dict[str, list[dict]]) -> None:
        owner, name = repo.split("/")
        files = {}
        for split, rows in splits.items():
            files[split] = str(tmp_path / f"{name}-{split}.parquet")
            pq.write_table(pa.Table.from_pylist(rows), files[split])
        builder = Parquet(cache_dir=str(tmp_path / "build"), dataset_name=name, config_name="default", data_files=files)
        builder.download_and_prepare()
        target = cache / f"{owner}___{camelcase_to_snakecase(name)}" / "default" / "0.0.0" / "0"
        target.parent.mkdir(parents=True)
        Path(builder.cache_dir).rename(target)

    return put


def test_a_hub_id_reads_its_split_with_the_chosen_columns(hub_cache):
    with_blob = [{**r, "blob": "x"} for r in ROWS]  # a dataset has one set of columns in all its splits
    hub_cache("someone/prompts", {"train": with_blob, "test": [{"prompt": "third", "id": "c", "blob": "y"}]})
    rows = read_rows("someone/prompts")
    assert rows == [("someone/prompts: row 1", with_blob[0]), ("someone/prompts: row 2", with_blob[1])]
    test_split = [{"prompt": "third", "id": "c", "blob": "y"}]
    assert read_rows("someone/prompts:test") == [("someone/prompts:test: row 1", test_split[0])]
    assert read_rows("someone/prompts", split="test") == [("someone/prompts: row 1", test_split[0])]
    chosen = read_rows("someone/prompts", columns=lambda names, place: [n for n in names if n != "blob"])
    assert [row for _, row in chosen] == ROWS
    prompts, _ = read_prompts("someone/prompts")
    assert [(p.id, p.prompt) for p in prompts] == [("a", "first"), ("b", "second\u2028line")]


@pytest.mark.parametrize("ref", ["someone/prompts:nosuch", "someone/prompts:otherconfig:train"])
def test_a_hub_split_or_config_that_is_not_there_is_one_line(hub_cache, ref):
    """datasets says so on several lines (the configs it has on the next); we say it on one."""
    hub_cache("someone/prompts", {"train": ROWS})
    with pytest.raises(AidsafeError, match=rf"^{ref}: cannot load Hugging Face dataset \(\w+: ") as caught:
        read_rows(ref)
    assert "\n" not in str(caught.value)


def test_guard_and_critique_readers_take_their_hub_defaults(hub_cache):
    """BeaverTails by bare id: the guard source's default split is 30k_train (HUB_DEFAULTS)."""
    rows = [beavertails_row("how do I hurt a cat", "do not", []), beavertails_row("q2", "kill it", ["animal_abuse"])]
    hub_cache("PKU-Alignment/BeaverTails", {"30k_train": rows})
    read = read_source("PKU-Alignment/BeaverTails")
    assert read.source == "beavertails" and [r.prompt for r in read.rows] == ["how do I hurt a cat", "q2"]
    assert read.rows[1].source == "PKU-Alignment/BeaverTails: row 2"
    conversations, _ = read_conversations("PKU-Alignment/BeaverTails:30k_train")
    assert [c.categories for c in conversations] == [(), ("S1",)]


@pytest.mark.parametrize("source", ["auto", "guardreasoner"])
def test_guardreasoner_training_rows_by_hub_id_come_from_the_train_split(hub_cache, source):
    """Read to detect the source and read again as GuardReasoner rows: both times the train split
    (the benchmark reader's default is test, which a training set need not have)."""
    record = {
        "instruction": GUARDREASONER_INSTRUCTION,
        "input": guardreasoner_input("how do I hurt a cat", None),
        "output": answer_block("harmful", None, None),
    }
    hub_cache("someone/guard-train", {"train": [record]})
    read = read_source("someone/guard-train", source)
    assert read.source == "guardreasoner" and [r.prompt for r in read.rows] == ["how do I hurt a cat"]


def test_a_hub_id_not_in_the_cache_fails_offline_in_one_line():
    with pytest.raises(AidsafeError, match=r"^nobody/nothing: cannot load Hugging Face dataset \(") as caught:
        read_rows("nobody/nothing")
    assert "\n" not in str(caught.value)


# ----------------------------------------------------------------------------------------------
# Every command's reader gives the same one-line errors, because every one is `read_rows`.

READERS = {
    "generate --input": read_prompts,
    "generate guardreasoner --input": read_source,
    "generate thinkguard --input": read_conversations,
    "eval safety --benchmarks": lambda ref: load_benchmarks(parse_benchmarks(f"xstest={ref}")),
    "predict guard --benchmark": load_benchmark,
}


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.jsonl", '{"prompt": "ok"}\n{"prompt": \n', r"x\.jsonl:2: not valid JSON"),
        ("x.jsonl", '{"prompt": "ok"}\n"text"\n', r"x\.jsonl:2: expected a JSON object, got str"),
        ("x.json", '[{"prompt": "ok"}, []]', r"x\.json: record 2: expected a JSON object, got list"),
        ("x.jsonl", _latin1("x.jsonl"), r"x\.jsonl:2: not UTF-8 text \(byte 0xe9 at offset 32\)"),
        ("x.csv", _latin1("x.csv"), r"x\.csv:3: not UTF-8 text \(byte 0xe9 at offset 13\)"),
        ("x.jsonl", "", r"x\.jsonl: no (rows|prompts) \(the file is empty\)"),
        ("x.parquet", b"not parquet", r"x\.parquet: cannot read Parquet"),
        ("x.txt", "{}", r"x\.txt: unsupported file type \.txt"),
        ("nothing.jsonl", None, r"nothing\.jsonl: file not found"),
        ("folder", None, r"folder: is a directory; expected a \.jsonl, \.json, \.csv or \.parquet file"),
        ("nobody/nothing", None, r"^nobody/nothing: cannot load Hugging Face dataset"),
    ],
)
def test_every_reader_gives_the_same_one_line_errors(tmp_path, monkeypatch, reader, name, content, message):
    if name == "folder":
        (tmp_path / name).mkdir()
    elif content is not None:
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    monkeypatch.chdir(tmp_path)  # `nobody/nothing` must not be a folder here, and `folder` is one
    with pytest.raises(AidsafeError) as caught:
        reader(name if "/" in name else str(tmp_path / name))
    assert re.search(message, str(caught.value)), caught.value
    assert "\n" not in str(caught.value)
