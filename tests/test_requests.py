"""A model's request sample, probed now: requests drawn from a CSV file or a query, each view
read once in its own online store (Redis and Feast's SQLite store here), every request judged by
the serving log's rules at the scheduled time."""

from __future__ import annotations

import contextlib
import csv
import random
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from checks.errors import ConfigError
from checks.model import FeatureView
from checks.observation import Ages, FeatureMisses, ModelObservation, ProbeFailure, ViewMisses
from checks.requests import Sample, judge_value
from checks.requests import observe as judged_requests
from checks.result import Status
from checks.serde import to_object
from checks.served import Model, resolve
from checks.stats import wilson
from monitor.app import App, build_app
from monitor.loader import LoadedModel, load
from monitor.runs import requests, served
from monitor.runs.served import probe_model
from tests.builders import AT, entity, null, undecodable, value
from tests.feast_fixtures import create_table, entity_rows, key, write_rows
from tests.redis_fixtures import REDIS_URL, Planter, feast_hash, feast_key, free_port, unique

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
SAMPLE = Sample("", "ids_file", 10)
USER = {"revenue": "float", "orders": "int64"}
PAIR_TYPES = ("int64", "string")

CONFIG = """\
stores:
  redis: {{type: redis, url: '{redis}', project: {project}}}
  sqlite: {{type: feast-sqlite, path: '{online}', project: shop}}
  warehouse: {{type: sql, url: 'sqlite:///{warehouse}'}}
  logs: {{type: parquet, root: '{logs}'}}
checks: checks/*.yaml
"""

VIEWS = """\
feature_views:
  - name: user_stats
    entity: user_id
    entity_types: {user_id: int64}
    ttl: 1d
    features: {revenue: float, orders: int64}
    online: {store: redis}
  - name: merchant_stats
    entity: merchant_id
    entity_types: {merchant_id: string}
    ttl: 1d
    features: {risk: double, unused: double}
    online: {store: sqlite}
  - name: user_merchant
    entity: [user_id, merchant_id]
    entity_types: {user_id: int64, merchant_id: string}
    ttl: 1d
    features: {spend: double}
    online: {store: redis}
models:
"""

MODEL = """\
  - name: {name}
    features: [user_stats, 'merchant_stats:risk', user_merchant]
    max_age: {{merchant_stats: 2h}}
    {source}
    checks:
      - {{kind: coverage, min: 0.95, severity: P1}}
      - {{kind: freshness, over: requests, max: 1d}}
      - {{kind: null_rate, feature: 'user_stats:revenue', max: 0.1}}
"""


def model(name: str, source: str) -> str:
    """One model of the three views in a check file's `models:` section; `source` is its
    `requests:` or `serving_log:` line."""
    return MODEL.format(name=name, source=source)


# The requests, one per line: user 1 with merchant m1 three times (a popular pair), then
# one of each fault.
REQUESTS = [
    (1, "m1"), (1, "m1"), (1, "m1"),  # covered
    (2, "m1"),  # covered
    (3, "m1"),  # user 3 missing from user_stats
    (4, "m1"),  # user 4's revenue null
    (5, "m1"),  # user 5 stale (2 days), pair (5, m1) missing
    (1, "m2"),  # merchant m2 stale (3h > its 2h max age), pair (1, m2)'s spend NaN
    (2, "m3"),  # merchant m3's risk an hour in the future
]  # fmt: skip


@dataclass(frozen=True)
class Planted:
    """The online stores, holding the planted facts."""

    project: str  # the Feast project in the shared Redis
    online: Path  # Feast's SQLite online store


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


