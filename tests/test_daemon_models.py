"""Models in the daemon, end to end on a fake clock: a model over a Parquet serving log in
Feast's schema runs on its own schedule under its subject `model:<name>`, is claimed, recorded,
shown by the JSON API, alerts with a `model` label routed by it to its own webhook receiver, and
is unscheduled, its alerts resolved, when a reload removes it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from prometheus_client import CollectorRegistry

from checks.result import RunResult, Status
from monitor.config import HttpConfig
from monitor.daemon.service import Daemon
from monitor.demo import store as planted
from monitor.http import DaemonSidecar
from monitor.metrics import Exposition
from monitor.state import ClaimEnd, StateStore
from tests.clocks import FakeClock, eventually
from tests.receivers import WEBHOOK_PATH, LoopbackReceiver, serving, webhook_contract
from tests.test_daemon import FAST, USERS, Recorder
from tests.test_scheduler import on_grid

MODEL = "model:fraud"
EVERY = timedelta(seconds=10)
STEP = timedelta(milliseconds=200)
VIEW = USERS.replace("{every: 1s}", "{every: 1h}")
MODELS = """\
models:
  - name: fraud
    features: [user_stats:rolling_7d_revenue, user_stats:purchase_count_30d]
    owner: risk-team
    serving_log: {store: logs, path: fraud, window: 1h}
    schedule: {every: 10s}
    checks:
      - {kind: coverage, min: 0.99, severity: P1}
      - {kind: freshness, max: 1d}
"""


def write_serving_log(directory: Path, at: datetime) -> None:
    """Four requests of `fraud` logged in the minutes before `at`, as Feast's file logging
    destination writes them: a directory of Parquet files, value times in whole seconds
    (timestamp[ms]), statuses int32, the log time UTC. Request 3 was served a null revenue;
    request 4 nothing the store had (null at 1970-01-01, NOT_FOUND)."""
    directory.mkdir(parents=True)
    with duckdb.connect() as conn:
        conn.execute(
            """
            COPY (
              WITH requests AS (
                SELECT i, CAST($at AS TIMESTAMP) - (11 - 2 * i) * INTERVAL 1 MINUTE AS logged
                FROM range(1, 5) AS r(i)
              ), timed AS (
                SELECT *, CASE WHEN i = 4 THEN TIMESTAMP '1970-01-01'
                               ELSE date_trunc('second', logged - INTERVAL 2 HOUR) END AS value_ts
                FROM requests
              )
              SELECT CAST(i AS BIGINT) AS user_id,
                     CASE WHEN i >= 3 THEN NULL ELSE CAST(i * 10.5 AS FLOAT) END
                       AS user_stats__rolling_7d_revenue,
                     CAST(value_ts AS TIMESTAMP_MS) AS user_stats__rolling_7d_revenue__timestamp,
                     CAST([1, 1, 2, 3][i] AS INTEGER) AS user_stats__rolling_7d_revenue__status,
                     CASE WHEN i = 4 THEN NULL ELSE CAST(i + 2 AS BIGINT) END
                       AS user_stats__purchase_count_30d,
                     CAST(value_ts AS TIMESTAMP_MS) AS user_stats__purchase_count_30d__timestamp,
                     CAST([1, 1, 1, 3][i] AS INTEGER) AS user_stats__purchase_count_30d__status,
                     CAST(logged AS TIMESTAMPTZ) AS __log_timestamp,
                     CAST(logged AS DATE) AS __log_date,
                     printf('req-%d', i) AS __request_id
              FROM timed
            ) TO '{path}' (FORMAT parquet)
            """.replace("{path}", str(directory / "part-0.parquet")),
            {"at": at.replace(tzinfo=None)},
        )


def configure(root: Path, store_dir: Path, risk: LoopbackReceiver, team: LoopbackReceiver) -> Path:
    """The demo store's user_stats (hourly) and the model `fraud` over it (every 10 s), its
    serving log on a store of its own; alerts of `model="fraud"` go to the risk team's hook,
    the rest to the team's."""
    (root / "checks").mkdir()
    (root / "checks" / "c.yaml").write_text("feature_views:\n" + VIEW + MODELS, encoding="utf-8")
    config = root / "config.yaml"
    config.write_text(
        "stores:\n"
        f"  online: {{type: feast-sqlite, path: '{store_dir}/online.db', project: demo}}\n"
        f"  lake: {{type: parquet, root: '{store_dir}/offline'}}\n"
        f"  logs: {{type: parquet, root: '{root / 'logs'}'}}\n"
        "checks: checks/*.yaml\n"
        "state: {url: 'sqlite:///state.db'}\n"
        "receivers:\n"
        f"  risk: {{type: webhook, url: '{risk.url}{WEBHOOK_PATH}'}}\n"
        f"  team: {{type: webhook, url: '{team.url}{WEBHOOK_PATH}'}}\n"
        "route:\n"
        "  receiver: team\n"
        "  group_wait: 0s\n"
        "  group_interval: 1s\n"
        "  routes:\n"
        "    - {match: {model: fraud}, receiver: risk}\n",
        encoding="utf-8",
    )
    return config


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's feature store (its user_stats is the view the model is served from)."""
    directory = tmp_path_factory.mktemp("store")
    planted.build(directory, datetime.now(UTC))
    return directory


