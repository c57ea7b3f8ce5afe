"""Anomaly: one check's value against its own recent history (DESIGN.md section 3).

Over the last `window` recorded values of the check named by `of`, with x the value judged (this
run's, for a check of the same view; else the newest recorded one, judged against the values
before it). Left out: runs without a value (errors, say), and incidents, the runs in which the
watched check itself failed or erred: a baseline that learnt an outage would call the next one
normal. The window is filled with the values before them instead, and the details count the
incidents skipped. The past values are all scheduled before the judged run, never that run:

    median = the median of the past values
    MAD    = the median of |value - median| over the past values
    z      = 0.6745 (x - median) / MAD                   (Iglewicz and Hoaglin's robust z)

MAD = 0 (more than half the past values equal): the mean absolute deviation around the median
stands in, z = (x - median) / (1.2533 meanAD) (1.2533 = sqrt(pi / 2) makes it estimate a
standard deviation, as 1 / 0.6745 does for the MAD). When that too is 0 (every past value the
same), z is 0 if x equals them and +-`Z_CAP` otherwise: any change of a constant is flagged.

The value held against the threshold is |z| (`direction: both`), z (`up`: only rises count)
or -z (`down`). Fewer than `min_history` past values: the check passes, unjudged, with "not
enough history" in its details and no value.

With `seasonality` (`daily` or `weekly`), the past values are instead one per earlier day or
week: the value recorded nearest the same time of day or week as x, within `tolerance`, over
the last `window` such seasons (incidents left out as above). A metric with a weekly cycle
(weekends quiet, a Monday batch) is then judged against the same hour of earlier weeks, not
against the hours just before it.

Switch a check off with `enabled: false` (or remove it); its history stays in the state
database.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from checks.kinds.base import Judge, Kind, baseline, build, error, narrow
from checks.model import SEASONS, AnomalyCheck, FeatureView
from checks.observation import MetricHistory, PastValue
from checks.planned import PlannedCheck
from checks.result import AnomalyDetails, CheckResult, Status, Threshold

Z_CAP = 1000.0  # |z| of a change of a constant history
SEASON_MARGIN = 10  # seasons read beyond `window`, for the incidents and seasons without a value
_MAD_Z = 0.6745  # the 0.75 quantile of the standard normal: MAD / 0.6745 estimates sigma
_MEAN_AD_Z = math.sqrt(math.pi / 2)  # E|X - mu| = sigma sqrt(2 / pi) for a normal X


def threshold(check: AnomalyCheck) -> Threshold:
    return Threshold("max", check.max, check.warn, "score")


def robust_z(value: float, past: Sequence[float]) -> tuple[float, float, float, str]:
    """(z, median, MAD, scale) of `value` against `past` (not empty); see the module doc."""
    median = statistics.median(past)
    deviations = [abs(v - median) for v in past]
    mad = statistics.median(deviations)
    if mad > 0:
        return _MAD_Z * (value - median) / mad, median, mad, "mad"
    mean_ad = math.fsum(deviations) / len(deviations)
    if mean_ad > 0:
        return (value - median) / (_MEAN_AD_Z * mean_ad), median, mad, "mean_ad"
    z = 0.0 if value == median else math.copysign(Z_CAP, value - median)
    return z, median, mad, "constant"


def seasons(check: AnomalyCheck, judged_at: datetime) -> list[datetime]:
    """The same time of day or week as `judged_at` on the days or weeks before it, newest
    first, `SEASON_MARGIN` beyond `window` (none without `seasonality`): the times whose
    values are read and judged against."""
    if check.seasonality is None:
        return []
    period = SEASONS[check.seasonality]
    return [judged_at - k * period for k in range(1, check.window + SEASON_MARGIN + 1)]


def seasonal(
    check: AnomalyCheck, past: Sequence[PastValue], judged_at: datetime
) -> list[PastValue]:
    """One value per earlier season, newest first: the one nearest the season's time within
    `tolerance`, an incident only when every value that near is one. A season without a value
    that near (the daemon was down, say) is skipped."""
    picked = []
    for centre in seasons(check, judged_at):
        near = [p for p in past if abs(p.scheduled_at - centre) <= check.tolerance]
        if near:
            picked.append(min(near, key=lambda p: (p.incident, abs(p.scheduled_at - centre))))
    return picked


def evaluate(planned: PlannedCheck, history: MetricHistory, at: datetime) -> CheckResult:
    check = narrow(planned, AnomalyCheck)
    limit = threshold(check)
    if history.current is None:
        return error(planned, limit, f"{history.of} has no value to judge (none recorded yet)")
    finite = [p for p in history.past if math.isfinite(p.value)]
    if check.seasonality is not None:
        finite = seasonal(check, finite, history.current_at or at)
    kept, incidents = baseline(finite, check.window)
    past = [p.value for p in kept]
    details = AnomalyDetails(
        of=history.of,
        current=history.current,
        current_at=history.current_at,
        history=len(past),
        min_history=check.min_history,
        median=None,
        mad=None,
        z=None,
        scale=None,
        direction=check.direction,
        incidents=incidents,
    )
    if len(past) < check.min_history:
        reason = f"not enough history: {len(past)} of {check.min_history} past values"
        return build(planned, limit, None, replace(details, reason=reason), status=Status.PASS)
    z, median, mad, scale = robust_z(history.current, past)
    score = {"both": abs(z), "up": z, "down": -z}[check.direction]
    judged = replace(details, median=median, mad=mad, z=z, scale=scale)
    return build(planned, limit, score, judged, sample_size=len(past))


def id_part(check: AnomalyCheck, view: FeatureView) -> str:
    """`anomaly.<of>`, `of` without the view's own name if it is there."""
    return f"anomaly.{check.of.removeprefix(view.name + '.')}"


KIND = Kind(
    name="anomaly",
    model=AnomalyCheck,
    targets=("online", "offline"),
    threshold=threshold,
    judges=(Judge(MetricHistory, evaluate),),
    details=AnomalyDetails,
    compares=True,
    measured_by="results",
    id_part=id_part,
)
