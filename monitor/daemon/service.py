"""`featmon run`: the daemon. Each feature view runs on its own schedule; the configuration is
reloaded on SIGHUP or when a file changes; SIGTERM or SIGINT stops it within a grace period.

    daemon = Daemon(Path("config.yaml"), DaemonSettings(workers=8), observer=metrics)
    daemon.start()        # load, build the app, prune, schedule; raises ConfigError
    daemon.reload()       # load again; a bad configuration is reported, the last good one runs
    daemon.stop(30.0)     # stop scheduling, let runs finish, close the stores and the state DB

`serve(daemon)` is the same with signals, for the command line. Tests drive the methods.

With a state database, a run is first claimed there (`monitor.daemon.claims`): replicas sharing the
database run each scheduled run of each view once, and one that loses the claim skips it.
Probing never waits for the state database: a claim it does not answer is run anyway (see
`monitor.daemon.claims` for which views), and a run it does not take is buffered by the `RunRecorder`
(`monitor.daemon.recorder`) and written when it is back, on the claims' heartbeat.

On start, views without a recent run catch up within seconds, then run on their schedule
(`monitor.daemon.catch_up`); so do views a reload adds.

A run of one view is `probe_view` at the run's **scheduled** time, a `RunResult` with its own run
id, `App.record`, and `observer.run_finished`; any failure there becomes `error` results and never
reaches the scheduler. Runs hold the configuration they started with: a reload swaps in a new
app at once, and the old one's stores are closed when its last run ends.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Protocol

from checks.errors import ConfigError, Problem
from checks.schedule import Schedule
from monitor.app import App, build_app
from monitor.config import warnings
from monitor.daemon.catch_up import CatchUps
from monitor.daemon.claims import RunClaims, Ticker, Verdict, holder_id
from monitor.daemon.generation import Generation
from monitor.daemon.logqueue import queued_logging
from monitor.daemon.notify import AlertRuntime
from monitor.daemon.observer import NoObserver, RunObserver
from monitor.daemon.recorder import Recorded, RunRecorder, StateHealth
from monitor.daemon.reloads import ReloadOutcome
from monitor.daemon.scheduler import (
    SYSTEM_CLOCK,
    VIEW_KEY_PREFIX,
    Clock,
    First,
    Scheduler,
    SchedulerSettings,
)
from monitor.daemon.watch import Watcher, watched_files
from monitor.http.links import ReportLinks
from monitor.loader import Loaded, LoadedView, load
from monitor.runs.run import run_view
from monitor.state import StateError, StateStore, StoredResult

log = logging.getLogger(__name__)

RETENTION_KEY = "featmon:retention"  # not a view name: those cannot hold a colon
RETENTION_SCHEDULE = Schedule(every=timedelta(hours=1))
ALERTS_KEY = "featmon:alerts"
CLAIM_RETENTION = timedelta(days=1)  # claims matter for a misfire grace; kept a day to diagnose
BUFFER_RUNS_PER_VIEW = 60  # the default of state.buffer_runs: an hour of runs every minute
_VIEW = VIEW_KEY_PREFIX
_TAKEOVER = "takeover:"


@dataclass(frozen=True)
class DaemonSettings:
    """`workers`: probes running at once, over all views; `grace`: how long `stop` waits for
    runs going; `misfire_grace`: a run starting later than this after its time is dropped;
    `watch_interval`: how often config.yaml and the check files are looked at;
    `claim_lease`: how long a run's claim outlives its holder (renewed every quarter of it):
    after a replica dies, its run going is taken over within about this long (runs buffered
    while the state database was down are written on the same heartbeat); `alert_tick`: how
    often alert groups are looked at (the resolution of group_wait and group_interval) and the
    state database is watched (`state.outage_alert_after`)."""

    workers: int = 8
    grace: timedelta = timedelta(seconds=30)
    misfire_grace: timedelta = timedelta(seconds=60)
    watch_interval: timedelta = timedelta(seconds=2)
    claim_lease: timedelta = timedelta(seconds=5)
    alert_tick: timedelta = timedelta(seconds=5)


class Serving(Protocol):
    """What the HTTP sidecar may ask of the running daemon."""

    @property
    def ready(self) -> bool:
        """Started, with a configuration, and not stopping (`/readyz`)."""

    def state_health(self) -> StateHealth:
        """Whether runs reach the state database."""

    def using(self) -> contextlib.AbstractContextManager[App]:
        """The app of the last good configuration, kept open until the `with` block ends."""

    @property
    def last_reload(self) -> ReloadOutcome | None:
        """The last reload tried (None: none yet), for `/readyz`."""


class Sidecar(Protocol):
    """The HTTP sidecar as the daemon drives it (monitor.http implements it)."""

    def start(self, daemon: Serving) -> None:
        """Start serving in background threads and return; raise if the listener cannot bind."""

    def stop(self) -> None:
        """Stop serving; called once, after the last run ended or the grace period did."""


@dataclass(frozen=True)
class JobPlan:
    """How the scheduled views change from one configuration to the next."""

    add: tuple[str, ...]
    remove: tuple[str, ...]
    reschedule: tuple[str, ...]


def plan_jobs(old: Mapping[str, Schedule], new: Mapping[str, Schedule]) -> JobPlan:
    """Views to add, to remove, and whose schedule changed (the rest keep their next run)."""
    return JobPlan(
        add=tuple(sorted(new.keys() - old.keys())),
        remove=tuple(sorted(old.keys() - new.keys())),
        reschedule=tuple(sorted(n for n in new.keys() & old.keys() if new[n] != old[n])),
    )


def schedules(loaded: Loaded) -> dict[str, Schedule]:
    """The schedule of every view with checks to run (a view without checks is not run)."""
    return {v.view.name: v.view.schedule for v in loaded.views if v.planned}


def buffer_capacity(loaded: Loaded) -> int:
    """`state.buffer_runs`, or `BUFFER_RUNS_PER_VIEW` runs per scheduled view."""
    configured = loaded.config.state.buffer_runs
    return configured or BUFFER_RUNS_PER_VIEW * max(1, len(schedules(loaded)))


class Daemon:
    """The scheduler over every feature view of the configuration at `config_path`.

    `observer` hears about runs, skips and reloads; `sidecar`, when given, is started after the
    first configuration is loaded and stopped last. `load_config` and `build` are `load` and
    `build_app` unless a test gives its own; `loaded`, when given, is the configuration
    `start` runs (read already by the caller), and reloads load it again. `clock` is what the
    scheduler and the catch-up at start read the time from (tests move a fake one)."""

    def __init__(
        self,
        config_path: Path,
        settings: DaemonSettings = DaemonSettings(),
        observer: RunObserver | None = None,
        sidecar: Sidecar | None = None,
        load_config: Callable[[Path], Loaded] = load,
        build: Callable[[Loaded], App] = build_app,
        loaded: Loaded | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._path = config_path
        self._clock = clock
        self._loaded_first = loaded
        self._settings = settings
        self._observer: RunObserver = observer or NoObserver()
        self._sidecar = sidecar
        self._load = load_config
        self._build = build
        self._scheduler = Scheduler(
            SchedulerSettings(settings.workers, settings.misfire_grace),
            on_skipped=self._skipped,
            on_missed=self._missed,
            clock=clock,
        )
        self._lock = threading.Lock()  # guards _current, _stopping
        self._reload_lock = threading.Lock()  # one reload (or stop) at a time
        self._idle = threading.Condition()  # notified when a run ends
        self._running: dict[int, str] = {}  # run token -> what runs
        self._current: Generation | None = None
        self._stopping = False
        self._last_reload: ReloadOutcome | None = None
        self._watcher: Watcher | None = None
        self._claims = RunClaims(
            holder_id(), settings.claim_lease, settings.misfire_grace, self._observer
        )
        self._takeovers: dict[str, tuple[str, datetime]] = {}  # once-job key -> run
        self._catch_ups = CatchUps(settings.misfire_grace, _VIEW)
        self._recorder = RunRecorder(BUFFER_RUNS_PER_VIEW, self._observer)
        self._tending = Ticker("featmon-claims", settings.claim_lease / 4, self._tend_claims)

    # -- the life cycle --------------------------------------------------------------------

    def start(self) -> None:
        """Load the configuration, build its app, and start scheduling (the state database is
        pruned at once and hourly). Raises `ConfigError` when the configuration is invalid."""
        loaded = self._loaded_first or self._load(self._path)
        self._loaded_first = None
        generation = self._generation_of(loaded, self._build(loaded))
        self._recorder.resize(buffer_capacity(loaded))
        with self._lock:
            self._current = generation
        if self._sidecar is not None:
            try:
                self._sidecar.start(self)
            except BaseException:
                generation.retire()
                raise
        plan = schedules(loaded)
        self._put_views(generation.app.state, plan, plan)
        self._scheduler.put(RETENTION_KEY, RETENTION_SCHEDULE, self._prune, first=First.NOW)
        alert_tick = Schedule(every=self._settings.alert_tick)
        self._scheduler.put(ALERTS_KEY, alert_tick, self._flush_alerts)
        self._scheduler.start()
        self._tending.start()
        self._watcher = Watcher(
            lambda: watched_files(self._generation().loaded),
            self._settings.watch_interval,
            self._changed,
        )
        self._watcher.start()
        log.info(
            "featmon running %s: %d feature views scheduled, %d workers",
            self._path,
            len(plan),
            self._settings.workers,
        )

    def reload(self) -> bool:
        """Load the configuration again and swap it in; True on success. On failure every
        problem is logged, the observer is told, and the last good configuration keeps running."""
        with self._reload_lock:
            if self._stopping or self._current is None:
                return False
            try:
                loaded = self._load(self._path)
                app = self._build(loaded)
            except ConfigError as exc:
                return self._reload_failed(str(exc), list(exc.problems))
            except Exception as exc:  # the reload boundary: a store that cannot be built
                log.exception("reload of %s failed building the stores", self._path)
                return self._reload_failed(f"{type(exc).__name__}: {exc}", [])
            new = self._generation_of(loaded, app)
            self._recorder.resize(buffer_capacity(loaded))
            with self._lock:
                old, self._current = self._current, new
            if new.alerts is not None:  # alerts of views no longer configured resolve
                if old.alerts is not None:  # what only memory holds while the database is down
                    new.alerts.adopt(old.alerts)
                new.alerts.retire(list(new.views), datetime.now(UTC))
            wanted = schedules(loaded)
            plan = plan_jobs(schedules(old.loaded), wanted)
            for name in plan.remove:
                self._scheduler.remove(_VIEW + name)
            self._put_views(app.state, wanted, plan.add)
            for name in plan.reschedule:
                self._scheduler.put(_VIEW + name, wanted[name], self._job(name))
            old.retire()
            with self._lock:
                self._last_reload = ReloadOutcome(ok=True, at=datetime.now(UTC))
        log.info(
            "reloaded %s: %d feature views (added %s, removed %s, rescheduled %s)",
            self._path,
            len(wanted),
            list(plan.add),
            list(plan.remove),
            list(plan.reschedule),
        )
        self._observer.config_reloaded(True, None)
        return True

    def stop(self, timeout: float | None = None) -> bool:
        """Stop scheduling, wait up to `timeout` seconds (default: the grace period) for the
        runs going, then stop the sidecar and close the app. True when every run finished."""
        grace = self._settings.grace.total_seconds() if timeout is None else timeout
        with self._reload_lock, self._lock:
            if self._stopping:
                return True
            self._stopping = True
        if self._watcher is not None:
            self._watcher.stop()
        self._scheduler.shutdown()
        with self._idle:
            finished = self._idle.wait_for(lambda: not self._running, grace)
            going = sorted(self._running.values())
        if not finished:
            log.warning(
                "%d runs still going after %.0f s, not waited for: %s", len(going), grace, going
            )
        self._tending.stop()  # the claims of runs not waited for end with their lease
        self._flush_at_stop()
        if self._sidecar is not None:
            self._sidecar.stop()
        if self._current is not None:
            self._current.retire()  # closes now, or when the last run ends
        log.info("featmon stopped%s", "" if finished else " without waiting for every run")
        return finished

    def _flush_at_stop(self) -> None:
        state = None if self._current is None else self._current.app.state
        if state is None:
            return
        self._recorder.flush(state)
        left = self._recorder.health().buffered
        if left:
            log.error("%d buffered runs are not recorded: the state database is still down", left)

    @property
    def ready(self) -> bool:
        with self._lock:
            return self._current is not None and not self._stopping

    def state_health(self) -> StateHealth:
        """Whether runs reach the state database (`/readyz`, `featmon_state_up`)."""
        return self._recorder.health()

    def measured(self) -> list[StoredResult]:
        """The latest result of every check this process measured, recorded or not."""
        return self._recorder.latest()

    @property
    def last_reload(self) -> ReloadOutcome | None:
        with self._lock:
            return self._last_reload

    @contextlib.contextmanager
    def using(self) -> Iterator[App]:
        generation = self._generation()
        generation.acquire()
        try:
            yield generation.app
        finally:
            generation.release()

    def _put_views(
        self, state: StateStore | None, wanted: Mapping[str, Schedule], names: Iterable[str]
    ) -> None:
        """Schedule the views `names`, those without a recent run catching up
        (`monitor.daemon.catch_up`)."""
        now = self._clock.now()
        for name, first in self._catch_ups.plan(state, wanted, names, now).items():
            self._scheduler.put(_VIEW + name, wanted[name], self._job(name), now, first)

    # -- runs ------------------------------------------------------------------------------

    def _job(self, name: str) -> Callable[[datetime], None]:
        return lambda scheduled_at: self._run_view(name, scheduled_at)

    def _run_view(self, name: str, scheduled_at: datetime, *, claimed: bool = False) -> None:
        """Run `name` at `scheduled_at` once it is claimed (`claimed`: it was taken over)."""
        with self._run_slot(name) as generation:
            view = None if generation is None else generation.views.get(name)
            if generation is None or view is None:  # stopping, or removed by a reload
                if claimed:
                    self._claims.drop((name, scheduled_at))
                return
            state = generation.app.state
            if state is None:
                self._run_claimed(generation, view, scheduled_at, None)
                return
            if not claimed and self._catch_ups.ran_elsewhere(state, name, scheduled_at):
                self._observer.run_claimed_elsewhere(name, scheduled_at)
                return
            verdict = Verdict.HELD if claimed else self._claims.claim(state, name, scheduled_at)
            if verdict is Verdict.NOT_OURS:
                return
            if verdict is Verdict.UNCLAIMED:
                self._run_claimed(generation, view, scheduled_at, None)
                return
            settled = False
            try:
                settled = self._run_claimed(generation, view, scheduled_at, self._claims.holder)
            finally:
                if settled:  # recorded or buffered with its claim, which is finished with it
                    self._claims.drop((name, scheduled_at))
                else:  # not recorded: the claim is finished on its own
                    self._claims.finish(state, name, scheduled_at)

    def _run_taken_over(self, key: str, name: str, scheduled_at: datetime) -> None:
        with self._lock:
            self._takeovers.pop(key, None)
        self._run_view(name, scheduled_at, claimed=True)

    def _run_claimed(
        self, generation: Generation, view: LoadedView, scheduled_at: datetime, holder: str | None
    ) -> bool:
        """Probe, record or buffer (finishing the claim of `holder` in the same transaction)
        and alert; True when the claim is settled by the recording. No report file is written:
        the sidecar renders a run's report from the state database when it is asked for."""
        name = view.view.name
        started = time.monotonic()
        app = generation.app
        run, probe_cpu = run_view(app, view, scheduled_at, self._observer)
        claim = None if holder is None else (name, holder)
        if app.state is not None:
            recorded = self._recorder.record(app.state, name, run, claim)
            if recorded is Recorded.ELSEWHERE:
                log.warning(
                    "run %s of view %s not recorded: its claim was taken over by another "
                    "replica (the lease of %s ran out), which records it",
                    run.run_id,
                    name,
                    self._settings.claim_lease,
                )
                return True
        if generation.alerts is not None:
            generation.alerts.after_run(run, datetime.now(UTC))
        self._observer.run_finished(name, run)
        counts = run.counts()
        took_ms = (time.monotonic() - started) * 1000
        fields = {"run_id": run.run_id, "feature_view": name, "status": run.status.value}
        log.info(
            "run %s of view %s: %s, %d checks (%d pass, %d warn, %d fail, %d error), "
            "scheduled at %s, started %.0f ms late, took %.0f ms (probe CPU %.1f ms)",
            run.run_id,
            name,
            run.status.value,
            len(run.results),
            counts["pass"],
            counts["warn"],
            counts["fail"],
            counts["error"],
            scheduled_at.isoformat(),
            (run.started_at - scheduled_at).total_seconds() * 1000,
            took_ms,
            probe_cpu * 1000,
            extra={**fields, "duration_ms": round(took_ms, 1)},  # JSON logs: fields of their own
        )
        return holder is not None

    def _tend_claims(self) -> None:
        """Write the runs buffered while the state database was away; renew the claims of the
        runs going here; take over abandoned runs (see `monitor.daemon.claims`), each run then on the
        worker pool."""
        with self._lock:
            generation = None if self._stopping else self._current
        if generation is None or generation.app.state is None:
            return
        now = datetime.now(UTC)
        generation.acquire()
        try:
            self._recorder.flush(generation.app.state)
            taken = self._claims.tend(generation.app.state, frozenset(generation.views), now)
        except StateError as exc:  # the recorder logged the outage once; this is every heartbeat
            log.debug("tending the claims failed (tried again on the next heartbeat): %s", exc)
            return
        finally:
            generation.release()
        for name, at in taken:
            key = f"{_TAKEOVER}{name}@{at.isoformat()}"
            with self._lock:
                self._takeovers[key] = (name, at)
            self._scheduler.once(key, at, partial(self._run_taken_over, key, name))

    def _generation_of(self, loaded: Loaded, app: App) -> Generation:
        """A generation with its alerting started (when the app has a state database)."""
        alerts = None
        if app.state is not None:
            alerts = AlertRuntime(app, self._observer.notification_outcome)
            alerts.start()
        else:
            log.warning("no state database: runs are not recorded and nothing is alerted")
        return Generation(loaded, app, alerts)

    def _flush_alerts(self, scheduled_at: datetime) -> None:
        """Alert on the state database when it is down too long; send alert groups whose
        group_wait or group_interval has passed."""
        with self._run_slot(ALERTS_KEY) as generation:
            if generation is not None and generation.alerts is not None:
                now = max(scheduled_at, datetime.now(UTC))
                after = generation.loaded.config.state.outage_alert_after
                generation.alerts.watch_state(self._recorder.health(), now, after)
                generation.alerts.tick(now)

    def _prune(self, scheduled_at: datetime) -> None:
        with self._run_slot(RETENTION_KEY) as generation:
            state = None if generation is None else generation.app.state
            if generation is None or state is None:
                return
            retention = generation.loaded.config.state.retention
            try:
                state.prune(scheduled_at - retention)
                state.prune_run_claims(scheduled_at - min(retention, CLAIM_RETENTION))
                state.prune_outbox(scheduled_at - retention)  # delivered and dead only
            except StateError as exc:
                log.error("pruning the state database failed, retried in an hour: %s", exc)

    @contextlib.contextmanager
    def _run_slot(self, what: str) -> Iterator[Generation | None]:
        """The current generation, held for one run (None when stopping). Whatever the run
        raises is logged here: the scheduler's threads never see it."""
        with self._lock:
            generation = None if self._stopping else self._current
            if generation is not None:
                generation.acquire()
        if generation is None:
            yield None
            return
        token = object()
        with self._idle:
            self._running[id(token)] = what
        try:
            yield generation
        except Exception:  # the per-run boundary: a bug must not stop the schedule
            log.exception("run of %s failed", what)
        finally:
            generation.release()
            with self._idle:
                del self._running[id(token)]
                self._idle.notify_all()

    def _skipped(self, key: str, scheduled_at: datetime) -> None:
        if not key.startswith(_VIEW):
            return
        name = key.removeprefix(_VIEW)
        log.warning(
            "run of view %s scheduled at %s skipped: its previous run is still going",
            name,
            scheduled_at.isoformat(),
        )
        self._observer.run_skipped(name, scheduled_at)

    def _missed(self, key: str, scheduled_at: datetime) -> None:
        with self._lock:
            taken = self._takeovers.pop(key, None)
        if taken is not None:  # not run: its claim ends with its lease, and is found lost
            self._claims.drop(taken)
        log.warning(
            "run of %s scheduled at %s dropped: no worker was free within the misfire grace "
            "of %s (raise --workers)",
            key.removeprefix(_VIEW),
            scheduled_at.isoformat(),
            self._settings.misfire_grace,
        )

    # -- configuration ---------------------------------------------------------------------

    def _reload_failed(self, message: str, problems: list[Problem]) -> bool:
        log.error("reload of %s failed; the last good configuration keeps running", self._path)
        for problem in problems:
            log.error("  %s", problem)
        with self._lock:
            self._last_reload = ReloadOutcome.failed(datetime.now(UTC), message, problems)
        self._observer.config_reloaded(False, message)
        return False

    def _changed(self) -> None:
        log.info("a configuration file changed: reloading %s", self._path)
        self.reload()

    def _generation(self) -> Generation:
        with self._lock:
            if self._current is None:
                raise RuntimeError("the daemon has not been started")
            return self._current


