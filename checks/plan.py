"""From check files to planned checks: ids, targets and stores resolved, null-rate checks expanded
per feature, and the offline metrics one query has to measure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from checks.model import (
    AnomalyCheck,
    AnyCheck,
    CheckFile,
    CoverageCheck,
    DistributionDriftCheck,
    DuplicatesCheck,
    FeatureView,
    FreshnessCheck,
    LateArrivalsCheck,
    NullRateCheck,
    RangeCheck,
    ReferenceWindow,
    RowCountCheck,
    SchemaDriftCheck,
    SkewCheck,
    SodaCheck,
    Target,
    default_target,
    dtype_family,
    targets_of,
)
from checks.observation import (
    LATENESS_BOUNDS,
    DistinctKeys,
    FutureCount,
    KeyedRows,
    LatenessCount,
    MaxLateness,
    MaxTimestamp,
    NullCount,
    OfflineMetric,
    RowCount,
    ValueCount,
    ValueStat,
)
from checks.soda_contract import keys_of as soda_keys
from checks.soda_contract import problems as soda_problems
from checks.source import Path

__all__ = [  # AnyCheck is defined with the kinds in checks.model, and imported from here too
    "AnyCheck",
    "PlannedCheck",
    "check_id",
    "current_bounds",
    "drift_features",
    "lateness_bounds",
    "lateness_metrics",
    "metrics_of",
    "offline_metrics",
    "plan_view",
    "problems_of",
    "range_metrics",
    "reference_bounds",
    "window_of",
]


@dataclass(frozen=True)
class PlannedCheck:
    """One check bound to its view, its target store and (for null rates) one feature."""

    id: str
    view: FeatureView
    check: AnyCheck
    target: Target
    store: str
    feature: str | None
    path: Path  # where the check stands in its file, for error messages

    @property
    def kind(self) -> str:
        return self.check.kind

    @property
    def labels(self) -> dict[str, str]:
        return {**self.view.labels, **self.check.labels}


def plan_view(view: FeatureView, view_path: Path = ()) -> list[PlannedCheck]:
    """The planned checks of one view; checks whose target the view lacks are left out
    (`problems_of` reports them)."""
    out: list[PlannedCheck] = []
    for index, check in enumerate(view.checks):
        target = default_target(check, view)
        source = getattr(view, target) if target else None
        if target is None or source is None or not check.enabled:
            continue
        features: Iterable[str | None] = [None]
        if isinstance(check, NullRateCheck):
            features = [check.feature] if check.feature else list(view.features)
        elif isinstance(check, DistributionDriftCheck):
            features = [check.feature] if check.feature else drift_features(view)
        elif isinstance(check, RangeCheck):
            features = [check.feature]
        elif isinstance(check, SodaCheck):  # one result per check of the contract
            features = soda_keys(check)
        for feature in features:
            out.append(
                PlannedCheck(
                    id=check_id(view, check, target, feature),
                    view=view,
                    check=check,
                    target=target,
                    store=source.store,
                    feature=feature,
                    path=(*view_path, "checks", index),
                )
            )
    return out


def check_id(view: FeatureView, check: AnyCheck, target: Target, feature: str | None) -> str:
    """`user_stats.null_rate.rolling_7d_revenue@online`, or the check's own `name`."""
    if check.name:
        if isinstance(check, SodaCheck) and feature:  # `<name>.<key of the Soda check>`
            return f"{check.name}.{feature}"
        per_feature = isinstance(check, NullRateCheck | DistributionDriftCheck)
        per_feature = per_feature and getattr(check, "feature", None) is None
        return f"{check.name}.{feature}" if feature and per_feature else check.name
    if isinstance(check, AnomalyCheck):  # `of` without the view's own name, if it is there
        return f"{view.name}.anomaly.{check.of.removeprefix(view.name + '.')}"
    middle = f".{feature}" if feature else ""
    return f"{view.name}.{check.kind}{middle}@{target}"


