"""A daemon's first minutes: views without a recent run catch up at once, spread by key; views
that ran recently wait for their schedule; replicas starting together run each catch-up once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from checks.schedule import Schedule
from monitor.app import build_app
from monitor.daemon.catch_up import CatchUps
from monitor.daemon.observer import NoObserver
from monitor.daemon.scheduler import CATCH_UP_SPREAD, CatchUp, catch_up, previous_time
from monitor.daemon.service import Daemon
from monitor.loader import load
from monitor.runs.run import run_view
from monitor.state import StateStore
from tests.clocks import FakeClock, eventually
from tests.test_daemon import FAST, REPO, Recorder, free_port, store_dir, write_config

__all__ = ["store_dir"]  # the module-scoped fixture, shared with test_daemon

FIVE_MINUTES = Schedule(every=timedelta(minutes=5))
GRACE = timedelta(seconds=60)
STEP = timedelta(milliseconds=100)


def quiet(count: int) -> list[str]:
    """`count` view names whose 5-minute grid has no time from 90 s ago to 30 s ahead: without
    a catch-up they would not run for 30 s, nor run late (First.LATEST) at start."""
    now = datetime.now(UTC)
    names = (f"merchants_{n}" for n in range(10_000))
    return [
        name
        for name in names
        if (latest := previous_time(f"view:{name}", FIVE_MINUTES, now)) is not None
        and now - timedelta(seconds=90) > latest
        and latest + timedelta(minutes=5) > now + timedelta(seconds=30)
    ][:count]


def views(names: list[str]) -> str:
    """Views of `names` over the demo store's merchant_stats table, every 5 minutes."""
    return "".join(
        f"""\
  - name: {name}
    entity: merchant_id
    ttl: 2h
    features: {{avg_ticket_usd: double}}
    online: {{store: online, sample: 5, table: demo_merchant_stats}}
    schedule: {{every: 5m}}
    checks:
      - {{kind: freshness, max: 1h}}
"""
        for name in names
    )


def test_catch_up_times_of_500_views_are_spread_over_the_step() -> None:
    """500 views catching up at the same moment fire at hundreds of different milliseconds
    over the 10 s step, none later than it, and each is the same whenever it is asked within
    the step (so replicas starting together agree)."""
    now = datetime(2026, 11, 26, 6, 2, 30, tzinfo=UTC)
    fires = []
    for n in range(500):
        run = catch_up(f"view:v{n}", FIVE_MINUTES, now, GRACE)
        if run is None:  # its grid time comes within the step: the grid runs it
            continue
        assert now <= run.fire_at < now + CATCH_UP_SPREAD
        earlier = catch_up(f"view:v{n}", FIVE_MINUTES, now - timedelta(milliseconds=1), GRACE)
        if run.fire_at > now:
            assert earlier == run
        fires.append(run.fire_at)
    assert len(fires) > 450
    assert len(set(fires)) > 400
    assert max(fires) - min(fires) > CATCH_UP_SPREAD * 0.9


def test_a_catch_up_within_the_misfire_grace_is_handed_the_latest_grid_time() -> None:
    """Just after its grid time the catch-up is that run (the one every replica claims);
    minutes after, it is handed its own fire time, not a time minutes old."""
    key = "view:user_stats"
    moment = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
    latest = previous_time(key, FIVE_MINUTES, moment)
    assert latest is not None
    soon = catch_up(key, FIVE_MINUTES, latest + timedelta(seconds=1), GRACE)
    assert soon is not None
    assert soon.scheduled_at == latest
    late = catch_up(key, FIVE_MINUTES, latest + timedelta(minutes=3), GRACE)
    assert late is not None
    assert late.scheduled_at == late.fire_at
    assert late.fire_at - (latest + timedelta(minutes=3)) < CATCH_UP_SPREAD


def test_a_cron_view_catches_up_within_a_tenth_of_its_period() -> None:
    """`*/1 * * * *` (each minute): the step is 6 s, a tenth of the minute."""
    cron = Schedule(cron="* * * * *")
    now = datetime(2026, 11, 26, 6, 0, 20, tzinfo=UTC)
    assert previous_time("view:x", cron, now) == datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
    run = catch_up("view:x", cron, now, GRACE)
    assert run is not None
    assert now <= run.fire_at < now + timedelta(seconds=6)


def test_a_view_never_run_catches_up_within_seconds_and_one_run_recently_waits(
    tmp_path: Path, store_dir: Path
) -> None:
    """Two views on a 5-minute schedule: the one recorded 10 s ago is not run at start, the
    other (never run) runs within the catch-up step, handed a time within it of now."""
    recent, never = quiet(2)
    config = write_config(tmp_path, store_dir, views([recent, never]))
    started = datetime.now(UTC)
    record_run_at(config, recent, started - timedelta(seconds=10))
    seen = Recorder()
    clock = FakeClock(started)
    daemon = Daemon(config, FAST, observer=seen, clock=clock)
    daemon.start()
    try:
        clock.advance_by_steps(CATCH_UP_SPREAD + timedelta(seconds=1), STEP)
        seen.wait(lambda: bool(seen.runs_of(never)), timeout=15)
    finally:
        daemon.stop(10)  # waits for the runs going: a run of `recent` would be seen
    ran = seen.runs_of(never)[0]
    assert started <= ran.scheduled_at < started + CATCH_UP_SPREAD + timedelta(seconds=1)
    assert seen.runs_of(recent) == []


