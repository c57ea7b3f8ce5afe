"""The scheduler: APScheduler 3.11 behind a small typed adapter. This module is the only
importer of `apscheduler` (pyproject's import contract says so).

What the rest of featmon sees is `Scheduler`: jobs named by a string key, each a
`Callable[[datetime], None]` that receives its **scheduled** run time (APScheduler 4 offers that
as the current job's `scheduled_fire_time`; 3.x does not hand it to the job, so the executor
below does), on a `Schedule` (`every` or `cron`, a zone, jitter). Every job runs on one bounded
thread pool, never overlaps itself (`max_instances=1`: a run due while the previous one is still
going is reported to `on_skipped`, not queued), coalesces the runs missed during a pause into
one, and is dropped (reported to `on_missed`) when it starts later than the misfire grace time.

Cron expressions are standard cron: weekday 0 and 7 are Sunday, as in crontab(5). APScheduler 3
counts weekdays from Monday, so the weekday field is translated to day names here. `L`, `W` and
`#` are not supported, and when both day-of-month and weekday are restricted a run needs both to
match (crontab needs either).
"""

from __future__ import annotations

import logging
import random
import re
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
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

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

    def put(self, key: str, schedule: Schedule, job: Job, now: datetime | None = None) -> None:
        """Add the job `key`, or replace its schedule and function. An `every` job first runs at
        once (within its jitter), a cron job at its next time. Raises `ScheduleError`."""
        check(schedule)
        now = now or datetime.now(UTC)
        trigger, first = _trigger(schedule, now)
        self._scheduler.add_job(
            _Timed(job),
            trigger,
            id=key,
            name=key,
            replace_existing=True,
            next_run_time=first,
        )

    def remove(self, key: str) -> None:
        """Remove the job `key` (a run already going finishes); unknown keys are ignored."""
        if self._scheduler.get_job(key) is not None:
            self._scheduler.remove_job(key)

    def keys(self) -> frozenset[str]:
        return frozenset(job.id for job in self._scheduler.get_jobs())

    def next_run(self, key: str) -> datetime | None:
        """When the job `key` runs next (None: not scheduled, or not started)."""
        job = self._scheduler.get_job(key)
        moment = None if job is None else getattr(job, "next_run_time", None)
        return moment if isinstance(moment, datetime) else None

    def _skipped(self, event: JobSubmissionEvent) -> None:
        for moment in event.scheduled_run_times[-1:]:
            self._on_skipped(event.job_id, moment.astimezone(UTC))

    def _missed(self, event: JobExecutionEvent) -> None:
        self._on_missed(event.job_id, event.scheduled_run_time.astimezone(UTC))


def check(schedule: Schedule) -> None:
    """Raise `ScheduleError` if APScheduler cannot run `schedule`."""
    zone = _zone(schedule.timezone)
    if schedule.cron is not None:
        _cron(schedule.cron, zone, 0.0)


def next_time(schedule: Schedule, now: datetime) -> datetime | None:
    """When a job put at `now` on `schedule` first runs (without jitter). Raises
    `ScheduleError`."""
    unjittered = schedule.model_copy(update={"jitter": timedelta(0)})
    trigger, first = _trigger(unjittered, now)
    if first is not None:
        return first
    moment = trigger.get_next_fire_time(None, now)  # type: ignore[attr-defined]
    return moment.astimezone(UTC) if isinstance(moment, datetime) else None


def _trigger(schedule: Schedule, now: datetime) -> tuple[object, datetime | None]:
    """The APScheduler trigger of `schedule` and the job's first run time (None: the trigger's)."""
    zone = _zone(schedule.timezone)
    jitter = schedule.jitter.total_seconds()
    if schedule.cron is not None:
        return _cron(schedule.cron, zone, jitter), None
    assert schedule.every is not None  # noqa: S101  (Schedule has exactly one of the two)
    trigger = IntervalTrigger(
        seconds=schedule.every.total_seconds(),
        start_date=now,
        timezone=zone,
        jitter=jitter or None,
    )
    # Jitter spreads the first runs of many views started together, as it spreads the others.
    first = now + timedelta(seconds=random.uniform(0, jitter)) if jitter else now  # noqa: S311  (load spreading, not cryptography)
    return trigger, first


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
        super()._do_submit_job(_BoundJob(job, run_time), [run_time])


class _ApsJob(Protocol):
    """The attributes of `apscheduler.job.Job` that its `run_job` reads."""

    id: str
    _jobstore_alias: str
    misfire_grace_time: int | None
    func: Callable[..., object]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class _BoundJob:
    """An `_ApsJob` whose `func` is bound to one scheduled run time."""

    def __init__(self, job: _ApsJob, run_time: datetime) -> None:
        self.id: str = job.id
        self._jobstore_alias: str = job._jobstore_alias
        self.misfire_grace_time: int | None = job.misfire_grace_time
        self.func = partial(job.func, run_time.astimezone(UTC))
        self.args: tuple[Any, ...] = tuple(job.args)
        self.kwargs: dict[str, Any] = dict(job.kwargs)
        self._name = str(job)

    def __str__(self) -> str:
        return self._name