def plant_redis(planter: Planter, project: str) -> None:
    users: dict[int, tuple[dict[str, object], datetime]] = {
        1: ({"revenue": 1.0, "orders": 1}, ago(minutes=10)),
        2: ({"revenue": 2.0, "orders": 2}, ago(minutes=30)),
        4: ({"revenue": None, "orders": 4}, ago(hours=1)),
        5: ({"revenue": 5.0, "orders": 5}, ago(days=2)),
    }  # user 3: none
    for user, (values, at) in users.items():
        fields = {name: (value, USER[name]) for name, value in values.items()}
        planter.hset(feast_key(project, [user]), feast_hash("user_stats", fields, at))
    pairs = {
        (1, "m1"): 10.0,
        (2, "m1"): 20.0,
        (3, "m1"): 11.0,
        (4, "m1"): 40.0,
        (1, "m2"): float("nan"),
        (2, "m3"): 30.0,
    }  # fmt: skip  (5, m1): none
    for pair, spend in pairs.items():
        hashed = feast_hash("user_merchant", {"spend": (spend, "double")}, ago(minutes=20))
        planter.hset(feast_key(project, pair, ("user_id", "merchant_id"), PAIR_TYPES), hashed)


def plant_sqlite(path: Path, merchants: dict[str, tuple[object, datetime]]) -> None:
    create_table(path, "shop_merchant_stats")
    rows = [
        row
        for merchant, (risk, at) in merchants.items()
        for row in entity_rows(
            key(merchant, names=("merchant_id",)),
            {"risk": (risk, "double"), "unused": (0.0, "double")},
            int(at.timestamp()),
        )
    ]
    write_rows(path, "shop_merchant_stats", rows)


@pytest.fixture
def planted(redis_planter: Planter, tmp_path: Path) -> Planted:
    project = unique("requests")
    plant_redis(redis_planter, project)
    online = tmp_path / "online.db"
    merchants: dict[str, tuple[object, datetime]] = {
        "m1": (0.1, ago(minutes=5)),
        "m2": (0.2, ago(hours=3)),
        "m3": (0.3, NOW + timedelta(hours=1)),
    }
    plant_sqlite(online, merchants)
    return Planted(project, online)


def write_config(root: Path, planted: Planted, source: str, redis: str = REDIS_URL) -> Path:
    """config.yaml and one check file below `root`, with the model `fraud` over a request
    sample (`source`: the body of its `requests:`); the requests in a CSV file beside the
    check file and in a table of a warehouse."""
    warehouse = root / "warehouse.db"
    with sqlite3.connect(warehouse) as conn:
        conn.execute("CREATE TABLE requests (user_id INTEGER, merchant_id TEXT, at TEXT)")
        conn.executemany("INSERT INTO requests VALUES (?, ?, '')", REQUESTS)
    conn.close()
    (root / "checks").mkdir(exist_ok=True)
    ids = "at,merchant_id,user_id\n" + "".join(f"x,{m},{u}\n" for u, m in REQUESTS)
    (root / "checks" / "requests.csv").write_text(ids, encoding="utf-8")
    return write_files(root, planted, model("fraud", f"requests: {{{source}}}"), redis)


def write_files(root: Path, planted: Planted, models: str, redis: str = REDIS_URL) -> Path:
    """config.yaml, and a check file of the three views and `models`, below `root`."""
    (root / "checks").mkdir(exist_ok=True)
    (root / "checks" / "fraud.yaml").write_text(VIEWS + models, encoding="utf-8")
    config = CONFIG.format(
        redis=redis,
        project=planted.project,
        online=planted.online,
        warehouse=root / "warehouse.db",
        logs=root / "logs",
    )
    (root / "config.yaml").write_text(config, encoding="utf-8")
    return root / "config.yaml"


def opened(config: Path) -> tuple[App, LoadedModel]:
    app = build_app(load(config, {}), with_state=False)
    (model,) = app.loaded.models
    return app, model


