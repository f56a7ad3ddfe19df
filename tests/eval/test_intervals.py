import math

import pytest

from aidsafe.eval.intervals import bootstrap_mean, wilson


def test_wilson_matches_hand_computed_values():
    # 8 of 10: p=0.8; Wilson 95% = [0.4902, 0.9433] (standard tables)
    iv = wilson(8, 10)
    assert iv.value == pytest.approx(0.8)
    assert iv.low == pytest.approx(0.4902, abs=1e-4)
    assert iv.high == pytest.approx(0.9433, abs=1e-4)
    edge = wilson(0, 5)
    assert edge.low == 0.0 and 0.4 < edge.high < 0.45  # 0.4345
    assert math.isnan(wilson(0, 0).value)
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_bootstrap_mean_is_seeded_and_brackets_the_mean():
    values = [1, 2, 3, 4, 5, 5, 4, 3]
    a, b = bootstrap_mean(values, seed=7), bootstrap_mean(values, seed=7)
    assert a == b
    assert a.value == pytest.approx(27 / 8)
    assert a.low < a.value < a.high
    assert 2.4 < a.low and a.high < 4.3
    same = bootstrap_mean([3.0] * 5)
    assert (same.low, same.value, same.high) == (3.0, 3.0, 3.0)
    assert math.isnan(bootstrap_mean([]).value)