def problems_of(check_file: CheckFile) -> list[tuple[Path, str]]:
    """Rules that span fields: names a check uses must be declared, targets must exist."""
    found: list[tuple[Path, str]] = []
    for v_index, view in enumerate(check_file.feature_views):
        base: Path = ("feature_views", v_index)
        declared = sorted(view.features)
        for key in view.entity_types:
            if key not in view.join_keys:
                found.append(
                    (
                        (*base, "entity_types", key),
                        f"expected one of the join keys {list(view.join_keys)}, found {key!r}",
                    )
                )
        for c_index, check in enumerate(view.checks):
            path: Path = (*base, "checks", c_index)
            target = default_target(check, view)
            if target is None or getattr(view, target) is None:
                wanted = " or ".join(f"an `{t}` source" for t in targets_of(check))
                found.append(
                    (
                        (*path, "target"),
                        f"expected the view to declare {wanted} for {check.kind}, found none",
                    )
                )
            names: list[tuple[Path, str]] = []
            single = NullRateCheck | RangeCheck | DistributionDriftCheck
            if isinstance(check, single) and check.feature is not None:
                names = [(("feature",), check.feature)]
            if isinstance(check, CoverageCheck | SkewCheck) and check.features is not None:
                names = [(("features", i), name) for i, name in enumerate(check.features)]
            for where, name in names:
                if name not in view.features:
                    found.append(
                        ((*path, *where), f"expected a declared feature {declared}, found {name!r}")
                    )
            found.extend(_kind_problems(view, check, path))
    return found


_NUMERIC = ("int", "float")
_OFFLINE_NEED = {
    "skew": "the values the online ones were materialized from",
    "distribution_drift": "the reference window",
    "schema_drift": "the schema a baseline keeps",
}


def _kind_problems(view: FeatureView, check: AnyCheck, path: Path) -> list[tuple[Path, str]]:
    """What a kind needs of its view: late arrivals an ingestion-time column, range a numeric
    feature, skew and distribution drift an offline source besides the online one, a baseline
    an offline source."""
    if isinstance(check, SodaCheck):
        return soda_problems(view, check, path)
    offline = view.offline
    needs_offline = isinstance(check, SkewCheck | DistributionDriftCheck) or (
        isinstance(check, SchemaDriftCheck) and check.baseline
    )
    if needs_offline and offline is None:
        return [
            (
                path,
                f"expected the view to declare an `offline` source for {check.kind} "
                f"({_OFFLINE_NEED[check.kind]}), found none",
            )
        ]
    if isinstance(check, LateArrivalsCheck) and offline is not None and not offline.ingested_at:
        return [
            (
                path,
                "expected the view's offline source to name its ingestion-time column "
                "(`offline.ingested_at`) for late_arrivals, found none",
            )
        ]
    if isinstance(check, RangeCheck) and check.feature in view.features:
        dtype = view.features[check.feature]
        if dtype_family(dtype) not in _NUMERIC:
            return [
                (
                    (*path, "feature"),
                    f"expected a numeric feature (int or float) for range, found "
                    f"{check.feature!r} of type {dtype}",
                )
            ]
    return []


def offline_metrics(checks: Iterable[PlannedCheck]) -> frozenset[OfflineMetric]:
    """Every aggregate the offline checks of one view need: measured together in one query."""
    wanted: set[OfflineMetric] = set()
    for planned in checks:
        if planned.target == "offline":
            wanted |= metrics_of(planned)
    return frozenset(wanted)


def window_of(planned: PlannedCheck) -> timedelta:
    """The check's window of event times: its own `window`, or the view's TTL."""
    window: timedelta | None = getattr(planned.check, "window", None)
    return planned.view.ttl if window is None else window


