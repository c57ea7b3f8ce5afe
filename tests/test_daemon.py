"""The daemon over the real demo store: runs on schedule, skips, reloads, retention, signals."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from checks.errors import ConfigError
from checks.model import FeatureView
from checks.observation import OnlineObservation
from checks.result import RunResult
from checks.schedule import Schedule
from monitor.abc import EntityKey, OnlineStore
from monitor.app import App, build_app
from monitor.cli.main import main
from monitor.daemon.jobs import plan_jobs
from monitor.daemon.process import build_daemon
from monitor.daemon.service import Daemon, DaemonSettings
from monitor.demo import store as planted
from monitor.loader import Loaded
from monitor.runs.probe import Stores
from monitor.state import StateStore
from tests.clocks import FakeClock
from tests.hostile import HOSTILE
from tests.receivers import WEBHOOK_PATH, serving, webhook_contract

REPO = Path(__file__).resolve().parents[1]
FAST = DaemonSettings(grace=timedelta(seconds=10), watch_interval=timedelta(seconds=0.1))

MERCHANTS = """\
  - name: merchant_stats
    entity: merchant_id
    ttl: 2h
    features: {avg_ticket_usd: double, orders_1h: int64, is_high_risk: bool, category: string}
    online: {store: online, sample: 20}
    offline: {store: lake, path: merchant_stats.parquet}
    schedule: {every: 1s}
    checks:
      - {kind: freshness, max: 1h}
"""
USERS = """\
  - name: user_stats
    entity: user_id
    ttl: 1d
    features: {rolling_7d_revenue: float, purchase_count_30d: int64, last_active_days_ago: int64}
    online: {store: online, sample: 20}
    offline: {store: lake, path: user_stats.parquet}
    schedule: {every: 1s}
    checks:
      - {kind: freshness, max: 1d}
"""
NULL_RATE = "      - {kind: null_rate, feature: avg_ticket_usd, max: 0.5}\n"


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("store")
    planted.build(directory, datetime.now(UTC))
    return directory


def write_config(root: Path, store_dir: Path, views: str) -> Path:
    """config.yaml over the demo store, with one check file of `views` and a state DB."""
    (root / "checks").mkdir(exist_ok=True)
    write_checks(root, views)
    config = root / "config.yaml"
    config.write_text(
        "stores:\n"
        f"  online: {{type: feast-sqlite, path: '{store_dir}/online.db', project: demo}}\n"
        f"  lake: {{type: parquet, root: '{store_dir}/offline'}}\n"
        "checks: checks/*.yaml\n"
        "state: {url: 'sqlite:///state.db'}\n",
        encoding="utf-8",
    )
    return config


def write_checks(root: Path, views: str) -> None:
    (root / "checks" / "c.yaml").write_text("feature_views:\n" + views, encoding="utf-8")


class Recorder:
    """A RunObserver that keeps what it was told, and lets a test wait for it."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, RunResult]] = []
        self.skipped: list[tuple[str, datetime]] = []
        self.elsewhere: list[tuple[str, datetime]] = []
        self.lost: list[tuple[str, datetime]] = []
        self.unrecorded: list[tuple[str, datetime]] = []
        self.reloads: list[tuple[bool, str | None]] = []
        self.probes: list[tuple[str, str, float, bool]] = []
        self.notifications: list[tuple[str, str]] = []
        self._changed = threading.Condition()

    def probe_finished(self, feature_view: str, store: str, seconds: float, failed: bool) -> None:
        with self._changed:
            self.probes.append((feature_view, store, seconds, failed))

    def run_finished(self, feature_view: str, run: RunResult) -> None:
        with self._changed:
            self.runs.append((feature_view, run))
            self._changed.notify_all()

    def run_skipped(self, feature_view: str, scheduled_at: datetime) -> None:
        with self._changed:
            self.skipped.append((feature_view, scheduled_at))
            self._changed.notify_all()

    def run_claimed_elsewhere(self, feature_view: str, scheduled_at: datetime) -> None:
        with self._changed:
            self.elsewhere.append((feature_view, scheduled_at))

    def run_lost(self, feature_view: str, scheduled_at: datetime) -> None:
        with self._changed:
            self.lost.append((feature_view, scheduled_at))
            self._changed.notify_all()

    def run_unrecorded(self, feature_view: str, scheduled_at: datetime) -> None:
        with self._changed:
            self.unrecorded.append((feature_view, scheduled_at))

    def config_reloaded(self, ok: bool, error: str | None) -> None:
        with self._changed:
            self.reloads.append((ok, error))
            self._changed.notify_all()

    def notification_outcome(self, receiver: str, outcome: str) -> None:
        with self._changed:
            self.notifications.append((receiver, outcome))
            self._changed.notify_all()

    def wait(self, condition: Callable[[], bool], timeout: float = 8) -> None:
        with self._changed:
            assert self._changed.wait_for(condition, timeout), "timed out waiting"

    def runs_of(self, view: str) -> list[RunResult]:
        with self._changed:
            return [run for name, run in self.runs if name == view]

    def check_ids(self, view: str) -> list[set[str]]:
        return [{r.check for r in run.results} for run in self.runs_of(view)]


