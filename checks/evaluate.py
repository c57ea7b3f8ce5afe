"""`evaluate(planned, observation, scheduled_at) -> CheckResult`: pure, no I/O, no clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from checks.kinds import (
    anomaly,
    coverage,
    distribution_drift,
    duplicates,
    freshness,
    late_arrivals,
    null_rate,
    row_count,
    schema_drift,
    skew,
)
from checks.kinds import range as range_kind  # not to shadow the builtin
from checks.kinds import soda as soda_kind
from checks.kinds.base import error
from checks.kinds.soda import SodaObservation
from checks.model import AnomalyCheck, DistributionDriftCheck, SkewCheck
from checks.observation import (
    BaselineObservation,
    CountHistory,
    DriftObservation,
    MetricHistory,
    Observation,
    OfflineObservation,
    OnlineObservation,
    ProbeFailure,
    SkewObservation,
)
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
    if check.kind == "soda":
        return soda_kind.threshold(check)
    if isinstance(check, SkewCheck):
        return skew.threshold(check)
    if isinstance(check, DistributionDriftCheck):
        return distribution_drift.threshold(check)
    if isinstance(check, AnomalyCheck):
        return anomaly.threshold(check)
    return range_kind.threshold(check)


def evaluate(
    planned: PlannedCheck, observation: Observation | SodaObservation, scheduled_at: datetime
) -> CheckResult:
    """Hold one observation against one check. A probe failure is an `error` result."""
    if scheduled_at.tzinfo is None:
        raise ValueError("scheduled_at must be timezone-aware")
    if planned.kind == "soda":  # one check of a contract, from the contract's own observation
        return soda_kind.evaluate(planned, observation, scheduled_at)
    if isinstance(observation, SodaObservation):
        return error(planned, threshold(planned), f"{planned.kind} is not measured by Soda")
    if isinstance(observation, ProbeFailure):
        return error(planned, threshold(planned), observation.reason)
    analytical = _analytical(planned, observation, scheduled_at)
    if analytical is not None:
        return analytical
    if planned.kind in _ANALYTICAL:
        return error(planned, threshold(planned), f"{planned.kind} was not given what it compares")
    if isinstance(observation, OnlineObservation):
        evaluate_online = _ONLINE.get(planned.kind)
        if evaluate_online is None:
            return error(planned, threshold(planned), f"{planned.kind} cannot be measured online")
        return evaluate_online(planned, observation, scheduled_at)
    evaluate_offline = _OFFLINE.get(planned.kind)
    if evaluate_offline is None or not isinstance(observation, OfflineObservation):
        return error(planned, threshold(planned), f"{planned.kind} cannot be measured offline")
    return evaluate_offline(planned, observation, scheduled_at)


_ANALYTICAL = frozenset({"skew", "distribution_drift", "anomaly"})


def _analytical(
    planned: PlannedCheck, observation: Observation, at: datetime
) -> CheckResult | None:
    """The kinds that compare two things, each given its own observation by the probe."""
    if isinstance(observation, SkewObservation) and planned.kind == "skew":
        return skew.evaluate(planned, observation, at)
    if isinstance(observation, DriftObservation) and planned.kind == "distribution_drift":
        return distribution_drift.evaluate(planned, observation, at)
    if isinstance(observation, MetricHistory) and planned.kind == "anomaly":
        return anomaly.evaluate(planned, observation, at)
    if isinstance(observation, BaselineObservation) and planned.kind == "schema_drift":
        return schema_drift.baseline(planned, observation, at)
    if isinstance(observation, CountHistory) and planned.kind == "row_count":
        return row_count.with_history(planned, observation, at)
    return None


def error_result(planned: PlannedCheck, reason: str) -> CheckResult:
    """An `error` result for a check that could not be evaluated."""
    return error(planned, threshold(planned), reason)
