"""The side-by-side benchmark's pure parts: the figures derived from a run, the median, the
table, and the workload's prompts (benchmarks/peers; nothing here installs or runs a peer)."""

from __future__ import annotations

import json

import pytest

from benchmarks.peers import workload
from benchmarks.peers.results import Measurement, figures, format_header, format_table, median_figures


def _measurement(
    run: int = 1, *, calls: int = 1280, wall: float = 12.0, cpu: float = 6.4, peak: int = 64
) -> Measurement:
    return Measurement(
        framework="curator",
        version="0.1.31",
        run=run,
        calls=calls,
        probes=1,
        rows=256,
        generating_s=wall,
        launch_s=1.5,
        cpu_s=cpu,
        peak_in_flight=peak,
        request_bytes=3072,
    )


def test_figures_are_rates_against_the_ideal():
    f = figures(_measurement(), latency_s=0.3, concurrency=64)
    assert f.calls_per_s == pytest.approx(1280 / 12.0)
    assert f.efficiency == pytest.approx((1280 * 0.3 / 64) / 12.0)  # ideal 6 s over 12 s: 0.5
    assert f.cpu_ms_per_call == pytest.approx(5.0)
    assert f.request_kb == pytest.approx(3.0)
    assert f.run == "1"


def test_a_run_without_calls_is_an_error_not_a_zero():
    with pytest.raises(ValueError, match="no calls"):
        figures(_measurement(calls=0), latency_s=0.3, concurrency=64)


def test_median_takes_each_column_over_the_runs():
    runs = [
        figures(_measurement(1, wall=10.0, cpu=3.0, peak=60), latency_s=0.3, concurrency=64),
        figures(_measurement(2, wall=20.0, cpu=9.0, peak=64), latency_s=0.3, concurrency=64),
        figures(_measurement(3, wall=12.0, cpu=4.0, peak=50), latency_s=0.3, concurrency=64),
    ]
    med = median_figures(runs)
    assert med.run == "median"
    assert med.wall_s == 12.0
    assert med.calls_per_s == pytest.approx(1280 / 12.0)
    assert med.cpu_s == 4.0
    assert med.peak_in_flight == 60
    other = figures(
        Measurement("aidsafe", "0.1", 1, 1280, 1, 256, 8.0, 1.0, 5.0, 30, 4000), latency_s=0.3, concurrency=64
    )
    with pytest.raises(ValueError, match="one framework"):
        median_figures([*runs, other])


def test_table_has_one_row_per_figures_with_every_column():
    rows = [figures(_measurement(r), latency_s=0.3, concurrency=64) for r in (1, 2)]
    lines = format_table(rows).splitlines()
    assert len(lines) == 4
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    first = [c.strip() for c in lines[2].strip("|").split("|")]
    assert len(header) == len(first) == lines[1].count("---")
    cell = dict(zip(header, first, strict=True))
    assert cell["framework"] == "curator" and cell["version"] == "0.1.31"
    assert cell["calls/s"] == "106.7" and cell["efficiency"] == "0.50"
    assert cell["CPU ms/call"] == "5.0" and cell["peak in flight"] == "64" and cell["other calls"] == "1"


def test_header_states_the_ideal_and_the_machine():
    line = format_header(prompts=256, stages=5, concurrency=64, latency_s=0.3, reference_ms=104.4)
    assert "ideal 6.0 s" in line and "213 calls/s" in line and "reference loop 104 ms" in line


def test_each_stage_carries_the_previous_answer():
    first = workload.stage_message("p", 1, None)
    later = workload.stage_message("p", 3, '{"response": "earlier"}')
    assert "earlier" in later and "earlier" not in first
    with pytest.raises(ValueError):
        workload.stage_message("p", workload.STAGES + 1, None)
    assert len(set(workload.prompt_texts(256))) == 256


def test_check_answer_accepts_the_schema_and_refuses_prose():
    schema = workload.StageAnswer.model_json_schema()
    assert schema["title"] == workload.SCHEMA_NAME and schema["additionalProperties"] is False
    ok = json.dumps({"thoughts": ["a"], "response": "r", "complete": False})
    assert json.loads(workload.check_answer(ok))["response"] == "r"
    with pytest.raises(ValueError):
        workload.check_answer('"just text"')
    with pytest.raises(ValueError):
        workload.check_answer("not json")