class SlowOnline(OnlineStore):
    """A real online store whose reads take `delay` seconds longer: a long-running probe."""

    def __init__(self, inner: OnlineStore, delay: float) -> None:
        self.name = inner.name
        self._inner = inner
        self._delay = delay
        self.closed = threading.Event()

    def read(
        self,
        view: FeatureView,
        keys: Sequence[EntityKey],
        population: str,
        *,
        undeclared: bool = True,
    ) -> OnlineObservation:
        time.sleep(self._delay)
        return self._inner.read(view, keys, population, undeclared=undeclared)

    def sample_keys(self, view: FeatureView, size: int) -> list[EntityKey]:
        return self._inner.sample_keys(view, size)

    def close(self) -> None:
        self._inner.close()
        self.closed.set()


def slow_build(delay: float, built: list[SlowOnline]) -> Callable[[Loaded], App]:
    """`build_app` with the online store slowed down; each slowed store is appended to `built`."""

    def build(loaded: Loaded) -> App:
        app = build_app(loaded)
        slow = SlowOnline(app.stores.online["online"], delay)
        built.append(slow)
        return dataclasses.replace(app, stores=Stores({"online": slow}, app.stores.offline))

    return build


@pytest.fixture
def running() -> Iterator[Callable[[Daemon], Daemon]]:
    """Start a daemon; stop it however the test ends."""
    daemons: list[Daemon] = []

    def start(daemon: Daemon) -> Daemon:
        daemons.append(daemon)
        daemon.start()
        return daemon

    yield start
    for daemon in daemons:
        daemon.stop(10)


def test_two_views_run_repeatedly_measured_at_their_scheduled_times(
    tmp_path: Path, store_dir: Path, running: Callable[[Daemon], Daemon]
) -> None:
    """Every run is recorded with its trigger time (whole seconds apart), not its finish time."""
    config = write_config(tmp_path, store_dir, MERCHANTS + USERS)
    seen = Recorder()
    daemon = running(Daemon(config, FAST, observer=seen))
    seen.wait(lambda: all(len(seen.runs_of(v)) >= 3 for v in ("merchant_stats", "user_stats")))
    daemon.stop()
    with StateStore(f"sqlite:///{tmp_path}/state.db") as state:
        stored = state.runs(limit=100)
    for view in ("merchant_stats", "user_stats"):
        runs = sorted((r for r in stored if r.feature_view == view), key=lambda r: r.scheduled_at)
        assert len(runs) >= 3
        first = runs[0].scheduled_at
        for run in runs:
            offset = (run.scheduled_at - first).total_seconds()
            assert offset == round(offset), "a trigger time is a whole number of seconds on"
            assert run.finished_at > run.scheduled_at
        observed = {r.run_id: r.scheduled_at for r in seen.runs_of(view)}
        assert all(observed[r.run_id] == r.scheduled_at for r in runs)
    # Every probe was timed and reported, per view and store, none failed.
    probed = {(view, store) for view, store, _, _ in seen.probes}
    assert {("merchant_stats", "online"), ("user_stats", "online")} <= probed
    assert all(seconds >= 0 and not failed for _, _, seconds, failed in seen.probes)