def metrics_of(planned: PlannedCheck) -> set[OfflineMetric]:
    """The offline aggregates one check is evaluated from (its kind module reads these)."""
    check, view = planned.check, planned.view
    if isinstance(check, FreshnessCheck):
        return set(freshness_metrics(view.timestamp, check.max_future))
    window = window_of(planned)
    if isinstance(check, NullRateCheck) and planned.feature is not None:
        return {RowCount(window), NullCount(planned.feature, window)}
    if isinstance(check, RowCountCheck):
        return {RowCount(window)}
    if isinstance(check, DuplicatesCheck):
        return {KeyedRows(view.join_keys, window), DistinctKeys(view.join_keys, window)}
    if isinstance(check, LateArrivalsCheck) and view.offline and view.offline.ingested_at:
        return set(lateness_metrics(view.offline.ingested_at, check.watermark, window))
    if isinstance(check, RangeCheck):
        return set(range_metrics(check, window))
    return set()


def freshness_metrics(timestamp: str, max_future: timedelta) -> tuple[OfflineMetric, ...]:
    """The newest event time at or before scheduled + max_future (the one freshness measures),
    the rows after that bound (values from the future) and the newest of all (how far ahead)."""
    return (
        MaxTimestamp(timestamp, max_future),
        FutureCount(timestamp, max_future),
        MaxTimestamp(timestamp),
    )


def lateness_bounds(watermark: timedelta) -> tuple[timedelta, ...]:
    """The histogram's boundaries: the fixed ones and the watermark, ascending."""
    return tuple(sorted({*LATENESS_BOUNDS, watermark}))


def lateness_metrics(
    ingested_at: str, watermark: timedelta, window: timedelta
) -> tuple[OfflineMetric, ...]:
    """Rows in the window, rows whose lateness is known, the cumulative histogram of their
    lateness (the watermark is one of its boundaries) and the largest lateness."""
    return (
        RowCount(window),
        LatenessCount(ingested_at, None, window),
        *(LatenessCount(ingested_at, b, window) for b in lateness_bounds(watermark)),
        MaxLateness(ingested_at, window),
    )


def range_metrics(check: RangeCheck, window: timedelta) -> tuple[OfflineMetric, ...]:
    """Non-null values (rows - nulls), each kind of invalid or out-of-range value the check
    looks for, and min, max and mean of the finite values."""
    column = check.feature
    out: list[OfflineMetric] = [
        RowCount(window),
        NullCount(column, window),
        ValueCount(column, "nan", window),
        ValueCount(column, "infinite", window),
        *(ValueStat(column, stat, window) for stat in ("min", "max", "mean")),
    ]
    if check.non_negative:
        out.append(ValueCount(column, "negative", window))
    if check.min_value is not None:
        out.append(ValueCount(column, "below", window, check.min_value))
    if check.max_value is not None:
        out.append(ValueCount(column, "above", window, check.max_value))
    return tuple(out)


DRIFT_FAMILIES = frozenset({"int", "float", "string", "bool"})


def drift_features(view: FeatureView) -> list[str]:
    """The features distribution drift compares when a check names none: numbers and
    categories (strings, booleans)."""
    return [name for name, dtype in view.features.items() if dtype_family(dtype) in DRIFT_FAMILIES]


def reference_bounds(
    check: DistributionDriftCheck, scheduled_at: datetime
) -> tuple[datetime, datetime]:
    """The reference window [since, until) of a drift check at one scheduled time."""
    return _bounds(check.reference, scheduled_at)


def current_bounds(
    check: DistributionDriftCheck, scheduled_at: datetime
) -> tuple[datetime, datetime]:
    """The recent offline window [since, until) a drift check on target offline compares."""
    return _bounds(check.current_window(), scheduled_at)


def _bounds(window: ReferenceWindow, scheduled_at: datetime) -> tuple[datetime, datetime]:
    if window.start is not None and window.end is not None:
        return window.start, window.end
    assert window.last is not None  # noqa: S101  (the model holds one form or the other)
    until = scheduled_at - window.ending
    return until - window.last, until
