"""Row count: the rows whose event time lies in the check's window, (scheduled - window,
scheduled], held between absolute bounds. Offline only.

Bounds are two-sided: fewer than `min` or more than `max` rows fail, fewer than `warn_min` or
more than `warn_max` warn. An empty window is a count of zero, not an error: it is exactly what a
`min` is there to catch.
"""

from __future__ import annotations

from datetime import datetime

from checks.kinds.base import build, error, narrow
from checks.model import RowCountCheck
from checks.observation import OfflineObservation, RowCount
from checks.plan import PlannedCheck, window_of
from checks.result import CheckResult, RowCountDetails, Threshold


def threshold(check: RowCountCheck) -> Threshold:
    """Direction max with a lower side when any upper bound is set; direction min otherwise."""
    if check.max is None and check.warn_max is None:
        return Threshold("min", _float(check.min), _float(check.warn_min), "count")
    return Threshold(
        "max",
        _float(check.max),
        _float(check.warn_max),
        "count",
        fail_min=_float(check.min),
        warn_min=_float(check.warn_min),
    )


def offline(planned: PlannedCheck, observation: OfflineObservation, at: datetime) -> CheckResult:  # noqa: ARG001
    check = narrow(planned, RowCountCheck)
    limit = threshold(check)
    window = window_of(planned)
    metric = RowCount(window)
    if metric in observation.unavailable:
        return error(planned, limit, observation.unavailable[metric])
    rows = observation.values.get(metric)
    if not isinstance(rows, int):
        return error(planned, limit, f"no row count was measured for {observation.source}")
    details = RowCountDetails(rows=rows, window_seconds=window.total_seconds())
    return build(planned, limit, float(rows), details)


def _float(bound: int | None) -> float | None:
    return None if bound is None else float(bound)
