"""`aidsafe report` and `aidsafe show` through the CLI on real runs."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from aidsafe.report.page import embed_json
from tests.report.conftest import HOSTILE

PNG = b"\x89PNG\r\n\x1a\n"


def test_report_is_self_contained_and_escapes_sample_text(run_cli, generation_run, tmp_path):
    page, pngs = tmp_path / "out" / "r.html", tmp_path / "png"
    code, _, err = run_cli("report", generation_run, "--output", page, "--png", pngs)
    assert code == 0, err
    text = page.read_text(encoding="utf-8")
    # Nothing is fetched at view time: no external src/href, no URL but the SVG namespaces.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) <= {
        "http://www.w3.org/2000/svg",
        "http://www.w3.org/1999/xlink",
    }
    assert text.count("<script") == 2  # the JSON data block and page.js, nothing from a sample
    for prompt in HOSTILE:
        assert prompt not in text and embed_json(prompt)[1:-1] in text
    plots = {p.stem for p in pngs.iterdir()}
    assert {"stop_reasons", "rounds_used", "thoughts_removed", "policies_per_thought", "rejection_reasons"} <= plots
    assert all(p.read_bytes().startswith(PNG) for p in pngs.iterdir())
    assert set(re.findall(r'data-plot="([^"]+)"', text)) == plots  # each plot in the page has its PNG


def test_embedded_json_round_trips_and_cannot_close_its_element():
    value = {"t": "</script><script>alert(1)</script> & <!-- \u2028"}
    text = embed_json(value)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == value


def test_report_caps_the_browser_and_says_so(run_cli, generation_run, tmp_path):
    page = tmp_path / "r.html"
    code, _, err = run_cli("report", generation_run, "--output", page, "--max-samples", "2")
    assert code == 0, err
    text = page.read_text(encoding="utf-8")
    total = sum(1 for name in ("samples.jsonl", "rejected.jsonl")
                for line in (generation_run / name).read_text().split("\n") if line)  # fmt: skip
    assert 'id="cap-note"' in text and f"first 2 of {total} records" in text
    data = json.loads(re.search(r'id="aidsafe-samples">(.*?)</script>', text, re.DOTALL)[1])
    assert len(data["samples"]) == 2


def test_report_of_a_missing_run_is_one_line(run_cli, tmp_path):
    code, out, err = run_cli("report", tmp_path / "nope")
    assert code == 2 and "no such run directory" in err and len(err.strip().splitlines()) == 1


def test_show_prints_a_table_and_one_sample_as_text(run_cli, generation_run):
    code, out, err = run_cli("show", generation_run, "--limit", "3")
    assert code == 0, err
    ids = [json.loads(line)["id"] for line in (generation_run / "samples.jsonl").read_text().split("\n") if line]
    assert all(i in out for i in ids[:3]) and ids[3] not in out and "stop reason" in out
    # The journal is in finishing order, which concurrency makes any order: find the sample by text.
    records = [json.loads(line) for line in (generation_run / "samples.jsonl").read_text().split("\n") if line]
    record = next(r for r in records if "rich markup" in r["prompt"])
    code, out, err = run_cli("show", generation_run, record["id"])
    assert code == 0, err
    flat = " ".join(out.split())  # rich wraps long lines
    for title in ("Prompt", "Intents", "Refined thoughts", "Deliberation", "Removed thoughts"):
        assert title in out
    assert "[bold red]rich markup[/]" in flat  # sample text is never read as rich markup
    for turn in record["deliberation"]:
        assert f"round {turn['round']} · {turn['agent']}" in flat


def test_show_a_rejected_sample_and_an_unknown_id(run_cli, generation_run):
    rejected = json.loads((generation_run / "rejected.jsonl").read_text().split("\n")[0])
    code, out, _ = run_cli("show", generation_run, rejected["id"])
    assert code == 0 and rejected["reason"] in out and "Rejected" in out
    code, out, err = run_cli("show", generation_run, "no-such-id")
    assert code == 2 and "no sample with id 'no-such-id'" in err and len(err.strip().splitlines()) == 1


def test_show_keeps_every_column_at_80_columns(run_cli, generation_run, monkeypatch):
    """Too narrow for the table, rich would drop its last columns: each sample is stacked instead."""
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run_cli("show", generation_run, "--limit", "3")
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= 80 and "…" not in out
    for column in ("id", "prompt", "stop reason", "rounds", "thoughts", "turns", "removed"):
        assert re.search(rf"^{column} ", out, re.M), column
    ids = [json.loads(line)["id"] for line in (generation_run / "samples.jsonl").read_text().split("\n") if line]
    assert all(f"id          {i}" in out for i in ids[:3])


LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_runs"


def test_a_run_path_holding_rich_markup_is_reported_as_written(run_cli, tmp_path):
    """`reading {run_dir}` went through rich markup: `[/x]` in the path crashed the command."""
    run = tmp_path / "runs[" / "x]"  # the path reads `runs[/x]`: a closing tag with no opening one
    shutil.copytree(LEGACY / "generation", run)
    code, _, err = run_cli("report", run)
    assert code == 0, err
    assert (run / "report.html").is_file() and f"-> {run / 'report.html'}" in err


def test_a_report_into_a_run_another_aidsafe_is_writing_is_refused(run_cli, tmp_path):
    """report.html was written into the run directory while another command held its lock."""
    from aidsafe.run.lock import run_lock

    run = Path(shutil.copytree(LEGACY / "generation", tmp_path / "run"))
    with run_lock(run, what="generating"):
        code, _, err = run_cli("report", run)
        assert code == 2 and "is generating this run" in err and len(err.strip().splitlines()) == 1
        assert not (run / "report.html").exists()
        # Written elsewhere, the report reads the run in progress (a cut-off last line is skipped).
        code, _, err = run_cli("report", run, "--output", tmp_path / "elsewhere.html")
        assert code == 0, err
    code, _, err = run_cli("report", run)  # the lock is free again: the default place is taken
    assert code == 0, err
    assert (run / "report.html").is_file()
