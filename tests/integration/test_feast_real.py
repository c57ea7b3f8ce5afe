"""featmon against real Feast 0.67: a repository built, applied and materialized by Feast itself
into SQLite, Redis and PostgreSQL (see `conftest.world` and `plan`), then probed by featmon.

featmon's readings and numbers must equal the planted truth exactly, and its decoded values must
equal what Feast's own `get_online_features` returned for the same entities. `featmon init` is run
on each real repository, and `featmon check` on the result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from checks.model import FeatureView
from checks.observation import FeatureState
from checks.result import (
    CheckResult,
    CoverageDetails,
    FreshnessDetails,
    NullRateDetails,
    SchemaDriftDetails,
    Status,
)
from monitor.abc import EntityKey, OfflineStore, OnlineStore
from monitor.config import (
    FeastSqliteStoreConfig,
    FeastSqlStoreConfig,
    ParquetStoreConfig,
    RedisStoreConfig,
)
from monitor.feast.init import init_from_feast
from monitor.feast.redis_layout import feature_field, field_label
from monitor.feast.registry import LoggingDestination, read_registry
from monitor.loader import Loaded, load
from monitor.runs.probe import Stores, probe_view
from monitor.stores.redis import RedisOnlineStore
from monitor.stores.sql.feast_online import FeastSqlOnlineStore
from monitor.stores.sql.parquet import ParquetOfflineStore
from tests.integration import plan
from tests.integration.conftest import PROJECT, STORES, World

pytestmark = [pytest.mark.feast, pytest.mark.slow]
T = TypeVar("T")

FIXTURE_REGISTRY = Path(__file__).with_name("data") / "registry.db"


def password(world: World) -> str:
    """What ${FEAST_ONLINE_PASSWORD} must hold for the generated PostgreSQL URL."""
    from sqlalchemy import make_url  # noqa: PLC0415 - only the PostgreSQL build needs it

    return make_url(world.pg_url).password or "unused"


@dataclass(frozen=True)
class Generated:
    """`featmon init` run on one real repository, and the configuration it wrote, loaded."""

    out: Path
    loaded: Loaded

    def view(self, name: str) -> FeatureView:
        return next(v.view for v in self.loaded.views if v.view.name == name)


@pytest.fixture(scope="module")
def generated(world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Generated]:
    out: dict[str, Generated] = {}
    env = {"FEAST_ONLINE_PASSWORD": password(world)}
    for store, built in world.builds.items():
        directory = tmp_path_factory.mktemp(f"featmon-{store}")
        init_from_feast(built.repo, directory, world.now)
        out[store] = Generated(directory, load(directory / "config.yaml", env))
    return out


def open_online(generated: Generated) -> OnlineStore:
    config = generated.loaded.config.stores["feast_online"]
    views = [v.view for v in generated.loaded.views]
    if isinstance(config, FeastSqliteStoreConfig | FeastSqlStoreConfig):
        return FeastSqlOnlineStore("feast_online", config)
    assert isinstance(config, RedisStoreConfig)
    return RedisOnlineStore("feast_online", config, known_views=views)


@pytest.fixture(params=STORES)
def opened(
    request: pytest.FixtureRequest, generated: dict[str, Generated]
) -> Iterator[tuple[str, Generated, OnlineStore]]:
    store: str = request.param
    online = open_online(generated[store])
    try:
        yield store, generated[store], online
    finally:
        online.close()


def test_the_builds_ran_feast_0_67(world: World) -> None:
    """Every repository was applied and materialized by Feast 0.67.0 itself."""
    assert {b.feast_version for b in world.builds.values()} == {"0.67.0"}
    assert set(world.builds) == set(STORES)


def undeclared_label(store: str) -> str:
    """How the orphaned `legacy_score` is named: by name in SQL tables; in Redis only its field
    hash survives."""
    if store == "redis":
        return field_label(feature_field("user_stats", "legacy_score"))
    return "legacy_score"


def test_featmon_reads_exactly_the_values_feast_materialized(
    opened: tuple[str, Generated, OnlineStore], world: World
) -> None:
    """Every planted user reads back: present iff materialized, the latest row's values and
    event time, revenue NULL where planted, and the removed feature reported as undeclared."""
    store, generated, online = opened
    observation = online.read(generated.view("user_stats"), [(u,) for u in plan.USERS], "test")
    assert observation.decode_errors == 0
    assert [e.key[0] for e in observation.entities if e.present] == list(plan.PRESENT)
    for entity in observation.entities:
        uid = entity.key[0]
        assert isinstance(uid, int)
        if not entity.present:
            continue
        values = {name: entity.reading(name).value for name in plan.USER_FEATURES}
        assert values == plan.user_values(uid), uid
        assert entity.event_time == world.now - plan.user_age(uid), uid
        null = entity.reading("revenue").state is FeatureState.NULL
        assert null == (plan.revenue(uid) is None), uid
    assert observation.undeclared_fields == frozenset({undeclared_label(store)})


def test_featmon_reads_the_healthy_view_too(
    opened: tuple[str, Generated, OnlineStore], world: World
) -> None:
    """String join keys, Float32 and Bool values and their event times read back exactly."""
    _, generated, online = opened
    keys = [(m,) for m in plan.MERCHANTS]
    observation = online.read(generated.view("merchant_stats"), keys, "test")
    assert observation.found == len(plan.MERCHANTS)
    for index, entity in enumerate(observation.entities, 1):
        values = {name: entity.reading(name).value for name in plan.MERCHANT_FEATURES}
        assert values == plan.merchant_values(index)
        assert entity.event_time == world.now - plan.merchant_age(index)
    assert observation.undeclared_fields == frozenset()


def feast_rows(world: World, store: str, view: str) -> list[dict[str, object]]:
    return world.builds[store].online[view]


def test_featmon_agrees_with_feasts_get_online_features(
    opened: tuple[str, Generated, OnlineStore], world: World
) -> None:
    """For the looked-up entities (fresh, null, stale, missing, unknown), featmon's decoded
    values are exactly what Feast's get_online_features returned: None where Feast has none."""
    store, generated, online = opened
    for view, join_key, features in (
        ("user_stats", "user_id", plan.USER_FEATURES),
        ("merchant_stats", "merchant_id", plan.MERCHANT_FEATURES),
    ):
        rows = feast_rows(world, store, view)
        keys: list[EntityKey] = []
        for row in rows:
            value = row[join_key]
            assert isinstance(value, int | str)
            keys.append((value,))
        observation = online.read(generated.view(view), keys, "test")
        ours: list[dict[str, object]] = [
            {join_key: e.key[0], **{f: e.reading(f).value for f in features}}
            for e in observation.entities
        ]
        assert ours == rows


