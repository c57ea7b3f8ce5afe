"""The daemon's Prometheus metrics. This module is the only importer of `prometheus_client`.

Two kinds of numbers, after client_python's custom-collector pattern:

- What the checks of views and models measured (freshness, coverage, null ratios, schema
  drift, check status, the time of the last run) is read from the state database at scrape
  time by `ResultsCollector` over `StateStore.latest_by_check()`: no gauge is mutated from
  worker threads, the numbers survive a restart, and a scrape shows what the status API shows,
  for the checks the daemon runs now (a check, view or model a reload removed leaves no series).
  A view's series are labelled `feature_view`, a model's `model` (never both).
- What happens while the daemon works (probe durations and errors, skipped runs, finished
  runs, runs claimed by another replica or lost, configuration reloads) is counted by `Metrics`, the `RunObserver` the scheduler calls.

Everything registers on a `CollectorRegistry` the caller injects, never the global one:

    registry = CollectorRegistry()
    metrics = Metrics(registry, source)       # the scheduler's RunObserver
    exposition = Exposition(registry)         # what the HTTP sidecar serves at /metrics

`source` gives the state database of the moment (a reload builds a new one): a callable that
returns a context manager holding it open, `fixed_state(store)` for one that never changes.
`live` (the daemon's `LiveState`) keeps the numbers true while the state database is down, full
or corrupt: `featmon_state_up` is 0 unless the database answers the scrape *and* took the last
run, and each check's newest result measured by this process wins over an older stored one.

Labels carry names from config and check files (views, models, stores, features, checks,
severities), never URLs, reasons or anything else that could hold a secret.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from checks.errors import UnknownKind
from checks.kinds import KINDS, kind_of
from checks.kinds.base import RESULT_LABELS, Reading
from checks.kinds.base import Gauge as Exported
from checks.result import RunResult, Status
from checks.served import MODEL_CHECKS, model_check
from monitor.daemon.recorder import StateHealth
from monitor.state import StateError, StateStore, StoredResult
from monitor.state.values import FrozenJSON

log = logging.getLogger(__name__)

# The state database of the moment, held open for the `with` block; None when there is none.
StateSource = Callable[[], contextlib.AbstractContextManager[StateStore | None]]


def new_registry() -> CollectorRegistry:
    """A registry of the caller's own (never prometheus_client's global one)."""
    return CollectorRegistry()


@dataclass(frozen=True)
class LiveState:
    """What the running daemon knows beyond the state database: whether runs reach it, the
    latest result of every check it measured, and which checks it runs now
    (`Daemon.state_health`, `Daemon.measured`, `Daemon.configured_checks`)."""

    health: Callable[[], StateHealth]
    measured: Callable[[], Iterable[StoredResult]]
    configured: Callable[[], Collection[str]]  # the check ids of the running configuration


def fixed_state(state: StateStore | None) -> StateSource:
    """A source that always gives `state` (tests, and a process that never reloads)."""
    return lambda: contextlib.nullcontext(state)


# Probe durations range from a cached Redis pipeline (milliseconds) to an offline aggregate
# over a warehouse table (minutes).
PROBE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class _Families:
    """The gauge families of one scrape, filled result by result: those the kinds and models
    declare (`Kind.exported`, a model check's `exported`), then each check's status and each
    view's or model's last run."""

    def __init__(self) -> None:
        gauges = [g for kind in KINDS for g in kind.exported]
        gauges += [g for check in MODEL_CHECKS for g in check.exported]
        self.exported = {
            gauge.name: GaugeMetricFamily(gauge.name, gauge.help, labels=list(gauge.labels))
            for gauge in gauges
        }
        self.status = GaugeMetricFamily(
            "featmon_check_status",
            "Latest status of a check: 0 pass, 1 warn, 2 fail, 3 error. A view's check is "
            "labelled feature_view, a model's check model.",
            labels=["check", "feature_view", "severity"],
        )
        self.last_run = GaugeMetricFamily(
            "featmon_last_run_timestamp_seconds",
            "Scheduled time of the newest recorded run of a feature view (labelled "
            "feature_view) or a model (labelled model), in Unix seconds.",
            labels=["feature_view"],
        )

    def all(self) -> tuple[GaugeMetricFamily, ...]:
        return (*self.exported.values(), self.status, self.last_run)


class _Series:
    """Adds samples to families, once per label set: a view with two checks of one kind on one
    store would otherwise expose a duplicate series, which Prometheus rejects. The first check
    (by check id) wins."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, frozenset[tuple[str, str]]]] = set()

    def add(self, family: GaugeMetricFamily, labels: dict[str, str], value: float | None) -> None:
        if value is None or math.isnan(value):
            return
        key = (family.name, frozenset(labels.items()))
        if key in self._seen:
            return
        self._seen.add(key)
        family.add_sample(family.name, labels, value)


def subject_label(result: StoredResult) -> tuple[str, str]:
    """The label naming what a result is about: `feature_view`, or `model` for a model's. To
    Prometheus a label a series lacks is that label empty: views' series have no `model`, and
    models' no `feature_view`, rather than one naming what it is not."""
    if result.model is not None:
        return ("model", result.model)
    return ("feature_view", result.feature_view or "")


def _number(value: FrozenJSON) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _length(value: FrozenJSON) -> float | None:
    return float(len(value)) if isinstance(value, tuple) else None


def _read(result: StoredResult, reading: Reading) -> float | None:
    """The value of one series: the result's value, or a number or list length of its details."""
    if reading.key == "value":
        return result.value
    found = result.details.get(reading.key)
    return _length(found) if reading.count else _number(found)


def _labels(result: StoredResult, gauge: Exported, reading: Reading) -> dict[str, str] | None:
    """The gauge's labels in order: the result's own, strings of its details, the reading's
    fixed values; None when one of the result's own (or of its details) is unset."""
    own = {
        "feature_view": result.feature_view,
        "feature": result.feature,
        "store": result.store,
        "model": result.model,
    }
    fixed = iter(reading.fixed)
    labels: dict[str, str] = {}
    for name in gauge.labels:
        if name in RESULT_LABELS:
            value = own[name]
        elif name in gauge.from_details:
            found = result.details.get(name)
            value = found if isinstance(found, str) else None
        else:
            value = next(fixed)
        if value is None:
            return None
        labels[name] = value
    return labels


def _exported(result: StoredResult) -> tuple[Exported, ...]:
    """The gauges of the result's kind (a model's check has its own); a kind this version does
    not know has none."""
    if result.model is not None:
        check = model_check(result.kind)
        return () if check is None else check.exported
    try:
        return kind_of(result.kind).exported
    except UnknownKind as exc:
        log.warning("metrics: %s is not exported: %s", result.check, exc)
        return ()


def _export(result: StoredResult, families: _Families, series: _Series) -> None:
    for gauge in _exported(result):
        for reading in gauge.readings:
            labels = _labels(result, gauge, reading)
            if labels is not None:
                series.add(families.exported[gauge.name], labels, _read(result, reading))


def result_families(latest: Iterable[StoredResult]) -> tuple[GaugeMetricFamily, ...]:
    """The gauges of the latest results (pure: results in, metric families out). An `error`
    result has no measurement: it shows only in `featmon_check_status`."""
    families = _Families()
    series = _Series()
    last_run: dict[tuple[str, str], datetime] = {}
    for result in latest:
        subject = subject_label(result)
        status = {"check": result.check, subject[0]: subject[1], "severity": result.severity}
        series.add(families.status, status, float(result.status.rank))
        if subject not in last_run or result.scheduled_at > last_run[subject]:
            last_run[subject] = result.scheduled_at
        if result.status is not Status.ERROR:
            _export(result, families, series)
    for (name, value), moment in sorted(last_run.items()):
        families.last_run.add_sample(families.last_run.name, {name: value}, moment.timestamp())
    return families.all()


def newest(stored: Iterable[StoredResult], measured: Iterable[StoredResult]) -> list[StoredResult]:
    """Per check, the result of the latest scheduled time; a measured one wins a tie."""
    found = {result.check: result for result in stored}
    for result in measured:
        known = found.get(result.check)
        if known is None or known.scheduled_at <= result.scheduled_at:
            found[result.check] = result
    return [found[check] for check in sorted(found)]


def configured(latest: Iterable[StoredResult], checks: Collection[str]) -> list[StoredResult]:
    """The results of the checks the daemon runs now: a check, view or model that a reload
    removed leaves no series behind (its results stay in the state database until pruned)."""
    return [result for result in latest if result.check in checks]


class ResultsCollector(Collector):
    """Reads the latest result of every check at scrape time. A state database that cannot be
    read makes `featmon_state_up` 0 (logged) instead of failing the whole scrape, so the
    daemon's own counters are still exported."""

    def __init__(self, source: StateSource, live: LiveState | None = None) -> None:
        self._source = source
        self._live = live

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "featmon_state_up",
            "1 when the state database answered the last scrape and took the last run, 0 when "
            "it did not.",
        )
        latest = self._latest()
        if self._live is None:
            up.add_metric([], 0.0 if latest is None else 1.0)
            yield up
            if latest is not None:
                yield from result_families(latest)
            return
        health = self._live.health()
        up.add_metric([], 1.0 if latest is not None and health.writable else 0.0)
        yield up
        buffered = GaugeMetricFamily(
            "featmon_runs_buffered",
            "Runs waiting in memory for the state database to take them.",
        )
        buffered.add_metric([], float(health.buffered))
        yield buffered
        measured = newest(latest or (), self._live.measured())
        yield from result_families(configured(measured, self._live.configured()))

    def _latest(self) -> list[StoredResult] | None:
        try:
            with self._source() as state:
                return None if state is None else state.latest_by_check()
        except StateError as exc:
            log.error("metrics: the latest results could not be read: %s", exc)
        except RuntimeError as exc:  # the daemon has no configuration yet, or no longer
            log.warning("metrics: no state database to read: %s", exc)
        return None

    def describe(self) -> Iterator[Metric]:
        """Nothing: the registry must not call `collect()` (a database read) at registration."""
        return iter(())


