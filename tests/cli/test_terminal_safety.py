"""Data never drives the terminal: control sequences in prompts, ids and replies are shown escaped
by `aidsafe show` and in error lines, and rich markup in a message is printed as written (an
unbalanced `[/INST]` crashed the CLI with a MarkupError; `[bold]` vanished)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aidsafe.terminal import printable

LEGACY_RUN = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_runs" / "generation"
# Clear screen, a window title, an OSC 8 link, an OSC 52 clipboard write, a C1 CSI, a bidi override.
HOSTILE = "\x1b[2J\x1b]0;pwned\x07\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\\x1b]52;c;cm0gLXJm\x07\x9b31m\u202etxt"
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


def test_printable_escapes_controls_and_keeps_text():
    assert printable("a\tb\nc") == "a\tb\nc"
    shown = printable(HOSTILE)
    assert not any(c in shown for c in RAW)
    assert "\\x1b[2J" in shown and "\\x9b" in shown and "\\u202e" in shown and "pwned" in shown


@pytest.fixture
def hostile_run(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(LEGACY_RUN, run)
    lines = (run / "samples.jsonl").read_text(encoding="utf-8").split("\n")
    record = json.loads(lines[0])
    record["prompt"] = HOSTILE + " prompt"
    record["response"] = HOSTILE + " response"
    record["thoughts"][0]["text"] = HOSTILE + " thought"
    lines[0] = json.dumps(record)
    (run / "samples.jsonl").write_text("\n".join(lines), encoding="utf-8")
    return run, record["id"]


def test_show_escapes_control_sequences(run_cli, hostile_run):
    run, sample_id = hostile_run
    for args in (("show", run), ("show", run, sample_id)):
        code, out, err = run_cli(*args)
        assert code == 0, err
        assert not any(c in out for c in RAW), repr(out[:300])
        assert "\\x1b" in out


@pytest.mark.parametrize("ref", ["[/INST]", "x[/x]y", "[bold]kept[/bold]", "[type=literal_error, input=1]"])
def test_error_lines_print_markup_as_written(run_cli, ref):
    code, out, err = run_cli("validate", ref)
    assert code == 2
    assert err.startswith("error: ") and ref in err and "Traceback" not in err


def test_error_lines_escape_control_sequences(run_cli):
    code, _, err = run_cli("validate", HOSTILE)
    assert code == 2 and err.startswith("error: ")
    assert not any(c in err for c in RAW) and "\\x1b]0;pwned" in err


def test_result_lines_print_paths_as_written(tmp_path, run_cli):
    """A result line quotes the output path: `[/x]` in it crashed rich's markup parser after the
    run had finished (exit 1, a traceback, the summary lost)."""
    from aidsafe.testing import schema_responder
    from aidsafe.testing.server import ScriptedServer

    out = tmp_path / "run[/x][bold]"
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_runs"
    with ScriptedServer(schema_responder(seed=3), models=["m"]) as server:
        args = ["-i", fixtures / "beavertails.jsonl", "-o", out, "--limit", "1", "--no-progress"]
        code, _, err = run_cli("generate", "thinkguard", *args, "--base-url", server.base_url, "--model", "m")
    assert code == 0, err
    assert f"-> {out / 'samples.jsonl'}" in err