def results_of(generated: Generated, online: OnlineStore, now: datetime) -> dict[str, CheckResult]:
    config = generated.loaded.config.stores["feast_offline"]
    assert isinstance(config, ParquetStoreConfig)
    offline: OfflineStore = ParquetOfflineStore("feast_offline", config)
    try:
        stores = Stores({"feast_online": online}, {"feast_offline": offline})
        results = [
            result
            for loaded in generated.loaded.views
            for result in probe_view(loaded.view, loaded.planned, stores, now)
        ]
    finally:
        offline.close()
    return {result.check: result for result in results}


def details(result: CheckResult, kind: type[T]) -> T:
    assert isinstance(result.details, kind), result
    return result.details


def test_featmon_numbers_match_the_planted_truth(
    opened: tuple[str, Generated, OnlineStore], world: World
) -> None:
    """Over the offline population (all 200 users seen in 30 days): freshness quantiles, coverage,
    the null rate and the orphaned feature are exactly the planted ones; the healthy view passes."""
    store, generated, online = opened
    results = results_of(generated, online, world.now)
    expected = plan.expected_users()
    ages = [plan.user_age(u).total_seconds() for u in plan.PRESENT]
    assert [expected.p50, expected.p90, expected.p99] == [
        plan.nearest_rank(ages, q) for q in (0.5, 0.9, 0.99)
    ]
    fresh = details(results["user_stats.freshness@online"], FreshnessDetails)
    assert (fresh.p50, fresh.p90, fresh.p99, fresh.max) == (
        expected.p50,
        expected.p90,
        expected.p99,
        expected.max,
    )
    assert fresh.sample is not None
    assert (fresh.sample.asked, fresh.sample.found) == (expected.asked, expected.found)
    coverage = details(results["user_stats.coverage@online"], CoverageDetails)
    assert (coverage.covered, coverage.sampled) == (expected.covered, expected.asked)
    nulls = details(results["user_stats.null_rate.revenue@online"], NullRateDetails)
    assert (nulls.nulls, nulls.rows) == (expected.revenue_nulls, expected.found)
    drift = details(results["user_stats.schema_drift@online"], SchemaDriftDetails)
    assert (drift.added, drift.removed) == ((undeclared_label(store),), ())
    statuses = {check: result.status for check, result in results.items()}
    failing = {c for c, s in statuses.items() if s is Status.FAIL}
    assert failing == {
        "user_stats.freshness@online",
        "user_stats.coverage@online",
        "user_stats.null_rate.revenue@online",
        "user_stats.schema_drift@online",
    }
    assert {s for c, s in statuses.items() if c not in failing} == {Status.PASS}


