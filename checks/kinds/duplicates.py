"""Duplicates: rows in the check's window that repeat the join keys and event time of another
row. Offline only.

    rows       = rows in the window whose join keys are all non-null
    distinct   = distinct (join keys, event time) among them
    duplicates = rows - distinct          (every row of a group beyond its first)
    value      = duplicates / rows        (a fraction, thresholded by `max` and `warn`)

Two rows for one entity at one event time make a point-in-time join pick one at random, so the
usual threshold is `max: 0`.
"""

from __future__ import annotations

from datetime import datetime

from checks.duration import format_duration
from checks.kinds.base import Judge, Kind, build, error, narrow
from checks.model import DuplicatesCheck
from checks.observation import DistinctKeys, KeyedRows, OfflineMetric, OfflineObservation
from checks.planned import PlannedCheck, window_of
from checks.result import CheckResult, DuplicateDetails, Threshold


def threshold(check: DuplicatesCheck) -> Threshold:
    return Threshold("max", check.max, check.warn, "ratio")


def key_counts(planned: PlannedCheck) -> tuple[KeyedRows, DistinctKeys]:
    """Rows in the window with every join key set, and their distinct (keys, event time)."""
    keys, window = planned.view.join_keys, window_of(planned)
    return KeyedRows(keys, window), DistinctKeys(keys, window)


def metrics(planned: PlannedCheck) -> frozenset[OfflineMetric]:
    return frozenset(key_counts(planned))


def offline(planned: PlannedCheck, observation: OfflineObservation, at: datetime) -> CheckResult:  # noqa: ARG001 - every kind's evaluate takes (planned, observation, at); this one needs no time
    check = narrow(planned, DuplicatesCheck)
    limit = threshold(check)
    keys, window = planned.view.join_keys, window_of(planned)
    keyed, distinct = key_counts(planned)
    for metric in (keyed, distinct):
        if metric in observation.unavailable:
            return error(planned, limit, observation.unavailable[metric])
    rows, groups = observation.values.get(keyed), observation.values.get(distinct)
    if not isinstance(rows, int) or not isinstance(groups, int):
        return error(planned, limit, f"no key counts were measured for {observation.source}")
    if rows == 0:
        return error(
            planned,
            limit,
            f"{observation.source} has no rows in the last {format_duration(window)} to measure",
        )
    details = DuplicateDetails(
        duplicates=rows - groups,
        rows=rows,
        distinct=groups,
        keys=keys,
        window_seconds=window.total_seconds(),
    )
    return build(planned, limit, (rows - groups) / rows, details, sample_size=rows)


KIND = Kind(
    name="duplicates",
    model=DuplicatesCheck,
    targets=("offline",),
    threshold=threshold,
    judges=(Judge(OfflineObservation, offline),),
    details=DuplicateDetails,
    metrics=metrics,
)