def truth(store: str, population: str, asked: int) -> ModelObservation:
    """The planted faults, counted by hand (ages in seconds at NOW).

    user_stats (revenue, orders): ages 600 for user 1, 1800 user 2, 3600 user 4 (its null
    revenue has a time, so an age), 172800 user 5 (stale); user 3 absent.
    merchant_stats (risk; max age 2h): 300 m1, 10800 m2 (stale), m3 future (no age).
    user_merchant (spend): 1200 for every pair; (5, m1) absent, (1, m2) NaN.
    """
    minutes = 60.0
    return ModelObservation(
        source="requests",
        store=store,
        requests=9,
        covered=4,  # (1, m1) three times and (2, m1)
        views={
            # (3, m1) absent and (4, m1) null: user_stats alone; (5, m1) stale: with the pair.
            # Ages of 16 values: 600 x8, 1800 x4, 3600 x2, 172800 x2.
            "user_stats": ViewMisses(
                uncovered=3,
                only=2,
                reasons={"absent": 1, "null": 1, "stale": 1, "future": 0},
                ages=Ages(16, 10 * minutes, 2880 * minutes, 2880 * minutes, 2880 * minutes),
            ),
            # (1, m2) stale, with the pair's NaN; (2, m3) future, alone.
            # Ages of 8 values: 300 x7 (m1), 10800 (m2).
            "merchant_stats": ViewMisses(
                uncovered=2,
                only=1,
                reasons={"absent": 0, "null": 0, "stale": 1, "future": 1},
                ages=Ages(8, 5 * minutes, 180 * minutes, 180 * minutes, 180 * minutes),
            ),
            # (5, m1) absent and (1, m2) NaN, each with another view. 8 values of 1200.
            "user_merchant": ViewMisses(
                uncovered=2,
                only=0,
                reasons={"absent": 1, "null": 1, "stale": 0, "future": 0},
                ages=Ages(8, 20 * minutes, 20 * minutes, 20 * minutes, 20 * minutes),
            ),
        },
        features={
            "user_stats:revenue": FeatureMisses(absent=1, null=1, stale=1),
            "user_stats:orders": FeatureMisses(absent=1, stale=1),
            "merchant_stats:risk": FeatureMisses(stale=1, future=1),
            "user_merchant:spend": FeatureMisses(absent=1, null=1),
        },
        # 32 values: 300 x7, 600 x8, 1200 x8, 1800 x4, 3600 x2, 10800, 172800 x2: the 16th
        # is 1200, the 29th 3600, the 32nd 172800.
        value_ages=Ages(32, 20 * minutes, 60 * minutes, 2880 * minutes, 2880 * minutes),
        # The oldest value of each request: 1200 x3 (1, m1), 1800 (2, m1), 1200 (3, m1), 3600
        # (4, m1), 172800 (5, m1), 10800 (1, m2), 1800 (2, m3): the 5th of 9 is 1800.
        request_ages=Ages(9, 30 * minutes, 2880 * minutes, 2880 * minutes, 2880 * minutes),
        asked=asked,
        population=population,
    )


def test_planted_faults_over_an_ids_file(tmp_path: Path, planted: Planted) -> None:
    """Every number of the observation, from a CSV whose header names the join keys among
    other columns: every request drawn (the sample asks for more than the file holds)."""
    config = write_config(tmp_path, planted, "ids_file: requests.csv, sample: 50")
    app, model = opened(config)
    with app:
        observation = requests.observe(model, app.stores, NOW, random.Random(1))
    assert observation == truth("", "ids_file", 50)


def test_planted_faults_over_a_query(tmp_path: Path, planted: Planted) -> None:
    """The same requests read by a query on an offline store: the same observation."""
    source = "store: warehouse, query: 'SELECT merchant_id, user_id FROM requests', sample: 9"
    app, model = opened(write_config(tmp_path, planted, source))
    with app:
        observation = requests.observe(model, app.stores, NOW)
    assert observation == truth("warehouse", "query", 9)


