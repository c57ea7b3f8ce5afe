"""Freshness: the age of values against the run's scheduled time (DESIGN.md section 3)."""

from __future__ import annotations

from datetime import datetime, timedelta

from checks.kinds.base import Gauge, Judge, Kind, Reading, build, error, narrow, sample_info
from checks.model import FreshnessCheck
from checks.observation import (
    FutureCount,
    MaxTimestamp,
    OfflineMetric,
    OfflineObservation,
    OnlineObservation,
)
from checks.planned import PlannedCheck
from checks.result import CheckResult, FreshnessDetails, Status, Threshold
from checks.stats import nearest_rank

QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1.0}


def freshness_metrics(timestamp: str, max_future: timedelta) -> tuple[OfflineMetric, ...]:
    """The newest event time at or before scheduled + max_future (the one freshness measures),
    the rows after that bound (values from the future) and the newest of all (how far ahead)."""
    return (
        MaxTimestamp(timestamp, max_future),
        FutureCount(timestamp, max_future),
        MaxTimestamp(timestamp),
    )


def metrics(planned: PlannedCheck) -> frozenset[OfflineMetric]:
    check = narrow(planned, FreshnessCheck)
    return frozenset(freshness_metrics(planned.view.timestamp, check.max_future))


def threshold(check: FreshnessCheck) -> Threshold:
    def seconds(value: object) -> float | None:
        return value.total_seconds() if value is not None else None  # type: ignore[attr-defined]  # a duration bound (a timedelta) typed as object by the model

    return Threshold("max", seconds(check.max), seconds(check.warn), "seconds")


def online(planned: PlannedCheck, observation: OnlineObservation, at: datetime) -> CheckResult:
    """Per sampled entity found online: age = scheduled time - its event time; one quantile.
    An entity whose event time is more than `max_future` after the scheduled time is a future
    value: left out of the ages, counted, and it fails the check."""
    check = narrow(planned, FreshnessCheck)
    limit = threshold(check)
    tolerance = check.max_future.total_seconds()
    ages: list[float] = []
    ahead: list[float] = []
    for e in observation.entities:
        if e.present and e.event_time is not None:
            age = (at - e.event_time).total_seconds()
            if -age > tolerance:
                ahead.append(-age)
            else:
                ages.append(max(age, 0.0))
    if not ages and not ahead:
        return error(
            planned,
            limit,
            f"none of the {observation.asked} sampled entities has a timestamp in the online store",
        )
    ages.sort()
    quantiles = {name: nearest_rank(ages, q) if ages else None for name, q in QUANTILES.items()}
    details = FreshnessDetails(
        p50=quantiles["p50"],
        p90=quantiles["p90"],
        p99=quantiles["p99"],
        max=quantiles["max"],
        sample=sample_info(observation),
        future=len(ahead),
        future_ahead=max(ahead, default=None),
        max_future_seconds=tolerance,
    )
    return _built(planned, limit, quantiles[check.quantile], details, sample_size=len(ages))


def offline(planned: PlannedCheck, observation: OfflineObservation, at: datetime) -> CheckResult:
    """Age of the newest row at or before scheduled + `max_future` (0 when after the scheduled
    time); rows further ahead are future values, counted, and fail the check."""
    check = narrow(planned, FreshnessCheck)
    limit = threshold(check)
    newest_metric, future_metric, furthest_metric = freshness_metrics(
        planned.view.timestamp, check.max_future
    )
    for metric in (newest_metric, future_metric, furthest_metric):
        if metric in observation.unavailable:
            return error(planned, limit, observation.unavailable[metric])
    newest = observation.values.get(newest_metric)
    furthest = observation.values.get(furthest_metric)
    future = observation.values.get(future_metric)
    if newest is None and furthest is None:
        return error(planned, limit, f"{observation.source} has no rows with an event time")
    if not (newest is None or isinstance(newest, datetime)):
        return error(planned, limit, f"{planned.view.timestamp} is not a timestamp: {newest!r}")
    if not (furthest is None or isinstance(furthest, datetime)):
        return error(planned, limit, f"{planned.view.timestamp} is not a timestamp: {furthest!r}")
    if not isinstance(future, int):
        return error(planned, limit, f"expected a count of future rows, found {future!r}")
    age = None if newest is None else max((at - newest).total_seconds(), 0.0)
    details = FreshnessDetails(
        p50=age,
        p90=age,
        p99=age,
        max=age,
        newest=newest,
        future=future,
        future_ahead=(furthest - at).total_seconds() if future and furthest else None,
        max_future_seconds=check.max_future.total_seconds(),
    )
    return _built(planned, limit, age, details)


def _built(
    planned: PlannedCheck,
    limit: Threshold,
    value: float | None,
    details: FreshnessDetails,
    sample_size: int | None = None,
) -> CheckResult:
    """The result: by its threshold, unless values from the future make it a failure."""
    status = Status.FAIL if details.future else None
    return build(planned, limit, value, details, sample_size=sample_size, status=status)


KIND = Kind(
    name="freshness",
    model=FreshnessCheck,
    targets=("online", "offline"),
    threshold=threshold,
    judges=(Judge(OnlineObservation, online), Judge(OfflineObservation, offline)),
    details=FreshnessDetails,
    metrics=metrics,
    exported=(
        Gauge(
            "featmon_feature_freshness_seconds",
            "Age of a feature view's values against the run's scheduled time, by quantile "
            "over the sampled entities (quantile 1 is the maximum).",
            ("feature_view", "store", "quantile"),
            tuple(Reading(key, fixed=(f"{q:g}",)) for key, q in QUANTILES.items()),
        ),
        Gauge(
            "featmon_future_values",
            "Values of a feature view whose event time is further after the run's scheduled "
            "time than the check's max_future (sampled entities online, rows offline); left "
            "out of the freshness quantiles, and any of them fails the check.",
            ("feature_view", "store"),
            (Reading("future"),),
        ),
        Gauge(
            "featmon_future_ahead_seconds",
            "How far after the run's scheduled time the furthest future value of a feature "
            "view is (absent when there is none).",
            ("feature_view", "store"),
            (Reading("future_ahead_seconds"),),
        ),
    ),
)
