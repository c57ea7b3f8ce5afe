"""The daemon never blind when its state database fails: a PostgreSQL server of the test's own
stopped and started, SQLite on a small file system filled up and freed, and a SQLite file
overwritten while the daemon runs. In each, a Redis server of the test's own dies during the
outage: every scheduled run is still probed, the Redis failure reaches a real loopback webhook,
`/metrics` and `/readyz` tell the truth, and once the database is back every run is recorded,
in order. Then the pieces: the run recorder's bound and order, and which views a replica runs
when it cannot claim them."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa

from alerts.config import WebhookReceiver
from alerts.delivery import Delivery, DeliverySettings
from alerts.lifecycle import AlertingConfig
from alerts.pipeline import Alerted, Alerting, AlertingSettings
from alerts.routing import RootRouteConfig, RoutingTree
from alerts.standby import Standby
from checks.result import CheckResult, FreshnessDetails, RunResult, Status, Threshold
from monitor.daemon.claims import RunClaims, Verdict
from monitor.daemon.process import build_daemon
from monitor.daemon.recorder import Recorded, RunRecorder
from monitor.daemon.service import Daemon, DaemonSettings
from monitor.state import OutboxState, StateStore
from tests.receivers import WEBHOOK_PATH, LoopbackReceiver, serving, webhook_contract
from tests.redis_fixtures import Server, free_port, redis_server
from tests.test_daemon import Recorder

VIEW = "outage_users"
CHECK = f"{VIEW}.freshness@online"
SETTINGS = DaemonSettings(
    grace=timedelta(seconds=10),
    watch_interval=timedelta(seconds=5),
    claim_lease=timedelta(seconds=2),  # the heartbeat that writes buffered runs: every 0.5 s
    alert_tick=timedelta(seconds=1),
)
CHECKS = f"""\
feature_views:
  - name: {VIEW}
    entity: user
    ttl: 1d
    features: {{score: double}}
    online: {{store: cache, sample: 5, population: online}}
    schedule: {{every: 1s}}
    checks:
      - {{kind: freshness, max: 1h, severity: P1}}
