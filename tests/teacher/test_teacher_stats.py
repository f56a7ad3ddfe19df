"""TeacherStats' latency sample: bounded memory, quantiles still right."""

from __future__ import annotations

import random
import statistics

from aidsafe.teacher.types import CallRecord, LatencySample, TeacherStats


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(len(ordered) * q)]


def test_latencies_stay_bounded_and_keep_mean_and_quantiles():
    rng = random.Random(7)
    latencies = [rng.lognormvariate(0.0, 0.8) for _ in range(200_000)]
    stats = TeacherStats()
    for latency in latencies:
        stats.record(CallRecord(agent="a", role="r", model="m", latency_s=latency))

    kept = sorted(stats.latencies_s)  # how stats.json reads it
    assert len(kept) == stats.latencies_s.size == 10_000
    assert stats.latencies_s.seen == 200_000
    assert abs(statistics.fmean(kept) / statistics.fmean(latencies) - 1) < 0.03
    for q in (0.5, 0.95):
        assert abs(quantile(kept, q) / quantile(latencies, q) - 1) < 0.05


def test_latency_sample_is_exact_until_full():
    sample = LatencySample(size=5)
    for latency in (0.3, 0.1, 0.2):
        sample.append(latency)
    assert sorted(sample) == [0.1, 0.2, 0.3]
    assert len(sample) == 3


def test_failed_calls_count_their_tokens_re_asks_and_latency():
    stats = TeacherStats()
    failed = CallRecord(agent="a", role="r", model="m", prompt_tokens=30, completion_tokens=700, attempts=7)
    stats.record(failed, ok=False)
    assert (stats.calls, stats.failed_calls, stats.parse_retries) == (0, 1, 6)
    assert (stats.prompt_tokens, stats.completion_tokens) == (30, 700)
    assert len(stats.latencies_s) == 1
