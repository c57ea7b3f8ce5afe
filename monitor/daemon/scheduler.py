"""The scheduler: featmon's own, one timer thread over a heap of next runs and a bounded worker
pool, on an injected clock.

What the rest of featmon sees is `Scheduler`: jobs named by a string key, each a
`Callable[[datetime], None]` that receives its **scheduled** run time, on a `Schedule` (`every`
or `cron`, a zone, jitter). Every job runs on one bounded thread pool, never overlaps itself (a
run due while the previous one is still going, or still waiting for a worker, is reported to
`on_skipped`, not queued), coalesces the runs missed during a pause into one, and is dropped
(reported to `on_missed`) when it cannot start within the misfire grace time.

Why our own and not APScheduler: featmon already owns what a scheduler decides (the grid of
scheduled times below, the catch-up at start, the claims that make replicas agree), and what it
needs from one beyond that is small: hand each run its scheduled time, which APScheduler 3 does
not do without overriding a private method of its executor, and tell the time from a clock that
tests can move, which APScheduler 3 reads from the system inside its scheduler loop. What is
left of APScheduler is the public `CronTrigger.get_next_fire_time`, to read cron expressions
(its field parser and time-zone arithmetic are well tested; the API is APScheduler 3's, hence
the `<4` pin). This module is the only importer of `apscheduler` (pyproject's import contract
says so).

Scheduled times are the same in every process, whenever it started, so that daemon replicas can
agree on which run is which (`monitor.daemon.claims`): an `every` interval is laid on a grid anchored
at the Unix epoch plus an offset of whole milliseconds taken from a hash of the job's key (views
spread evenly over the interval, not bunched on whole seconds, and the spread is the same
everywhere, as Prometheus spreads its scrapes); cron times are absolute.
Jitter delays the start of a run by a random amount, but the time handed to the job stays the
grid time.

A job put with a `CatchUp` runs once soon, off the grid, then joins it: the daemon catches up
on start with the views whose latest scheduled time has no recorded run (`catch_up` says when
each runs and which scheduled time it is handed).

Cron expressions are standard cron: weekday 0 and 7 are Sunday, as in crontab(5). APScheduler 3
counts weekdays from Monday, so the weekday field is translated to day names here. `L`, `W` and
`#` are not supported, and when both day-of-month and weekday are restricted a run needs both to
match (crontab needs either).
"""

from __future__ import annotations

import enum
import hashlib
import heapq
import itertools
import logging
import random
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from checks.result import MODEL_PREFIX
from checks.schedule import Schedule

log = logging.getLogger(__name__)

Job = Callable[[datetime], None]
"""A job: called with its scheduled run time (timezone-aware UTC) on a worker thread."""


VIEW_KEY_PREFIX = "view:"
"""A feature view's job key is this prefix and its name (a view name holds no colon): the key
places the view on its interval (`grid_offset`), so the daemon and `featmon list` agree on the
view's next run time."""


def job_key(subject: str) -> str:
    """The job key of a subject's runs (`CheckResult.subject`): `view:<name>` for a feature
    view, and a model's own key `model:<name>` for a model. Neither meets the other, nor the
    daemon's own jobs (`featmon:...`)."""
    return subject if subject.startswith(MODEL_PREFIX) else VIEW_KEY_PREFIX + subject


def spelled(subject: str) -> str:
    """A subject as log lines name it: `view user_stats`, `model fraud`."""
    if subject.startswith(MODEL_PREFIX):
        return "model " + subject.removeprefix(MODEL_PREFIX)
    return "view " + subject


def subject_of_key(key: str) -> str | None:
    """The subject whose runs `key` schedules (see `job_key`); None for any other job."""
    if key.startswith(MODEL_PREFIX):
        return key
    return key.removeprefix(VIEW_KEY_PREFIX) if key.startswith(VIEW_KEY_PREFIX) else None


class ScheduleError(ValueError):
    """A schedule the scheduler cannot run (an unknown zone, an unsupported cron field)."""


