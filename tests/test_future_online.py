"""Event times after the scheduled time, read from real online stores (Redis, Feast's SQLite
layout) and evaluated: a value from the future is never fresh and never covered.

Users 1..5 were written a day before the scheduled time S; user 6 by a writer whose clock is
10d 15h ahead; user 7 by one 30 s ahead (within the default max_future of 1m: clock jitter)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.report import render_report
from checks.evaluate import evaluate
from checks.model import FeatureView
from checks.observation import OnlineObservation
from checks.plan import plan_view
from checks.result import CheckResult, CoverageDetails, FreshnessDetails, RunResult, Status
from checks.serde import to_object
from monitor.cli.format import summary_table
from monitor.config import FeastSqliteStoreConfig
from monitor.metrics import result_families
from monitor.state import StateStore
from monitor.stores.sql.feast_online import FeastSqlOnlineStore
from tests.feast_fixtures import create_table, entity_rows, key, write_rows
from tests.redis_fixtures import (
    Planter,
    admin_client,
    config,
    feast_hash,
    feast_key,
    opened,
    unique,
    users,
)
from tests.test_report import Page

S = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
AHEAD = timedelta(days=10, hours=15)
WRITTEN = {
    **{uid: S - timedelta(days=1) for uid in range(1, 6)},
    6: S + AHEAD,
    7: S + timedelta(seconds=30),
}
ASKED = [(uid,) for uid in WRITTEN]

VIEW = FeatureView.model_validate(
    {
        "name": "user_stats",
        "entity": "user_id",
        "ttl": "2d",
        "features": {"revenue": "float", "orders": "int64"},
        "online": {"store": "online"},
        "checks": [
            {"kind": "freshness", "quantile": "max", "max": "2d"},
            {"kind": "coverage", "min": 0.5},
        ],
    }
)


def evaluated(observation: OnlineObservation) -> dict[str, CheckResult]:
    return {p.id: evaluate(p, observation, S) for p in plan_view(VIEW)}


@pytest.fixture(scope="module")
def redis_observation() -> Iterator[OnlineObservation]:
    """The seven users in Feast's Redis layout, under a project of this module's own."""
    project = unique("future_")
    admin = admin_client()
    planter = Planter(admin)
    try:
        for uid, moment in WRITTEN.items():
            fields = feast_hash("user_stats", users(revenue=1.5, orders=uid), moment)
            planter.hset(feast_key(project, [uid]), fields)
        with opened(config(project=project)) as store:
            yield store.read(VIEW, ASKED, "offline")
    finally:
        planter.clean()
        admin.close()


@pytest.fixture(scope="module")
def sqlite_observation(tmp_path_factory: pytest.TempPathFactory) -> OnlineObservation:
    """The seven users in Feast's SQLite layout (event_ts as epoch seconds)."""
    path: Path = tmp_path_factory.mktemp("future") / "online_store.db"
    create_table(path, "shop_user_stats")
    for uid, moment in WRITTEN.items():
        features = {"revenue": (1.5, "float"), "orders": (uid, "int64")}
        write_rows(
            path, "shop_user_stats", entity_rows(key(uid), features, int(moment.timestamp()))
        )
    settings = FeastSqliteStoreConfig(type="feast-sqlite", path=str(path), project="shop")
    store = FeastSqlOnlineStore("online", settings)
    try:
        return store.read(VIEW, ASKED, "offline")
    finally:
        store.close()


@pytest.fixture(params=["redis", "feast-sqlite"])
def observation(request: pytest.FixtureRequest) -> OnlineObservation:
    fixture = "redis_observation" if request.param == "redis" else "sqlite_observation"
    found: OnlineObservation = request.getfixturevalue(fixture)
    return found


def test_the_store_reads_the_future_event_time_as_written(observation: OnlineObservation) -> None:
    """The stores pass a future event time on unchanged: judging it is evaluation's work."""
    times = {e.key: e.event_time for e in observation.entities}
    assert times == {(uid,): moment for uid, moment in WRITTEN.items()}


def test_a_future_entity_fails_freshness_and_stays_out_of_the_ages(
    observation: OnlineObservation,
) -> None:
    """The max age is a day (never a negative age); user 6 fails the check as a future value,
    and user 7, 30 s ahead, counts as age 0."""
    result = evaluated(observation)["user_stats.freshness@online"]

    assert isinstance(result.details, FreshnessDetails)
    assert (result.status, result.value, result.sample_size) == (Status.FAIL, 86400.0, 6)
    assert (result.details.p50, result.details.max) == (86400.0, 86400.0)
    assert (result.details.future, result.details.future_ahead) == (1, AHEAD.total_seconds())
    assert result.details.reason == (
        "1 entity with an event time in the future, up to 1w3d15h ahead "
        "(more than max_future 1m after the scheduled time)"
    )


def test_a_future_entity_is_not_covered(observation: OnlineObservation) -> None:
    """Six of seven are covered; user 6 is counted under its own reason, `future`."""
    result = evaluated(observation)["user_stats.coverage@online"]

    assert isinstance(result.details, CoverageDetails)
    assert result.value == pytest.approx(6 / 7)
    assert result.details.uncovered["future"] == 1
    assert sum(result.details.uncovered.values()) == 1


# --- how the future shows: text, JSON, HTML report, metrics -------------------------------------


@pytest.fixture
def run(redis_observation: OnlineObservation) -> RunResult:
    results = tuple(evaluated(redis_observation).values())
    return RunResult("20261126T060000Z-future", S, S, S + timedelta(seconds=1), results)


def test_the_text_summary_shows_the_future_values_beside_the_age(run: RunResult) -> None:
    line = next(x for x in summary_table(run).splitlines() if "freshness" in x)
    assert line.split()[:4] == ["FAIL", "P3", "user_stats.freshness@online", "1d"]
    assert "1 future (up to 10d 15h ahead)" in line


def test_the_json_result_carries_the_future_count_and_the_furthest(run: RunResult) -> None:
    doc: Any = json.loads(json.dumps(to_object(run)))
    (details,) = [r["details"] for r in doc["results"] if r["kind"] == "freshness"]
    assert (details["future"], details["future_ahead_seconds"]) == (1, 918000.0)
    assert details["max_future_seconds"] == 60.0
    assert details["max"] == 86400.0


def test_the_report_shows_the_future_values_and_the_reason(run: RunResult) -> None:
    row = Page(render_report(run)).row("user_stats.freshness@online")
    assert "future values 1 entity furthest ahead 10d 15h max_future 1m 00s" in row
    assert "1 entity with an event time in the future, up to 1w3d15h ahead" in row
    coverage = Page(render_report(run)).row("user_stats.coverage@online")
    assert "event time in the future (beyond max_future) (future) 1" in coverage


def test_metrics_export_the_future_values_of_the_latest_result(
    run: RunResult, tmp_path: Path
) -> None:
    """featmon_future_values and featmon_future_ahead_seconds, read from the state database."""
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as state:
        state.migrate()
        state.record_run(run)
        latest = state.latest_by_check()
    found = {
        (s.name, s.labels["feature_view"], s.labels["store"]): s.value
        for family in result_families(latest)
        if family.name.startswith("featmon_future")
        for s in family.samples
    }
    assert found == {
        ("featmon_future_values", "user_stats", "online"): 1.0,
        ("featmon_future_ahead_seconds", "user_stats", "online"): 918000.0,
    }