def test_a_run_due_while_the_view_is_still_probed_is_skipped_not_queued(
    tmp_path: Path, store_dir: Path, running: Callable[[Daemon], Daemon]
) -> None:
    """With a read that lasts 2.5 s of the clock every 1 s, runs never overlap: the runs due
    while one is going are skipped, and the next run is scheduled after it ended."""
    config = write_config(tmp_path, store_dir, MERCHANTS)
    seen = Recorder()
    gates: list[GatedOnline] = []
    clock = FakeClock(datetime.now(UTC))
    running(Daemon(config, FAST, observer=seen, build=gated_build(gates), clock=clock))
    step = timedelta(milliseconds=100)
    while not (gates and gates[0].reading.is_set()):
        clock.advance(step)
    began = clock.now()
    clock.advance_by_steps(timedelta(seconds=2.5), step)  # the first run is reading
    ended = clock.now()
    gates[0].gate.set()
    seen.wait(lambda: len(seen.runs_of("merchant_stats")) >= 1)
    while len(seen.runs_of("merchant_stats")) < 2:
        clock.advance(step)
    first, second = seen.runs_of("merchant_stats")[:2]
    skipped = [at for view, at in seen.skipped if view == "merchant_stats"]
    assert first.scheduled_at <= began
    assert len([at for at in skipped if at <= ended]) >= 2  # due while it was reading
    assert all(at > first.scheduled_at for at in skipped)
    assert second.scheduled_at > ended
    assert second.started_at >= first.finished_at


class GatedOnline(SlowOnline):
    """A real online store whose reads wait for `gate`; `reading` is set when one began."""

    def __init__(self, inner: OnlineStore) -> None:
        super().__init__(inner, 0.0)
        self.reading, self.gate = threading.Event(), threading.Event()

    def read(
        self,
        view: FeatureView,
        keys: Sequence[EntityKey],
        population: str,
        *,
        undeclared: bool = True,
    ) -> OnlineObservation:
        self.reading.set()
        assert self.gate.wait(10), "the test never opened the gate"
        return super().read(view, keys, population, undeclared=undeclared)


def gated_build(built: list[GatedOnline]) -> Callable[[Loaded], App]:
    """`build_app` with the online store gated; each gated store is appended to `built`."""

    def build(loaded: Loaded) -> App:
        app = build_app(loaded)
        gated = GatedOnline(app.stores.online["online"])
        built.append(gated)
        return dataclasses.replace(app, stores=Stores({"online": gated}, app.stores.offline))

    return build


def test_a_changed_check_file_is_reloaded_and_its_new_checks_run(
    tmp_path: Path, store_dir: Path, running: Callable[[Daemon], Daemon]
) -> None:
    config = write_config(tmp_path, store_dir, MERCHANTS)
    seen = Recorder()
    running(Daemon(config, FAST, observer=seen))
    seen.wait(lambda: bool(seen.runs_of("merchant_stats")))
    write_checks(tmp_path, MERCHANTS + NULL_RATE)
    seen.wait(lambda: any(len(ids) == 2 for ids in seen.check_ids("merchant_stats")))
    assert seen.reloads == [(True, None)]