def featmon(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=None if env is None else {**os.environ, **env},
    )


@pytest.mark.parametrize("store", STORES)
def test_init_then_check_runs_at_once_on_the_real_repository(
    world: World, tmp_path: Path, store: str
) -> None:
    """`featmon init --from-feast` on each real repository, then `featmon validate` and
    `featmon check` (the password from the environment): exit 2, failing exactly the planted
    faults, the views' and those of the model fraud_v1 over the requests Feast logged (stale,
    null and missing users; the merchants are healthy); a second init refuses to overwrite."""
    out = tmp_path / "featmon"
    repo = world.builds[store].repo
    env = {"FEAST_ONLINE_PASSWORD": password(world)}
    init = featmon("init", "--from-feast", str(repo), "--out", str(out))
    assert init.returncode == 0, init.stderr
    assert f"wrote {out / 'config.yaml'}" in init.stdout
    config = str(out / "config.yaml")
    validated = featmon("validate", "--config", config, env=env)
    assert validated.returncode == 0, validated.stderr
    now = world.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    check = featmon("check", "--config", config, "--format", "json", "--now", now, env=env)
    assert check.returncode == 2, check.stderr
    statuses = {r["check"]: r["status"] for r in json.loads(check.stdout)["results"]}
    assert {c for c, s in statuses.items() if s != "pass"} == {
        "user_stats.freshness@online",
        "user_stats.coverage@online",
        "user_stats.null_rate.revenue@online",
        "user_stats.schema_drift@online",
        "fraud_v1.coverage",
        "fraud_v1.freshness",
        "fraud_v1.null_rate.user_stats.revenue",
        "fraud_v1.null_rate.user_stats.orders",
    }
    assert statuses["fraud_v1.null_rate.merchant_stats.avg_ticket"] == "pass"
    again = featmon("init", "--from-feast", str(repo), "--out", str(out))
    assert again.returncode == 3
    assert "refusing to overwrite" in again.stderr


def test_generated_urls_hold_no_password_of_feature_store_yaml(
    world: World, tmp_path: Path
) -> None:
    """The PostgreSQL store's URL reads ${FEAST_ONLINE_PASSWORD}, and init says to set it."""
    out = tmp_path / "featmon"
    init = featmon("init", "--from-feast", str(world.builds["postgres"].repo), "--out", str(out))
    assert init.returncode == 0, init.stderr
    text = (out / "config.yaml").read_text(encoding="utf-8")
    assert "${FEAST_ONLINE_PASSWORD}" in text
    assert f":{password(world)}@" not in text
    assert "Set FEAST_ONLINE_PASSWORD in the environment" in init.stdout


