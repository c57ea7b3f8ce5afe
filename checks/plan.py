"""From check files to planned checks: ids, targets and stores resolved, null-rate checks expanded
per feature, and the offline metrics one query has to measure."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from checks.kinds import kind_of
from checks.kinds.distribution_drift import drift_features
from checks.model import (
    AnyCheck,
    CheckFile,
    CoverageCheck,
    DistributionDriftCheck,
    FeatureView,
    LateArrivalsCheck,
    NullRateCheck,
    RangeCheck,
    ReferenceWindow,
    SkewCheck,
    SodaCheck,
    Target,
    dtype_family,
)
from checks.observation import OfflineMetric
from checks.planned import PlannedCheck, window_of
from checks.soda_contract import problems as soda_problems
from checks.source import Path

__all__ = [  # AnyCheck (checks.model) and PlannedCheck (checks.planned) are imported from here too
    "AnyCheck",
    "PlannedCheck",
    "check_id",
    "current_bounds",
    "default_target",
    "drift_features",
    "metrics_of",
    "offline_metrics",
    "plan_view",
    "problems_of",
    "reference_bounds",
    "targets_of",
    "window_of",
]


def plan_view(view: FeatureView, view_path: Path = ()) -> list[PlannedCheck]:
    """The planned checks of one view; checks whose target the view lacks are left out
    (`problems_of` reports them)."""
    out: list[PlannedCheck] = []
    for index, check in enumerate(view.checks):
        target = default_target(check, view)
        source = getattr(view, target) if target else None
        if target is None or source is None or not check.enabled:
            continue
        for feature in kind_of(check.kind).features_of(check, view):
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
    """`user_stats.null_rate.rolling_7d_revenue@online`, or the check's own `name` (its kind
    says how)."""
    return kind_of(check.kind).id_of(check, view, target, feature)


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


def _kind_problems(view: FeatureView, check: AnyCheck, path: Path) -> list[tuple[Path, str]]:
    """What a kind needs of its view: late arrivals an ingestion-time column, range a numeric
    feature, skew and distribution drift an offline source besides the online one, a baseline
    an offline source."""
    if isinstance(check, SodaCheck):
        return soda_problems(view, check, path)
    offline = view.offline
    need = kind_of(check.kind).offline_need_of(check)
    if need is not None and offline is None:
        return [
            (
                path,
                f"expected the view to declare an `offline` source for {check.kind} ({need}), "
                "found none",
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


def metrics_of(planned: PlannedCheck) -> frozenset[OfflineMetric]:
    """The offline aggregates one check is evaluated from (its kind declares them)."""
    return kind_of(planned.kind).metrics(planned)


def default_target(check: AnyCheck, view: FeatureView) -> Target | None:
    """The store a check measures when it does not say: the first of its kind's targets the
    view has a source for (`targets_of`). None when the view has no such source. A target the
    check names is its target even when the view lacks it (`problems_of` says so)."""
    if check.target is not None:
        return check.target
    for target in targets_of(check):
        if getattr(view, target) is not None:
            return target
    return None


def targets_of(check: AnyCheck) -> tuple[Target, ...]:
    """The sources a check can measure, the one it prefers first (its own `target` alone)."""
    return kind_of(check.kind).targets_of(check)


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
