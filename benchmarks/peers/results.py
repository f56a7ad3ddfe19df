"""One framework run's measurements, the figures derived from them, and the side-by-side table.

Pure functions, so the arithmetic and the table are tested without installing any peer.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Measurement", "Figures", "figures", "median_figures", "format_table", "format_header"]


@dataclass(frozen=True)
class Measurement:
    """What one run of one framework left: counted at the server and in the child's rusage."""

    framework: str
    version: str
    run: int
    calls: int  # the workload's calls the server answered during the run
    probes: int  # the framework's other calls (pre-flight, rate-limit and schema checks)
    rows: int  # prompts whose five answers the framework handed back
    generating_s: float  # first call at the server to the child's exit
    launch_s: float  # child launched to the first call (imports, pipeline set-up)
    cpu_s: float  # user + system CPU of the child and its waited-for descendants
    peak_in_flight: int
    request_bytes: float  # mean JSON body size of the run's calls


@dataclass(frozen=True)
class Figures:
    framework: str
    version: str
    run: str  # the run number, or "median"
    calls: int
    probes: int
    rows: int
    wall_s: float
    calls_per_s: float
    efficiency: float
    cpu_s: float
    cpu_ms_per_call: float
    peak_in_flight: int
    launch_s: float
    request_kb: float


def figures(m: Measurement, *, latency_s: float, concurrency: int) -> Figures:
    """Derive rates; efficiency is the ideal time (calls x latency / concurrency) over the wall."""
    if m.generating_s <= 0 or m.calls <= 0:
        raise ValueError(
            f"{m.framework} run {m.run}: no calls or no time measured ({m.calls} calls, {m.generating_s} s)"
        )
    ideal_s = m.calls * latency_s / concurrency
    return Figures(
        framework=m.framework,
        version=m.version,
        run=str(m.run),
        calls=m.calls,
        probes=m.probes,
        rows=m.rows,
        wall_s=m.generating_s,
        calls_per_s=m.calls / m.generating_s,
        efficiency=ideal_s / m.generating_s,
        cpu_s=m.cpu_s,
        cpu_ms_per_call=1000 * m.cpu_s / m.calls,
        peak_in_flight=m.peak_in_flight,
        launch_s=m.launch_s,
        request_kb=m.request_bytes / 1024,
    )


def median_figures(runs: Sequence[Figures]) -> Figures:
    """Each column's median over one framework's runs (the columns' medians need not come from one run)."""
    if not runs:
        raise ValueError("no runs to take the median of")
    if len({r.framework for r in runs}) != 1:
        raise ValueError("the median is taken over one framework's runs")

    def med(values: Sequence[float]) -> float:
        return statistics.median(values)

    return Figures(
        framework=runs[0].framework,
        version=runs[0].version,
        run="median",
        calls=round(med([r.calls for r in runs])),
        probes=round(med([r.probes for r in runs])),
        rows=round(med([r.rows for r in runs])),
        wall_s=med([r.wall_s for r in runs]),
        calls_per_s=med([r.calls_per_s for r in runs]),
        efficiency=med([r.efficiency for r in runs]),
        cpu_s=med([r.cpu_s for r in runs]),
        cpu_ms_per_call=med([r.cpu_ms_per_call for r in runs]),
        peak_in_flight=round(med([r.peak_in_flight for r in runs])),
        launch_s=med([r.launch_s for r in runs]),
        request_kb=med([r.request_kb for r in runs]),
    )


_COLUMNS = (
    "framework",
    "version",
    "run",
    "calls",
    "other calls",
    "rows",
    "wall s",
    "calls/s",
    "efficiency",
    "client CPU s",
    "CPU ms/call",
    "peak in flight",
    "first call after s",
    "request KB",
)


def _cells(f: Figures) -> list[str]:
    return [
        f.framework,
        f.version,
        f.run,
        str(f.calls),
        str(f.probes),
        str(f.rows),
        f"{f.wall_s:.2f}",
        f"{f.calls_per_s:.1f}",
        f"{f.efficiency:.2f}",
        f"{f.cpu_s:.1f}",
        f"{f.cpu_ms_per_call:.1f}",
        str(f.peak_in_flight),
        f"{f.launch_s:.1f}",
        f"{f.request_kb:.1f}",
    ]


def format_table(rows: Sequence[Figures]) -> str:
    """A Markdown table (it reads as plain text too, and pastes into docs/performance.md)."""
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    lines += ["| " + " | ".join(_cells(f)) + " |" for f in rows]
    return "\n".join(lines)


def format_header(*, prompts: int, stages: int, concurrency: int, latency_s: float, reference_ms: float) -> str:
    """The line every table is printed under: the workload and the machine's speed."""
    ideal = prompts * stages * latency_s / concurrency
    return (
        f"workload: {prompts} prompts x {stages} dependent structured calls, {concurrency} in flight, "
        f"{latency_s:g} s per call (ideal {ideal:.1f} s, {concurrency / latency_s:.0f} calls/s); "
        f"machine reference loop {reference_ms:.0f} ms (benchmarks/machine.py, lower is faster)"
    )
