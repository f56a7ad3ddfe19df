"""The run directory's journal: ids-only index, legacy lines, partial tails, streaming reads."""

from __future__ import annotations

import json
import sqlite3

import pytest

from aidsafe.errors import AidsafeError
from aidsafe.generation.records import corpus_stats, write_corpus_stats
from aidsafe.generation.runner import GenerateRequest, generate
from aidsafe.run.journal import RejectionInfo, RunDirectory, input_digest
from aidsafe.run.jsonl import cut_partial_tail, iter_jsonl
from aidsafe.teacher.types import TeacherStats
from aidsafe.testing import FakeTeacher

HASH = "abcdef0123456789"


def _opened(tmp_path) -> RunDirectory:
    run = RunDirectory(tmp_path / "run")
    run.check(HASH)
    run.open(HASH, {"name": "r"})
    return run


def _sample(item: str, text: str = "x") -> dict:
    return {"id": item, "prompt": text, "thoughts": [], "metadata": {"calls": []}}


def test_open_creates_both_journals_even_when_empty(tmp_path):
    run = _opened(tmp_path)
    assert run.samples_path.read_bytes() == b"" and run.rejected_path.read_bytes() == b""
    assert json.loads(run.run_info_path.read_text())["recipe_hash"] == HASH and run.recipe_path.exists()


def test_index_reads_ids_digests_and_rejections(tmp_path):
    run = _opened(tmp_path)
    odd = 'quo"te\\back é \u2028'  # escapes inside the id must survive the prefix scan
    run.append_sample(_sample(odd, "p1"), input_digest("p1"))
    run.append_sample(_sample("b", "p2"), input_digest("p2"))
    run.append_rejected(
        {
            "id": "c",
            "prompt": "p3",
            "stage": "refine",
            "reason": "teacher_unavailable",
            "error": "503",
            "transient": True,
        },
        input_digest("p3"),
    )
    index = run.index()
    assert index.finished == {odd: input_digest("p1"), "b": input_digest("p2")}
    assert index.rejected == {"c": RejectionInfo(True, "teacher_unavailable", input_digest("p3"))}
    first = json.loads(run.samples_path.read_text().split("\n")[0])  # not splitlines: \u2028
    assert list(first)[:2] == ["id", "input_sha"] and first["prompt"] == "p1"


def test_lines_written_before_input_sha_are_parsed_whole(tmp_path):
    run = _opened(tmp_path)
    # Key order of the previous version: no digest, "transient" last.
    run.samples_path.write_text(json.dumps({"id": "old", "prompt": "p"}) + "\n", encoding="utf-8")
    run.rejected_path.write_text(
        json.dumps({"id": "r", "prompt": "q", "stage": "s", "reason": "error", "error": "E", "transient": False})
        + "\n",
        encoding="utf-8",
    )
    index = run.index()
    assert index.finished == {"old": ""}
    assert index.rejected == {"r": RejectionInfo(False, "error", "")}


def test_a_broken_complete_line_names_file_and_line(tmp_path):
    run = _opened(tmp_path)
    run.append_sample(_sample("a"), input_digest("x"))
    with run.samples_path.open("a") as handle:
        handle.write("{not json}\n")
    with pytest.raises(AidsafeError, match=r"samples.jsonl:2: not valid JSON"):
        run.index()


def test_partial_tail_is_ignored_by_the_index_and_cut_by_open(tmp_path):
    run = _opened(tmp_path)
    run.append_sample(_sample("a"), input_digest("x"))
    whole = run.samples_path.read_bytes()
    run.samples_path.write_bytes(whole + b'{"id": "b", "input_sha": "12')  # a write cut short
    assert set(run.index().finished) == {"a"}
    assert [r["id"] for r in run.iter_samples()] == ["a"]
    run.open(HASH, {"name": "r"})
    assert run.samples_path.read_bytes() == whole


def test_cut_partial_tail_with_a_tail_longer_than_one_read_block(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"a": 1}\n' + b"x" * 200_000)
    cut_partial_tail(path)
    assert path.read_bytes() == b'{"a": 1}\n'
    path.write_bytes(b"y" * 70_000)  # no newline at all: the whole file is the tail
    cut_partial_tail(path)
    assert path.read_bytes() == b""