@dataclass(frozen=True)
class SchedulerSettings:
    """How jobs run. `workers`: the thread pool shared by every job; `misfire_grace`: a run
    that starts later than this after its scheduled time is dropped (reported as missed)."""

    workers: int = 8
    misfire_grace: timedelta = timedelta(seconds=60)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"expected at least 1 worker, found {self.workers}")
        if self.misfire_grace < timedelta(seconds=1):
            raise ValueError(f"expected a misfire grace of 1s or more, found {self.misfire_grace}")


class First(enum.Enum):
    """When a job put now first runs. `NEXT`: at its next scheduled time from now. `LATEST`:
    at its latest scheduled time if that is still within the misfire grace (so a daemon that
    starts or restarts just after a run was due runs it late rather than skip it), else at the
    next. `NOW`: at once, off the grid, and on the grid afterwards."""

    NEXT = "next"
    LATEST = "latest"
    NOW = "now"


CATCH_UP_SPREAD = timedelta(seconds=10)
"""Catch-up runs start within this of being put (within a tenth of a shorter interval)."""


@dataclass(frozen=True)
class CatchUp:
    """A first run off the grid: fired at `fire_at`, handed `scheduled_at` (see `catch_up`)."""

    fire_at: datetime
    scheduled_at: datetime


def catch_up(
    key: str, schedule: Schedule, now: datetime, misfire_grace: timedelta
) -> CatchUp | None:
    """When the job `key`, whose latest scheduled time has not run, runs at once: None when its
    next scheduled time comes first anyway.

    It fires at its time on a fine grid anchored like the job's own (a step of
    `CATCH_UP_SPREAD`, or a tenth of a shorter interval; an offset from a hash of the key), so
    that catch-ups of many jobs are spread evenly over that step by key, never all submitted at
    once, and every process starting within the same step fires a job at the same moment.

    It is handed the latest scheduled time when it fires within `misfire_grace` of it: that is
    the run every replica has on its grid, so the claim on it (`monitor.daemon.claims`) lets one of
    them run it, as a late run of the grid. An older latest time is not handed: ages are
    measured against the scheduled time, so a run minutes late would count the values written
    meanwhile as values from the future (past a check's `max_future`). Such a run is handed its
    own fire time instead, a moment on the fine grid that processes starting together agree on;
    the daemon then makes sure no replica ran the view since its latest scheduled time."""
    check(schedule)
    grid = grid_of(key, schedule)
    coming = grid(now)
    latest = previous_time(key, schedule, now)
    step = CATCH_UP_SPREAD
    if latest is not None:
        following = grid(latest + _TICK)
        if following is not None:
            step = min(step, (following - latest) / 10)
    fire = _interval_grid(key, max(step, _MILLI))(now)
    if coming is not None and coming <= fire:
        return None
    if latest is not None and fire - latest <= misfire_grace:
        return CatchUp(fire, latest)
    return CatchUp(fire, fire)


def previous_time(key: str, schedule: Schedule, now: datetime) -> datetime | None:
    """The latest scheduled time at or before `now` of the job `key` on `schedule` (without
    jitter); None when it has none within `HORIZON`. Raises `ScheduleError`."""
    grid = grid_of(key, schedule)
    if schedule.every is not None:
        coming = grid(now)
        assert coming is not None  # noqa: S101  (an interval always has a next time)
        return coming if coming == now else coming - schedule.every
    back = timedelta(minutes=1)
    while back <= HORIZON:
        found = grid(now - back)
        if found is not None and found <= now:
            while (after := grid(found + _TICK)) is not None and after <= now:
                found = after
            return found
        back *= 2
    return None


class Clock(Protocol):
    """Where the scheduler reads the time and waits for it: `SYSTEM_CLOCK` in the daemon, a
    clock moved by hand in tests."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""

    def sleep(self, until: datetime | None, wake: threading.Event) -> None:
        """Return at `until` (None: no time) or as soon as `wake` is set; may return earlier."""


class SystemClock:
    """The wall clock. A sleep lasts at most a minute, so that a clock set forward or back
    (or a host resumed from suspend) is noticed within one."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, until: datetime | None, wake: threading.Event) -> None:
        longest = _LONGEST_SLEEP.total_seconds()
        left = longest if until is None else (until - self.now()).total_seconds()
        wake.wait(min(max(left, 0.0), longest))


SYSTEM_CLOCK = SystemClock()
_LONGEST_SLEEP = timedelta(minutes=1)


