"""From check files to planned checks: ids, targets and stores resolved, null-rate checks expanded
per feature, and the offline metrics one query has to measure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from checks.model import (
    CheckFile,
    CoverageCheck,
    FeatureView,
    FreshnessCheck,
    NullRateCheck,
    SchemaDriftCheck,
    Target,
    default_target,
)
from checks.observation import MaxTimestamp, NullCount, OfflineMetric, RowCount
from checks.source import Path

AnyCheck = FreshnessCheck | CoverageCheck | NullRateCheck | SchemaDriftCheck


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
        if target is None or source is None:
            continue
        features: Iterable[str | None] = [None]
        if isinstance(check, NullRateCheck):
            features = [check.feature] if check.feature else list(view.features)
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


def plan_file(check_file: CheckFile) -> list[PlannedCheck]:
    return [
        planned
        for index, view in enumerate(check_file.feature_views)
        for planned in plan_view(view, ("feature_views", index))
    ]


def check_id(view: FeatureView, check: AnyCheck, target: Target, feature: str | None) -> str:
    """`user_stats.null_rate.rolling_7d_revenue@online`, or the check's own `name`."""
    if check.name:
        per_feature = isinstance(check, NullRateCheck) and check.feature is None
        return f"{check.name}.{feature}" if feature and per_feature else check.name
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
                wanted = target or check.target or "online"
                found.append(
                    (
                        (*path, "target"),
                        f"expected the view to declare an `{wanted}` source for this check, found none",
                    )
                )
            names: list[tuple[Path, str]] = []
            if isinstance(check, NullRateCheck) and check.feature is not None:
                names = [(("feature",), check.feature)]
            if isinstance(check, CoverageCheck) and check.features is not None:
                names = [(("features", i), name) for i, name in enumerate(check.features)]
            for where, name in names:
                if name not in view.features:
                    found.append(
                        ((*path, *where), f"expected a declared feature {declared}, found {name!r}")
                    )
    return found


def offline_metrics(checks: Iterable[PlannedCheck]) -> frozenset[OfflineMetric]:
    """Every aggregate the offline checks of one view need: measured together in one query."""
    wanted: set[OfflineMetric] = set()
    for planned in checks:
        if planned.target != "offline":
            continue
        check, view = planned.check, planned.view
        if isinstance(check, FreshnessCheck):
            wanted.add(MaxTimestamp(view.timestamp))
        elif isinstance(check, NullRateCheck) and planned.feature is not None:
            window = view.ttl if check.window is None else check.window
            wanted.add(RowCount(window))
            wanted.add(NullCount(planned.feature, window))
    return frozenset(wanted)