def test_an_invalid_check_file_keeps_the_last_good_configuration_until_it_is_fixed(
    tmp_path: Path,
    store_dir: Path,
    running: Callable[[Daemon], Daemon],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = write_config(tmp_path, store_dir, MERCHANTS)
    seen = Recorder()
    running(Daemon(config, FAST, observer=seen))
    seen.wait(lambda: bool(seen.runs_of("merchant_stats")))
    with caplog.at_level(logging.ERROR, logger="monitor.daemon.service"):
        write_checks(tmp_path, MERCHANTS.replace("max: 1h", "max: 1h, colour: red"))
        seen.wait(lambda: bool(seen.reloads))
    ok, error = seen.reloads[0]
    assert not ok
    assert error is not None
    assert "colour" in error
    assert any("colour" in r.getMessage() and "c.yaml" in r.getMessage() for r in caplog.records)
    runs_before = len(seen.runs_of("merchant_stats"))
    seen.wait(lambda: len(seen.runs_of("merchant_stats")) >= runs_before + 2)
    write_checks(tmp_path, MERCHANTS + NULL_RATE)
    seen.wait(lambda: (True, None) in seen.reloads)
    seen.wait(lambda: any(len(ids) == 2 for ids in seen.check_ids("merchant_stats")))


def test_a_reload_closes_the_old_stores_only_after_their_run_ends(
    tmp_path: Path, store_dir: Path, running: Callable[[Daemon], Daemon]
) -> None:
    config = write_config(tmp_path, store_dir, MERCHANTS)
    seen = Recorder()
    built: list[SlowOnline] = []
    daemon = running(Daemon(config, FAST, observer=seen, build=slow_build(1.5, built)))
    time.sleep(0.5)  # the first run is reading
    assert daemon.reload()
    old = built[0]
    assert not old.closed.is_set()
    seen.wait(lambda: bool(seen.runs_of("merchant_stats")))
    assert old.closed.wait(2)
    assert seen.runs_of("merchant_stats")[0].status.value == "pass"


def test_stop_lets_the_run_going_finish_and_records_it(
    tmp_path: Path, store_dir: Path, running: Callable[[Daemon], Daemon]
) -> None:
    config = write_config(tmp_path, store_dir, MERCHANTS)
    seen = Recorder()
    daemon = running(Daemon(config, FAST, observer=seen, build=slow_build(1.0, [])))
    time.sleep(0.3)  # the first run is reading
    assert daemon.stop(5)
    assert len(seen.runs_of("merchant_stats")) == 1
    with StateStore(f"sqlite:///{tmp_path}/state.db") as state:
        assert [r.run_id for r in state.runs()] == [seen.runs_of("merchant_stats")[0].run_id]


def test_stop_gives_up_on_a_run_longer_than_the_grace_period(
    tmp_path: Path, store_dir: Path, running: Callable[[Daemon], Daemon]
) -> None:
    config = write_config(tmp_path, store_dir, MERCHANTS)
    daemon = running(Daemon(config, FAST, build=slow_build(2.0, [])))
    time.sleep(0.3)
    started = time.monotonic()
    assert not daemon.stop(0.5)
    assert time.monotonic() - started < 1.5


def test_the_state_database_is_pruned_at_start(
    tmp_path: Path, store_dir: Path, running: Callable[[Daemon], Daemon]
) -> None:
    """Runs older than the retention (30 days by default) are deleted when the daemon starts."""
    config = write_config(tmp_path, store_dir, MERCHANTS.replace("every: 1s", "every: 1h"))
    old = datetime.now(UTC) - timedelta(days=31)
    with StateStore(f"sqlite:///{tmp_path}/state.db") as state:
        state.migrate()
        state.record_run(RunResult("old", old, old, old, ()))
    running(Daemon(config, FAST))
    deadline = time.monotonic() + 5
    with StateStore(f"sqlite:///{tmp_path}/state.db") as state:
        while state.run("old") is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert state.run("old") is None


def test_a_schedule_the_scheduler_cannot_run_is_a_located_config_error(
    tmp_path: Path, store_dir: Path
) -> None:
    views = MERCHANTS.replace("{every: 1s}", "{every: 1s, timezone: Mars/Olympus}")
    config = write_config(tmp_path, store_dir, views)
    with pytest.raises(
        ConfigError, match=r"c\.yaml:8: feature_views\[0\]\.schedule\.timezone: .*Mars"
    ):
        Daemon(config, FAST).start()


SCHEDULES = {
    "an unknown zone": (
        "{every: 5m, timezone: Mars/Base}",
        "feature_views[0].schedule.timezone: expected an IANA time zone such as UTC or "
        "Europe/Berlin, found 'Mars/Base'",
    ),
    "an hour out of range": (
        "{cron: '61 25 * * *'}",
        "feature_views[0].schedule.cron: expected a cron expression, found '61 25 * * *': "
        "Error validating expression '25': the last value (25) is higher than the maximum "
        "value (23)",
    ),
    "a cron that never fires": (
        "{cron: '0 0 31 4 *'}",
        "feature_views[0].schedule.cron: expected a cron expression that fires within 5 years, "
        "found '0 0 31 4 *', which fires never",
    ),
    "a day and weekday that meet in 2044": (
        "{cron: '0 0 29 2 1'}",
        "feature_views[0].schedule.cron: expected a cron expression that fires within 5 years, "
        "found '0 0 29 2 1', which fires first at 2044-02-29 00:00 UTC (a run needs both its "
        "day of month and its weekday to match)",
    ),
    "an unsupported weekday": (
        "{cron: '0 0 * * L'}",
        "feature_views[0].schedule.cron: expected a cron expression, found '0 0 * * L': "
        "expected a weekday 0-7 or sun-sat, found 'l' in 'L'",
    ),
    "a good cron": ("{cron: '*/10 * * * *', timezone: Europe/Berlin}", None),
}


@pytest.mark.parametrize("case", list(SCHEDULES))
def test_validate_gives_the_verdict_run_gives_on_a_schedule(
    case: str, tmp_path: Path, store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`featmon validate` and the daemon's start refuse the same schedules, at the same place."""
    schedule, problem = SCHEDULES[case]
    config = write_config(tmp_path, store_dir, MERCHANTS.replace("{every: 1s}", schedule))
    validated = main(["validate", "--config", str(config)])
    said = capsys.readouterr().err.splitlines()
    daemon = Daemon(config, FAST)
    try:
        daemon.start()
        refused: list[str] = []
    except ConfigError as exc:
        refused = [str(p) for p in exc.problems]
    finally:
        daemon.stop(10)
    expected = [] if problem is None else [f"{tmp_path}/checks/c.yaml:8: {problem}"]
    assert (validated, refused) == ((3, expected) if problem else (0, []))
    assert [line for line in said if "INFO" not in line] == expected


@pytest.mark.slow
def test_featmon_run_refuses_a_cron_that_never_fires(tmp_path: Path, store_dir: Path) -> None:
    """The real command exits 3 with the line validate prints; it does not run doing nothing."""
    config = write_config(
        tmp_path, store_dir, MERCHANTS.replace("{every: 1s}", "{cron: '0 0 31 4 *'}")
    )
    with config.open("a", encoding="utf-8") as file:
        file.write(f"http: {{listen: '127.0.0.1:{free_port()}'}}\n")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "monitor.cli.main", "--log-level", "warning", "run", "--config", str(config)],
            cwd=REPO, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise AssertionError("featmon run started on a schedule that never fires") from exc
    assert done.returncode == 3, done.stderr
    assert done.stderr.splitlines() == [
        f"{tmp_path}/checks/c.yaml:8: {SCHEDULES['a cron that never fires'][1]}"
    ]


def test_a_reload_adds_removes_and_reschedules_only_what_changed() -> None:
    every = Schedule(every=timedelta(minutes=5))
    cron = Schedule(cron="*/10 * * * *")
    plan = plan_jobs({"kept": every, "gone": every, "moved": every}, {
        "kept": every, "moved": cron, "new": every,
    })  # fmt: skip
    assert (plan.add, plan.remove, plan.reschedule) == (("new",), ("gone",), ("moved",))


RUN_LINE = re.compile(r"run (\S+) of view (\S+): ")


@pytest.mark.slow
def test_featmon_run_reloads_on_sighup_and_exits_0_on_sigterm(
    tmp_path: Path, store_dir: Path
) -> None:
    """The real command: SIGHUP reloads, SIGTERM ends it with 0, one log line per run."""
    config = write_config(tmp_path, store_dir, MERCHANTS)
    port = free_port()
    with config.open("a", encoding="utf-8") as file:
        file.write(f"http: {{listen: '127.0.0.1:{port}'}}\nreports: {{dir: reports}}\n")
    log_file = tmp_path / "featmon.log"
    with log_file.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "monitor.cli.main",
                "run",
                "--config",
                str(config),
                "--grace",
                "10s",
            ],
            cwd=REPO,
            stderr=log,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    try:
        wait_for(log_file, lambda text: len(RUN_LINE.findall(text)) >= 1)
        process.send_signal(signal.SIGHUP)
        wait_for(log_file, lambda text: "reloaded" in text)
        wait_for(log_file, lambda text: len(RUN_LINE.findall(text)) >= 3)
        # The sidecar serves what the runs measured, and each run's report.
        base = f"http://127.0.0.1:{port}"
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        assert 'featmon_check_status{check="merchant_stats.freshness@online"' in metrics
        assert "featmon_probe_duration_seconds_bucket" in metrics
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
        run_id = RUN_LINE.findall(log_file.read_text())[0][0]
        page = httpx.get(f"{base}/reports/{run_id}", timeout=5).text
        assert run_id in page
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 10
    finally:
        if process.poll() is None:
            process.kill()
    text = log_file.read_text()
    assert "received SIGTERM: stopping" in text
    assert "featmon stopped" in text
    logged = sorted(run_id for run_id, _ in RUN_LINE.findall(text))
    with StateStore(f"sqlite:///{tmp_path}/state.db") as state:
        assert sorted(r.run_id for r in state.runs(limit=1000)) == logged


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(path: Path, condition: Callable[[str], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition(path.read_text()):
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out; the log says:\n{path.read_text()}")


def test_a_failing_check_pages_through_the_outbox_once(
    tmp_path: Path, store_dir: Path, running: Callable[[Daemon], Daemon]
) -> None:
    """The daemon's whole alert path: a failing check (the orphaned online field of the demo
    store) becomes one Alertmanager-style webhook notification, delivered and counted, not one
    per run."""
    with serving(webhook_contract()) as hook:
        config = write_config(
            tmp_path,
            store_dir,
            USERS.replace(
                "{kind: freshness, max: 1d}", "{kind: schema_drift, target: online, severity: P1}"
            ),
        )
        with config.open("a", encoding="utf-8") as file:
            file.write(
                f"receivers: {{hook: {{type: webhook, url: '{hook.url}{WEBHOOK_PATH}'}}}}\n"
                "route: {receiver: hook, group_wait: 0s, group_interval: 1s}\n"
            )
        seen = Recorder()
        daemon = running(Daemon(config, FAST, observer=seen))
        seen.wait(lambda: ("hook", "delivered") in seen.notifications)
        seen.wait(lambda: len(seen.runs_of("user_stats")) >= 3)
        daemon.stop()
        bodies = hook.bodies()
    firing = [b for b in bodies if b["status"] == "firing"]
    assert len(firing) == 1
    labels = firing[0]["alerts"][0]["labels"]
    assert labels["check"] == "user_stats.schema_drift@online"
    assert labels["severity"] == "P1"


def test_a_hostile_file_on_reload_is_refused_fast_and_shown_by_readyz(
    tmp_path: Path, store_dir: Path
) -> None:
    """Each hostile check file makes a reload fail within 2 s and 200 MB; the last good
    configuration keeps running; /readyz (still 200) and the metric say the reload failed,
    when, and the located problem; fixing the file reloads."""
    config = write_config(tmp_path, store_dir, MERCHANTS)
    port = free_port()
    with config.open("a", encoding="utf-8") as file:
        file.write(f"http: {{listen: '127.0.0.1:{port}'}}\n")
    settings = dataclasses.replace(FAST, watch_interval=timedelta(hours=1))  # reloads by hand
    daemon = build_daemon(config, settings)
    daemon.start()
    try:
        base = f"http://127.0.0.1:{port}"
        for name, (text, _) in HOSTILE.items():
            (tmp_path / "checks" / "hostile.yaml").write_text(text(), encoding="utf-8")
            size = (tmp_path / "checks" / "hostile.yaml").stat().st_size
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            started = time.monotonic()
            assert not daemon.reload(), name
            assert time.monotonic() - started < 2.0, name
            grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024
            assert grown_mb < 200, name
            ready = httpx.get(f"{base}/readyz", timeout=5)
            assert ready.status_code == 200, name
            reload = ready.json()["reload"]
            assert (reload["status"], reload["error"]) == (
                "failed",
                "1 problem in the configuration",
            )
            assert datetime.fromisoformat(reload["at"]) > datetime.now(UTC) - timedelta(seconds=30)
            assert len(reload["problems"]) == 1
            assert HOSTILE[name][1].format(size=size) in reload["problems"][0], name
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        assert "featmon_config_last_reload_successful 0.0" in metrics
        failed_at = datetime.now(UTC)
        with StateStore(f"sqlite:///{tmp_path}/state.db") as state:  # the last good one runs
            deadline = time.monotonic() + 15
            while not any(r.scheduled_at > failed_at for r in state.runs(limit=10)):
                assert time.monotonic() < deadline, "no run after the failed reloads"
                time.sleep(0.2)
        (tmp_path / "checks" / "hostile.yaml").unlink()
        assert daemon.reload()
        assert httpx.get(f"{base}/readyz", timeout=5).json()["reload"]["status"] == "ok"
    finally:
        daemon.stop(10)
