"""Late arrivals: the fraction of the rows in the window (by event time) whose ingestion time is
more than the watermark after their event time (DESIGN.md section 3). Offline only.

    lateness = ingested_at - event time            (seconds, per row)
    rows     = rows in the window whose ingestion time is known
    late     = rows whose lateness > watermark      value = late / rows

Lateness quantiles come from a cumulative histogram measured in the same aggregate query:
`LatenessCount(b)` rows with lateness <= b for each boundary b of `lateness_bounds` (the fixed
`LATENESS_BOUNDS` plus the watermark). The q-quantile (nearest rank r = ceil(q * rows)) is the
smallest boundary b with count(b) >= r, capped at the exact largest lateness; beyond the last
boundary it is that largest lateness. So the true quantile lies in (previous boundary, reported
value]: exact at the watermark, within a factor of about 2 to 3 elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta

from checks.duration import format_duration
from checks.kinds.base import Judge, Kind, build, error, narrow
from checks.model import FeatureView, LateArrivalsCheck
from checks.observation import (
    LATENESS_BOUNDS,
    LatenessCount,
    MaxLateness,
    MetricValue,
    OfflineMetric,
    OfflineObservation,
    RowCount,
)
from checks.planned import PlannedCheck, window_of
from checks.result import CheckResult, LateArrivalDetails, Threshold
from checks.source import Path

QUANTILES = (0.5, 0.99)


def lateness_bounds(watermark: timedelta) -> tuple[timedelta, ...]:
    """The histogram's boundaries: the fixed ones and the watermark, ascending."""
    return tuple(sorted({*LATENESS_BOUNDS, watermark}))


def lateness_metrics(
    ingested_at: str, watermark: timedelta, window: timedelta
) -> tuple[OfflineMetric, ...]:
    """Rows in the window, rows whose lateness is known, the cumulative histogram of their
    lateness (the watermark is one of its boundaries) and the largest lateness."""
    return (
        RowCount(window),
        LatenessCount(ingested_at, None, window),
        *(LatenessCount(ingested_at, b, window) for b in lateness_bounds(watermark)),
        MaxLateness(ingested_at, window),
    )


def metrics(planned: PlannedCheck) -> frozenset[OfflineMetric]:
    """The lateness aggregates, when the view's offline source names its ingestion time."""
    check, offline = narrow(planned, LateArrivalsCheck), planned.view.offline
    if offline is None or not offline.ingested_at:
        return frozenset()
    return frozenset(lateness_metrics(offline.ingested_at, check.watermark, window_of(planned)))


def threshold(check: LateArrivalsCheck) -> Threshold:
    return Threshold("max", check.max, check.warn, "ratio")


def offline(planned: PlannedCheck, observation: OfflineObservation, at: datetime) -> CheckResult:  # noqa: ARG001 - every kind's evaluate takes (planned, observation, at); this one needs no time
    check = narrow(planned, LateArrivalsCheck)
    limit = threshold(check)
    ingested_at = planned.view.offline.ingested_at if planned.view.offline else None
    if not ingested_at:
        return error(planned, limit, "the view names no ingestion-time column (ingested_at)")
    window = window_of(planned)
    for metric in lateness_metrics(ingested_at, check.watermark, window):
        if metric in observation.unavailable:
            return error(planned, limit, observation.unavailable[metric])
    values = observation.values
    in_window = values.get(RowCount(window))
    known = values.get(LatenessCount(ingested_at, None, window))
    on_time = values.get(LatenessCount(ingested_at, check.watermark, window))
    if not isinstance(in_window, int) or not isinstance(known, int):
        return error(planned, limit, f"no row counts were measured for {ingested_at}")
    if not isinstance(on_time, int):
        return error(planned, limit, f"no lateness histogram was measured for {ingested_at}")
    if known == 0:
        return error(
            planned,
            limit,
            f"{observation.source} has no rows with an ingestion time in the last "
            f"{format_duration(window)} to measure",
        )
    cumulative = _histogram(values, ingested_at, check.watermark, window)
    largest = _seconds(values.get(MaxLateness(ingested_at, window)))
    p50, p99 = (quantile(cumulative, known, q, largest) for q in QUANTILES)
    late = known - on_time
    details = LateArrivalDetails(
        late=late,
        rows=known,
        without_ingestion_time=in_window - known,
        watermark_seconds=check.watermark.total_seconds(),
        window_seconds=window.total_seconds(),
        p50=p50,
        p99=p99,
        max=largest,
    )
    return build(planned, limit, late / known, details, sample_size=known)


def _histogram(
    values: Mapping[OfflineMetric, MetricValue],
    ingested_at: str,
    watermark: timedelta,
    window: timedelta,
) -> list[tuple[float, int]]:
    """(boundary in seconds, rows with lateness at most it), ascending; boundaries the
    observation lacks are left out."""
    out: list[tuple[float, int]] = []
    for bound in lateness_bounds(watermark):
        count = values.get(LatenessCount(ingested_at, bound, window))
        if isinstance(count, int):
            out.append((bound.total_seconds(), count))
    return out


def quantile(
    cumulative: list[tuple[float, int]], rows: int, q: float, largest: float | None
) -> float | None:
    """The upper boundary of the bucket holding the nearest-rank q-quantile of `rows`, capped
    at `largest`; `largest` itself when the rank lies beyond the last boundary."""
    rank = max(1, math.ceil(q * rows))
    for bound, count in cumulative:
        if count >= rank:
            return bound if largest is None else min(bound, largest)
    return largest


def _seconds(value: MetricValue) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def problems(check: LateArrivalsCheck, view: FeatureView, path: Path) -> list[tuple[Path, str]]:  # noqa: ARG001 - the signature of Kind.problems
    """The view's offline source must name its ingestion-time column."""
    if view.offline is None or view.offline.ingested_at:
        return []  # no offline source at all is the target's problem
    return [
        (
            path,
            "expected the view's offline source to name its ingestion-time column "
            "(`offline.ingested_at`) for late_arrivals, found none",
        )
    ]


KIND = Kind(
    name="late_arrivals",
    model=LateArrivalsCheck,
    targets=("offline",),
    threshold=threshold,
    judges=(Judge(OfflineObservation, offline),),
    details=LateArrivalDetails,
    metrics=metrics,
    problems=problems,
)
