"""An export is built beside its folder and moved into place whole (aidsafe.export.staging): one
that fails after it started leaves nothing, so the next attempt is not refused ("not empty and not
an aidsafe export"); a re-export that fails leaves the previous export as it was."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import datasets
import pytest

from aidsafe.errors import AidsafeError
from aidsafe.export import ExportRequest, export_run
from aidsafe.run.lock import LOCK_FILE, run_lock


def _siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if ".partial-" in p.name)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _fail_writing_the_card(monkeypatch, error: BaseException) -> None:
    """The last step of an export fails: every Parquet shard and filtered.jsonl are written by then."""
    import aidsafe.export.card

    def write_card(output, *args, **kwargs):
        assert (output / "filtered.jsonl").is_file() and any((output / "sft").iterdir())
        raise error

    monkeypatch.setattr(aidsafe.export.card, "write_card", write_card)


@pytest.mark.parametrize(
    "error", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()], ids=["disk-full", "ctrl-c"]
)
def test_an_export_that_fails_late_leaves_nothing_and_the_next_one_runs(run_dir, tmp_path, monkeypatch, error):
    out = tmp_path / "exports" / "dataset"  # its parent too is made by the export, and removed with it
    with monkeypatch.context() as patch:
        _fail_writing_the_card(patch, error)
        with pytest.raises(AidsafeError if isinstance(error, OSError) else KeyboardInterrupt) as caught:
            export_run(ExportRequest(run_dir, out, ("sft",)))
    if isinstance(error, OSError):
        assert "No space left on device" in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "exports").exists()
    assert export_run(ExportRequest(run_dir, out, ("sft",))).configs["sft"]["train"] == 12
    assert _siblings(out) == [] and not (out / LOCK_FILE).exists()
    assert len(datasets.load_dataset(str(out), split="train")) == 12


def test_a_failed_reexport_leaves_the_previous_export_and_a_retry_keeps_it_all(run_dir, tmp_path, monkeypatch, run_cli):
    out = tmp_path / "dataset"
    export_run(ExportRequest(run_dir, out, ("sft",)))
    (out / "notes.md").write_text("my notes\n")  # a user's file in the folder stays with it
    before = _tree(out)
    with monkeypatch.context() as patch:
        _fail_writing_the_card(patch, OSError(errno.EIO, "Input/output error"))
        code, _, err = run_cli("export", run_dir, "-o", out, "-f", "sft", "-f", "aidsafe")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Input/output error" in err
    assert _tree(out) == before and _siblings(out) == []
    # Adding a config carries the kept one over (hard links: nothing copied) and replaces the folder.
    export_run(ExportRequest(run_dir, out, ("aidsafe",)))
    assert {k: v for k, v in _tree(out).items() if k.startswith("sft/")} == {
        k: v for k, v in before.items() if k.startswith("sft/")
    }
    assert (out / "notes.md").read_text() == "my notes\n" and _siblings(out) == []
    assert len(datasets.load_dataset(str(out), "aidsafe", split="train")) == 12
    assert len(datasets.load_dataset(str(out), "sft", split="train")) == 12


def test_a_killed_exports_sibling_is_removed_and_a_working_ones_is_left(run_dir, tmp_path):
    out = tmp_path / "dataset"
    killed, working, just_made = (tmp_path / f".dataset.partial-{n}" for n in ("killed", "working", "new"))
    for sibling in (killed, working, just_made):
        (sibling / "sft").mkdir(parents=True)
        (sibling / "filtered.jsonl").write_text("")
    (killed / LOCK_FILE).write_text("12345 exporting\n")  # its holder is gone: the lock is free
    a_while_ago = time.time() - 600
    with run_lock(working, what="exporting"):
        for sibling in (killed, working):
            os.utime(sibling, (a_while_ago, a_while_ago))
        export_run(ExportRequest(run_dir, out, ("sft",)))
        assert _siblings(out) == [".dataset.partial-new", ".dataset.partial-working"]
    assert (out / "README.md").is_file()


def test_an_export_through_a_link_is_rebuilt_where_the_link_points(run_dir, tmp_path):
    real = tmp_path / "real"
    export_run(ExportRequest(run_dir, real, ("sft",)))
    link = tmp_path / "link"
    link.symlink_to(real)
    export_run(ExportRequest(run_dir, link, ("aidsafe",)))
    assert link.is_symlink() and sorted(p.name for p in real.iterdir() if p.is_dir()) == ["aidsafe", "sft"]
    assert _siblings(real) == []
