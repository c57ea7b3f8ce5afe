"""From check files to planned checks: ids, targets and stores resolved, checks expanded per
feature as their kind says, and the offline metrics one query has to measure."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from checks.checkfile import CheckFile
from checks.kinds import kind_of
from checks.kinds.distribution_drift import drift_features
from checks.model import (
    AnyCheck,
    DistributionDriftCheck,
    FeatureView,
    ReferenceWindow,
    Target,
)
from checks.observation import OfflineMetric
from checks.planned import PlannedCheck, window_of
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
            found.extend(_kind_problems(view, check, path))
    return found


def _kind_problems(view: FeatureView, check: AnyCheck, path: Path) -> list[tuple[Path, str]]:
    """What a kind needs of its view: its own rules (declared features, a numeric feature for
    range, an ingestion-time column for late arrivals, a contract that fits), then an offline
    source besides the online one for skew, distribution drift and a baseline."""
    kind = kind_of(check.kind)
    found = kind.problems_of(check, view, path)
    need = kind.offline_need_of(check)
    if need is not None and view.offline is None:
        found.append(
            (
                path,
                f"expected the view to declare an `offline` source for {check.kind} ({need}), "
                "found none",
            )
        )
    return found


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