def test_lines_longer_than_a_read_chunk_stream_whole(tmp_path):
    path = tmp_path / "big.jsonl"
    big = {"id": "big", "text": "z" * (5 << 20)}
    path.write_text(json.dumps({"id": "s"}) + "\n" + json.dumps(big) + "\n", encoding="utf-8")
    assert [row["id"] for _, row in iter_jsonl(path)] == ["s", "big"]


def test_forget_rejections_keeps_the_others_byte_for_byte(tmp_path):
    run = _opened(tmp_path)
    for item in ("a", "b", "c"):
        run.append_rejected({"id": item, "stage": "s", "reason": "error", "transient": False}, input_digest(item))
    lines = run.rejected_path.read_text().splitlines(keepends=True)
    run.forget_rejections({"b"})
    assert run.rejected_path.read_text() == lines[0] + lines[2]


def test_a_lone_surrogate_in_a_prompt_is_journaled(tmp_path):
    run = _opened(tmp_path)
    run.append_sample(_sample("s", "bad \ud800 text"), input_digest("bad \ud800 text"))
    assert [r["prompt"] for r in run.iter_samples()] == ["bad \ud800 text"]
    assert run.index().finished == {"s": input_digest("bad \ud800 text")}


def test_check_writes_nothing(tmp_path):
    RunDirectory(tmp_path / "new" / "run").check(HASH)
    assert not (tmp_path / "new").exists()


def test_another_recipes_directory_is_refused_only_when_it_holds_an_item(tmp_path):
    run = _opened(tmp_path)
    (run.path / "checkpoints.sqlite").write_bytes(b"")
    RunDirectory(run.path).check("1111111111111111")  # no item yet: adopted
    run.open("1111111111111111", {"name": "other"})
    assert json.loads(run.run_info_path.read_text())["recipe_hash"] == "1111111111111111"
    assert not run.checkpoints_path.exists()  # the other recipe's unfinished work is not resumed
    run.append_rejected({"id": "a", "stage": "s", "reason": "error", "transient": False}, input_digest("a"))
    with pytest.raises(AidsafeError, match="different recipe"):
        run.check(HASH)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("run.json", b"{not json", "run.json: not valid JSON"),
        ("run.json", b'["a"]', "run.json: expected a JSON object"),
        ("checkpoints.sqlite", b"hello, not a database at all", "checkpoints.sqlite: not a SQLite database"),
    ],
)
def test_check_refuses_damaged_files_in_one_line(tmp_path, name, content, expected):
    run = _opened(tmp_path)
    (run.path / name).write_bytes(content)
    with pytest.raises(AidsafeError, match=expected) as caught:
        run.check(HASH)
    assert "\n" not in str(caught.value)


def test_a_real_sqlite_file_passes_the_check(tmp_path):
    run = _opened(tmp_path)
    sqlite3.connect(run.checkpoints_path).execute("create table t (x)").connection.close()
    run.check(HASH)


def test_output_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(AidsafeError, match="exists and is not a directory"):
        RunDirectory(tmp_path / "f").check(HASH)
    with pytest.raises(AidsafeError, match="is not a directory"):
        RunDirectory(tmp_path / "f" / "run").check(HASH)


def _finished(item: str, rounds: int, stop: str = "complete", tokens: int = 10) -> dict:
    return {
        "id": item,
        "prompt": item,
        "thoughts": [{"id": "t1", "text": "x", "policies": ["P1"]}] * rounds,
        "removed": [{"id": "t9", "reason": "redundant"}],
        "metadata": {"rounds_used": rounds, "stop_reason": stop, "prompt_tokens": tokens, "completion_tokens": 1},
    }


def _update(run: RunDirectory, inputs: int, calls: int = 0) -> dict:
    teacher = TeacherStats()
    teacher.calls = calls
    return write_corpus_stats(run, inputs=inputs, repeated_inputs=0, teacher=teacher, wall_s=1.0)