class Metrics:
    """The `RunObserver` of the daemon, and the owner of its Prometheus metrics on `registry`.

    Thread-safe (prometheus_client's metrics are) and never raises: a failure to count is
    logged, and the run goes on."""

    def __init__(
        self, registry: CollectorRegistry, source: StateSource, live: LiveState | None = None
    ) -> None:
        registry.register(ResultsCollector(source, live))
        self.probe_duration = Histogram(
            "featmon_probe_duration_seconds",
            "Time one probe (one store read or query for one feature view) took.",
            ["feature_view", "store"],
            buckets=PROBE_BUCKETS,
            registry=registry,
        )
        self.probe_errors = Counter(
            "featmon_probe_errors",
            "Probes that could not measure (their checks are `error`).",
            ["feature_view", "store"],
            registry=registry,
        )
        self.runs = Counter(
            "featmon_runs",
            "Finished runs, by overall status.",
            ["feature_view", "status"],
            registry=registry,
        )
        self.runs_skipped = Counter(
            "featmon_runs_skipped",
            "Runs that were due while the previous run of the same view was still going.",
            ["feature_view"],
            registry=registry,
        )
        self.runs_claimed_elsewhere = Counter(
            "featmon_runs_claimed_elsewhere",
            "Scheduled runs that another daemon replica claimed (it runs them, not this one).",
            ["feature_view"],
            registry=registry,
        )
        self.runs_lost = Counter(
            "featmon_runs_lost",
            "Scheduled runs that never ran: the claim could not be written, or its holder "
            "died and no replica took it over within the misfire grace.",
            ["feature_view"],
            registry=registry,
        )
        self.runs_unrecorded = Counter(
            "featmon_runs_unrecorded",
            "Runs probed and alerted on but never recorded: the state database could not take "
            "them and the buffer waiting for it (state.buffer_runs) was full.",
            ["feature_view"],
            registry=registry,
        )
        self.notifications = Counter(
            "featmon_notifications",
            "Delivery attempts of alert notifications, by receiver and outcome "
            "(delivered, retried, dead).",
            ["receiver", "outcome"],
            registry=registry,
        )
        self.reload_failures = Counter(
            "featmon_config_reload_failures",
            "Configuration reloads that failed (the last good configuration kept running).",
            registry=registry,
        )
        self.reload_ok = Gauge(
            "featmon_config_last_reload_successful",
            "1 when the last configuration reload succeeded (or none was tried), 0 when it failed.",
            registry=registry,
        )
        self.reload_success_time = Gauge(
            "featmon_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully (Unix seconds).",
            registry=registry,
        )
        # Built once the configuration has loaded: that first load is the last success so far.
        self.reload_ok.set(1)
        self.reload_success_time.set_to_current_time()

    def probe_finished(self, feature_view: str, store: str, seconds: float, failed: bool) -> None:
        with _never_raising("counting a probe of %s on %s", feature_view, store):
            self.probe_duration.labels(feature_view, store).observe(max(0.0, seconds))
            errors = self.probe_errors.labels(feature_view, store)  # exported at 0 from the start
            if failed:
                errors.inc()

    def run_finished(self, feature_view: str, run: RunResult) -> None:
        with _never_raising("counting run %s", run.run_id):
            self.runs.labels(feature_view, run.status.value).inc()
            self.runs_skipped.labels(feature_view)  # exported at 0 from the first run

    def run_skipped(self, feature_view: str, scheduled_at: datetime) -> None:  # noqa: ARG002 - the protocol's signature
        with _never_raising("counting a skipped run of %s", feature_view):
            self.runs_skipped.labels(feature_view).inc()

    def run_claimed_elsewhere(self, feature_view: str, scheduled_at: datetime) -> None:  # noqa: ARG002 - the protocol's signature
        with _never_raising("counting a run claimed elsewhere of %s", feature_view):
            self.runs_claimed_elsewhere.labels(feature_view).inc()

    def run_lost(self, feature_view: str, scheduled_at: datetime) -> None:  # noqa: ARG002 - the protocol's signature
        with _never_raising("counting a lost run of %s", feature_view):
            self.runs_lost.labels(feature_view).inc()

    def run_unrecorded(self, feature_view: str, scheduled_at: datetime) -> None:  # noqa: ARG002 - the protocol's signature
        with _never_raising("counting an unrecorded run of %s", feature_view):
            self.runs_unrecorded.labels(feature_view).inc()

    def config_reloaded(self, ok: bool, error: str | None) -> None:  # noqa: ARG002 - see below
        # `error` is deliberately not exported: it may quote the file, and files hold ${VARS}.
        with _never_raising("counting a configuration reload"):
            if ok:
                self.reload_ok.set(1)
                self.reload_success_time.set(time.time())
            else:
                self.reload_ok.set(0)
                self.reload_failures.inc()

    def notification_outcome(self, receiver: str, outcome: str) -> None:
        with _never_raising("counting a notification"):
            self.notifications.labels(receiver, outcome).inc()


@contextlib.contextmanager
def _never_raising(what: str, *args: object) -> Iterator[None]:
    """The observer contract: counting that fails is logged (`what % args`, formatted only
    then), never raised into the run."""
    try:
        yield
    except Exception:  # the observer's boundary: a metric must not fail a run
        log.exception("metrics: %s failed", what % args)


class Exposition:
    """The body and content type of a scrape of `registry`, in the format the scraper's
    `Accept` header asks for (Prometheus text, or OpenMetrics)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def __call__(self, accept: str | None) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self._registry), content_type