def test_the_model_checks_are_judged_from_the_sample(tmp_path: Path, planted: Planted) -> None:
    """Coverage 4/9 fails its P1 check with the sample's Wilson interval; the oldest value of
    each request has a p99 of 2 days (not over 1 day: fails); revenue served no value to 2 of
    9 requests (absent for user 3, null for user 4)."""
    app, model = opened(write_config(tmp_path, planted, "ids_file: requests.csv, sample: 9"))
    with app:
        coverage, freshness, null_rate = probe_model(model, app.stores, NOW)
    assert (coverage.status, coverage.value, coverage.sample_size) == (Status.FAIL, 4 / 9, 9)
    details = to_object(coverage.details)
    interval = wilson(4, 9)
    assert (details["ci_low"], details["ci_high"]) == (interval.low, interval.high)
    assert (details["source"], details["asked"], details["population"]) == (
        "requests",
        9,
        "ids_file",
    )
    assert (freshness.status, freshness.value) == (Status.FAIL, 172800.0)
    assert (null_rate.status, null_rate.value) == (Status.FAIL, 2 / 9)


def test_a_store_that_cannot_be_read_makes_the_whole_observation_an_error(
    tmp_path: Path, planted: Planted
) -> None:
    """Redis down: no partial observation from the SQLite view, a failure naming the store
    and the view, and every check of the model an error."""
    down = f"redis://127.0.0.1:{free_port()}/0"
    config = write_config(tmp_path, planted, "ids_file: requests.csv", redis=down)
    app, model = opened(config)
    with app:
        observation = requests.observe(model, app.stores, NOW)
        results = probe_model(model, app.stores, NOW)
    assert isinstance(observation, ProbeFailure)
    assert (observation.store, observation.feature_view) == ("redis", "model:fraud")
    assert "reading view user_stats for model fraud failed" in observation.reason
    assert {r.status for r in results} == {Status.ERROR}
    assert all("reading view user_stats" in str(to_object(r.details)["reason"]) for r in results)


def test_a_query_that_fails_names_the_model_and_the_store(tmp_path: Path, planted: Planted) -> None:
    source = "store: warehouse, query: 'SELECT user_id FROM requests'"  # no merchant_id
    app, model = opened(write_config(tmp_path, planted, source))
    with app:
        observation = requests.observe(model, app.stores, NOW)
    assert isinstance(observation, ProbeFailure)
    assert observation.store == "warehouse"
    assert "sampling the requests of model fraud failed" in observation.reason


def test_a_missing_ids_file_is_an_error_naming_it(tmp_path: Path, planted: Planted) -> None:
    app, model = opened(write_config(tmp_path, planted, "ids_file: gone.csv"))
    with app:
        observation = requests.observe(model, app.stores, NOW)
    assert isinstance(observation, ProbeFailure)
    assert "cannot read the ids file" in observation.reason
    assert "gone.csv" in observation.reason


def test_an_empty_sample_is_an_error_not_a_pass(tmp_path: Path, planted: Planted) -> None:
    """A file with a header and no requests: nothing measured, every check an error."""
    config = write_config(tmp_path, planted, "ids_file: empty.csv")
    (tmp_path / "checks" / "empty.csv").write_text("user_id,merchant_id\n", encoding="utf-8")
    app, model = opened(config)
    with app:
        observation = requests.observe(model, app.stores, NOW)
        results = probe_model(model, app.stores, NOW)
    assert isinstance(observation, ModelObservation)
    assert (observation.requests, observation.covered) == (0, 0)
    assert {r.status for r in results} == {Status.ERROR}


def test_a_request_sampled_model_needs_every_view_online(tmp_path: Path, planted: Planted) -> None:
    config = write_config(tmp_path, planted, "ids_file: requests.csv")
    checks = tmp_path / "checks" / "fraud.yaml"
    text = checks.read_text(encoding="utf-8").replace("    online: {store: sqlite}\n", "", 1)
    checks.write_text(text, encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"have an `online` source, found none for 'merchant_stats'"
    ):
        load(config, {})


