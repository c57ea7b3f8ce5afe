"""The APScheduler adapter: standard cron, the scheduled time handed to each run, no overlap."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from checks.schedule import Schedule
from monitor.scheduler import (
    First,
    ScheduleError,
    Scheduler,
    SchedulerSettings,
    check,
    grid_offset,
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


def test_an_interval_is_anchored_to_the_epoch_plus_the_keys_offset() -> None:
    """`every: 5m` runs at the same moment of each 5-minute slot of the clock, whenever the
    scheduler was started: the key's whole-millisecond offset after the epoch's 5-minute grid."""
    every = Schedule(every=timedelta(minutes=5))
    offset = grid_offset("view:user_stats", timedelta(minutes=5))
    assert timedelta(0) <= offset < timedelta(minutes=5)
    assert offset.microseconds % 1000 == 0
    for started in (
        MONDAY,
        MONDAY + timedelta(seconds=1),
        MONDAY + timedelta(minutes=4, seconds=59),
    ):
        assert next_time(every, started, "view:user_stats") == MONDAY + offset + (
            timedelta(0) if started <= MONDAY + offset else timedelta(minutes=5)
        )


def test_different_keys_spread_over_the_interval_and_each_offset_is_stable() -> None:
    """Offsets are a hash of the key, not Python's per-process salted `hash`."""
    every = timedelta(seconds=60)
    offsets = {grid_offset(f"view:v{k}", every) for k in range(500)}
    assert len(offsets) > 490  # of 60,000 milliseconds: a few may share one
    assert len({o.seconds for o in offsets}) == 60
    assert grid_offset("view:user_stats", every) == timedelta(milliseconds=grid_offset_millis())


def on_grid(at: datetime, key: str, every: timedelta) -> bool:
    """Whether `at` is one of the job's grid times: the epoch plus its offset plus whole steps."""
    since = at - datetime(1970, 1, 1, tzinfo=UTC) - grid_offset(key, every)
    return since % every == timedelta(0)


def grid_offset_millis() -> int:
    """The offset of `view:user_stats` on a minute, computed independently of featmon."""
    import hashlib  # noqa: PLC0415  (only this check needs it)

    digest = hashlib.sha256(b"view:user_stats").digest()
    return int.from_bytes(digest[:8], "big") % 60_000


def test_two_schedulers_started_at_different_moments_hand_out_the_same_times() -> None:
    """Two real schedulers (replicas) started 1.3 s apart give each job the same scheduled
    times: the grid, not each one's start time."""
    seen: dict[str, list[datetime]] = {"a": [], "b": []}
    both = threading.Event()

    def job(name: str) -> Callable[[datetime], None]:
        def run(at: datetime) -> None:
            seen[name].append(at)
            if len(seen["a"]) >= 3 and len(seen["b"]) >= 3:
                both.set()

        return run

    first, second = Scheduler(), Scheduler()
    every = Schedule(every=timedelta(seconds=2))
    first.put("view:v", every, job("a"))
    first.start()
    time.sleep(1.3)
    second.put("view:v", every, job("b"))
    second.start()
    try:
        assert both.wait(10)
    finally:
        first.shutdown()
        second.shutdown()
    common = sorted(set(seen["a"]) & set(seen["b"]))
    assert len(common) >= 2
    assert all(on_grid(at, "view:v", timedelta(seconds=2)) for at in common)
    assert set(seen["b"]) <= set(seen["a"]) | {max(seen["b"])}


def test_jitter_delays_the_start_but_the_job_receives_the_grid_time() -> None:
    """With up to 0.8 s of jitter, every run still gets its grid time."""
    seen: list[tuple[datetime, datetime]] = []
    done = threading.Event()

    def job(at: datetime) -> None:
        seen.append((at, datetime.now(UTC)))
        if len(seen) == 4:
            done.set()

    scheduler = Scheduler()
    schedule = Schedule(every=timedelta(seconds=1), jitter=timedelta(milliseconds=800))
    scheduler.put("view:jittered", schedule, job)
    scheduler.start()
    try:
        assert done.wait(8)
    finally:
        scheduler.shutdown()
    assert all(on_grid(at, "view:jittered", timedelta(seconds=1)) for at, _ in seen)
    assert all(at <= ran < at + timedelta(seconds=1) for at, ran in seen)
    assert [b - a for (a, _), (b, _) in itertools.pairwise(seen)] == [timedelta(seconds=1)] * (
        len(seen) - 1
    )


def test_latest_first_runs_the_run_just_due_and_now_runs_off_the_grid() -> None:
    """`First.LATEST` catches up the latest grid time within the misfire grace; `NOW` runs at
    the moment given and then on the grid."""
    seen: dict[str, list[datetime]] = {"latest": [], "now": []}
    done = threading.Event()

    def job(name: str) -> Callable[[datetime], None]:
        def run(at: datetime) -> None:
            seen[name].append(at)
            if len(seen["latest"]) >= 1 and len(seen["now"]) >= 2:
                done.set()

        return run

    scheduler = Scheduler()
    moment = datetime.now(UTC)
    every = Schedule(every=timedelta(seconds=10))
    scheduler.put("view:x", every, job("latest"), now=moment, first=First.LATEST)
    scheduler.put(
        "view:y", Schedule(every=timedelta(seconds=1)), job("now"), now=moment, first=First.NOW
    )
    scheduler.start()
    try:
        assert done.wait(5)
    finally:
        scheduler.shutdown()
    offset = grid_offset("view:x", timedelta(seconds=10))
    latest = seen["latest"][0]
    assert moment - timedelta(seconds=10) < latest <= moment
    assert (latest - offset).timestamp() % 10 == 0
    assert seen["now"][0] == moment
    assert on_grid(seen["now"][1], "view:y", timedelta(seconds=1))


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
    """Runs of an `every: 1s` job are handed their grid times, exactly one second apart."""
    seen: list[datetime] = []
    done = threading.Event()

    def job(at: datetime) -> None:
        seen.append(at)
        time.sleep(0.05)  # the job's own time must not shift the next scheduled time
        if len(seen) == 3:
            done.set()

    scheduler = Scheduler()
    moment = datetime.now(UTC)
    start = next_time(
        Schedule(every=timedelta(seconds=1)), moment + timedelta(microseconds=1), "job"
    )
    assert start is not None
    scheduler.put("job", Schedule(every=timedelta(seconds=1)), job, now=moment)
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
    moment = datetime.now(UTC)
    start = next_time(
        Schedule(every=timedelta(seconds=1)), moment + timedelta(microseconds=1), "slow"
    )
    assert start is not None
    scheduler.put("slow", Schedule(every=timedelta(seconds=1)), job, now=moment)
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
    hourly = Schedule(every=timedelta(hours=1))
    scheduler.put("blocker", hourly, blocker, now=start, first=First.NOW)
    later = start + timedelta(seconds=0.3)
    scheduler.put("other", hourly, lambda _: None, now=later, first=First.NOW)
    scheduler.start()
    try:
        assert blocker_started.wait(3)
        deadline = time.monotonic() + 4
        while not missed and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        scheduler.shutdown()
    assert missed == ["other"]
