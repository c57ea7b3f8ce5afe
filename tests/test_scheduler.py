"""The APScheduler adapter: standard cron, the scheduled time handed to each run, no overlap."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from checks.schedule import Schedule
from monitor.scheduler import (
    ScheduleError,
    Scheduler,
    SchedulerSettings,
    check,
    next_time,
    weekday_names,
)

MONDAY = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("field", "names"),
    [
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("*/2", "tue,thu,sat,sun"),
        ("sat,sun", "sat,sun"),
        ("*", "*"),
    ],
)
def test_cron_weekdays_count_from_sunday_as_crontab_does(field: str, names: str) -> None:
    """APScheduler 3 counts weekdays from Monday; the adapter reads them as crontab(5)."""
    assert weekday_names(field) == names


def test_a_cron_schedule_runs_at_its_time_in_its_zone() -> None:
    """`0 9 * * 1` in Berlin is Monday 08:00 UTC in winter; the next after Monday noon is a
    week later."""
    schedule = Schedule(cron="0 9 * * 1", timezone="Europe/Berlin")
    assert next_time(schedule, MONDAY) == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def test_an_interval_schedule_runs_at_once() -> None:
    assert next_time(Schedule(every=timedelta(minutes=5)), MONDAY) == MONDAY


@pytest.mark.parametrize(
    "schedule",
    [
        Schedule(every=timedelta(minutes=1), timezone="Mars/Olympus"),
        Schedule(cron="0 9 * * 5L"),
        Schedule(cron="61 * * * *"),
    ],
    ids=["unknown zone", "last weekday", "minute out of range"],
)
def test_a_schedule_the_scheduler_cannot_run_is_refused(schedule: Schedule) -> None:
    with pytest.raises(ScheduleError, match="expected"):
        check(schedule)


def test_putting_a_key_again_replaces_its_job() -> None:
    scheduler = Scheduler()
    scheduler.put("a", Schedule(every=timedelta(minutes=1)), lambda _: None)
    scheduler.put("a", Schedule(every=timedelta(minutes=2)), lambda _: None)
    scheduler.put("b", Schedule(every=timedelta(minutes=1)), lambda _: None)
    scheduler.remove("b")
    scheduler.remove("never added")
    assert scheduler.keys() == {"a"}


def test_each_run_receives_its_scheduled_time_not_the_time_it_ran() -> None:
    """Runs of an `every: 1s` job are handed times exactly one second apart from the start."""
    seen: list[datetime] = []
    done = threading.Event()

    def job(at: datetime) -> None:
        seen.append(at)
        time.sleep(0.05)  # the job's own time must not shift the next scheduled time
        if len(seen) == 3:
            done.set()

    scheduler = Scheduler()
    start = datetime.now(UTC) + timedelta(seconds=0.2)
    scheduler.put("job", Schedule(every=timedelta(seconds=1)), job, now=start)
    scheduler.start()
    try:
        assert done.wait(5)
    finally:
        scheduler.shutdown()
    assert seen[:3] == [start + timedelta(seconds=k) for k in range(3)]


def test_a_run_due_while_the_last_is_going_is_skipped_not_queued() -> None:
    """A 2.5 s job every 1 s runs at 0 s and 3 s; the runs due at 1 s and 2 s are reported as
    skipped and never run."""
    runs: list[datetime] = []
    skipped: list[datetime] = []
    second_run = threading.Event()

    def job(at: datetime) -> None:
        runs.append(at)
        if len(runs) == 1:
            time.sleep(2.5)
        else:
            second_run.set()

    scheduler = Scheduler(on_skipped=lambda _key, at: skipped.append(at))
    start = datetime.now(UTC) + timedelta(seconds=0.2)
    scheduler.put("slow", Schedule(every=timedelta(seconds=1)), job, now=start)
    scheduler.start()
    try:
        assert second_run.wait(6)
    finally:
        scheduler.shutdown()
    assert runs[:2] == [start, start + timedelta(seconds=3)]
    assert skipped == [start + timedelta(seconds=1), start + timedelta(seconds=2)]


def test_a_run_that_cannot_start_within_the_misfire_grace_is_reported_missed() -> None:
    """One worker, busy for 2.5 s: the other job's run waits longer than its 1 s grace."""
    missed: list[str] = []
    blocker_started = threading.Event()

    def blocker(_: datetime) -> None:
        blocker_started.set()
        time.sleep(2.5)

    scheduler = Scheduler(
        SchedulerSettings(workers=1, misfire_grace=timedelta(seconds=1)),
        on_missed=lambda key, _at: missed.append(key),
    )
    start = datetime.now(UTC) + timedelta(seconds=0.2)
    scheduler.put("blocker", Schedule(every=timedelta(hours=1)), blocker, now=start)
    later = start + timedelta(seconds=0.3)
    scheduler.put("other", Schedule(every=timedelta(hours=1)), lambda _: None, now=later)
    scheduler.start()
    try:
        assert blocker_started.wait(3)
        deadline = time.monotonic() + 4
        while not missed and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        scheduler.shutdown()
    assert missed == ["other"]