def record_run_at(config: Path, view: str, at: datetime) -> None:
    """Run `view` at `at` and record it, as a daemon that ran it then would have."""
    loaded = load(config)
    with build_app(loaded) as app:
        assert app.state is not None
        found = next(v for v in loaded.views if v.view.name == view)
        run, _ = run_view(app, found, at, NoObserver())
        app.state.record_run(run)


def test_catch_up_runs_of_many_views_start_at_different_times(
    tmp_path: Path, store_dir: Path
) -> None:
    """Twenty views never run, all caught up at start: their runs are scheduled at twenty
    different times spread over seconds, not all at once."""
    config = write_config(tmp_path, store_dir, views(quiet(20)))
    seen = Recorder()
    clock = FakeClock(datetime.now(UTC))
    daemon = Daemon(config, FAST, observer=seen, clock=clock)
    daemon.start()
    try:
        clock.advance_by_steps(CATCH_UP_SPREAD + timedelta(seconds=1), STEP)
        seen.wait(lambda: len({name for name, _ in seen.runs}) == 20, timeout=20)
    finally:
        daemon.stop(10)
    times = sorted({run.scheduled_at for _, run in seen.runs})
    assert len(times) == 20
    assert times[-1] - times[0] > timedelta(seconds=3)


def test_two_replicas_starting_together_run_each_catch_up_once(
    tmp_path: Path, store_dir: Path
) -> None:
    """Two daemons on one state database, started at once, with ten views never run: each
    view's catch-up is recorded once."""
    names = quiet(10)
    config = write_config(tmp_path, store_dir, views(names))
    first, second = Recorder(), Recorder()
    clock = FakeClock(datetime.now(UTC))
    daemons = [Daemon(config, FAST, observer=seen, clock=clock) for seen in (first, second)]
    for daemon in daemons:
        daemon.start()
    try:
        clock.advance_by_steps(CATCH_UP_SPREAD + timedelta(seconds=1), STEP)

        def decided() -> int:  # each view's catch-up, run or left to the other, in both
            return sum(len(seen.runs) + len(seen.elsewhere) for seen in (first, second))

        eventually(lambda: decided() >= 20, timeout=20)
        assert decided() == 20
    finally:
        for daemon in daemons:
            daemon.stop(10)
    with StateStore(f"sqlite:///{tmp_path}/state.db") as state:
        recorded = [str(r.feature_view) for r in state.runs(limit=100)]
    assert sorted(recorded) == sorted(names)


@pytest.mark.slow
def test_featmon_run_on_a_5_minute_schedule_has_metrics_within_seconds(
    tmp_path: Path, store_dir: Path
) -> None:
    """The real command, a 5-minute schedule, an empty state database: the check's series is
    on /metrics within 15 s of the start."""
    (name,) = quiet(1)
    config = write_config(tmp_path, store_dir, views([name]))
    port = free_port()
    with config.open("a", encoding="utf-8") as file:
        file.write(f"http: {{listen: '127.0.0.1:{port}'}}\n")
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli.main", "run", "--config", str(config)],
        cwd=REPO,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        text = ""
        while time.monotonic() - started < 15:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.TransportError:
                text = ""
            if f'featmon_check_status{{check="{name}.freshness@online"' in text:
                break
            time.sleep(0.2)
        assert f'featmon_check_status{{check="{name}.freshness@online"' in text
        assert time.monotonic() - started < 15
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_a_catch_up_handed_its_own_time_is_left_to_a_replica_that_ran_the_view(
    tmp_path: Path,
) -> None:
    """Minutes after the latest grid time the catch-up is handed its own time; when it comes,
    a claim another replica made of the view since that grid time means it is not run, and
    without one it is."""
    now = datetime.now(UTC)
    name = quiet(1)[0]
    with StateStore(f"sqlite:///{tmp_path}/state.db") as state:
        state.migrate()
        catch_ups = CatchUps(GRACE)
        first = catch_ups.plan(state, {name: FIVE_MINUTES}, [name], now)[name]
        assert isinstance(first, CatchUp)
        assert first.scheduled_at == first.fire_at
        assert not catch_ups.ran_elsewhere(state, name, first.scheduled_at)  # nobody ran it
        again = catch_ups.plan(state, {name: FIVE_MINUTES}, [name], now)[name]
        assert isinstance(again, CatchUp)
        other = first.fire_at - timedelta(seconds=10)  # a replica's catch-up, a step earlier
        state.claim_run(name, other, "replica-b", now, timedelta(seconds=5))
        assert catch_ups.ran_elsewhere(state, name, again.scheduled_at)
