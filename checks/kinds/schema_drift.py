"""Schema drift: offline columns against the declared schema; online stored features against the
declared ones (DESIGN.md section 3)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from checks.kinds.base import Gauge, Judge, Kind, Reading, build, error, narrow
from checks.model import SchemaDriftCheck, dtype_family
from checks.observation import (
    BaselineObservation,
    Column,
    FeatureState,
    OfflineObservation,
    OnlineObservation,
)
from checks.planned import PlannedCheck
from checks.result import CheckResult, Retyped, SchemaDriftDetails, Threshold


def threshold(check: SchemaDriftCheck) -> Threshold:
    return Threshold("max", check.max, check.warn, "count")


def expected_columns(planned: PlannedCheck) -> dict[str, str | None]:
    """Column -> expected type family (None: any type) of the view's offline source."""
    view = planned.view
    out: dict[str, str | None] = {
        key: dtype_family(view.entity_types[key]) if key in view.entity_types else None
        for key in view.join_keys
    }
    out[view.timestamp] = "timestamp"
    if view.offline is not None and view.offline.ingested_at:
        out[view.offline.ingested_at] = "timestamp"
    out |= {name: dtype_family(dtype) for name, dtype in view.features.items()}
    return out


def _count(details: SchemaDriftDetails) -> int:
    added = len(details.added) if details.counted_added else 0
    return added + len(details.removed) + len(details.retyped)


def offline(planned: PlannedCheck, observation: OfflineObservation, at: datetime) -> CheckResult:  # noqa: ARG001 - every kind's evaluate takes (planned, observation, at); this one needs no time
    check = narrow(planned, SchemaDriftCheck)
    limit = threshold(check)
    if not observation.columns:
        return error(planned, limit, f"no columns could be read for {observation.source}")
    details = _compare(expected_columns(planned), observation.columns, check)
    return build(planned, limit, float(_count(details)), details)


def baseline(
    planned: PlannedCheck,
    observation: BaselineObservation,
    at: datetime,  # noqa: ARG001 - every kind's evaluate takes (planned, observation, at); this one needs no time
) -> CheckResult:
    """The offline columns against the baseline kept in the state database (`baseline: true`):
    added, removed, and retyped by type family, as against a declared schema. The run that
    captured the baseline compares it with itself, and passes."""
    check = narrow(planned, SchemaDriftCheck)
    limit = threshold(check)
    columns = observation.offline.columns
    if not columns:
        return error(planned, limit, f"no columns could be read for {observation.offline.source}")
    expected: dict[str, str | None] = {c.name: c.family for c in observation.baseline.columns}
    details = replace(
        _compare(expected, columns, check),
        baseline_at=observation.baseline.captured_at,
        baseline_captured=observation.captured,
    )
    return build(planned, limit, float(_count(details)), details)


def _compare(
    expected: dict[str, str | None], columns: tuple[Column, ...], check: SchemaDriftCheck
) -> SchemaDriftDetails:
    actual = {c.name: c for c in columns}
    return SchemaDriftDetails(
        added=tuple(sorted(set(actual) - set(expected))),
        removed=tuple(sorted(set(expected) - set(actual))),
        retyped=tuple(
            Retyped(name, family, actual[name].native_type)
            for name, family in sorted(expected.items())
            if name in actual and family is not None and actual[name].family != family
        ),
        counted_added=not check.allow_added,
    )


def online(planned: PlannedCheck, observation: OnlineObservation, at: datetime) -> CheckResult:  # noqa: ARG001 - every kind's evaluate takes (planned, observation, at); this one needs no time
    """Stored features nothing declares (added), and declared features absent from every
    sampled entity that exists (removed)."""
    check = narrow(planned, SchemaDriftCheck)
    limit = threshold(check)
    present = [e for e in observation.entities if e.present]
    if not present:
        return error(
            planned,
            limit,
            f"none of the {observation.asked} sampled entities is in the online store",
        )
    removed = tuple(
        sorted(
            name
            for name in planned.view.features
            if all(e.reading(name).state is FeatureState.ABSENT for e in present)
        )
    )
    details = SchemaDriftDetails(
        added=tuple(sorted(observation.undeclared_fields)),
        removed=removed,
        retyped=(),
        counted_added=not check.allow_added,
    )
    return build(planned, limit, float(_count(details)), details, len(present))


def offline_need(check: SchemaDriftCheck) -> str | None:
    return "the schema a baseline keeps" if check.baseline else None


KIND = Kind(
    name="schema_drift",
    model=SchemaDriftCheck,
    targets=("offline", "online"),
    threshold=threshold,
    judges=(
        Judge(BaselineObservation, baseline),
        Judge(OnlineObservation, online),
        Judge(OfflineObservation, offline),
    ),
    details=SchemaDriftDetails,
    reads_undeclared=True,
    offline_need=offline_need,
    exported=(
        Gauge(
            "featmon_schema_drift_columns",
            "Columns that differ from the expected schema, by change.",
            ("feature_view", "store", "change"),
            tuple(
                Reading(change, count=True, fixed=(change,))
                for change in ("added", "removed", "retyped")
            ),
        ),
    ),
)