def _ignore(key: str, scheduled_at: datetime) -> None:
    pass


@dataclass(eq=False)
class _Job:
    """A job as the scheduler holds it: its grid (None: runs once) and its next run."""

    key: str
    run: Job
    grid: Callable[[datetime], datetime | None] | None
    jitter: float
    pending: _Due | None = None


@dataclass(frozen=True, order=True)
class _Due:
    """A run of `job` that fires at `fire_at` (its scheduled time plus any jitter)."""

    fire_at: datetime
    order: int
    scheduled_at: datetime = field(compare=False)
    job: _Job = field(compare=False)


class Scheduler:
    """Jobs by key on one timer thread and one worker pool. `on_skipped(key, at)` is called
    when a run was due while the job's previous run was still going (or waiting for a worker);
    `on_missed(key, at)` when a run could not start within the misfire grace of its time (see
    `SchedulerSettings.misfire_grace`). Both are called on the scheduler's threads and must not
    raise. `clock` is the wall clock unless a test moves its own."""

    def __init__(
        self,
        settings: SchedulerSettings = SchedulerSettings(),
        on_skipped: Callable[[str, datetime], None] = _ignore,
        on_missed: Callable[[str, datetime], None] = _ignore,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._settings = settings
        self._on_skipped = on_skipped
        self._on_missed = on_missed
        self._clock = clock
        self._lock = threading.Lock()  # guards everything below
        self._jobs: dict[str, _Job] = {}
        self._due: list[_Due] = []  # a heap: the next run first; replaced runs stay, stale
        self._going: set[str] = set()  # keys with a run submitted and not finished
        self._order = itertools.count()
        self._wake = threading.Event()
        self._stopped = False
        self._pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="featmon-run")
        self._timer = threading.Thread(target=self._loop, name="featmon-scheduler", daemon=True)

    def start(self) -> None:
        """Start the timer thread; jobs put before this start with it."""
        self._timer.start()
        log.info("scheduler started: %d workers", self._settings.workers)

    def shutdown(self) -> None:
        """Stop scheduling (no new runs start, runs waiting for a worker are dropped) and
        return; runs already going go on. The caller waits for them; the pool's threads end
        when they do."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._wake.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._timer.is_alive():
            self._timer.join()
            log.info("scheduler stopped")

    def put(
        self,
        key: str,
        schedule: Schedule,
        job: Job,
        now: datetime | None = None,
        first: First | CatchUp = First.NEXT,
    ) -> None:
        """Add the job `key`, or replace its schedule and function; it first runs as `first`
        says (a `CatchUp`: at its `fire_at`, handed its `scheduled_at`). Raises
        `ScheduleError`."""
        check(schedule)
        now = now or self._clock.now()
        held = _Job(key, job, grid_of(key, schedule), schedule.jitter.total_seconds())
        if isinstance(first, CatchUp):
            self._add(held, first.fire_at, first.scheduled_at)
        elif first is First.NOW:
            self._add(held, now, now)
        else:
            start = now - self._settings.misfire_grace if first is First.LATEST else now
            self._add(held, *self._following(held, start))

    def once(self, key: str, scheduled_at: datetime, job: Job) -> None:
        """Run `job` once, handed `scheduled_at`, as soon as a worker is free, unless that is
        later than the misfire grace after `scheduled_at` (then `on_missed` hears of it)."""
        self._add(_Job(key, job, None, 0.0), scheduled_at, scheduled_at)

    def remove(self, key: str) -> None:
        """Remove the job `key` (a run already going finishes); unknown keys are ignored."""
        with self._lock:
            self._jobs.pop(key, None)

    def keys(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._jobs)

    def going(self) -> frozenset[str]:
        """The keys with a run going or waiting for a worker (a run due for one is skipped)."""
        with self._lock:
            return frozenset(self._going)

    def _add(self, job: _Job, fire_at: datetime | None, scheduled_at: datetime | None) -> None:
        with self._lock:
            self._jobs[job.key] = job
            self._push(job, fire_at, scheduled_at)
        self._wake.set()

    def _push(self, job: _Job, fire_at: datetime | None, scheduled_at: datetime | None) -> None:
        job.pending = None
        if fire_at is not None and scheduled_at is not None:
            job.pending = _Due(fire_at.astimezone(UTC), next(self._order), scheduled_at, job)
            heapq.heappush(self._due, job.pending)

    def _following(self, job: _Job, moment: datetime) -> tuple[datetime | None, datetime | None]:
        """The fire time and scheduled time of the job's first run at or after `moment`."""
        scheduled = None if job.grid is None else job.grid(moment)
        if scheduled is None or not job.jitter:
            return scheduled, scheduled
        delay = random.uniform(0, job.jitter)  # noqa: S311  (load spreading, not cryptography)
        return scheduled + timedelta(seconds=delay), scheduled

    def _loop(self) -> None:
        """The timer thread: submit every run that is due, then sleep until the next one."""
        while True:
            self._wake.clear()
            with self._lock:
                if self._stopped:
                    return
                now = self._clock.now()
                skipped: list[tuple[str, datetime]] = []
                while self._due and self._due[0].fire_at <= now:
                    skipped.extend(self._fire(heapq.heappop(self._due), now))
                until = self._due[0].fire_at if self._due else None
            for key, at in skipped:
                self._on_skipped(key, at)
            self._clock.sleep(until, self._wake)

    def _fire(self, due: _Due, now: datetime) -> list[tuple[str, datetime]]:
        """Submit the run `due` (the latest of its job's runs due by `now`, the earlier ones
        coalesced into it) and put the job's next run; the run skipped, if it is."""
        job = due.job
        if self._jobs.get(job.key) is not job or job.pending is not due:
            return []  # replaced or removed since
        fire_at, scheduled_at = due.fire_at, due.scheduled_at
        following = self._following(job, scheduled_at + _TICK)
        while following[0] is not None and following[0] <= now and following[1] is not None:
            fire_at, scheduled_at = following[0], following[1]
            following = self._following(job, scheduled_at + _TICK)
        self._push(job, *following)
        if job.grid is None:
            del self._jobs[job.key]
        if job.key in self._going:
            return [(job.key, scheduled_at)]
        self._going.add(job.key)
        self._pool.submit(self._run, job, fire_at, scheduled_at)
        return []

    def _run(self, job: _Job, fire_at: datetime, scheduled_at: datetime) -> None:
        """On a worker: run the job, unless it starts later than the misfire grace."""
        try:
            if self._clock.now() - fire_at > self._settings.misfire_grace:
                self._on_missed(job.key, scheduled_at)
                return
            job.run(scheduled_at)
        except Exception:  # the scheduler's boundary: one job's bug must not stop the others
            log.exception("job %s raised", job.key)
        finally:
            with self._lock:
                self._going.discard(job.key)


