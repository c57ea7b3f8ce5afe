"""`evaluate(planned, observation, scheduled_at) -> CheckResult`: pure, no I/O, no clock.

Each kind judges its own observations (`checks.kinds`): evaluation is a lookup and one call."""

from __future__ import annotations

from datetime import datetime

from checks.kinds import kind_of
from checks.kinds.base import error
from checks.observation import Observation, SodaObservation
from checks.planned import PlannedCheck
from checks.result import CheckResult, Threshold


def threshold(planned: PlannedCheck) -> Threshold:
    """The check's threshold, as its kind reads it; raises `UnknownKind` for an unknown kind."""
    return kind_of(planned.kind).threshold_of(planned.check)


def evaluate(
    planned: PlannedCheck, observation: Observation | SodaObservation, scheduled_at: datetime
) -> CheckResult:
    """Hold one observation against one check. A probe failure is an `error` result."""
    if scheduled_at.tzinfo is None:
        raise ValueError("scheduled_at must be timezone-aware")
    return kind_of(planned.kind).evaluate(planned, observation, scheduled_at)


def error_result(planned: PlannedCheck, reason: str) -> CheckResult:
    """An `error` result for a check that could not be evaluated."""
    return error(planned, threshold(planned), reason)
