"""Confidence intervals for evaluation tables: one implementation, so every table agrees.

- `bootstrap_mean`: the mean of per-item scores with a percentile bootstrap 95% interval, from a
  seeded generator (the same scores give the same interval on every run).
- `bootstrap`: the same for any statistic of the items that is not a mean of per-item scores
  (F1 over a benchmark's rows): the items are resampled whole.
- `wilson`: a rate k/n with the Wilson score 95% interval (well-behaved at 0 and n, unlike the
  normal approximation), for safe-response, refusal and win rates.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["Interval", "bootstrap", "bootstrap_mean", "wilson"]

T = TypeVar("T")

_Z95 = 1.959963984540054


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap_mean(values: Sequence[float], seed: int = 0, resamples: int = 1000) -> Interval:
    """Mean with a percentile bootstrap 95% interval; NaN everywhere for no values."""
    return bootstrap(values, lambda sample: sum(sample) / len(sample), seed, resamples)


def bootstrap(
    items: Sequence[T], statistic: Callable[[Sequence[T]], float], seed: int = 0, resamples: int = 1000
) -> Interval:
    """`statistic(items)` with a percentile bootstrap 95% interval over resamples of the items;
    NaN everywhere for no items."""
    n = len(items)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    value = statistic(items)
    rng = random.Random(seed)
    values = sorted(statistic(rng.choices(items, k=n)) for _ in range(resamples))
    low = values[int(0.025 * (resamples - 1))]
    high = values[int(math.ceil(0.975 * (resamples - 1)))]
    return Interval(value, min(low, value), max(high, value), n)


def wilson(successes: int, n: int) -> Interval:
    """The rate successes/n with its Wilson score 95% interval; NaN everywhere for n == 0."""
    if not 0 <= successes <= n:
        raise ValueError(f"successes={successes} must be between 0 and n={n}")
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    p = successes / n
    z2 = _Z95 * _Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), n)