"""


# -- a PostgreSQL server of the test's own ---------------------------------------------------------


@dataclass
class Postgres:
    """A PostgreSQL cluster in a temporary directory on a free port, run by pg_ctl (as the
    postgres user when the test runs as root: PostgreSQL refuses to run as root)."""

    bin_dir: Path
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", f"{self.data}.log", "-w", "start"
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    """A fresh cluster, started; stopped and deleted afterwards (never the shared server)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql")
    root = Path(tempfile.mkdtemp(prefix="featmon-outage-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    server = Postgres(found[-1].parent, root / "data", free_port())
    try:
        server._run("initdb", "-D", str(server.data), "-U", "postgres", "-A", "trust")
        server.start()
        yield server
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- the scenario --------------------------------------------------------------------------------


@dataclass
class Outage:
    """How one test takes the state database away and gives it back."""

    state_url: str
    begin: Callable[[], None]
    end: Callable[[], None]


def write_config(root: Path, cache: Server, hook: LoopbackReceiver, state_url: str) -> Path:
    (root / "checks").mkdir()
    (root / "checks" / "c.yaml").write_text(CHECKS, encoding="utf-8")
    config = root / "config.yaml"
    config.write_text(
        "stores:\n"
        f"  cache: {{type: redis, url: '{cache.url}', layout: hash,"
        " key_template: 'f:{feature_view}:{user}'}\n"
        "checks: checks/*.yaml\n"
        f"state: {{url: '{state_url}', outage_alert_after: 2s}}\n"
        f"receivers: {{hook: {{type: webhook, url: '{hook.url}{WEBHOOK_PATH}'}}}}\n"
        "route: {receiver: hook, group_wait: 0s, group_interval: 1s}\n"
        f"http: {{listen: '127.0.0.1:{free_port()}'}}\n",
        encoding="utf-8",
    )
    return config


def plant(cache: Server) -> None:
    """Five fresh entities of the view in the test's Redis."""
    client = redis.Redis.from_url(cache.url, socket_timeout=5)
    try:
        for user in range(5):
            client.hset(f"f:{VIEW}:{user}", mapping={"score": "1.5", "_ts": str(int(time.time()))})
    finally:
        client.close()


class Sidecar:
    """What a scraper and a readiness probe see of the daemon."""

    def __init__(self, config: Path) -> None:
        found = re.search(r"listen: '([^']+)'", config.read_text(encoding="utf-8"))
        assert found is not None
        self.base = f"http://{found.group(1)}"

    def metrics(self) -> dict[str, float]:
        text = httpx.get(f"{self.base}/metrics", timeout=5).text
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def status(self) -> float | None:
        metrics = self.metrics()
        return next(
            (
                v
                for k, v in metrics.items()
                if k.startswith(f'featmon_check_status{{check="{CHECK}"')
            ),
            None,
        )

    def readyz(self) -> httpx.Response:
        return httpx.get(f"{self.base}/readyz", timeout=5)


def eventually(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def firing(
    hook: LoopbackReceiver, check: str | None = None, alertname: str | None = None
) -> list[Any]:
    """The alerts announced firing, one per notification that carried them."""
    found = []
    for body in hook.bodies():
        for alert in body["alerts"]:
            labels = alert["labels"]
            if alert["status"] != "firing":
                continue
            if check is not None and labels.get("check") != check:
                continue
            if alertname is not None and labels.get("alertname") != alertname:
                continue
            found.append(alert)
    return found


def resolved(hook: LoopbackReceiver, check: str) -> bool:
    return any(
        alert["status"] == "resolved" and alert["labels"].get("check") == check
        for body in hook.bodies()
        for alert in body["alerts"]
    )


def probe_alerts(hook: LoopbackReceiver) -> list[Any]:
    """Firing alerts about the view's probe on the Redis store (not the check's own)."""
    return [
        a
        for a in firing(hook)
        if a["labels"].get("feature_view") == VIEW
        and a["labels"].get("store") == "cache"
        and "check" not in a["labels"]
    ]


def run_through(tmp_path: Path, outage: Outage) -> None:
    """Runs before, during and after the outage; Redis dies during it. Asserts what the module
    docstring promises."""
    with redis_server(tmp_path / "redis") as cache, serving(webhook_contract()) as hook:
        plant(cache)
        config = write_config(tmp_path, cache, hook, outage.state_url)
        daemon = build_daemon(config, SETTINGS)
        daemon.start()
        sidecar = Sidecar(config)
        try:
            during = _outage(daemon, sidecar, outage, cache, hook)
        finally:
            stopped = daemon.stop(10)
        assert stopped
    with StateStore(outage.state_url) as state:
        runs = state.runs(limit=1000)
        outbox = state.outbox_rows(limit=1000)
        order = _recorded_order(outage.state_url)
    times = sorted(r.scheduled_at for r in runs if r.feature_view == VIEW)
    gaps = [(a, b) for a, b in itertools.pairwise(times) if b - a != timedelta(seconds=1)]
    assert gaps == [], "every scheduled run is recorded: none is missing between the first and last"
    assert times[0] < during.down_at, "runs before the outage"
    assert during.up_at < times[-1], "runs after the outage"
    assert [at for at in order if at >= during.down_at] == sorted(
        at for at in order if at >= during.down_at
    ), "buffered runs are recorded in the order they ran"
    assert len(probe_alerts(hook)) == 1, "the Redis failure paged once, not again from the outbox"
    sent = [row for row in outbox if row.state is OutboxState.DELIVERED]
    assert len(sent) >= 2, "notifications sent from memory are in the outbox, delivered"
    assert during.unrecorded == 0


@dataclass(frozen=True)
class During:
    down_at: datetime
    up_at: datetime
    unrecorded: float


def _outage(
    daemon: Daemon, sidecar: Sidecar, outage: Outage, cache: Server, hook: LoopbackReceiver
) -> During:
    eventually(lambda: sidecar.metrics().get("featmon_state_up") == 1.0, "the first runs")
    eventually(lambda: sidecar.status() == 0.0, "a passing freshness check")
    down_at = datetime.now(UTC)
    outage.begin()
    eventually(lambda: sidecar.metrics().get("featmon_state_up") == 0.0, "featmon_state_up 0")
    answer = sidecar.readyz()
    assert answer.status_code == 503
    assert "state database" in answer.json()["checks"]["state"]
    cache.stop()  # Redis dies while the state database is away
    eventually(lambda: sidecar.status() == 3.0, "the check's error status in /metrics")
    eventually(lambda: bool(probe_alerts(hook)), "the Redis failure alerted")
    eventually(
        lambda: bool(firing(hook, check="featmon.state_database")), "the state database alert"
    )
    eventually(lambda: daemon.state_health().buffered >= 5, "five runs made during the outage")
    outage.end()
    up_at = datetime.now(UTC)
    eventually(lambda: sidecar.metrics().get("featmon_state_up") == 1.0, "featmon_state_up 1")
    eventually(lambda: daemon.state_health().buffered == 0, "the buffer written")
    eventually(lambda: resolved(hook, "featmon.state_database"), "the state alert resolved")
    assert sidecar.readyz().status_code == 200
    time.sleep(1.5)  # a few runs after the outage
    unrecorded = sum(
        v for k, v in sidecar.metrics().items() if k.startswith("featmon_runs_unrecorded_total")
    )
    return During(down_at, up_at, unrecorded)


def _recorded_order(url: str) -> list[datetime]:
    """The scheduled times of the view's runs in the order they were written."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT scheduled_at FROM runs WHERE feature_view = ? ORDER BY recorded_at"
                if url.startswith("sqlite")
                else "SELECT scheduled_at FROM runs WHERE feature_view = %s ORDER BY recorded_at",
                (VIEW,),
            ).all()
    finally:
        engine.dispose()
    return [_aware(row[0]) for row in rows]


def _aware(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# -- the tests -----------------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_postgresql_state_database_stopped_and_started_loses_no_run(
    tmp_path: Path, postgres: Postgres
) -> None:
    """With the state database's server stopped for several seconds, every run goes on, the
    Redis that died meanwhile is alerted, and every run is recorded once it is back."""
    run_through(tmp_path, Outage(postgres.url, postgres.stop, postgres.start))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of the test's own (mounting needs root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill up needs root; run as root to test a full disk")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"this machine refuses to mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(filler: Path) -> None:
    """Fill the file system of `filler` up with that one file."""
    chunk = b"\0" * 65536
    with filler.open("wb") as file, contextlib.suppress(OSError):
        while True:
            file.write(chunk)
            file.flush()


def test_a_sqlite_state_database_on_a_full_disk_loses_no_run(
    tmp_path: Path, small_disk: Path
) -> None:
    """With the state database's file system full (reads still work, writes fail), the daemon
    says so, and once space is freed every run is recorded."""
    filler = small_disk / "filler"
    run_through(
        tmp_path,
        Outage(f"sqlite:///{small_disk / 'state.db'}", lambda: fill(filler), filler.unlink),
    )


@dataclass
class Corruption:
    """Overwrites the pages of a SQLite file (all but the header page) with zeros while the
    daemon runs, and puts them back as they were."""

    path: Path
    saved: bytes = b""

    def begin(self) -> None:
        with self._writer() as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("BEGIN IMMEDIATE")  # no writer while the pages change
            try:
                data = self.path.read_bytes()
                page = int.from_bytes(data[16:18], "big") or 65536
                self.saved = data[page:]
                with self.path.open("r+b") as file:
                    file.seek(page)
                    file.write(b"\0" * len(self.saved))
            finally:
                conn.execute("ROLLBACK")

    def end(self) -> None:
        with self._writer() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                data = self.path.read_bytes()
                page = int.from_bytes(data[16:18], "big") or 65536
                with self.path.open("r+b") as file:
                    file.seek(page)
                    file.write(self.saved)
            finally:
                conn.execute("ROLLBACK")

    @contextlib.contextmanager
    def _writer(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        try:
            yield conn
        finally:
            conn.close()


def test_a_corrupted_sqlite_state_database_loses_no_run(tmp_path: Path) -> None:
    """With the pages of the state database's file overwritten while the daemon runs, probing
    goes on, and once the file is repaired in place every run is recorded without a restart."""
    path = tmp_path / "state" / "state.db"
    corruption = Corruption(path)
    run_through(tmp_path, Outage(f"sqlite:///{path}", corruption.begin, corruption.end))


# -- the pieces ----------------------------------------------------------------------------------

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.fixture
def down() -> Iterator[StateStore]:
    """A state database whose server does not answer: nothing listens on its port."""
    with StateStore(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/outage") as store:
        yield store


@pytest.fixture
def up(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as store:
        store.migrate()
        yield store


def a_run(n: int) -> RunResult:
    at = T0 + n * SECOND
    return RunResult(f"outage-run-{n}", at, at, at + SECOND, ())


def test_a_full_buffer_drops_its_oldest_run_counts_it_and_writes_the_rest_in_order(
    down: StateStore, up: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    seen = Recorder()
    recorder = RunRecorder(2, seen)
    assert [recorder.record(down, "v", a_run(n), None) for n in range(3)] == [Recorded.BUFFERED] * 3
    health = recorder.health()
    assert (health.writable, health.buffered, health.unrecorded) == (False, 2, 1)
    assert seen.unrecorded == [("v", a_run(0).scheduled_at)]
    assert any(
        "outage-run-0" in r.getMessage() and "buffer of 2" in r.getMessage() for r in caplog.records
    )
    assert recorder.flush(up) == 2
    assert [r.run_id for r in up.runs()] == ["outage-run-2", "outage-run-1"]
    assert recorder.health().writable
    assert recorder.health().buffered == 0


def test_once_a_write_failed_later_runs_wait_behind_the_buffer_and_keep_their_order(
    down: StateStore, up: StateStore
) -> None:
    """A run finishing while older runs wait is not written before them, even by a database
    that takes writes again: the next flush writes them all, oldest first."""
    recorder = RunRecorder(10, Recorder())
    assert recorder.record(down, "v", a_run(0), None) is Recorded.BUFFERED
    assert recorder.record(up, "v", a_run(1), None) is Recorded.BUFFERED
    assert up.run("outage-run-1") is None
    assert recorder.flush(up) == 2
    order = _recorded_order_of(up)
    assert order == ["outage-run-0", "outage-run-1"]
    assert recorder.record(up, "v", a_run(2), None) is Recorded.WRITTEN


def _recorded_order_of(state: StateStore) -> list[str]:
    url = state.database
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT run_id FROM runs ORDER BY recorded_at, run_id"
            ).all()
    finally:
        engine.dispose()
    return [row[0] for row in rows]


def test_without_a_state_database_a_replica_runs_the_views_it_last_held_and_those_never_seen(
    down: StateStore, up: StateStore
) -> None:
    """Replica a won view v, so b saw v claimed elsewhere: with the database gone, a runs v
    unclaimed and b leaves it to a; a view neither has seen claimed (w) is run by both."""
    lease = timedelta(seconds=5)
    a = RunClaims("a", lease, timedelta(minutes=1), Recorder())
    b = RunClaims("b", lease, timedelta(minutes=1), Recorder())
    assert a.claim(up, "v", T0) is Verdict.HELD
    assert b.claim(up, "v", T0) is Verdict.NOT_OURS
    later = T0 + SECOND
    assert a.claim(down, "v", later) is Verdict.UNCLAIMED
    assert b.claim(down, "v", later) is Verdict.NOT_OURS
    assert a.claim(down, "w", later) is Verdict.UNCLAIMED
    assert b.claim(down, "w", later) is Verdict.UNCLAIMED


def test_an_alert_stepped_in_memory_survives_a_reload_and_is_written_back_delivered_once(
    tmp_path: Path,
) -> None:
    """While the file is corrupt a failing run fires from memory and the webhook hears it; a
    reload's new pipeline adopts that state (the next failing run sends nothing); once the file
    is repaired the notification is in the outbox as delivered, and nothing is sent again."""
    path = tmp_path / "state.db"
    corruption = Corruption(path)
    with StateStore(f"sqlite:///{path}") as state, serving(webhook_contract()) as hook:
        state.migrate()
        receiver = WebhookReceiver.model_validate(
            {"type": "webhook", "url": hook.url + WEBHOOK_PATH}
        )
        first, standby = Standby(), Standby()
        delivery = Delivery.from_config(
            state,
            {"team": receiver},
            DeliverySettings(poll_interval=timedelta(seconds=0.1)),
            standby=first,
        )
        delivery.start()
        try:
            before = Alerting(state, pipeline_settings(), delivery.wake, first)
            play_one(before, 0, Status.PASS)
            corruption.begin()
            fired = play_one(before, 1, Status.FAIL)
            assert len(fired.notifications) == 1
            assert before.offline
            eventually(lambda: len(firing(hook)) == 1, "the page sent from memory")
        finally:
            assert delivery.stop(5)
        after = Alerting(state, pipeline_settings(), None, standby)
        after.adopt(before)
        first.move_to(standby)
        assert len(standby) == 1
        assert play_one(after, 2, Status.FAIL).notifications == ()
        corruption.end()
        assert play_one(after, 3, Status.FAIL).notifications == ()
        assert not after.offline
        rows = state.outbox_rows()
    assert [row.state for row in rows] == [OutboxState.DELIVERED]
    assert len(standby) == 0
    assert len(firing(hook)) == 1


def pipeline_settings() -> AlertingSettings:
    route = RootRouteConfig.model_validate({"receiver": "team", "group_wait": "0s"})
    return AlertingSettings(
        alerting=AlertingConfig(), tree=RoutingTree.from_config(route, {"team": "webhook"})
    )


def play_one(alerting: Alerting, index: int, status: Status) -> Alerted:
    at = T0 + index * timedelta(minutes=5)
    value = 7200.0 if status is Status.FAIL else 60.0
    result = CheckResult(
        check="outage_users.freshness@online",
        kind="freshness",
        feature_view=VIEW,
        feature=None,
        store="cache",
        target="online",
        status=status,
        severity="P1",
        value=value,
        threshold=Threshold("max", 3600.0, None, "seconds"),
        sample_size=5,
        details=FreshnessDetails(p50=value, p90=value, p99=value, max=value),
    )
    return alerting.after_run(RunResult(f"outage-alert-{index}", at, at, at, (result,)), at)
