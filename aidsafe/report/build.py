"""`aidsafe report`: everything the page shows, gathered from a run (the HTML is aidsafe.report.page)."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from aidsafe.errors import AidsafeError
from aidsafe.report.kinds import kind_of, rejected_sample
from aidsafe.report.kinds.common import calls_of
from aidsafe.report.model import ReportData, SampleView
from aidsafe.report.page import render_page
from aidsafe.report.plots import render_png
from aidsafe.report.run import DEFAULT_CAP, RunView, open_run
from aidsafe.run.jsonl import write_atomic
from aidsafe.run.lock import run_lock

__all__ = ["gather", "write_report", "sample_by_id", "first_views"]


def gather(run: str | Path, cap: int = DEFAULT_CAP) -> ReportData:
    from aidsafe.report.summary import summary

    view = open_run(run)
    kind = kind_of(view)
    shown, finished, prompt_tokens, completion_tokens = [], 0, 0, 0
    for record in view.iter_samples():
        finished += 1
        for call in calls_of(record):
            prompt_tokens += int(call.get("prompt_tokens") or 0)
            completion_tokens += int(call.get("completion_tokens") or 0)
        if len(shown) < cap:
            shown.append(kind.sample(record))
    rejected = 0
    for entry in view.iter_rejected():
        rejected += 1
        if len(shown) < cap:
            shown.append(rejected_sample(entry))
    plots = [plot for plot in kind.plots(view) if not plot.is_empty()]
    rows = summary(view, finished, rejected, (prompt_tokens, completion_tokens))
    return ReportData(view, rows, plots, shown, finished, rejected, cap)


def write_report(run: str | Path, output: Path, png_dir: Path | None = None, cap: int = DEFAULT_CAP) -> ReportData:
    """Write the self-contained HTML page (and the plots as PNG files into `png_dir`).

    Writing into the run directory takes its lock as a reader does (aidsafe.run.lock), so it is
    refused, in one line, while another aidsafe writes the run; a report written elsewhere reads a
    run in progress unlocked (a cut-off last line is skipped)."""
    run = Path(run).expanduser()
    inside = run.is_dir() and any(_within(p, run) for p in (output, png_dir) if p is not None)
    with run_lock(run, what="reporting on", reader=True) if inside else nullcontext():
        data = gather(run, cap)
        page = render_page(data)
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(output, page)  # never through a link planted where report.html goes
            if png_dir is not None:
                png_dir.mkdir(parents=True, exist_ok=True)
                for plot in data.plots:
                    write_atomic(png_dir / f"{plot.name}.png", render_png(plot))
        except OSError as exc:
            raise AidsafeError(f"{exc.filename or output}: cannot write the report ({exc.strerror or exc})") from None
    return data


def _within(path: Path, directory: Path) -> bool:
    return Path(path).expanduser().resolve().is_relative_to(directory.resolve())


def sample_by_id(run: str | Path, sample_id: str) -> tuple[RunView, SampleView]:
    """One sample (finished or rejected) by id, for `aidsafe show`; a one-line error if absent."""
    view = open_run(run)
    kind = kind_of(view)
    for record in view.iter_samples():
        # Rows without an id (prediction files) are named by their view (the prompt's digest).
        if str(record.get("id")) == sample_id or ("id" not in record and kind.sample(record).id == sample_id):
            return view, kind.sample(record)
    for entry in view.iter_rejected():
        if str(entry.get("id")) == sample_id:
            return view, rejected_sample(entry)
    files = " or ".join(p.name for p in (view.samples_file, view.rejected_file) if p is not None)
    raise AidsafeError(f"{view.path}: no sample with id {sample_id!r} in {files}")


def first_views(run: str | Path, limit: int) -> tuple[RunView, list[SampleView], int]:
    view = open_run(run)
    kind = kind_of(view)
    shown, total = [], 0
    for record in view.iter_samples():
        total += 1
        if len(shown) < limit:
            shown.append(kind.sample(record))
    return view, shown, total
