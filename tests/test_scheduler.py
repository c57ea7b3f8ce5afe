"""The scheduler: standard cron, the scheduled time handed to each run, no overlap, misfires,
coalescing and jitter, on a clock the tests move."""

from __future__ import annotations

import ast
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from checks.schedule import Schedule
from monitor.daemon import scheduler as scheduler_module
from monitor.daemon.scheduler import (
    First,
    ScheduleError,
    Scheduler,
    SchedulerSettings,
    check,
    grid_offset,
    job_key,
    next_time,
    subject_of_key,
    weekday_names,
)
from tests.clocks import FakeClock, eventually

MONDAY = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
STEP = timedelta(milliseconds=100)


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


def test_a_views_job_key_is_prefixed_and_a_models_is_its_own_key() -> None:
    """`view:<name>` and `model:<name>` never meet, and each key gives its subject back; the
    daemon's own jobs have none."""
    assert (job_key("user_stats"), job_key("model:fraud")) == ("view:user_stats", "model:fraud")
    assert [subject_of_key(job_key(s)) for s in ("user_stats", "model:fraud")] == [
        "user_stats",
        "model:fraud",
    ]
    assert subject_of_key("featmon:alerts") is None
    assert subject_of_key("takeover:user_stats@2026-11-23T12:00:00+00:00") is None


def grid_offset_millis() -> int:
    """The offset of `view:user_stats` on a minute, computed independently of featmon."""
    import hashlib  # noqa: PLC0415  (only this check needs it)

    digest = hashlib.sha256(b"view:user_stats").digest()
    return int.from_bytes(digest[:8], "big") % 60_000


def test_two_schedulers_started_at_different_moments_hand_out_the_same_times() -> None:
    """Two schedulers (replicas) started 1.3 s apart give each job the same scheduled times:
    the grid, not each one's start time."""
    clock = FakeClock(MONDAY + timedelta(milliseconds=250))
    seen: dict[str, list[datetime]] = {"a": [], "b": []}
    every = Schedule(every=timedelta(seconds=2))
    first, second = Scheduler(clock=clock), Scheduler(clock=clock)
    idle = lambda: not first.going() and not second.going()  # noqa: E731  (named for reading)
    first.put("view:v", every, seen["a"].append)
    first.start()
    try:
        clock.advance_by_steps(timedelta(seconds=1.3), STEP, idle)
        second.put("view:v", every, seen["b"].append)
        second.start()
        clock.advance_by_steps(timedelta(seconds=7), STEP, idle)
    finally:
        first.shutdown()
        second.shutdown()
    common = sorted(set(seen["a"]) & set(seen["b"]))
    assert len(common) >= 3
    assert all(on_grid(at, "view:v", timedelta(seconds=2)) for at in common)
    assert set(seen["b"]) <= set(seen["a"])


def test_jitter_delays_the_start_but_the_job_receives_the_grid_time() -> None:
    """With up to 0.8 s of jitter, every run starts within 0.8 s after its grid time, and is
    handed that grid time; the delays differ from run to run."""
    clock = FakeClock(MONDAY)
    seen: list[tuple[datetime, datetime]] = []
    scheduler = Scheduler(clock=clock)
    jitter = timedelta(milliseconds=800)
    schedule = Schedule(every=timedelta(seconds=1), jitter=jitter)
    scheduler.put("view:jittered", schedule, lambda at: seen.append((at, clock.now())))
    scheduler.start()
    first = next_time(schedule, MONDAY, "view:jittered")
    assert first is not None
    try:
        clock.advance_by_steps(timedelta(seconds=10), STEP, lambda: not scheduler.going())
    finally:
        scheduler.shutdown()
    assert len(seen) >= 9
    assert [at for at, _ in seen] == [first + timedelta(seconds=k) for k in range(len(seen))]
    assert all(at <= ran <= at + jitter + STEP for at, ran in seen)
    assert len({ran - at for at, ran in seen}) > 1