@pytest.fixture
def hooks() -> Iterator[tuple[LoopbackReceiver, LoopbackReceiver]]:
    """The risk team's webhook receiver and the team's, on loopback."""
    with serving(webhook_contract()) as risk, serving(webhook_contract()) as team:
        yield risk, team


def alerts_of(receiver: LoopbackReceiver, status: str) -> list[dict[str, Any]]:
    return [a for body in receiver.bodies() for a in body["alerts"] if a["status"] == status]


def wait_until(holds: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    assert eventually(holds, timeout), f"timed out waiting for {what}"


def run_until(clock: FakeClock, seen: Recorder, count: int) -> list[RunResult]:
    """Move the clock on, a step at a time and giving the runs a moment of real time at each,
    until the model has run `count` times; its runs."""
    deadline = clock.now() + timedelta(minutes=2)
    while len(seen.runs_of(MODEL)) < count:
        assert clock.now() < deadline, f"the model ran {len(seen.runs_of(MODEL))} times"
        clock.advance(STEP)
        time.sleep(0.02)
    return seen.runs_of(MODEL)


def test_a_model_runs_on_its_schedule_is_recorded_shown_alerted_and_retired(
    tmp_path: Path, store_dir: Path, hooks: tuple[LoopbackReceiver, LoopbackReceiver]
) -> None:
    risk, team = hooks
    start = datetime.now(UTC).replace(microsecond=0)
    write_serving_log(tmp_path / "logs" / "fraud", start)
    config = configure(tmp_path, store_dir, risk, team)
    clock = FakeClock(start)
    seen = Recorder()
    http = HttpConfig(listen="127.0.0.1:0", token=None)
    sidecar = DaemonSidecar(http, Exposition(CollectorRegistry()))
    daemon = Daemon(config, FAST, observer=seen, sidecar=sidecar, clock=clock)
    daemon.start()
    try:
        # A catch-up at start (no run recorded), then runs on the 10 s grid of its key.
        first, second, third = run_until(clock, seen, 3)
        assert abs(first.scheduled_at - start) < EVERY
        assert all(on_grid(run.scheduled_at, MODEL, EVERY) for run in (first, second, third))
        assert first.scheduled_at < second.scheduled_at < third.scheduled_at
        assert_model_results(first)
        with StateStore(f"sqlite:///{tmp_path}/state.db") as state:
            assert_recorded(state, [first, second, third])
        assert_api("http://{}:{}".format(*sidecar.address), third)
        # The model's failing coverage pages the risk team, labelled by the model and its
        # owner; nobody else.
        wait_until(lambda: bool(alerts_of(risk, "firing")), "the model's alert")
        (alert,) = alerts_of(risk, "firing")
        assert alert["labels"] == {
            "alertname": "featmon_check_failed",
            "check": "fraud.coverage",
            "kind": "coverage",
            "model": "fraud",
            "owner": "risk-team",
            "store": "logs",
            "severity": "P1",
        }
        assert not [a for a in alerts_of(team, "firing") if "model" in a["labels"]]
        # A reload that keeps the model keeps its schedule and its alert.
        checks = tmp_path / "checks" / "c.yaml"
        checks.write_text(f"feature_views:\n{VIEW.replace('1h', '2h')}{MODELS}", encoding="utf-8")
        assert daemon.reload()
        run_until(clock, seen, 5)
        assert alerts_of(risk, "resolved") == []
        # A reload without the model: no more runs, and its alert resolves.
        checks.write_text("feature_views:\n" + VIEW, encoding="utf-8")
        assert daemon.reload()
        runs = len(seen.runs_of(MODEL))
        clock.advance_by_steps(timedelta(seconds=30), STEP)
        wait_until(lambda: bool(alerts_of(risk, "resolved")), "the model's alert to resolve")
        assert alerts_of(risk, "resolved")[0]["labels"] == alert["labels"]
        assert len(seen.runs_of(MODEL)) == runs
    finally:
        daemon.stop(10)


def assert_model_results(run: RunResult) -> None:
    """The model's checks, judged from its serving log: each names the model and no view.
    Requests 3 (a null revenue) and 4 (nothing the store had) are not covered: 2 of 4; every
    value with a time is two hours old at its request's time."""
    assert [(r.check, r.model, r.feature_view, r.subject) for r in run.results] == [
        ("fraud.coverage", "fraud", None, MODEL),
        ("fraud.freshness", "fraud", None, MODEL),
    ]
    coverage, freshness = run.results
    assert (coverage.value, coverage.status, coverage.sample_size) == (0.5, Status.FAIL, 4)
    assert (freshness.value, freshness.status) == (7200, Status.PASS)
    assert all(r.labels["owner"] == "risk-team" for r in run.results)


def assert_recorded(state: StateStore, runs: list[RunResult]) -> None:
    """Each run recorded under the model, as it was measured, its claim done by this daemon."""
    for run in runs:
        assert state.recorded_run(run.run_id) == run
        stored = state.run(run.run_id)
        assert stored is not None
        assert (stored.model, stored.feature_view, stored.scheduled_at) == (
            "fraud",
            None,
            run.scheduled_at,
        )
    claims = {c.scheduled_at: c for c in state.run_claims(MODEL)}
    assert all(claims[run.scheduled_at].end is ClaimEnd.DONE for run in runs)


def assert_api(base: str, newest: RunResult) -> None:
    """/api/v1/status lists the model beside the view, /api/v1/results filters by it, and
    /api/v1/runs names the model of its runs."""
    status = httpx.get(f"{base}/api/v1/status", timeout=10).json()
    (model,) = status["models"]
    assert model["model"] == "fraud"
    assert (model["status"], model["checks"]) == ("fail", 2)
    assert model["counts"] == {"pass": 1, "warn": 0, "fail": 1, "error": 0}
    assert [v["feature_view"] for v in status["feature_views"]] == ["user_stats"]
    results = httpx.get(f"{base}/api/v1/results", params={"model": "fraud"}, timeout=10).json()
    assert {r["model"] for r in results["results"]} == {"fraud"}
    assert {r["feature_view"] for r in results["results"]} == {None}
    assert results["results"][0]["run_id"] == newest.run_id
    runs = httpx.get(f"{base}/api/v1/runs", params={"limit": "100"}, timeout=10).json()["runs"]
    by_id = {r["run_id"]: r for r in runs}
    assert (by_id[newest.run_id]["model"], by_id[newest.run_id]["feature_view"]) == ("fraud", None)


def test_replicas_run_each_scheduled_run_of_a_model_once(
    tmp_path: Path, store_dir: Path, hooks: tuple[LoopbackReceiver, LoopbackReceiver]
) -> None:
    """Two daemons on one state database and one clock: each scheduled run of the model is
    claimed, run and recorded by one of them, the other told it was claimed elsewhere."""
    start = datetime.now(UTC).replace(microsecond=0)
    write_serving_log(tmp_path / "logs" / "fraud", start)
    config = configure(tmp_path, store_dir, *hooks)
    clock = FakeClock(start)
    seen = [Recorder(), Recorder()]
    daemons = [Daemon(config, FAST, observer=one, clock=clock) for one in seen]
    for daemon in daemons:
        daemon.start()
    try:
        deadline = start + timedelta(minutes=2)
        while sum(len(one.runs_of(MODEL)) for one in seen) < 4:
            assert clock.now() < deadline, "the replicas did not run the model"
            clock.advance(STEP)
            time.sleep(0.02)
    finally:
        for daemon in daemons:
            daemon.stop(10)  # waits for the runs going
    ran = sorted(r.scheduled_at for one in seen for r in one.runs_of(MODEL))
    assert len(ran) == len(set(ran))  # no scheduled time run twice
    assert [name for one in seen for name, _ in one.elsewhere if name == MODEL]
    with StateStore(f"sqlite:///{tmp_path}/state.db") as state:
        recorded = sorted(r.scheduled_at for r in state.runs(limit=100) if r.model == "fraud")
        claimed = {c.scheduled_at for c in state.run_claims(MODEL)}
    assert recorded == ran
    assert claimed >= set(ran)
