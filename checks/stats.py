"""Sampling statistics: quantiles of ages and the Wilson interval of a sampled rate."""

from __future__ import annotations

import math
from collections.abc import Sequence

from checks.result import Interval

Z95 = 1.959963984540054


def nearest_rank(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank quantile: the smallest value with at least q of the sample at or below it.

    Always a value that was observed; for q = 1 it is the maximum. `sorted_values` must be sorted
    and non-empty.
    """
    if not sorted_values:
        raise ValueError("nearest_rank needs at least one value")
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def wilson(successes: int, trials: int, z: float = Z95) -> Interval:
    """The Wilson score interval of successes / trials (95% by default)."""
    if trials <= 0:
        return Interval(0.0, 1.0)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return Interval(max(0.0, centre - half), min(1.0, centre + half))
