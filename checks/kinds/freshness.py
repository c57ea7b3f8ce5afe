"""Freshness: the age of values against the run's scheduled time (DESIGN.md section 3)."""

from __future__ import annotations

from datetime import datetime

from checks.kinds.base import build, error, narrow, sample_info
from checks.model import FreshnessCheck
from checks.observation import MaxTimestamp, OfflineObservation, OnlineObservation
from checks.plan import PlannedCheck
from checks.result import CheckResult, FreshnessDetails, Threshold
from checks.stats import nearest_rank

QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1.0}


def threshold(check: FreshnessCheck) -> Threshold:
    def seconds(value: object) -> float | None:
        return value.total_seconds() if value is not None else None  # type: ignore[attr-defined]

    return Threshold("max", seconds(check.max), seconds(check.warn), "seconds")


def online(planned: PlannedCheck, observation: OnlineObservation, at: datetime) -> CheckResult:
    """Per sampled entity found online: age = scheduled time - its event time; one quantile."""
    check = narrow(planned, FreshnessCheck)
    limit = threshold(check)
    ages = sorted(
        (at - e.event_time).total_seconds()
        for e in observation.entities
        if e.present and e.event_time is not None
    )
    if not ages:
        return error(
            planned,
            limit,
            f"none of the {observation.asked} sampled entities has a timestamp in the online store",
        )
    quantiles = {name: nearest_rank(ages, q) for name, q in QUANTILES.items()}
    details = FreshnessDetails(
        p50=quantiles["p50"],
        p90=quantiles["p90"],
        p99=quantiles["p99"],
        max=quantiles["max"],
        sample=sample_info(observation),
    )
    return build(planned, limit, quantiles[check.quantile], details, sample_size=len(ages))


def offline(planned: PlannedCheck, observation: OfflineObservation, at: datetime) -> CheckResult:
    """Age of the newest row: scheduled time - max(event timestamp)."""
    check = narrow(planned, FreshnessCheck)
    limit = threshold(check)
    metric = MaxTimestamp(planned.view.timestamp)
    if metric in observation.unavailable:
        return error(planned, limit, observation.unavailable[metric])
    newest = observation.values.get(metric)
    if newest is None:
        return error(planned, limit, f"{observation.source} has no rows with an event time")
    if not isinstance(newest, datetime):
        return error(planned, limit, f"{planned.view.timestamp} is not a timestamp: {newest!r}")
    age = (at - newest).total_seconds()
    details = FreshnessDetails(p50=age, p90=age, p99=age, max=age, newest=newest)
    return build(planned, limit, age, details)