def check(schedule: Schedule) -> None:
    """Raise `ScheduleError` if APScheduler cannot run `schedule`."""
    zone = _zone(schedule.timezone)
    if schedule.cron is not None:
        _cron(schedule.cron, zone, 0.0)


HORIZON = timedelta(days=5 * 366)
"""A cron expression must fire within this of now: one that does not (`0 0 31 4 *`) is a
mistake, and a view that never runs would look healthy."""


def problems(schedule: Schedule, now: datetime) -> list[tuple[str, str]]:
    """What `put` would refuse in `schedule` (its zone, its cron fields, read by the same code),
    and a cron expression with no time within `HORIZON` of `now`: (key of the schedule, message)
    pairs, empty when the scheduler runs it. The loader locates them in the check file."""
    try:
        zone = _zone(schedule.timezone)
    except ScheduleError as exc:
        return [("timezone", str(exc))]
    if schedule.cron is None:
        return []
    try:
        cron = _cron(schedule.cron, zone, 0.0)
    except ScheduleError as exc:
        return [("cron", str(exc))]
    first = cron.get_next_fire_time(None, now)  # type: ignore[attr-defined]  # APScheduler 3's triggers are untyped
    if isinstance(first, datetime) and first <= now + HORIZON:
        return []
    when = "never" if first is None else f"first at {first.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    fields = schedule.cron.split()
    both = fields[2] not in {"*", "?"} and fields[4] not in {"*", "?"}
    hint = " (a run needs both its day of month and its weekday to match)" if both else ""
    message = (
        f"expected a cron expression that fires within 5 years, found {schedule.cron!r}, "
        f"which fires {when}{hint}"
    )
    return [("cron", message)]


