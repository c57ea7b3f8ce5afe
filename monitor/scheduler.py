"""The scheduler: APScheduler 3.11 behind a small typed adapter. This module is the only
importer of `apscheduler` (pyproject's import contract says so).

What the rest of featmon sees is `Scheduler`: jobs named by a string key, each a
`Callable[[datetime], None]` that receives its **scheduled** run time (APScheduler 4 offers that
as the current job's `scheduled_fire_time`; 3.x does not hand it to the job, so the executor
below does), on a `Schedule` (`every` or `cron`, a zone, jitter). Every job runs on one bounded
thread pool, never overlaps itself (`max_instances=1`: a run due while the previous one is still
going is reported to `on_skipped`, not queued), coalesces the runs missed during a pause into
one, and is dropped (reported to `on_missed`) when it starts later than the misfire grace time.

Scheduled times are the same in every process, whenever it started, so that daemon replicas can
agree on which run is which (`monitor.claims`): an `every` interval is laid on a grid anchored
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
import logging
import random
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from checks.schedule import Schedule

log = logging.getLogger(__name__)

Job = Callable[[datetime], None]
"""A job: called with its scheduled run time (timezone-aware UTC) on a worker thread."""


class ScheduleError(ValueError):
    """A schedule that APScheduler cannot run (an unknown zone, an unsupported cron field)."""


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
    the run every replica has on its grid, so the claim on it (`monitor.claims`) lets one of
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


def _ignore(key: str, scheduled_at: datetime) -> None:
    pass


class Scheduler:
    """Jobs by key on one background thread and one worker pool. `on_skipped(key, at)` is
    called when a run was due while the job's previous run was still going; `on_missed(key, at)`
    when a run started too late (see `SchedulerSettings.misfire_grace`). Both are called on the
    scheduler's threads and must not raise."""

    def __init__(
        self,
        settings: SchedulerSettings = SchedulerSettings(),
        on_skipped: Callable[[str, datetime], None] = _ignore,
        on_missed: Callable[[str, datetime], None] = _ignore,
    ) -> None:
        self._settings = settings
        self._on_skipped = on_skipped
        self._on_missed = on_missed
        self._scheduler = BackgroundScheduler(
            executors={"default": _ScheduledTimeExecutor(settings.workers)},
            job_defaults={
                "max_instances": 1,
                "coalesce": True,
                "misfire_grace_time": int(settings.misfire_grace.total_seconds()),
            },
            timezone=UTC,
        )
        self._triggers: dict[str, _GridTrigger] = {}  # by key, to map fire times to the grid
        self._scheduler.add_listener(self._skipped, EVENT_JOB_MAX_INSTANCES)
        self._scheduler.add_listener(self._missed, EVENT_JOB_MISSED)

    def start(self) -> None:
        """Start the scheduler thread; jobs put before this start with it."""
        self._scheduler.start()
        log.info("scheduler started: %d workers", self._settings.workers)

    def shutdown(self) -> None:
        """Stop scheduling (no new runs start) and return at once; runs already going go on.
        The caller waits for them; the pool's threads end when they do."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
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
        now = now or datetime.now(UTC)
        trigger = _GridTrigger(grid_of(key, schedule), schedule.jitter.total_seconds())
        if isinstance(first, CatchUp):
            start: datetime | None = first.fire_at
            trigger.hand(first.fire_at, first.scheduled_at)
        elif first is First.NOW:
            start = now
        elif first is First.LATEST:
            start = trigger.get_next_fire_time(None, now - self._settings.misfire_grace)
        else:
            start = trigger.get_next_fire_time(None, now)
        self._triggers[key] = trigger
        self._scheduler.add_job(
            _Timed(job), trigger, id=key, name=key, replace_existing=True, next_run_time=start
        )

    def once(self, key: str, scheduled_at: datetime, job: Job) -> None:
        """Run `job` once, handed `scheduled_at`, as soon as a worker is free, unless that is
        later than the misfire grace after `scheduled_at` (then `on_missed` hears of it)."""
        self._scheduler.add_job(
            _Timed(job), DateTrigger(scheduled_at, UTC), id=key, name=key, replace_existing=True
        )

    def remove(self, key: str) -> None:
        """Remove the job `key` (a run already going finishes); unknown keys are ignored."""
        if self._scheduler.get_job(key) is not None:
            self._scheduler.remove_job(key)
        self._triggers.pop(key, None)

    def keys(self) -> frozenset[str]:
        return frozenset(job.id for job in self._scheduler.get_jobs())

    def _skipped(self, event: JobSubmissionEvent) -> None:
        for moment in event.scheduled_run_times[-1:]:
            self._on_skipped(event.job_id, self._grid_time(event.job_id, moment))

    def _missed(self, event: JobExecutionEvent) -> None:
        self._on_missed(event.job_id, self._grid_time(event.job_id, event.scheduled_run_time))

    def _grid_time(self, key: str, fired: datetime) -> datetime:
        trigger = self._triggers.get(key)
        return (fired if trigger is None else trigger.grid_time(fired)).astimezone(UTC)


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


class _GridTrigger(BaseTrigger):  # type: ignore[misc]  # apscheduler is untyped
    """An APScheduler trigger over a grid of scheduled times, each fired up to `jitter`
    seconds late. It remembers the grid time of the fire times it handed out, so that the
    executor gives the job its grid time, not the jittered one."""

    def __init__(self, grid: Callable[[datetime], datetime | None], jitter: float) -> None:
        self._grid = grid
        self._jitter = jitter
        self._fired: OrderedDict[datetime, datetime] = OrderedDict()  # fire time -> grid time
        self._lock = threading.Lock()

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        after = now if previous_fire_time is None else self.grid_time(previous_fire_time) + _TICK
        grid = self._grid(after)
        if grid is None or not self._jitter:
            return grid
        fire = grid + timedelta(seconds=random.uniform(0, self._jitter))  # noqa: S311  (load spreading, not cryptography)
        self.hand(fire, grid)
        return fire

    def hand(self, fire: datetime, scheduled: datetime) -> None:
        """Hand the job `scheduled` when it fires at `fire`."""
        with self._lock:
            self._fired[fire] = scheduled
            while len(self._fired) > _REMEMBERED:
                self._fired.popitem(last=False)

    def grid_time(self, fired: datetime) -> datetime:
        """The grid time of a fire time this trigger handed out (itself when not jittered)."""
        with self._lock:
            return self._fired.get(fired, fired)


_REMEMBERED = 64  # fire times kept: a job has one pending, and a skip event reads one more


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


class _Timed:
    """A job as APScheduler holds it. `scheduled_at` has a default only to pass APScheduler's
    check of the arguments when the job is added: `_ScheduledTimeExecutor` always gives it."""

    def __init__(self, job: Job) -> None:
        self._job = job

    def __call__(self, scheduled_at: datetime | None = None) -> None:
        if scheduled_at is None:
            raise RuntimeError("a job ran without its scheduled time (not by the executor)")
        self._job(scheduled_at)


class _ScheduledTimeExecutor(ThreadPoolExecutor):  # type: ignore[misc]  # apscheduler is untyped
    """APScheduler's thread pool executor, except that the job function is called with its
    scheduled run time as its first argument.

    APScheduler's `run_job` (misfire check, events) runs as usual, on a view of the job whose
    function is bound to the run time. The scheduler always coalesces, so a submission carries
    one run time."""

    def _do_submit_job(self, job: _ApsJob, run_times: list[datetime]) -> None:
        run_time = run_times[-1]
        trigger = getattr(job, "trigger", None)
        grid = trigger.grid_time(run_time) if isinstance(trigger, _GridTrigger) else run_time
        super()._do_submit_job(_BoundJob(job, grid), [run_time])


class _ApsJob(Protocol):
    """The attributes of `apscheduler.job.Job` that its `run_job` reads."""

    id: str
    _jobstore_alias: str
    misfire_grace_time: int | None
    func: Callable[..., object]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class _BoundJob:
    """An `_ApsJob` whose `func` is bound to one scheduled (grid) time; APScheduler's misfire
    check still sees the time it fired at (the grid time plus any jitter)."""

    def __init__(self, job: _ApsJob, grid_time: datetime) -> None:
        self.id: str = job.id
        self._jobstore_alias: str = job._jobstore_alias
        self.misfire_grace_time: int | None = job.misfire_grace_time
        self.func = partial(job.func, grid_time.astimezone(UTC))
        self.args: tuple[Any, ...] = tuple(job.args)
        self.kwargs: dict[str, Any] = dict(job.kwargs)
        self._name = str(job)

    def __str__(self) -> str:
        return self._name
