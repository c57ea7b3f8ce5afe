"""What the analytical checks compare, measured for one probe of one view.

`checks/` stays pure: skew, distribution drift, schema baselines and anomalies get frozen
values built here from the stores and the state database.

- skew: one extra offline query per view (in batches of entities), the latest offline row of
  each sampled entity found online at or before its online event time;
- distribution drift: one reference sample per distinct reference window of the view, and on
  target offline one sample of the current window;
- schema drift with `baseline: true`: the baseline in the state database; when there is none,
  the columns of this run are saved as the baseline (the first run captures it);
- row_count with `change`: the check's earlier counts (and the windows they counted);
- anomaly: the referenced check's value this run (a check of the same view) or its newest
  recorded value, and its past values from the state database.

Any failure to measure becomes a `ProbeFailure` for the checks it feeds (an `error` result).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import partial

from checks.kinds.anomaly import seasons
from checks.kinds.skew import compared_features
from checks.model import (
    AnomalyCheck,
    DistributionDriftCheck,
    FeatureView,
    RowCountCheck,
    SchemaDriftCheck,
)
from checks.observation import (
    BaselineObservation,
    CountHistory,
    DriftObservation,
    MetricHistory,
    Observation,
    OfflineObservation,
    OnlineObservation,
    PastCount,
    PastValue,
    ProbeFailure,
    SchemaBaseline,
    SkewObservation,
)
from checks.plan import PlannedCheck, current_bounds, reference_bounds
from checks.result import CheckResult, Status
from monitor.abc import EntityKey, OfflineStore, StateReader
from monitor.errors import QueryFailed, StoreError
from monitor.state import StateError
from monitor.state.values import Baseline, HistoryPoint

log = logging.getLogger(__name__)

FIRST_RUN = "featmon (first run)"  # `accepted_by` of a baseline the first run captured


def measure(
    view: FeatureView,
    planned: Sequence[PlannedCheck],
    offline: OfflineStore | None,
    state: StateReader | None,
    observations: Mapping[str, Observation],
    at: datetime,
) -> dict[str, Observation]:
    """The observation of each skew, drift and baseline schema check, by check id."""
    out: dict[str, Observation] = {}
    online = observations.get("online")
    skews = [p for p in planned if p.kind == "skew"]
    if skews:
        observed = _guard(offline, view, lambda store: _skew(view, skews, store, online))
        out |= dict.fromkeys((p.id for p in skews), observed)
    drifts = [p for p in planned if isinstance(p.check, DistributionDriftCheck)]
    for windows, group in _by_windows(drifts, at).items():
        observed = _guard(offline, view, partial(_drift, view, group, online, windows))
        out |= dict.fromkeys((p.id for p in group), observed)
    for p in planned:
        if isinstance(p.check, SchemaDriftCheck) and p.check.baseline:
            out[p.id] = _baseline(view, p, state, observations.get("offline"), at)
        if isinstance(p.check, RowCountCheck) and p.check.change is not None:
            against = p.check.change.against
            out[p.id] = _counts(view, p, against, state, observations.get("offline"), at)
    return out


def history(
    planned: PlannedCheck,
    check: AnomalyCheck,
    results: Iterable[CheckResult],
    state: StateReader | None,
    at: datetime,
) -> Observation:
    """The values an anomaly check judges: this run's value of a check of the same view, or
    else the newest one recorded at or before `at`, and the earlier values, each scheduled
    before the judged one (so the judged run is never in its own baseline): the last runs,
    with a margin beyond `window` for the incidents and runs without a value the check leaves
    out, or with `seasonality` the runs near the same time of its earlier seasons."""
    if state is None:
        return ProbeFailure(planned.store, planned.view.name, "no state database: no history")
    same_view = {r.check: r for r in results}
    ids = (check.of, f"{planned.view.name}.{check.of}")
    current = next((same_view[i] for i in ids if i in same_view), None)
    target = current.check if current is not None else check.of
    try:
        if current is not None:
            return MetricHistory(target, current.value, None, _past(state, check, target, at))
        newest = _values(state.history(target, 1, until=at))
        if not newest:
            return MetricHistory(target, None, None, ())
        judged_at = newest[0].scheduled_at
        past = _past(state, check, target, judged_at)
        return MetricHistory(target, newest[0].value, judged_at, past)
    except StateError as exc:
        log.warning("reading the history of %s failed: %s", target, exc)
        return ProbeFailure(planned.store, planned.view.name, str(exc))


def _past(
    state: StateReader, check: AnomalyCheck, target: str, judged_at: datetime
) -> tuple[PastValue, ...]:
    """The recorded values of `target` an anomaly check may judge the value at `judged_at`
    against, all scheduled before it, newest first. Raises `StateError`."""
    if check.seasonality is not None:
        points = state.history_near(target, seasons(check, judged_at), check.tolerance)
    else:
        points = state.history(target, 2 * check.window + 10, until=judged_at)
    return tuple(p for p in _values(points) if p.scheduled_at < judged_at)


def _values(points: Iterable[HistoryPoint]) -> list[PastValue]:
    """The points that hold a value, incidents marked."""
    return [
        PastValue(p.scheduled_at, p.value, incident(p.status))
        for p in points
        if p.value is not None
    ]


def incident(status: Status) -> bool:
    """Whether a past run of a check is an incident, left out of the check's baselines."""
    return status in (Status.FAIL, Status.ERROR)


