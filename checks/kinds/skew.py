"""Skew: training-serving skew, the online value against the offline value it was materialized
from (DESIGN.md section 3).

For every sampled entity found online with an event time t, the offline row it should have been
materialized from is the latest row of that entity with event time <= t (the monitor fetches it,
one bounded query per view). An entity is compared when that row exists; it mismatches when any
compared feature differs:

    value = mismatched entities / compared entities

Two values are equal when both are null (null, NaN or never written online; null or NaN
offline); numbers (int, float) when |a - b| <= max(rel_tol * max(|a|, |b|), abs_tol); booleans as
truth values (an engine without booleans stores 0 and 1); lists element by element; anything
else when equal. An undecodable online value is not compared (decoding is another check's
concern). Entities found online without an offline row at or before their event time are
counted apart (`without_offline_row`): nothing they could be compared with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from checks.kinds.base import Judge, Kind, build, error, narrow, sample_info, undeclared
from checks.model import SkewCheck
from checks.observation import (
    EntityReading,
    FeatureState,
    FeatureValue,
    OfflineRow,
    SkewObservation,
)
from checks.planned import PlannedCheck
from checks.result import CheckResult, Shown, SkewDetails, SkewExample, Threshold, rfc3339
from checks.stats import wilson


def threshold(check: SkewCheck) -> Threshold:
    return Threshold("max", check.max, check.warn, "ratio")


def compared_features(planned: PlannedCheck) -> tuple[str, ...]:
    check = narrow(planned, SkewCheck)
    return check.features if check.features is not None else tuple(planned.view.features)


def same(a: FeatureValue, b: FeatureValue, abs_tol: float, rel_tol: float) -> bool:
    """Whether an online value `a` and an offline value `b` are equal under the tolerances."""
    a, b = _null(a), _null(b)
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool | int) and isinstance(b, bool | int) and bool(a) == bool(b)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(
            same(x, y, abs_tol, rel_tol) for x, y in zip(a, b, strict=True)
        )
    return a == b


def evaluate(planned: PlannedCheck, observation: SkewObservation, at: datetime) -> CheckResult:  # noqa: ARG001 - every kind's evaluate takes (planned, observation, at); this one needs no time
    check = narrow(planned, SkewCheck)
    limit = threshold(check)
    features = compared_features(planned)
    online = observation.online
    found = [e for e in online.entities if e.present and e.event_time is not None]
    if not found:
        return error(
            planned,
            limit,
            f"none of the {online.asked} sampled entities is in the online store with an event "
            "time",
        )
    per_feature = dict.fromkeys(features, 0)
    examples: list[SkewExample] = []
    compared = mismatched = 0
    for entity in found:
        row = observation.offline.get(entity.key)
        if row is None:
            continue
        compared += 1
        differences = _differences(entity, row, features, check)
        if not differences:
            continue
        mismatched += 1
        for name, _, _ in differences:
            per_feature[name] += 1
        if len(examples) < check.examples:
            examples.append(_example(entity, row, differences))
    details = SkewDetails(
        mismatched=mismatched,
        compared=compared,
        without_offline_row=len(found) - compared,
        interval=wilson(mismatched, compared),
        per_feature=per_feature,
        examples=tuple(examples),
        abs_tol=check.abs_tol,
        rel_tol=check.rel_tol,
        source=observation.source,
        sample=sample_info(online),
    )
    if compared == 0:
        return error(
            planned,
            limit,
            f"none of the {len(found)} entities found online has a row in "
            f"{observation.source} at or before its online event time",
        )
    return build(planned, limit, mismatched / compared, details, sample_size=compared)


def _differences(
    entity: EntityReading, row: OfflineRow, features: Sequence[str], check: SkewCheck
) -> list[tuple[str, FeatureValue, FeatureValue]]:
    out: list[tuple[str, FeatureValue, FeatureValue]] = []
    for name in features:
        reading = entity.reading(name)
        if reading.state is FeatureState.UNDECODABLE:
            continue
        online = reading.value if reading.state is FeatureState.VALUE else None
        offline = row.values.get(name)
        if not same(online, offline, check.abs_tol, check.rel_tol):
            out.append((name, online, offline))
    return out


def _example(
    entity: EntityReading,
    row: OfflineRow,
    differences: Sequence[tuple[str, FeatureValue, FeatureValue]],
) -> SkewExample:
    assert entity.event_time is not None  # noqa: S101  (only entities with a time are compared)
    return SkewExample(
        key=tuple(_shown(v) for v in entity.key),
        online_time=entity.event_time,
        offline_time=row.event_time,
        differences=tuple((n, _shown(a), _shown(b)) for n, a, b in differences),
    )


def _null(value: FeatureValue) -> FeatureValue:
    return None if isinstance(value, float) and math.isnan(value) else value


def _shown(value: FeatureValue) -> Shown:
    """A value for the report and JSON: bytes as hex, times in RFC 3339, lists as text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, datetime):
        return rfc3339(value)
    return str([_shown(v) for v in value])


KIND = Kind(
    name="skew",
    model=SkewCheck,
    targets=("online",),
    threshold=threshold,
    judges=(Judge(SkewObservation, evaluate),),
    details=SkewDetails,
    compares=True,
    offline_need=lambda _: "the values the online ones were materialized from",
    problems=lambda check, view, path: undeclared(view, path, "features", check.features),
)