def serve(daemon: Daemon) -> int:
    """Run `daemon` until SIGTERM or SIGINT, reloading on SIGHUP; 0 when every run finished
    within the grace period, 1 otherwise. Call from the main thread. The log handlers run on a
    thread of their own meanwhile (`monitor.daemon.logqueue`)."""
    commands: queue.SimpleQueue[str] = queue.SimpleQueue()  # put() is safe in signal handlers

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        commands.put("reload" if signum == signal.SIGHUP else signal.Signals(signum).name)

    handled = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
    previous = {signum: signal.signal(signum, on_signal) for signum in handled}
    with queued_logging():
        try:
            daemon.start()
            while True:
                try:
                    command = commands.get(timeout=1.0)
                except queue.Empty:
                    continue
                if command != "reload":
                    log.info("received %s: stopping", command)
                    break
                log.info("received SIGHUP: reloading")
                daemon.reload()
            return 0 if daemon.stop() else 1
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def build_daemon(
    path: Path, settings: DaemonSettings, load_config: Callable[[Path], Loaded] = load
) -> Daemon:
    """The daemon as `featmon run` deploys it: Prometheus metrics on a registry of its own, and
    the HTTP sidecar on `http.listen` of the configuration (read once here: changing the listen
    address needs a restart). `load_config` reads the configuration, at start and on every
    reload. Raises ConfigError when invalid."""
    # The web stack loads only for the daemon.
    from monitor.http import DaemonSidecar, daemon_state  # noqa: PLC0415 - the sidecar's web stack is imported only when the daemon starts
    from monitor.metrics import Exposition, LiveState, Metrics, new_registry  # noqa: PLC0415 - the sidecar's web stack is imported only when the daemon starts

    loaded = load_config(path)  # read once: `start` runs it, reloads read the files again
    config = loaded.config
    registry = new_registry()
    daemon: Daemon | None = None

    @contextlib.contextmanager
    def current_state() -> Iterator[StateStore | None]:
        if daemon is None:
            yield None
            return
        with daemon_state(daemon)() as state:
            yield state

    live = LiveState(
        health=lambda: StateHealth(True) if daemon is None else daemon.state_health(),
        measured=lambda: [] if daemon is None else daemon.measured(),
    )
    metrics = Metrics(registry, current_state, live)
    for warning in warnings(config):
        log.warning("%s", warning)
    sidecar = DaemonSidecar(
        config.http, Exposition(registry), ReportLinks.from_config(config.reports)
    )
    daemon = Daemon(
        path, settings, observer=metrics, sidecar=sidecar, load_config=load_config, loaded=loaded
    )
    return daemon
