"""Small hand-built feature views, planned checks and observations for the tests of `checks/`.

Every time is relative to `AT`, the run's scheduled time, so that an age written in a test is the
age the check must see.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from checks.model import FeatureView
from checks.observation import (
    Column,
    EntityReading,
    FeatureReading,
    FeatureState,
    FeatureValue,
    MetricValue,
    OfflineMetric,
    OfflineObservation,
    OnlineObservation,
)
from checks.plan import PlannedCheck, plan_view

AT = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)

FEATURES = {"revenue": "float", "purchases": "int64", "active_days": "int64"}


def make_view(checks: Sequence[Mapping[str, object]] = (), **fields: object) -> FeatureView:
    """`user_stats`: three features, TTL 1d, an online (redis_prod) and an offline (warehouse)
    source; any field can be replaced, and `None` removes it."""
    data: dict[str, object] = {
        "name": "user_stats",
        "entity": "user_id",
        "ttl": "1d",
        "features": dict(FEATURES),
        "online": {"store": "redis_prod"},
        "offline": {"store": "warehouse", "table": "features.user_stats"},
        "checks": [dict(check) for check in checks],
    }
    data.update(fields)
    return FeatureView.model_validate({k: v for k, v in data.items() if v is not None})


def plan(check: Mapping[str, object], feature: str | None = None, **fields: object) -> PlannedCheck:
    """The one planned check that `check` (for null rates: of `feature`) becomes on `make_view`."""
    planned = [
        p
        for p in plan_view(make_view([check], **fields))
        if feature is None or p.feature == feature
    ]
    if len(planned) != 1:
        raise AssertionError(f"expected one planned check, found {[p.id for p in planned]}")
    return planned[0]


def value(data: FeatureValue = 1.0, age: timedelta | None = timedelta(minutes=1)) -> FeatureReading:
    """A present, decoded value written `age` before the scheduled time (no time if None)."""
    return FeatureReading(FeatureState.VALUE, data, None if age is None else AT - age)


def null(age: timedelta = timedelta(minutes=1)) -> FeatureReading:
    return FeatureReading(FeatureState.NULL, None, AT - age)


def undecodable(age: timedelta = timedelta(minutes=1)) -> FeatureReading:
    return FeatureReading(FeatureState.UNDECODABLE, None, AT - age)


def entity(key: int, **features: FeatureReading) -> EntityReading:
    """An entity the online store has, with exactly these feature readings."""
    return EntityReading((key,), True, MappingProxyType(features))


def healthy(key: int, age: timedelta = timedelta(minutes=1)) -> EntityReading:
    """An entity whose three features are all present, non-null and `age` old."""
    return entity(key, **{name: value(1.0, age) for name in FEATURES})


def missing(key: int) -> EntityReading:
    """An entity the online store does not have."""
    return EntityReading((key,), False)


def online(
    *entities: EntityReading,
    undeclared: frozenset[str] = frozenset(),
    population: str = "offline",
    decode_errors: int = 0,
) -> OnlineObservation:
    return OnlineObservation(
        store="redis_prod",
        feature_view="user_stats",
        population=population,
        entities=entities,
        decode_errors=decode_errors,
        undeclared_fields=undeclared,
    )


def offline(
    values: Mapping[OfflineMetric, MetricValue] | None = None,
    columns: tuple[Column, ...] = (),
    unavailable: Mapping[OfflineMetric, str] | None = None,
) -> OfflineObservation:
    return OfflineObservation(
        store="warehouse",
        feature_view="user_stats",
        source="features.user_stats",
        columns=columns,
        values=MappingProxyType(dict(values or {})),
        unavailable=MappingProxyType(dict(unavailable or {})),
    )