@pytest.mark.parametrize(
    ("value_time", "null", "reason", "age"),
    [
        (None, False, "absent", None),  # a value without a time: the store had none
        (datetime(1970, 1, 1, tzinfo=UTC), False, "absent", None),  # Feast's "no value" time
        (NOW - timedelta(hours=1), True, "null", 3600.0),  # a null with a time has an age
        (NOW + timedelta(hours=1), True, "null", None),  # null first; from the future: no age
        (NOW + timedelta(seconds=30), False, None, 0.0),  # within max_future: age 0
        (NOW + timedelta(seconds=90), False, "future", None),
        (NOW - timedelta(hours=2, seconds=1), False, "stale", 7201.0),
        (NOW - timedelta(hours=2), False, None, 7200.0),  # exactly the max age: usable
    ],
)
def test_one_value_is_judged_under_its_first_reason(
    value_time: datetime | None, null: bool, reason: str | None, age: float | None
) -> None:
    """absent > null > future > stale, max age 2h and max_future 60s."""
    judged = judge_value(value_time, null, NOW, max_age=7200.0, max_future=60.0)
    assert (judged.reason, judged.age) == (reason, age)


# --- agreement with the serving log on the same traffic -----------------------------------------

TRAFFIC = 20_000  # requests logged, and written to the request file
SAMPLED = 2_000  # requests the sample draws from the file
USERS, MERCHANTS = 500, 60
SEED = 20_261_126
FEAST_PRESENT, FEAST_NOT_FOUND = 1, 3  # FieldStatus
LOG_COLUMNS = (
    {"user_id": "BIGINT", "merchant_id": "VARCHAR"}
    | {
        f"{view}__{feature}{suffix}": dtype
        for view, feature, value_type in (
            ("user_stats", "revenue", "FLOAT"),
            ("user_stats", "orders", "BIGINT"),
            ("merchant_stats", "risk", "DOUBLE"),
            ("user_merchant", "spend", "DOUBLE"),
        )
        for suffix, dtype in (
            ("", value_type),
            ("__timestamp", "TIMESTAMP_MS"),
            ("__status", "INTEGER"),
        )
    }
    | {"__log_timestamp": "TIMESTAMPTZ", "__log_date": "DATE", "__request_id": "VARCHAR"}
)

Stored = tuple[dict[str, object], datetime] | None
"""What one entity of one view holds online now: its values by feature and their time (None:
the entity is missing)."""


def user_now(user: int) -> Stored:
    """Popular users (1..40) are all healthy; among the others a sixth are missing, a sixth
    stale (2 days old) and a sixth have a null revenue."""
    fault = user % 6 if user > 40 else None
    if fault == 0:
        return None
    at = ago(days=2) if fault == 1 else ago(minutes=user % 50 + 1)
    return {"revenue": None if fault == 2 else user * 0.5, "orders": user}, at


def merchant_now(merchant: int) -> Stored:
    """Merchants past the 8 most popular: a fifth null, a fifth stale (3h, over the 2h)."""
    fault = merchant % 5 if merchant > 8 else None
    at = ago(hours=3) if fault == 1 else ago(minutes=merchant % 30 + 1)
    return {"risk": None if fault == 0 else merchant / 100}, at


def pair_now(user: int, merchant: int) -> Stored:
    """A seventh of the pairs of users past the 30 most popular are missing."""
    if user > 30 and (user + merchant) % 7 == 0:
        return None
    return {"spend": float(user + merchant)}, ago(minutes=20)


def traffic() -> list[tuple[int, int]]:
    """Requests (user, merchant), each drawn by popularity (Zipf, exponent 1.2): the popular
    entities, all healthy, take most requests, so that a sample weighing entities rather than
    requests would be far off."""
    rng = random.Random(SEED)
    users = rng.choices(range(1, USERS + 1), [r**-1.2 for r in range(1, USERS + 1)], k=TRAFFIC)
    merchants = rng.choices(
        range(1, MERCHANTS + 1), [r**-1.2 for r in range(1, MERCHANTS + 1)], k=TRAFFIC
    )
    return list(zip(users, merchants, strict=True))


