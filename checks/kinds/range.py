"""Range: the fraction of one numeric feature's non-null values that are out of range.

A value is out of range for the first of these reasons that holds (so it is counted once):

    nan         NaN
    infinite    +infinity or -infinity
    negative    finite and below zero, when the check says `non_negative: true` (a count)
    below_min   finite and below `min_value`
    above_max   finite and above `max_value`

    value = (nan + infinite + negative + below_min + above_max) / non-null values

Offline: over the rows whose event time is in the check's window, each reason a conditional
count of the one aggregate query (`non_negative` requires `min_value` >= 0, so the negatives are
the part of the values below `min_value` that lies below zero). Online: over the numeric values
of the sampled entities found. Details also give min, max and mean of the finite values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from checks.duration import format_duration
from checks.kinds.base import Features, Judge, Kind, build, error, narrow, sample_info, undeclared
from checks.model import FeatureView, RangeCheck, dtype_family
from checks.observation import (
    FeatureState,
    MetricValue,
    NullCount,
    OfflineMetric,
    OfflineObservation,
    OnlineObservation,
    RowCount,
    SampledMetric,
    ValueCount,
    ValueStat,
)
from checks.planned import PlannedCheck, on_sample, sample_of, sampled_values, window_of
from checks.result import CheckResult, RangeDetails, Threshold
from checks.source import Path
from checks.stats import wilson


def range_metrics(check: RangeCheck, window: timedelta) -> tuple[SampledMetric, ...]:
    """Non-null values (rows - nulls), each kind of invalid or out-of-range value the check
    looks for, and min, max and mean of the finite values."""
    column = check.feature
    out: list[SampledMetric] = [
        RowCount(window),
        NullCount(column, window),
        ValueCount(column, "nan", window),
        ValueCount(column, "infinite", window),
        *(ValueStat(column, stat, window) for stat in ("min", "max", "mean")),
    ]
    if check.non_negative:
        out.append(ValueCount(column, "negative", window))
    if check.min_value is not None:
        out.append(ValueCount(column, "below", window, check.min_value))
    if check.max_value is not None:
        out.append(ValueCount(column, "above", window, check.max_value))
    return tuple(out)


def metrics(planned: PlannedCheck) -> frozenset[OfflineMetric]:
    return on_sample(planned, range_metrics(narrow(planned, RangeCheck), window_of(planned)))


def threshold(check: RangeCheck) -> Threshold:
    return Threshold("max", check.max, check.warn, "ratio")


def offline(planned: PlannedCheck, observation: OfflineObservation, at: datetime) -> CheckResult:  # noqa: ARG001 - every kind's evaluate takes (planned, observation, at); this one needs no time
    """Out-of-range values / non-null values in the window (of the sample read, with a 95%
    Wilson interval, when the view samples)."""
    check = narrow(planned, RangeCheck)
    observation = sampled_values(planned, observation)
    limit = threshold(check)
    column, window = check.feature, window_of(planned)
    metrics = range_metrics(check, window)
    for metric in metrics:
        if metric in observation.unavailable:
            return error(planned, limit, observation.unavailable[metric])
    measured = observation.values
    if any(not isinstance(measured.get(m), int) for m in metrics if not isinstance(m, ValueStat)):
        return error(planned, limit, f"no value counts were measured for {column}")

    def count(metric: RowCount | NullCount | ValueCount) -> int:
        value = measured.get(metric)
        return value if isinstance(value, int) else 0

    def looked_for(metric: ValueCount) -> int | None:
        """The count, or None when the check does not look for this reason."""
        return count(metric) if metric in metrics else None

    rows = count(RowCount(window)) - count(NullCount(column, window))
    if rows == 0:
        return error(
            planned,
            limit,
            f"{observation.source} has no values of {column} in the last "
            f"{format_duration(window)} to measure",
        )
    negative = looked_for(ValueCount(column, "negative", window))
    below = looked_for(ValueCount(column, "below", window, check.min_value))
    details = RangeDetails(
        rows=rows,
        nan=count(ValueCount(column, "nan", window)),
        infinite=count(ValueCount(column, "infinite", window)),
        negative=negative,
        below_min=below - (negative or 0) if below is not None else None,
        above_max=looked_for(ValueCount(column, "above", window, check.max_value)),
        min=_float(measured.get(ValueStat(column, "min", window))),
        max=_float(measured.get(ValueStat(column, "max", window))),
        mean=_float(measured.get(ValueStat(column, "mean", window))),
        min_value=check.min_value,
        max_value=check.max_value,
        window_seconds=window.total_seconds(),
    )
    if sample_of(planned) is not None:
        details = replace(details, interval=wilson(details.out_of_range, rows))
    return build(planned, limit, details.out_of_range / rows, details, sample_size=rows)


def online(planned: PlannedCheck, observation: OnlineObservation, at: datetime) -> CheckResult:  # noqa: ARG001 - every kind's evaluate takes (planned, observation, at); this one needs no time
    """The numeric values of the feature among the sampled entities found (nulls, absent and
    undecodable values are other checks' concern)."""
    check = narrow(planned, RangeCheck)
    limit = threshold(check)
    values = [
        float(reading.value)
        for entity in observation.entities
        if entity.present
        for reading in (entity.reading(check.feature),)
        if reading.state is FeatureState.VALUE
        and isinstance(reading.value, int | float)
        and not isinstance(reading.value, bool)
    ]
    if not values:
        return error(
            planned,
            limit,
            f"none of the {observation.asked} sampled entities has a numeric value of "
            f"{check.feature} in the online store",
        )
    counted = tally(values, check)
    details = replace(
        counted,
        interval=wilson(counted.out_of_range, counted.rows),
        sample=sample_info(observation),
    )
    return build(planned, limit, details.out_of_range / details.rows, details, details.rows)


def tally(values: Sequence[float], check: RangeCheck) -> RangeDetails:
    """Each value under its first reason, and min, max and mean of the finite ones."""
    counts = dict.fromkeys(("nan", "infinite", "negative", "below_min", "above_max"), 0)
    finite: list[float] = []
    for value in values:
        reason = _reason(value, check)
        if reason is not None:
            counts[reason] += 1
        if math.isfinite(value):
            finite.append(value)
    return RangeDetails(
        rows=len(values),
        nan=counts["nan"],
        infinite=counts["infinite"],
        negative=counts["negative"] if check.non_negative else None,
        below_min=counts["below_min"] if check.min_value is not None else None,
        above_max=counts["above_max"] if check.max_value is not None else None,
        min=min(finite, default=None),
        max=max(finite, default=None),
        mean=math.fsum(finite) / len(finite) if finite else None,
        min_value=check.min_value,
        max_value=check.max_value,
    )


def _reason(value: float, check: RangeCheck) -> str | None:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "infinite"
    if check.non_negative and value < 0:
        return "negative"
    if check.min_value is not None and value < check.min_value:
        return "below_min"
    if check.max_value is not None and value > check.max_value:
        return "above_max"
    return None


def _float(value: MetricValue) -> float | None:
    return float(value) if isinstance(value, int | float) else None


_NUMERIC = ("int", "float")


def problems(check: RangeCheck, view: FeatureView, path: Path) -> list[tuple[Path, str]]:
    """Its feature must be declared, and numeric."""
    dtype = view.features.get(check.feature)
    if dtype is None:
        return undeclared(view, path, "feature", check.feature)
    if dtype_family(dtype) in _NUMERIC:
        return []
    return [
        (
            (*path, "feature"),
            f"expected a numeric feature (int or float) for range, found "
            f"{check.feature!r} of type {dtype}",
        )
    ]


KIND = Kind(
    name="range",
    model=RangeCheck,
    targets=("offline", "online"),
    threshold=threshold,
    judges=(Judge(OnlineObservation, online), Judge(OfflineObservation, offline)),
    details=RangeDetails,
    metrics=metrics,
    per_feature=Features(lambda check, _: (check.feature,), lambda _: False),  # its one feature
    problems=problems,
)
