"""`featmon run`: the daemon. Each feature view and each model runs on its own schedule; the
configuration is reloaded on SIGHUP or when a file changes; SIGTERM or SIGINT stops it within a
grace period.

    daemon = Daemon(Path("config.yaml"), DaemonSettings(workers=8), observer=metrics)
    daemon.start()        # load, build the app, prune, schedule; raises ConfigError
    daemon.reload()       # load again; a bad configuration is reported, the last good one runs
    daemon.stop(30.0)     # stop scheduling, let runs finish, close the stores and the state DB

`monitor.daemon.process.serve(daemon)` is the same with signals, for the command line. Tests
drive the methods.

What runs is a job (`monitor.daemon.jobs`): a feature view or a model with checks, named by its
subject (a view's name, or `model:<name>`); the daemon treats both alike, and "view" below
stands for either. With a state database, a run is first claimed there
(`monitor.daemon.claims`): replicas sharing the database run each scheduled run of each view
once, and one that loses the claim skips it. Probing never waits for the state database: a
claim it does not answer is run anyway (see `monitor.daemon.claims` for which views), and a run
it does not take is buffered by the `RunRecorder` (`monitor.daemon.recorder`) and written when
it is back, on the claims' heartbeat.

On start, views without a recent run catch up within seconds, then run on their schedule
(`monitor.daemon.catch_up`); so do views a reload adds.

A run of one view is `run_view` (of a model, `run_model`) at the run's **scheduled** time, a
`RunResult` with its own run id, recorded, alerted on, and `observer.run_finished`; any failure
there becomes `error` results and never reaches the scheduler. Runs hold the configuration they
started with: a reload swaps in a new app at once, and the old one's stores are closed when its
last run ends.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Protocol

from checks.errors import ConfigError, Problem
from checks.schedule import Schedule
from monitor.app import App, build_app
from monitor.daemon.catch_up import CatchUps
from monitor.daemon.claims import RunClaims, Ticker, Verdict, holder_id
from monitor.daemon.generation import Generation
from monitor.daemon.jobs import (
    BUFFER_RUNS_PER_JOB,
    Job,
    buffer_capacity,
    log_run,
    plan_jobs,
    schedules,
    subjects,
)
from monitor.daemon.notify import AlertRuntime
from monitor.daemon.observer import NoObserver, RunObserver
from monitor.daemon.recorder import Recorded, RunRecorder, StateHealth
from monitor.daemon.reloads import ReloadOutcome
from monitor.daemon.scheduler import (
    SYSTEM_CLOCK,
    Clock,
    First,
    Scheduler,
    SchedulerSettings,
    job_key,
    spelled,
    subject_of_key,
)
from monitor.daemon.watch import Watcher, watched_files
from monitor.loader import Loaded, load
from monitor.state import StateError, StoredResult

log = logging.getLogger(__name__)

RETENTION_KEY = "featmon:retention"  # not a view name: those cannot hold a colon
RETENTION_SCHEDULE = Schedule(every=timedelta(hours=1))
ALERTS_KEY = "featmon:alerts"
CLAIM_RETENTION = timedelta(days=1)  # claims matter for a misfire grace; kept a day to diagnose
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


class Daemon:
    """The scheduler over every feature view and model of the configuration at `config_path`.

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
        self._catch_ups = CatchUps(settings.misfire_grace)
        self._recorder = RunRecorder(BUFFER_RUNS_PER_JOB, self._observer)
        self._tending = Ticker("featmon-claims", settings.claim_lease / 4, self._tend_claims)

    # -- the life cycle --------------------------------------------------------------------

    def start(self) -> None:
        """Load the configuration, build its app, and start scheduling (the state database is
        pruned at once and hourly). Raises `ConfigError` when the configuration is invalid."""
        loaded = self._loaded_first or self._load(self._path)
        self._loaded_first = None
        generation = self._generation_of(loaded, self._build(loaded))
        self._recorder.resize(buffer_capacity(loaded, generation.jobs))
        with self._lock:
            self._current = generation
        if self._sidecar is not None:
            try:
                self._sidecar.start(self)
            except BaseException:
                generation.retire()
                raise
        self._put_jobs(generation, generation.jobs.values())
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
            "featmon running %s: %d feature views and models scheduled, %d workers",
            self._path,
            len(generation.jobs),
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
            self._recorder.resize(buffer_capacity(loaded, new.jobs))
            with self._lock:
                old, self._current = self._current, new
            if new.alerts is not None:  # alerts of views no longer configured resolve
                if old.alerts is not None:  # what only memory holds while the database is down
                    new.alerts.adopt(old.alerts)
                new.alerts.retire(subjects(loaded), datetime.now(UTC))
            plan = plan_jobs(schedules(old.jobs), schedules(new.jobs))
            for subject in plan.remove:
                self._scheduler.remove(job_key(subject))
            self._put_jobs(new, [new.jobs[subject] for subject in plan.add])
            for subject in plan.reschedule:
                job = new.jobs[subject]
                self._scheduler.put(job.key, job.schedule, self._job(subject))
            old.retire()
            with self._lock:
                self._last_reload = ReloadOutcome(ok=True, at=datetime.now(UTC))
        log.info(
            "reloaded %s: %d feature views and models (added %s, removed %s, rescheduled %s)",
            self._path,
            len(new.jobs),
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

    def configured_checks(self) -> frozenset[str]:
        """The ids of the checks of views and models the running configuration has (none
        before it starts): `/metrics` shows no other."""
        with self._lock:
            current = self._current
        if current is None:
            return frozenset()
        loaded = current.loaded
        models = (p.id for m in loaded.models for p in m.planned)
        return frozenset(p.id for p in loaded.planned).union(models)

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

    def _put_jobs(self, generation: Generation, jobs: Iterable[Job]) -> None:
        """Schedule `jobs`, those without a recent run catching up (`monitor.daemon.catch_up`)."""
        now = self._clock.now()
        wanted = schedules(generation.jobs)
        names = [job.subject for job in jobs]
        firsts = self._catch_ups.plan(generation.app.state, wanted, names, now)
        for name, first in firsts.items():
            self._scheduler.put(job_key(name), wanted[name], self._job(name), now, first)

    # -- runs ------------------------------------------------------------------------------

    def _job(self, name: str) -> Callable[[datetime], None]:
        return lambda scheduled_at: self._run_job(name, scheduled_at)

    def _run_job(self, name: str, scheduled_at: datetime, *, claimed: bool = False) -> None:
        """Run the view or model `name` (a subject) at `scheduled_at` once it is claimed
        (`claimed`: it was taken over)."""
        with self._run_slot(name) as generation:
            job = None if generation is None else generation.jobs.get(name)
            if generation is None or job is None:  # stopping, or removed by a reload
                if claimed:
                    self._claims.drop((name, scheduled_at))
                return
            state = generation.app.state
            if state is None:
                self._run_claimed(generation, job, scheduled_at, None)
                return
            if not claimed and self._catch_ups.ran_elsewhere(state, name, scheduled_at):
                self._observer.run_claimed_elsewhere(name, scheduled_at)
                return
            verdict = Verdict.HELD if claimed else self._claims.claim(state, name, scheduled_at)
            if verdict is Verdict.NOT_OURS:
                return
            if verdict is Verdict.UNCLAIMED:
                self._run_claimed(generation, job, scheduled_at, None)
                return
            settled = False
            try:
                settled = self._run_claimed(generation, job, scheduled_at, self._claims.holder)
            finally:
                if settled:  # recorded or buffered with its claim, which is finished with it
                    self._claims.drop((name, scheduled_at))
                else:  # not recorded: the claim is finished on its own
                    self._claims.finish(state, name, scheduled_at)

    def _run_taken_over(self, key: str, name: str, scheduled_at: datetime) -> None:
        with self._lock:
            self._takeovers.pop(key, None)
        self._run_job(name, scheduled_at, claimed=True)

    def _run_claimed(
        self, generation: Generation, job: Job, scheduled_at: datetime, holder: str | None
    ) -> bool:
        """Probe, record or buffer (finishing the claim of `holder` in the same transaction)
        and alert; True when the claim is settled by the recording. No report file is written:
        the sidecar renders a run's report from the state database when it is asked for."""
        name = job.subject
        started = time.monotonic()
        app = generation.app
        run, probe_cpu = job.run(app, scheduled_at, self._observer)
        claim = None if holder is None else (name, holder)
        if app.state is not None:
            recorded = self._recorder.record(app.state, name, run, claim)
            if recorded is Recorded.ELSEWHERE:
                log.warning(
                    "run %s of %s not recorded: its claim was taken over by another "
                    "replica (the lease of %s ran out), which records it",
                    run.run_id,
                    spelled(name),
                    self._settings.claim_lease,
                )
                return True
        if generation.alerts is not None:
            generation.alerts.after_run(run, datetime.now(UTC))
        self._observer.run_finished(name, run)
        log_run(job, run, (time.monotonic() - started) * 1000, probe_cpu)
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
            taken = self._claims.tend(generation.app.state, frozenset(generation.jobs), now)
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
        name = subject_of_key(key)
        if name is None:
            return
        log.warning(
            "run of %s scheduled at %s skipped: its previous run is still going",
            spelled(name),
            scheduled_at.isoformat(),
        )
        self._observer.run_skipped(name, scheduled_at)

    def _missed(self, key: str, scheduled_at: datetime) -> None:
        with self._lock:
            taken = self._takeovers.pop(key, None)
        if taken is not None:  # not run: its claim ends with its lease, and is found lost
            self._claims.drop(taken)
        name = subject_of_key(key)
        log.warning(
            "run of %s scheduled at %s dropped: no worker was free within the misfire grace "
            "of %s (raise --workers)",
            key if name is None else spelled(name),
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