def _recount(run: RunDirectory, inputs: int) -> dict:
    return corpus_stats(run.iter_samples(), run.iter_rejected(), inputs, 0, TeacherStats(), 1.0)


def _corpus(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if k not in ("last_run", "spent", "journal")}  # costs: per run, not counted


def test_stats_update_reads_only_what_was_appended_and_matches_a_recount(tmp_path, monkeypatch):
    run = _opened(tmp_path)
    for n in range(3):
        run.append_sample(_finished(f"a{n}", n + 1), input_digest(f"a{n}"))
    run.append_rejected({"id": "r", "stage": "refine", "reason": "error", "transient": False}, "")
    _update(run, inputs=6)
    run.append_sample(_finished("b", 4, "budget", 7), input_digest("b"))
    read = []
    real = RunDirectory.iter_samples
    monkeypatch.setattr(
        RunDirectory, "iter_samples", lambda self, *a, **k: (read.append(r) or r for r in real(self, *a, **k))
    )
    stats = _update(run, inputs=6)
    assert [r["id"] for r in read] == ["b"]  # the three counted before are not parsed again
    monkeypatch.undo()
    assert _corpus(stats) == _corpus(_recount(run, 6))
    assert stats["samples"] == 4 and stats["rounds_used"]["histogram"] == {"1": 1, "2": 1, "3": 1, "4": 1}
    assert stats["rejected_by_reason"] == {"error": 1} and stats["pending"] == 1


@pytest.mark.parametrize("damage", ["truncate", "replace", "stats_garbage"])
def test_stats_are_recounted_when_the_journal_changed_under_them(tmp_path, damage):
    run = _opened(tmp_path)
    for n in range(3):
        run.append_sample(_finished(f"a{n}", n + 1), input_digest(f"a{n}"))
    _update(run, inputs=3)
    lines = run.samples_path.read_bytes().split(b"\n")
    if damage == "truncate":  # a hand edit dropped the last line
        run.samples_path.write_bytes(b"\n".join(lines[:2]) + b"\n")
    elif damage == "replace":  # same size, other content
        run.samples_path.write_bytes(b"\n".join([lines[0], lines[2], lines[1]]) + b"\n")
    else:
        run.stats_path.write_text("{nope", encoding="utf-8")
    assert _corpus(_update(run, inputs=3)) == _corpus(_recount(run, 3))


def test_a_rerun_with_nothing_to_do_keeps_the_last_run_that_made_calls(tmp_path, prompts_file):
    source = prompts_file(["a", "b"])
    request = GenerateRequest(
        recipe="aidsafe", input=str(source), output=tmp_path / "run", progress=False, overrides=["dedup.enabled=false"]
    )
    first = generate(request, env={}, teacher=FakeTeacher())
    assert first["last_run"]["calls"] == 10
    again = generate(request, env={}, teacher=FakeTeacher())
    assert again["last_run"] == first["last_run"] and again["samples"] == 2
    assert json.loads((tmp_path / "run" / "stats.json").read_text())["last_run"]["calls"] == 10


def test_saved_ids_spare_the_scan_and_are_ignored_once_stale(tmp_path, monkeypatch):
    run = _opened(tmp_path)
    for item in ("a", "b"):
        run.append_sample(_sample(item), input_digest(item))
    run.save_index()
    run.append_sample(_sample("c"), input_digest("c"))
    scanned = []
    real = RunDirectory._spans
    monkeypatch.setattr(RunDirectory, "_spans", lambda self, path, start=0, stop=None: (
        scanned.append(bytes(s[1][s[2] : s[3]])) or s for s in real(self, path, start, stop)
    ))  # fmt: skip
    assert run.index().finished == {k: input_digest(k) for k in "abc"}
    assert [json.loads(line)["id"] for line in scanned] == ["c"]  # a and b came from samples.ids.json
    monkeypatch.undo()
    run.samples_path.write_bytes(run.samples_path.read_bytes().split(b"\n", 1)[1])  # a hand edit drops "a"
    assert set(run.index().finished) == {"b", "c"}
    run.ids_path.write_text("{damaged", encoding="utf-8")
    assert set(run.index().finished) == {"b", "c"}