def covered(user: int, merchant: int) -> bool:
    """Every feature of the request present, non-null and no older than its max age."""
    stored = (user_now(user), merchant_now(merchant), pair_now(user, merchant))
    limits = (timedelta(days=1), timedelta(hours=2), timedelta(days=1))
    return all(
        s is not None and None not in s[0].values() and NOW - s[1] <= limit
        for s, limit in zip(stored, limits, strict=True)
    )


def plant_traffic(planter: Planter, root: Path, requests_made: list[tuple[int, int]]) -> Planted:
    """The online stores as they are now, for every entity the traffic asks for."""
    project = unique("agree")
    for user in sorted({u for u, _ in requests_made}):
        stored = user_now(user)
        if stored is not None:
            fields = {name: (value, USER[name]) for name, value in stored[0].items()}
            planter.hset(feast_key(project, [user]), feast_hash("user_stats", fields, stored[1]))
    for user, merchant in sorted(set(requests_made)):
        stored = pair_now(user, merchant)
        if stored is not None:
            spend = {"spend": (stored[0]["spend"], "double")}
            pair = feast_key(
                project, (user, f"m{merchant}"), ("user_id", "merchant_id"), PAIR_TYPES
            )
            planter.hset(pair, feast_hash("user_merchant", spend, stored[1]))
    online = root / "online.db"
    merchants: dict[str, tuple[object, datetime]] = {}
    for merchant in range(1, MERCHANTS + 1):
        stored = merchant_now(merchant)
        assert stored is not None  # every merchant is stored
        merchants[f"m{merchant}"] = (stored[0]["risk"], stored[1])
    plant_sqlite(online, merchants)
    return Planted(project, online)


def log_cells(user: int, merchant: int) -> list[str]:
    """One logged request in Feast's schema, as CSV text: what the store holds now, logged at
    NOW; a value the store lacks is null with time 0 and status NOT_FOUND."""
    cells = [str(user), f"m{merchant}"]
    served = (
        ("user_stats", user_now(user), ("revenue", "orders")),
        ("merchant_stats", merchant_now(merchant), ("risk",)),
        ("user_merchant", pair_now(user, merchant), ("spend",)),
    )
    for _, stored, features in served:
        for feature in features:
            if stored is None:
                cells += ["", "1970-01-01 00:00:00", str(FEAST_NOT_FOUND)]
                continue
            value = stored[0][feature]
            at = f"{stored[1]:%Y-%m-%d %H:%M:%S}"
            cells += ["" if value is None else str(value), at, str(FEAST_PRESENT)]
    return [*cells, f"{NOW:%Y-%m-%d %H:%M:%S}+00", f"{NOW:%Y-%m-%d}", uuid.uuid4().hex]


def write_log(directory: Path, made: list[tuple[int, int]]) -> None:
    """The traffic as Feast's file logging destination writes it: a directory of Parquet
    files (two here), value times as timestamp[ms], the log time as timestamp[us, UTC]."""
    directory.mkdir(parents=True)
    text = directory.parent / "log.csv"
    with text.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(LOG_COLUMNS)
        writer.writerows(log_cells(u, m) for u, m in made)
    casts = ", ".join(
        f'CAST("{name}" AS {dtype}) AS "{name}"' for name, dtype in LOG_COLUMNS.items()
    )
    with contextlib.closing(duckdb.connect()) as conn:
        conn.execute(
            f"CREATE TABLE log AS SELECT {casts} FROM read_csv('{text}', header = true, "
            "all_varchar = true, nullstr = '')"
        )
        half = len(made) // 2
        for part, where in enumerate((f"rowid < {half}", f"rowid >= {half}")):
            path = directory / f"part-{part}.parquet"
            conn.execute(f"COPY (SELECT * FROM log WHERE {where}) TO '{path}' (FORMAT parquet)")