def test_the_registry_reader_reads_what_feast_wrote(world: World) -> None:
    """The registry of the real run: the project's views, their entities and value types, TTLs,
    batch sources, and the two materializations of the window; legacy_score is gone."""
    built = world.builds["sqlite"]
    registry = read_registry(built.repo / "data" / "registry.db")
    views = {v.name: v for v in registry.views_of(PROJECT)}
    users, merchants = views["user_stats"], views["merchant_stats"]
    assert [(f.name, f.type_name) for f in users.features] == [
        ("revenue", "DOUBLE"),
        ("orders", "INT64"),
        ("segment", "STRING"),
    ]
    assert [(f.name, f.type_name) for f in merchants.features] == [
        ("avg_ticket", "FLOAT"),
        ("is_high_risk", "BOOL"),
    ]
    assert (users.ttl, merchants.ttl) == (timedelta(days=1), timedelta(hours=2))
    entities = registry.entities_of(PROJECT)
    assert (entities["user"].join_key, entities["merchant"].join_key) == ("user_id", "merchant_id")
    assert users.batch_source is not None
    assert (users.batch_source.path, users.batch_source.created_timestamp_column) == (
        "data/user_stats.parquet",
        "created",
    )
    window = (world.now - plan.WINDOW, world.now)
    assert users.materialized == (window, window)
    services = {s.name: s for s in registry.services_of(PROJECT)}
    assert services.keys() == {"fraud_v1", "growth_v1", "shop_v1"}
    fraud = services["fraud_v1"]
    assert [(p.view, [f.name for f in p.features]) for p in fraud.projections] == [
        ("user_stats", ["revenue", "orders"]),
        ("merchant_stats", ["avg_ticket", "is_high_risk"]),
    ]
    assert fraud.logging == LoggingDestination("file", 0.5, path="data/logs/fraud_v1")
    assert [p.log_name for p in services["shop_v1"].projections] == ["shop_stats"]


def test_the_committed_registry_fixture_matches_the_real_run(world: World) -> None:
    """tests/integration/data/registry.db, which the unit tests read, is the registry of this
    suite's Redis build (the SQLite build's holds its temporary paths), copied from
    `pytest tests/integration --basetemp=DIR` at DIR/feast0/redis/feature_repo/data/: it still
    has the views, features, entities, sources and feature services Feast 0.67 writes today."""
    fresh = read_registry(world.builds["redis"].repo / "data" / "registry.db")
    committed = read_registry(FIXTURE_REGISTRY)

    def shape(registry: object) -> object:
        assert hasattr(registry, "views_of")
        return [
            (v.name, v.entities, v.features, v.entity_columns, v.ttl, v.batch_source, v.online)
            for v in sorted(registry.views_of(PROJECT), key=lambda v: v.name)
        ]

    assert shape(committed) == shape(fresh)
    assert committed.entities_of(PROJECT) == fresh.entities_of(PROJECT)
    by_name = {s.name: s for s in fresh.services_of(PROJECT)}  # Feast keeps no order
    assert {s.name: s for s in committed.services_of(PROJECT)} == by_name


def test_parquet_written_by_pandas_with_nanoseconds_can_be_sampled(
    world: World, generated: dict[str, Generated]
) -> None:
    """Feast users' Parquet files hold nanosecond UTC timestamps (pandas' default): the offline
    population is sampled from them like from microsecond ones."""
    config = generated["sqlite"].loaded.config.stores["feast_offline"]
    assert isinstance(config, ParquetStoreConfig)
    view = generated["sqlite"].view("user_stats")
    assert view.offline is not None
    ns = view.model_copy(
        update={"offline": view.offline.model_copy(update={"path": "data/user_stats_ns.parquet"})}
    )
    store = ParquetOfflineStore("feast_offline", config)
    try:
        keys = store.sample_entities(ns, 500, world.now - timedelta(days=30), world.now)
    finally:
        store.close()
    assert sorted(keys) == [(u,) for u in plan.USERS]