def _skew(
    view: FeatureView,
    planned: Sequence[PlannedCheck],
    store: OfflineStore,
    online: Observation | None,
) -> Observation:
    if not isinstance(online, OnlineObservation):
        return online or ProbeFailure(store.name, view.name, "the online store was not read")
    bounds: dict[EntityKey, datetime] = {
        e.key: e.event_time for e in online.entities if e.present and e.event_time is not None
    }
    features = sorted({f for p in planned for f in compared_features(p)})
    rows = store.latest_rows(view, bounds, features)
    return SkewObservation(online, rows, _label(view))


Bounds = tuple[datetime, datetime]
DriftWindows = tuple[Bounds, int, Bounds | None]  # reference, sample size, current (offline)


def _drift(
    view: FeatureView,
    planned: Sequence[PlannedCheck],
    online: Observation | None,
    windows: DriftWindows,
    store: OfflineStore,
) -> Observation:
    """One reference sample for the group; the current values are the online sample, or (on
    target offline) one sample of the current window, as large as the reference's."""
    (since, until), size, current = windows
    features = sorted({p.feature for p in planned if p.feature is not None})
    if current is not None:
        recent = store.sample_rows(view, features, current[0], current[1], size)
        return DriftObservation(recent, store.sample_rows(view, features, since, until, size))
    if not isinstance(online, OnlineObservation):
        return online or ProbeFailure(store.name, view.name, "the online store was not read")
    return DriftObservation(online, store.sample_rows(view, features, since, until, size))


def _by_windows(
    planned: Sequence[PlannedCheck], at: datetime
) -> dict[DriftWindows, list[PlannedCheck]]:
    """Drift checks that share their samples: the same windows and sample size (and target)."""
    groups: dict[DriftWindows, list[PlannedCheck]] = {}
    for p in planned:
        assert isinstance(p.check, DistributionDriftCheck)  # noqa: S101  (filtered by the caller)
        current = current_bounds(p.check, at) if p.target == "offline" else None
        windows = (reference_bounds(p.check, at), p.check.reference_sample, current)
        groups.setdefault(windows, []).append(p)
    return groups


def _baseline(
    view: FeatureView,
    planned: PlannedCheck,
    state: StateReader | None,
    offline: Observation | None,
    at: datetime,
) -> Observation:
    if not isinstance(offline, OfflineObservation):
        return offline or ProbeFailure(planned.store, view.name, "the offline store was not read")
    if state is None:
        return ProbeFailure(
            planned.store, view.name, "no state database to keep the schema baseline in"
        )
    try:
        kept = state.baseline(view.name, planned.store)
        captured = kept is None and bool(offline.columns)
        if kept is None and offline.columns:
            kept = Baseline(
                view.name, planned.store, offline.source, offline.columns, at, FIRST_RUN
            )
            state.save_baseline(kept)
    except StateError as exc:
        log.warning("the schema baseline of %s: %s", view.name, exc)
        return ProbeFailure(planned.store, view.name, str(exc))
    if kept is None:
        return offline  # no columns to compare: schema_drift reports it as an error
    accepted = SchemaBaseline(kept.columns, kept.captured_at, kept.accepted_by, kept.comment)
    return BaselineObservation(offline, accepted, captured)


def _counts(
    view: FeatureView,
    planned: PlannedCheck,
    against: int,
    state: StateReader | None,
    offline: Observation | None,
    at: datetime,
) -> Observation:
    """This run's count and the check's earlier ones (`until` is exclusive: never this run's
    own, were it recorded already), incidents marked. Reads a margin beyond `against`, so that
    a few runs that measured nothing, counted another window or were incidents still leave
    enough."""
    if not isinstance(offline, OfflineObservation):
        return offline or ProbeFailure(planned.store, view.name, "the offline store was not read")
    if state is None:
        return ProbeFailure(
            planned.store, view.name, "no state database: no earlier counts to compare with"
        )
    try:
        found = state.results(check=planned.id, until=at, limit=2 * against + 10)
    except StateError as exc:
        log.warning("reading the earlier counts of %s failed: %s", planned.id, exc)
        return ProbeFailure(planned.store, view.name, str(exc))
    past = tuple(
        PastCount(
            r.scheduled_at, r.value, _number(r.details.get("window_seconds")), incident(r.status)
        )
        for r in found
        if r.value is not None
    )
    return CountHistory(offline, past)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _guard(
    store: OfflineStore | None,
    view: FeatureView,
    measure: Callable[[OfflineStore], Observation],
) -> Observation:
    if store is None:
        return ProbeFailure("", view.name, "the view has no offline store")
    try:
        return measure(store)
    except StoreError as exc:
        log.warning("probe of %s on %s failed: %s", view.name, store.name, exc)
        return ProbeFailure(store.name, view.name, str(exc))
    except Exception as exc:  # the per-run boundary: a bug must not blind the other checks
        log.exception("probe of %s on %s failed unexpectedly", view.name, store.name)
        return ProbeFailure(store.name, view.name, f"internal error: {type(exc).__name__}: {exc}")


def _label(view: FeatureView) -> str:
    offline = view.offline
    return (offline.table or offline.path or "?") if offline is not None else "?"


def accept_baseline(
    view: FeatureView,
    store: OfflineStore,
    state: StateReader,
    at: datetime,
    accepted_by: str | None,
    comment: str | None = None,
) -> Baseline:
    """Read the columns of the view's offline source now and save them as its baseline (what
    `featmon baseline accept` does). Raises `StoreError` or `StateError`."""
    observed = store.measure(view, frozenset(), at)  # the catalog lookup only: no metric
    if not observed.columns:
        raise QueryFailed(store.name, f"no columns could be read for {observed.source}")
    baseline = Baseline(
        view.name, store.name, observed.source, observed.columns, at, accepted_by, comment
    )
    state.save_baseline(baseline)
    return baseline
