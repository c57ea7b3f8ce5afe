"""Row count: the rows whose event time lies in the check's window, (scheduled - window,
scheduled], held between absolute bounds and, with `change`, against earlier runs. Offline only.

Bounds are two-sided: fewer than `min` or more than `max` rows fail, fewer than `warn_min` or
more than `warn_max` warn. An empty window is a count of zero, not an error: it is exactly what a
`min` is there to catch.

`change` turns the change against history into the same kind of bounds. With R the median of
the check's last `against` recorded counts scheduled before this run (the state database; runs
that measured nothing are left out, and so are those of an earlier window length, the window
lying in each result, and incidents, the runs in which this check failed or erred: the count of
an outage is no reference for the next one; the details say how many were passed over):

    fail below  R (1 - max_drop)       warn below  R (1 - warn_drop)
    fail above  R (1 + max_rise)       warn above  R (1 + warn_rise)

and where both an absolute bound and a change bound apply to one side, the tighter one holds.
So the threshold a result shows is the one it was judged by, and the details give R, the
counts it is the median of, and the change (rows - R) / R. Every earlier window was counted
at the same distance from its end as this one, so rows still arriving late bias them alike.
Fewer than `min_history` recorded counts: the change is not judged (said in the details), the
absolute bounds still are. R = 0: any rise is infinite (`max_rise` fails on one row), and no
drop is possible.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from checks.kinds.base import Judge, Kind, baseline, build, error, narrow
from checks.model import RowCountCheck
from checks.observation import CountHistory, OfflineMetric, OfflineObservation, RowCount
from checks.planned import PlannedCheck, window_of
from checks.result import CheckResult, RowCountDetails, Threshold


def threshold(check: RowCountCheck) -> Threshold:
    """Direction max with a lower side when any upper bound is set; direction min otherwise.
    The absolute bounds only: the change bounds need a reference (`judged_threshold`)."""
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


def judged_threshold(check: RowCountCheck, reference: float | None) -> Threshold:
    """The absolute bounds tightened by the change bounds around `reference` (None: no
    reference, the absolute bounds alone). Two-sided whenever a lower bound exists."""
    change = check.change
    if change is None or reference is None:
        return threshold(check)
    lows = _tighter(max, _float(check.min), _below(reference, change.max_drop))
    warn_lows = _tighter(max, _float(check.warn_min), _below(reference, change.warn_drop))
    highs = _tighter(min, _float(check.max), _above(reference, change.max_rise))
    warn_highs = _tighter(min, _float(check.warn_max), _above(reference, change.warn_rise))
    if highs is None and warn_highs is None:
        return Threshold("min", lows, warn_lows, "count")
    return Threshold("max", highs, warn_highs, "count", fail_min=lows, warn_min=warn_lows)


def offline(planned: PlannedCheck, observation: OfflineObservation, at: datetime) -> CheckResult:  # noqa: ARG001 - every kind's evaluate takes (planned, observation, at); this one needs no time
    """The absolute bounds of a check without `change`. A check with `change` given no
    earlier counts is an error: what it was asked to judge was never measured."""
    check = narrow(planned, RowCountCheck)
    rows = _rows(planned, observation)
    if isinstance(rows, str):
        return error(planned, threshold(check), rows)
    if check.change is not None:
        return error(planned, threshold(check), "no earlier counts were read: no change to judge")
    details = RowCountDetails(rows=rows, window_seconds=window_of(planned).total_seconds())
    return build(planned, threshold(check), float(rows), details)


def with_history(planned: PlannedCheck, observed: CountHistory, at: datetime) -> CheckResult:
    """The absolute bounds and the change against the recorded counts in `observed`."""
    check = narrow(planned, RowCountCheck)
    change = check.change
    rows = _rows(planned, observed.offline)
    if isinstance(rows, str):
        return error(planned, threshold(check), rows)
    if change is None:  # nothing to compare: as without history
        return offline(planned, observed.offline, at)
    window = window_of(planned).total_seconds()
    comparable = (p for p in observed.past if p.window_seconds in (None, window))
    kept, incidents = baseline(comparable, change.against)
    past = [p.rows for p in kept]
    details = RowCountDetails(
        rows=rows, window_seconds=window, history=len(past), incidents=incidents
    )
    if len(past) < change.min_history:
        reason = f"not enough history: {len(past)} of {change.min_history} earlier counts"
        return build(planned, threshold(check), float(rows), replace(details, reason=reason))
    reference = statistics.median(past)
    judged = replace(details, reference=reference, change=_change(rows, reference))
    return build(planned, judged_threshold(check, reference), float(rows), judged)


def _rows(planned: PlannedCheck, observation: OfflineObservation) -> int | str:
    """The count of the check's window, or why there is none."""
    metric = RowCount(window_of(planned))
    if metric in observation.unavailable:
        return observation.unavailable[metric]
    rows = observation.values.get(metric)
    if not isinstance(rows, int):
        return f"no row count was measured for {observation.source}"
    return rows


def _change(rows: int, reference: float) -> float | None:
    """(rows - reference) / reference; None when the reference is 0 (an infinite change)."""
    return None if reference == 0 else (rows - reference) / reference


def _below(reference: float, drop: float | None) -> float | None:
    return None if drop is None else reference * (1 - drop)


def _above(reference: float, rise: float | None) -> float | None:
    return None if rise is None else reference * (1 + rise)


def _tighter(
    pick: Callable[[float, float], float], a: float | None, b: float | None
) -> float | None:
    """The tighter of two optional bounds (`pick` max for lower bounds, min for upper)."""
    if a is None or b is None:
        return a if b is None else b
    return pick(a, b)


def _float(bound: int | None) -> float | None:
    return None if bound is None else float(bound)


def metrics(planned: PlannedCheck) -> frozenset[OfflineMetric]:
    return frozenset({RowCount(window_of(planned))})


KIND = Kind(
    name="row_count",
    model=RowCountCheck,
    targets=("offline",),
    threshold=threshold,
    judges=(Judge(CountHistory, with_history), Judge(OfflineObservation, offline)),
    details=RowCountDetails,
    metrics=metrics,
)