def next_time(schedule: Schedule, now: datetime, key: str = "") -> datetime | None:
    """The first scheduled time at or after `now` of the job `key` on `schedule` (without
    jitter). Raises `ScheduleError`."""
    check(schedule)
    return grid_of(key, schedule)(now)


def grid_offset(key: str, every: timedelta) -> timedelta:
    """Where on an `every` interval the job `key` runs: whole milliseconds from 0 to `every`
    less one, the same in every process (a hash of the key, not Python's salted `hash`).
    Milliseconds, not seconds: 500 views a minute on whole seconds arrive some eight at a time,
    and a worker pool of eight queues the second that draws more."""
    millis = _micros(every) // 1000
    digest = hashlib.sha256(key.encode()).digest()
    return timedelta(milliseconds=int.from_bytes(digest[:8], "big") % millis) if millis else _ZERO


def grid_of(key: str, schedule: Schedule) -> Callable[[datetime], datetime | None]:
    """The function from a moment to the job's first scheduled time at or after it."""
    if schedule.cron is not None:
        cron = _cron(schedule.cron, _zone(schedule.timezone), 0.0)

        def next_cron(moment: datetime) -> datetime | None:
            found = cron.get_next_fire_time(None, moment)  # type: ignore[attr-defined]  # APScheduler 3's triggers are untyped
            return found.astimezone(UTC) if isinstance(found, datetime) else None

        return next_cron
    assert schedule.every is not None  # noqa: S101  (Schedule has exactly one of the two)
    return _interval_grid(key, schedule.every)


def _interval_grid(key: str, every: timedelta) -> Callable[[datetime], datetime]:
    interval = _micros(every)
    anchor = _micros(grid_offset(key, every))

    def next_interval(moment: datetime) -> datetime:
        since = _micros(moment - _EPOCH) - anchor
        steps = -(-since // interval)  # ceiling division, in exact integers
        return _EPOCH + timedelta(microseconds=anchor + steps * interval)

    return next_interval


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ZERO = timedelta(0)
_TICK = timedelta(microseconds=1)
_MILLI = timedelta(milliseconds=1)


def _micros(span: timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(
            f"expected an IANA time zone such as UTC or Europe/Berlin, found {name!r}"
        ) from exc


def _cron(expression: str, zone: ZoneInfo, jitter: float) -> object:
    minute, hour, day, month, weekday = expression.split()
    try:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=weekday_names(weekday),
            timezone=zone,
            jitter=jitter or None,
        )
    except ValueError as exc:
        raise ScheduleError(f"expected a cron expression, found {expression!r}: {exc}") from exc


_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_ITEM = re.compile(r"^(\*|[0-7a-z]+)(?:-([0-7a-z]+))?(?:/(\d+))?$")


def weekday_names(field: str) -> str:
    """A crontab weekday field (0 and 7 Sunday, names, ranges, steps) as APScheduler 3 day names,
    e.g. `0,6` -> `sun,sat` and `1-5` -> `mon,tue,wed,thu,fri`. Raises `ScheduleError`."""
    if field in {"*", "?"}:
        return "*"
    days: set[int] = set()
    for item in field.lower().split(","):
        match = _ITEM.match(item)
        if match is None:
            raise ScheduleError(
                f"expected a weekday field of numbers 0-7 or names sun-sat, with ranges and "
                f"steps, found {field!r} (L, W and # are not supported)"
            )
        start, end, step = match.groups()
        low, high = (0, 6) if start == "*" else (_day(start, field), _day(end or start, field))
        if start != "*" and end is None and step is not None:
            high = 6  # `1/2`: from Monday, every second day
        if high < low:
            raise ScheduleError(f"expected a weekday range from low to high, found {item!r}")
        days.update(d % 7 for d in range(low, high + 1, int(step or 1)))
    return ",".join(_DAYS[d] for d in sorted(days, key=lambda d: (d - 1) % 7))


def _day(token: str, field: str) -> int:
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token in _DAYS:
        return _DAYS.index(token)
    raise ScheduleError(f"expected a weekday 0-7 or sun-sat, found {token!r} in {field!r}")
