"""Sampling statistics: nearest-rank quantiles and the Wilson score interval.

Expected intervals are the closed form (2np + z^2 +/- z sqrt(z^2 + 4np(1-p))) / (2(n + z^2)),
worked out by hand with z = 1.959963984540054; they agree with published tables (5/10 gives
0.2366 to 0.7634, 30/1000 gives 0.0211 to 0.0425).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from checks.model import DEFAULT_SAMPLE
from checks.result import Interval
from checks.stats import Z95, nearest_rank, wilson

Z2 = Z95 * Z95  # 3.841458820694124


@pytest.mark.parametrize(
    ("q", "expected"), [(0.5, 2), (0.75, 3), (0.9, 4), (0.99, 4), (1.0, 4), (0.0, 1), (0.25, 1)]
)
def test_nearest_rank_of_four_values(q: float, expected: float) -> None:
    """The rank is ceil(q * n): p50 of [1, 2, 3, 4] is the 2nd value, p90 the 4th (ceil 3.6)."""
    assert nearest_rank([1.0, 2.0, 3.0, 4.0], q) == expected


@pytest.mark.parametrize(("q", "expected"), [(0.5, 50), (0.9, 90), (0.99, 99), (1.0, 100)])
def test_nearest_rank_of_a_hundred_values(q: float, expected: float) -> None:
    assert nearest_rank([float(v) for v in range(1, 101)], q) == expected


@pytest.mark.parametrize(("n", "q", "rank"), [(10, 0.9, 9), (70, 0.9, 63), (1000, 0.99, 990)])
def test_nearest_rank_is_the_ceiling_of_q_times_n(n: int, q: float, rank: int) -> None:
    """Where q * n is whole the rank is exactly q * n, not one more."""
    assert nearest_rank([float(v) for v in range(1, n + 1)], q) == rank


def test_nearest_rank_is_always_an_observed_value() -> None:
    values = [0.5, 7.25, 100.0]
    assert nearest_rank(values, 0.5) == 7.25


def test_nearest_rank_of_one_value_is_that_value() -> None:
    assert nearest_rank([42.0], 0.99) == 42.0


def test_nearest_rank_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        nearest_rank([], 0.5)


def test_z95_is_the_two_sided_95_percent_normal_quantile() -> None:
    assert NormalDist().inv_cdf(0.975) == pytest.approx(Z95, abs=1e-12)


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        (0, 10, 0.0, Z2 / (10 + Z2)),  # 0.277532799863
        (10, 10, 10 / (10 + Z2), 1.0),  # 0.722467200137
        (5, 10, 0.236593090513, 0.763406909487),
        (30, 1000, 0.021093738829, 0.042503414148),
        (1, 4, 0.045587260810, 0.699358157418),
        (3, 4, 0.300641842582, 0.954412739190),
        (2, 5, 0.117620774233, 0.769275718724),
    ],
)
def test_wilson_interval_matches_the_closed_form(
    successes: int, trials: int, low: float, high: float
) -> None:
    interval = wilson(successes, trials)
    assert interval.low == pytest.approx(low, abs=1e-6)
    assert interval.high == pytest.approx(high, abs=1e-6)


def test_wilson_interval_of_no_trials_is_everything() -> None:
    assert wilson(0, 0) == Interval(0.0, 1.0)


def test_wilson_interval_stays_within_zero_and_one() -> None:
    for trials in (1, 2, 7, 1118):
        for successes in (0, trials):
            interval = wilson(successes, trials)
            assert 0.0 <= interval.low <= interval.high <= 1.0


def test_default_sample_keeps_a_three_percent_rate_within_one_point() -> None:
    """n = z^2 p (1 - p) / e^2 with z = 1.96, p = 0.03, e = 0.01 (DESIGN.md section 3)."""
    assert math.ceil(1.96**2 * 0.03 * 0.97 / 0.01**2) == 1118
    assert DEFAULT_SAMPLE == 1118


def test_at_the_default_sample_a_three_percent_interval_is_about_one_point_wide_each_side() -> None:
    """34 of 1118 (3.04%): Wilson gives 0.021843 to 0.042196, a half-width of 0.0102."""
    interval = wilson(34, DEFAULT_SAMPLE)
    assert interval.low == pytest.approx(0.021843241721, abs=1e-6)
    assert interval.high == pytest.approx(0.042195627815, abs=1e-6)
    assert (interval.high - interval.low) / 2 == pytest.approx(0.01, abs=0.0003)
