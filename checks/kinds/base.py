"""What every check kind shares: building a result from a planned check."""

from __future__ import annotations

from types import MappingProxyType
from typing import TypeVar

from checks.observation import OnlineObservation
from checks.plan import AnyCheck, PlannedCheck
from checks.result import CheckResult, Details, ErrorDetails, SampleInfo, Status, Threshold

C = TypeVar("C", bound=AnyCheck)


def build(
    planned: PlannedCheck,
    threshold: Threshold,
    value: float | None,
    details: Details,
    sample_size: int | None = None,
    status: Status | None = None,
) -> CheckResult:
    """A result whose status follows from `value` and `threshold` unless given."""
    if status is None:
        status = Status.ERROR if value is None else threshold.status(value)
    return CheckResult(
        check=planned.id,
        kind=planned.kind,
        feature_view=planned.view.name,
        feature=planned.feature,
        store=planned.store,
        target=planned.target,
        status=status,
        severity=planned.check.severity,
        value=value,
        threshold=threshold,
        sample_size=sample_size,
        details=details,
        labels=MappingProxyType(planned.labels),
    )


def error(planned: PlannedCheck, threshold: Threshold, reason: str) -> CheckResult:
    """The probe could not measure this check."""
    return build(planned, threshold, None, ErrorDetails(reason), status=Status.ERROR)


def sample_info(observation: OnlineObservation) -> SampleInfo:
    return SampleInfo(
        population=observation.population,
        asked=observation.asked,
        found=observation.found,
        decode_errors=observation.decode_errors,
    )


def narrow(planned: PlannedCheck, kind: type[C]) -> C:
    """The planned check's model, as the kind module that evaluates it expects."""
    if not isinstance(planned.check, kind):
        raise TypeError(f"{planned.id} is a {planned.kind} check, not {kind.__name__}")
    return planned.check
