"""Probe one feature view at one scheduled time: sample, read, measure, evaluate.

This is the per-run boundary of DESIGN.md: any failure to measure becomes a `ProbeFailure`
observation and so an `error` result for each check it feeds; nothing passes silently.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from checks.evaluate import error_result, evaluate
from checks.kinds import anomaly, kind_of
from checks.kinds.base import MeasuredBy
from checks.model import FeatureView
from checks.observation import Observation, ProbeFailure, SodaObservation
from checks.plan import PlannedCheck, offline_metrics
from checks.result import CheckResult, worst
from checks.secrets import NO_SECRETS, Secrets
from monitor.abc import OfflineStore, OnlineStore, StateReader
from monitor.errors import StoreError
from monitor.runs import analytics, population
from monitor.stores import soda

log = logging.getLogger(__name__)

M = TypeVar("M")  # what a measurement gives


@dataclass(frozen=True)
class Stores:
    """The stores a probe may use, by name."""

    online: Mapping[str, OnlineStore]
    offline: Mapping[str, OfflineStore]
    # Told of every probe as it ends: (feature view, store, seconds, failed). The daemon feeds
    # the Prometheus probe-duration histogram and error counter from it.
    on_probe: Callable[[str, str, float, bool], None] | None = None
    # Where anomaly checks read history and schema baselines are kept; None: not available.
    state: StateReader | None = None
    # Every secret of the configuration: scrubbed from the reason of every probe failure.
    secrets: Secrets = NO_SECRETS


def probe_view(
    view: FeatureView,
    planned: tuple[PlannedCheck, ...],
    stores: Stores,
    scheduled_at: datetime,
) -> list[CheckResult]:
    """Every planned check of `view`, measured with at most one online read and one offline query."""
    started = time.monotonic()
    observations: dict[str, Observation] = {}
    if (
        any(p.target == "offline" and _measured_by(p) != "contract" for p in planned)
        and view.offline
    ):
        observations["offline"] = _offline(view, planned, stores, scheduled_at)
    if any(p.target == "online" and _measured_by(p) != "results" for p in planned) and view.online:
        undeclared = any(p.target == "online" and kind_of(p.kind).reads_undeclared for p in planned)
        observations["online"] = _online(view, stores, scheduled_at, undeclared=undeclared)
    contracts = (  # Soda checks: one verification of each contract, on the offline store
        soda.observe(view, planned, stores.offline[view.offline.store]) if view.offline else {}
    )
    offline = stores.offline.get(view.offline.store) if view.offline else None
    extra = analytics.measure(view, planned, offline, stores.state, observations, scheduled_at)
    first: list[CheckResult | None] = [
        None  # judged below, from the results of this run and the history
        if _measured_by(p) == "results"
        else _evaluate(
            p,
            contracts[p.path]
            if _measured_by(p) == "contract"
            else extra.get(p.id) or observations[p.target],
            scheduled_at,
            stores.secrets,
        )
        for p in planned
    ]
    results = _with_anomalies(planned, first, stores, scheduled_at)
    log.info(
        "probed %s: %d checks, worst %s, %.0f ms",
        view.name,
        len(results),
        worst([r.status for r in results]).value,
        (time.monotonic() - started) * 1000,
    )
    return results


def _measured_by(planned: PlannedCheck) -> MeasuredBy:
    """From the target store's observation, a contract of its own, or this run's results."""
    return kind_of(planned.kind).measured_by


def _with_anomalies(
    planned: tuple[PlannedCheck, ...],
    first: list[CheckResult | None],
    stores: Stores,
    at: datetime,
) -> list[CheckResult]:
    """Every result in declaration order, the anomaly checks' judged against this run's other
    results and the history in the state database."""
    done = [r for r in first if r is not None]
    out: list[CheckResult] = []
    for p, result in zip(planned, first, strict=True):
        if result is not None:
            out.append(result)
            continue
        check = anomaly.KIND.narrow(p.check)  # the one kind measured by the run's results
        observed = analytics.history(p, check, done, stores.state, at)
        out.append(_evaluate(p, observed, at, stores.secrets))
    return out


def _evaluate(
    planned: PlannedCheck,
    observation: Observation | SodaObservation,
    at: datetime,
    secrets: Secrets,
) -> CheckResult:
    """The check's result; the reason of a probe failure (whichever part of the probe it came
    from: a store, a Soda contract, the history) scrubbed of every configured secret."""
    if isinstance(observation, ProbeFailure):
        observation = dataclasses.replace(observation, reason=secrets.scrub(observation.reason))
    try:
        return evaluate(planned, observation, at)
    except Exception as exc:  # the per-run boundary: one bad value must not lose the run
        log.exception("evaluating %s failed", planned.id)
        reason = secrets.scrub(f"internal error: {type(exc).__name__}: {exc}")
        return error_result(planned, reason)


def guard(store: str, view: str, measure: Callable[[], M], stores: Stores) -> M | ProbeFailure:
    """Run one measurement of `view` (a view's name, or a model's key), timed; a store error
    or any other failure becomes a ProbeFailure."""
    started = time.monotonic()
    observation = _measure(store, view, measure, stores.secrets)
    if stores.on_probe is not None:
        failed = isinstance(observation, ProbeFailure)
        stores.on_probe(view, store, time.monotonic() - started, failed)
    return observation


def _measure(store: str, view: str, measure: Callable[[], M], secrets: Secrets) -> M | ProbeFailure:
    """The observation, or the failure with its reason scrubbed of every configured secret
    (the reason goes on to results, reports, the state database and notifications)."""
    try:
        return measure()
    except StoreError as exc:
        reason = secrets.scrub(str(exc))
        log.warning("probe of %s on %s failed: %s", view, store, reason)
        return ProbeFailure(store, view, reason)
    except Exception as exc:  # the per-run boundary: a bug must not blind the other views
        log.exception("probe of %s on %s failed unexpectedly", view, store)
        reason = secrets.scrub(f"internal error: {type(exc).__name__}: {exc}")
        return ProbeFailure(store, view, reason)


def _offline(
    view: FeatureView, planned: tuple[PlannedCheck, ...], stores: Stores, at: datetime
) -> Observation:
    assert view.offline is not None  # noqa: S101  (checked by the caller)
    store = stores.offline[view.offline.store]
    metrics = offline_metrics(planned)
    return guard(store.name, view.name, lambda: store.measure(view, metrics, at), stores)


def _online(view: FeatureView, stores: Stores, at: datetime, *, undeclared: bool) -> Observation:
    """The online sample; the stored fields nothing declares are looked for only when an
    online schema drift check needs them (a Redis store then reads whole hashes)."""
    assert view.online is not None  # noqa: S101  (checked by the caller)
    store = stores.online[view.online.store]
    offline = stores.offline[view.offline.store] if view.offline is not None else None

    def measure() -> Observation:
        drawn = population.sample(view, store, offline, at)
        return store.read(view, drawn.keys, drawn.kind, undeclared=undeclared)

    return guard(store.name, view.name, measure, stores)