def test_latest_first_runs_the_run_just_due_and_now_runs_off_the_grid() -> None:
    """`First.LATEST` catches up the latest grid time within the misfire grace; `NOW` runs at
    the moment given and then on the grid."""
    moment = MONDAY + timedelta(seconds=7, milliseconds=345)
    clock = FakeClock(moment)
    seen: dict[str, list[datetime]] = {"latest": [], "now": []}
    scheduler = Scheduler(clock=clock)
    every = Schedule(every=timedelta(seconds=10))
    scheduler.put("view:x", every, seen["latest"].append, first=First.LATEST)
    scheduler.put(
        "view:y", Schedule(every=timedelta(seconds=1)), seen["now"].append, first=First.NOW
    )
    scheduler.start()
    try:
        clock.advance_by_steps(timedelta(seconds=1.5), STEP, lambda: not scheduler.going())
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
    """Runs of an `every: 1s` job are handed their grid times, exactly one second apart, however
    late the clock is when they are looked at."""
    clock = FakeClock(MONDAY)
    seen: list[datetime] = []
    scheduler = Scheduler(clock=clock)
    every = Schedule(every=timedelta(seconds=1))
    start = next_time(every, MONDAY + timedelta(microseconds=1), "job")
    assert start is not None
    scheduler.put("job", every, seen.append)
    scheduler.start()
    try:
        for k in range(3):  # each time 0.3 s after its run is due
            clock.advance(start + timedelta(seconds=k, milliseconds=300) - clock.now())
            assert eventually(lambda: not scheduler.going())
    finally:
        scheduler.shutdown()
    assert seen == [start + timedelta(seconds=k) for k in range(3)]


def test_a_run_due_while_the_last_is_going_is_skipped_not_queued() -> None:
    """A job every 1 s whose first run takes 2.5 s runs at 0 s and 3 s; the runs due at 1 s and
    2 s are reported as skipped and never run."""
    clock = FakeClock(MONDAY)
    runs: list[datetime] = []
    skipped: list[datetime] = []
    release = threading.Event()

    def job(at: datetime) -> None:
        runs.append(at)
        if len(runs) == 1:
            assert release.wait(5)

    scheduler = Scheduler(clock=clock, on_skipped=lambda _key, at: skipped.append(at))
    every = Schedule(every=timedelta(seconds=1))
    start = next_time(every, MONDAY + timedelta(microseconds=1), "slow")
    assert start is not None
    scheduler.put("slow", every, job)
    scheduler.start()
    try:
        clock.advance(start - clock.now())
        assert eventually(lambda: len(runs) == 1)
        clock.advance_by_steps(timedelta(seconds=2.5), STEP)  # the first run is still going
        release.set()
        assert eventually(lambda: not scheduler.going())
        clock.advance_by_steps(timedelta(seconds=0.5), STEP, lambda: not scheduler.going())
    finally:
        scheduler.shutdown()
    assert runs == [start, start + timedelta(seconds=3)]
    assert skipped == [start + timedelta(seconds=1), start + timedelta(seconds=2)]


def test_a_run_that_cannot_start_within_the_misfire_grace_is_reported_missed() -> None:
    """One worker, busy for 2 s: the other job's run, due meanwhile, waits longer than its 1 s
    grace and is reported missed, not run."""
    clock = FakeClock(MONDAY)
    missed: list[str] = []
    ran: list[str] = []
    blocker_started, release = threading.Event(), threading.Event()

    def blocker(_: datetime) -> None:
        blocker_started.set()
        assert release.wait(5)

    scheduler = Scheduler(
        SchedulerSettings(workers=1, misfire_grace=timedelta(seconds=1)),
        on_missed=lambda key, _at: missed.append(key),
        clock=clock,
    )
    hourly = Schedule(every=timedelta(hours=1))
    scheduler.put("blocker", hourly, blocker, first=First.NOW)
    scheduler.start()
    try:
        assert blocker_started.wait(5)
        scheduler.put("other", hourly, lambda _: ran.append("other"), first=First.NOW)
        clock.advance_by_steps(timedelta(seconds=2), STEP)
        release.set()
        assert eventually(lambda: bool(missed))
    finally:
        scheduler.shutdown()
    assert missed == ["other"]
    assert ran == []


