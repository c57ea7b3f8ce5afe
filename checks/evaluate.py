"""`evaluate(planned, observation, scheduled_at) -> CheckResult`: pure, no I/O, no clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from checks.kinds import (
    coverage,
    duplicates,
    freshness,
    late_arrivals,
    null_rate,
    row_count,
    schema_drift,
)
from checks.kinds import range as range_kind  # not to shadow the builtin
from checks.kinds.base import error
from checks.observation import Observation, OfflineObservation, OnlineObservation, ProbeFailure
from checks.plan import PlannedCheck
from checks.result import CheckResult, Threshold

Online = Callable[[PlannedCheck, OnlineObservation, datetime], CheckResult]
Offline = Callable[[PlannedCheck, OfflineObservation, datetime], CheckResult]

_ONLINE: dict[str, Online] = {
    "freshness": freshness.online,
    "coverage": coverage.online,
    "null_rate": null_rate.online,
    "schema_drift": schema_drift.online,
    "range": range_kind.online,
}
_OFFLINE: dict[str, Offline] = {
    "freshness": freshness.offline,
    "null_rate": null_rate.offline,
    "schema_drift": schema_drift.offline,
    "late_arrivals": late_arrivals.offline,
    "row_count": row_count.offline,
    "duplicates": duplicates.offline,
    "range": range_kind.offline,
}


def threshold(planned: PlannedCheck) -> Threshold:
    check = planned.check
    if check.kind == "freshness":
        return freshness.threshold(check)
    if check.kind == "coverage":
        return coverage.threshold(check)
    if check.kind == "null_rate":
        return null_rate.threshold(check)
    if check.kind == "schema_drift":
        return schema_drift.threshold(check)
    if check.kind == "late_arrivals":
        return late_arrivals.threshold(check)
    if check.kind == "row_count":
        return row_count.threshold(check)
    if check.kind == "duplicates":
        return duplicates.threshold(check)
    return range_kind.threshold(check)


def evaluate(
    planned: PlannedCheck, observation: Observation, scheduled_at: datetime
) -> CheckResult:
    """Hold one observation against one check. A probe failure is an `error` result."""
    if scheduled_at.tzinfo is None:
        raise ValueError("scheduled_at must be timezone-aware")
    if isinstance(observation, ProbeFailure):
        return error(planned, threshold(planned), observation.reason)
    if isinstance(observation, OnlineObservation):
        evaluate_online = _ONLINE.get(planned.kind)
        if evaluate_online is None:
            return error(planned, threshold(planned), f"{planned.kind} cannot be measured online")
        return evaluate_online(planned, observation, scheduled_at)
    evaluate_offline = _OFFLINE.get(planned.kind)
    if evaluate_offline is None:
        return error(planned, threshold(planned), f"{planned.kind} cannot be measured offline")
    return evaluate_offline(planned, observation, scheduled_at)


def error_result(planned: PlannedCheck, reason: str) -> CheckResult:
    """An `error` result for a check that could not be evaluated."""
    return error(planned, threshold(planned), reason)
