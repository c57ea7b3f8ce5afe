"""Coverage: the fraction of sampled serving requests whose required features are all present,
non-null and not older than their max age (DESIGN.md section 3)."""

from __future__ import annotations

from datetime import datetime
from types import MappingProxyType

from checks.kinds.base import Gauge, Judge, Kind, build, error, narrow, sample_info, undeclared
from checks.model import CoverageCheck
from checks.observation import EntityReading, FeatureState, OnlineObservation
from checks.planned import PlannedCheck
from checks.result import CheckResult, CoverageDetails, Threshold
from checks.stats import wilson

REASONS = ("missing_key", "undecodable", "absent", "null", "future", "stale")


def threshold(check: CoverageCheck) -> Threshold:
    return Threshold("min", check.min, check.warn, "ratio")


def online(planned: PlannedCheck, observation: OnlineObservation, at: datetime) -> CheckResult:
    check = narrow(planned, CoverageCheck)
    view = planned.view
    limit = threshold(check)
    if observation.asked == 0:
        return error(
            planned, limit, f"the {observation.population} population had no entities to sample"
        )
    required = check.features or tuple(view.features)
    max_age = (view.ttl if check.max_age is None else check.max_age).total_seconds()
    ages = (-check.max_future.total_seconds(), max_age)
    uncovered = dict.fromkeys(REASONS, 0)
    for entity in observation.entities:
        reason = _why_uncovered(entity, required, ages, at)
        if reason is not None:
            uncovered[reason] += 1
    covered = observation.asked - sum(uncovered.values())
    details = CoverageDetails(
        covered=covered,
        sampled=observation.asked,
        interval=wilson(covered, observation.asked),
        max_age_seconds=max_age,
        required=tuple(required),
        uncovered=MappingProxyType(uncovered),
        sample=sample_info(observation),
    )
    return build(
        planned, limit, covered / observation.asked, details, sample_size=observation.asked
    )


def _why_uncovered(
    entity: EntityReading, required: tuple[str, ...], ages: tuple[float, float], at: datetime
) -> str | None:
    """The first reason, in the order of REASONS, that this request would not be served well.
    `ages` bound a valid value's age in seconds: from -max_future (an event time a little
    after the scheduled time, clock jitter) to max_age."""
    if not entity.present:
        return "missing_key"
    readings = [entity.reading(name) for name in required]
    if any(r.state is FeatureState.UNDECODABLE for r in readings):
        return "undecodable"
    if any(r.state is FeatureState.ABSENT for r in readings):
        return "absent"
    if any(r.is_null for r in readings):
        return "null"
    youngest, oldest = ages
    stamps = [r.event_time or entity.event_time for r in readings]
    if any(s is not None and (at - s).total_seconds() < youngest for s in stamps):
        return "future"
    if any(s is None or (at - s).total_seconds() > oldest for s in stamps):
        return "stale"
    return None


KIND = Kind(
    name="coverage",
    model=CoverageCheck,
    targets=("online",),
    threshold=threshold,
    judges=(Judge(OnlineObservation, online),),
    details=CoverageDetails,
    exported=(
        Gauge(
            "featmon_feature_coverage_ratio",
            "Fraction of sampled entities whose required features are present, non-null and fresh.",
            ("feature_view", "store"),
        ),
    ),
    problems=lambda check, view, path: undeclared(view, path, "features", check.features),
)