def test_a_run_that_starts_within_the_misfire_grace_runs_late() -> None:
    """The same, with the worker busy for 0.5 s only: the other job's run starts late and runs."""
    clock = FakeClock(MONDAY)
    missed: list[str] = []
    ran: list[datetime] = []
    release = threading.Event()
    scheduler = Scheduler(
        SchedulerSettings(workers=1, misfire_grace=timedelta(seconds=1)),
        on_missed=lambda key, _at: missed.append(key),
        clock=clock,
    )
    hourly = Schedule(every=timedelta(hours=1))

    def blocker(_: datetime) -> None:
        assert release.wait(5)

    scheduler.put("blocker", hourly, blocker, first=First.NOW)
    scheduler.put("other", hourly, ran.append, first=First.NOW)
    scheduler.start()
    try:
        clock.advance_by_steps(timedelta(seconds=0.5), STEP)
        release.set()
        assert eventually(lambda: bool(ran))
    finally:
        scheduler.shutdown()
    assert ran == [MONDAY]
    assert missed == []


def test_runs_missed_during_a_pause_are_coalesced_into_the_latest() -> None:
    """A clock that jumps 5.5 s (a host suspended) runs an `every: 1s` job once, handed its
    latest scheduled time, and then goes on on the grid."""
    clock = FakeClock(MONDAY)
    seen: list[datetime] = []
    every = Schedule(every=timedelta(seconds=1))
    start = next_time(every, MONDAY + timedelta(microseconds=1), "paused")
    assert start is not None
    scheduler = Scheduler(clock=clock)
    scheduler.put("paused", every, seen.append)
    scheduler.start()
    try:
        clock.advance(start - clock.now() + timedelta(seconds=5.5))
        assert eventually(lambda: not scheduler.going())
        clock.advance(timedelta(seconds=1))
        assert eventually(lambda: not scheduler.going())
    finally:
        scheduler.shutdown()
    assert seen == [start + timedelta(seconds=5), start + timedelta(seconds=6)]


def test_a_job_that_raises_does_not_stop_its_schedule() -> None:
    """A run that raises is logged; the job runs again at its next time."""
    clock = FakeClock(MONDAY)
    seen: list[datetime] = []

    def job(at: datetime) -> None:
        seen.append(at)
        raise RuntimeError("a bug in one run")

    scheduler = Scheduler(clock=clock)
    scheduler.put("buggy", Schedule(every=timedelta(seconds=1)), job)
    scheduler.start()
    try:
        clock.advance_by_steps(timedelta(seconds=3), STEP, lambda: not scheduler.going())
    finally:
        scheduler.shutdown()
    assert len(seen) == 3


def test_a_run_put_once_is_handed_its_time_and_then_forgotten() -> None:
    """`once` (a run taken over from another replica) runs at once, handed the time given."""
    clock = FakeClock(MONDAY)
    seen: list[datetime] = []
    scheduler = Scheduler(clock=clock)
    scheduler.once("takeover:v", MONDAY - timedelta(seconds=3), seen.append)
    scheduler.start()
    try:
        clock.advance(STEP)
        assert eventually(lambda: not scheduler.going())
    finally:
        scheduler.shutdown()
    assert seen == [MONDAY - timedelta(seconds=3)]
    assert scheduler.keys() == frozenset()


def test_the_scheduler_reads_no_private_attribute_of_another_library() -> None:
    """Nothing in monitor/daemon/scheduler.py reaches into an object's private attributes but its own
    (`self._x`): the adapter once copied APScheduler's `job._jobstore_alias`."""
    tree = ast.parse(Path(scheduler_module.__file__ or "").read_text())
    private = [
        f"{ast.unparse(node)} (line {node.lineno})"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
    ]
    assert private == []