def test_a_file_without_a_final_newline_keeps_its_last_line_unless_it_is_a_cut_write(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a"}\n{"prompt": "b"}', encoding="utf-8")  # edited by hand: no final newline
    assert [row["prompt"] for _, row in iter_jsonl(path)] == ["a", "b"]
    path.write_text('{"prompt": "a"}\n{"prompt": ', encoding="utf-8")
    assert [row["prompt"] for _, row in iter_jsonl(path, skip_partial_tail=True)] == ["a"]
    with pytest.raises(AidsafeError, match=r"p.jsonl:2: not valid JSON"):
        list(iter_jsonl(path))


def test_a_file_of_the_run_directory_that_is_a_directory_is_refused(tmp_path):
    run = _opened(tmp_path)
    run.stats_path.mkdir()
    with pytest.raises(AidsafeError, match="stats.json: exists and is not a file"):
        run.check(HASH)


def test_saving_ids_with_nothing_appended_rewrites_nothing(tmp_path):
    run = _opened(tmp_path)
    run.append_sample(_sample("a"), input_digest("a"))
    run.save_index()
    before = run.ids_path.stat().st_mtime_ns
    again = RunDirectory(run.path)
    again.index()
    again.save_index()
    assert run.ids_path.stat().st_mtime_ns == before
    again.append_sample(_sample("b"), input_digest("b"))
    again.save_index()
    assert set(json.loads(run.ids_path.read_text())["finished"]) == {"a", "b"}


def test_a_real_run_leaves_the_ids_file_a_rerun_reads(tmp_path, run_cli):
    """samples.ids.json was written only by tests and benchmarks, so the resume figure measured a
    state real runs never left; `aidsafe generate` writes it at the end of every run."""
    import shutil
    from pathlib import Path

    from aidsafe.testing import schema_responder
    from aidsafe.testing.server import ScriptedServer
    from tests.helpers import FAST_NO_RETRY as FAST

    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_runs"
    run = tmp_path / "run"
    shutil.copytree(fixtures / "generation", run)
    assert not (run / "samples.ids.json").exists()
    with ScriptedServer(schema_responder(seed=3), models=["m"]) as server:
        args = ["-i", fixtures.parents[2] / "examples" / "prompts.jsonl", "-o", run, "--set", "dedup.enabled=false"]
        code, _, err = run_cli("generate", "aidsafe", *args, "--base-url", server.base_url, "--model", "m", *FAST)
    assert code == 0, err
    saved = json.loads((run / "samples.ids.json").read_text())
    ids = [json.loads(line)["id"] for line in (run / "samples.jsonl").read_text().splitlines() if line]
    assert sorted(saved["finished"]) == sorted(ids) and len(ids) == 6
    assert saved["samples.jsonl"]["bytes"] == (run / "samples.jsonl").stat().st_size


def test_run_json_and_records_say_which_aidsafe_wrote_them_and_when(tmp_path):
    import re

    import aidsafe

    run = RunDirectory(tmp_path / "run")
    run.open("h1", {"name": "x"}, "generation")
    first = json.loads(run.run_info_path.read_text())
    assert first["created"]["aidsafe_version"] == aidsafe.__version__
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["created"]["at"])
    run.run_info_path.write_text(json.dumps({**first, "created": {"aidsafe_version": "0.0.1", "at": "x"}}))
    run.open("h1", {"name": "x"}, "generation")  # resumed by a later aidsafe
    again = json.loads(run.run_info_path.read_text())
    assert again["created"] == {"aidsafe_version": "0.0.1", "at": "x"}  # kept
    assert again["last_run"]["aidsafe_version"] == aidsafe.__version__

    from aidsafe.run.executor import RecipeJournal

    RecipeJournal(run, "h1", {"name": "x"}).append_sample({"id": "a", "prompt": "p"}, "d")
    [record] = list(run.iter_samples())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["finished_at"])
