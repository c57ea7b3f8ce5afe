"""Null rate of one feature: online over the sampled entities found, offline over the window."""

from __future__ import annotations

from datetime import datetime

from checks.duration import format_duration
from checks.kinds.base import (
    Features,
    Gauge,
    Judge,
    Kind,
    build,
    error,
    narrow,
    sample_info,
    undeclared,
)
from checks.model import FeatureView, NullRateCheck
from checks.observation import (
    FeatureState,
    NullCount,
    OfflineMetric,
    OfflineObservation,
    OnlineObservation,
    RowCount,
)
from checks.planned import PlannedCheck, on_sample, sample_of, sampled_values, window_of
from checks.result import CheckResult, NullRateDetails, Threshold
from checks.stats import wilson


def threshold(check: NullRateCheck) -> Threshold:
    return Threshold("max", check.max, check.warn, "ratio")


def online(planned: PlannedCheck, observation: OnlineObservation, at: datetime) -> CheckResult:  # noqa: ARG001 - every kind's evaluate takes (planned, observation, at); this one needs no time
    """Null, NaN or empty values, and features never written for an entity that exists, over the
    sampled entities the online store has."""
    check = narrow(planned, NullRateCheck)
    feature = planned.feature or planned.view.name
    limit = threshold(check)
    present = [e for e in observation.entities if e.present]
    if not present:
        return error(
            planned,
            limit,
            f"none of the {observation.asked} sampled entities is in the online store",
        )
    readings = [e.reading(feature) for e in present]
    absent = sum(1 for r in readings if r.state is FeatureState.ABSENT)
    nulls = sum(1 for r in readings if r.is_null) - absent
    rows = len(readings)
    details = NullRateDetails(
        nulls=nulls,
        rows=rows,
        interval=wilson(nulls + absent, rows),
        absent=absent,
        sample=sample_info(observation),
    )
    return build(planned, limit, (nulls + absent) / rows, details, sample_size=rows)


def offline(planned: PlannedCheck, observation: OfflineObservation, at: datetime) -> CheckResult:  # noqa: ARG001 - every kind's evaluate takes (planned, observation, at); this one needs no time
    """Null count / row count over the rows whose event time is in the check's window (or over
    the rows of the sample read, with a 95% Wilson interval, when the view samples)."""
    check = narrow(planned, NullRateCheck)
    observation = sampled_values(planned, observation)
    feature = planned.feature or planned.view.name
    limit = threshold(check)
    window = planned.view.ttl if check.window is None else check.window
    count, nulls_metric = RowCount(window), NullCount(feature, window)
    for metric in (count, nulls_metric):
        if metric in observation.unavailable:
            return error(planned, limit, observation.unavailable[metric])
    rows, nulls = observation.values.get(count), observation.values.get(nulls_metric)
    if not isinstance(rows, int) or not isinstance(nulls, int):
        return error(planned, limit, f"no row or null count was measured for {feature}")
    if rows == 0:
        return error(
            planned,
            limit,
            f"{observation.source} has no rows in the last {format_duration(window)} to measure",
        )
    interval = wilson(nulls, rows) if sample_of(planned) is not None else None
    details = NullRateDetails(
        nulls=nulls, rows=rows, interval=interval, window_seconds=window.total_seconds()
    )
    return build(planned, limit, nulls / rows, details, sample_size=rows)


def metrics(planned: PlannedCheck) -> frozenset[OfflineMetric]:
    """Rows in the window and the nulls of the planned feature among them."""
    if planned.feature is None:
        return frozenset()
    window = window_of(planned)
    return on_sample(planned, (RowCount(window), NullCount(planned.feature, window)))


def features(check: NullRateCheck, view: FeatureView) -> tuple[str | None, ...]:
    """Its own feature, or every declared feature of the view."""
    return (check.feature,) if check.feature else tuple(view.features)


KIND = Kind(
    name="null_rate",
    model=NullRateCheck,
    targets=("online", "offline"),
    threshold=threshold,
    judges=(Judge(OnlineObservation, online), Judge(OfflineObservation, offline)),
    details=NullRateDetails,
    metrics=metrics,
    per_feature=Features(features, lambda check: check.feature is None),
    problems=lambda check, view, path: undeclared(view, path, "feature", check.feature),
    exported=(
        Gauge(
            "featmon_feature_null_ratio",
            "Fraction of sampled (online) or windowed (offline) rows whose feature is null.",
            ("feature_view", "feature", "store"),
        ),
    ),
)