def test_a_request_sample_agrees_with_the_serving_log_on_the_same_traffic(
    tmp_path: Path, redis_planter: Planter
) -> None:
    """The same 20,000 requests, logged now and written to a request file: the serving log's
    exact coverage lies within the 95% interval of a 2,000-request sample's."""
    made = traffic()
    planted = plant_traffic(redis_planter, tmp_path, made)
    write_log(tmp_path / "logs" / "fraud", made)
    (tmp_path / "checks").mkdir()
    ids = "user_id,merchant_id\n" + "".join(f"{u},m{m}\n" for u, m in made)
    (tmp_path / "checks" / "traffic.csv").write_text(ids, encoding="utf-8")
    models = model("logged", "serving_log: {store: logs, path: fraud}") + model(
        "sampled", f"requests: {{ids_file: traffic.csv, sample: {SAMPLED}}}"
    )
    app = build_app(load(write_files(tmp_path, planted, models), {}), with_state=False)
    logged_model, sampled_model = app.loaded.models
    with app:
        logged = served.observe(logged_model, app.stores, NOW + timedelta(minutes=1))
        sampled = requests.observe(sampled_model, app.stores, NOW, random.Random(SEED))
    truth = sum(covered(u, m) for u, m in made)
    pairs = set(made)  # what a sample of entities, not requests, would weigh alike
    assert sum(covered(u, m) for u, m in pairs) / len(pairs) < truth / TRAFFIC - 0.2
    assert isinstance(sampled, ModelObservation)
    assert (sampled.requests, sampled.asked) == (SAMPLED, SAMPLED)
    assert not isinstance(logged, ProbeFailure), logged.reason
    assert (logged.requests, logged.covered) == (TRAFFIC, truth)
    interval = wilson(sampled.covered, sampled.requests)
    assert interval.low <= logged.covered / logged.requests <= interval.high


def test_each_reading_is_judged_by_its_own_time_and_an_undecodable_one_is_absent() -> None:
    """Feast's SQL stores keep a time per feature: entity 1's `a` is 10 minutes old and its
    `b` 2 days (stale, over the 1d TTL); entity 2's `a` did not decode (absent) and its `b`
    is null, an hour old. Entity 1 is asked twice."""
    view = FeatureView.model_validate(
        {"name": "v", "entity": "id", "ttl": "1d", "features": {"a": "float", "b": "float"},
         "online": {"store": "s"}}
    )  # fmt: skip
    spec = {"name": "m", "features": ["v"], "requests": {"ids_file": "ids.csv"}}
    served, problems = resolve(Model.model_validate(spec), {"v": view})
    assert served is not None, problems
    readings = [
        entity(1, a=value(1.0, timedelta(minutes=10)), b=value(2.0, timedelta(days=2))),
        entity(2, a=undecodable(), b=null(timedelta(hours=1))),
    ]
    observed = judged_requests(served, [(1,), (2,), (1,)], {"v": readings}, AT, SAMPLE)
    assert (observed.requests, observed.covered) == (3, 0)
    assert observed.features == {
        "v:a": FeatureMisses(absent=1),
        "v:b": FeatureMisses(null=1, stale=2),
    }
    # Ages: 600 and 172800 twice (entity 1), 3600 (entity 2's null): the 3rd of 5 is 3600.
    assert observed.views["v"] == ViewMisses(
        uncovered=3,
        only=3,
        reasons={"absent": 1, "null": 1, "stale": 2, "future": 0},
        ages=Ages(5, 3600.0, 172800.0, 172800.0, 172800.0),
    )
    assert observed.request_ages == Ages(3, 172800.0, 172800.0, 172800.0, 172800.0)
