"""Test-only helpers for a model's requests: three views of a fraud model (`user_stats` and
`user_merchant` in Redis in Feast's layout, `merchant_stats` in Feast's SQLite store), what
their online stores hold now (a `World`), planted into real stores, and the same requests
written as Feast's serving log (a directory of Parquet files, in Feast's schema).
"""

from __future__ import annotations

import contextlib
import csv
import math
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from tests.feast_fixtures import create_table, entity_rows, key, write_rows
from tests.redis_fixtures import REDIS_URL, Planter, feast_hash, feast_key, unique

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
USER = {"revenue": "float", "orders": "int64"}
PAIR = ("user_id", "merchant_id")
PAIR_TYPES = ("int64", "string")
FEAST_PRESENT, FEAST_NOT_FOUND = 1, 3  # Feast's FieldStatus

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
MAX_AGES = {"user_stats": timedelta(days=1), "merchant_stats": timedelta(hours=2),
            "user_merchant": timedelta(days=1)}  # fmt: skip

MAX_FUTURE = timedelta(minutes=1)

Request = tuple[int, str]  # (user_id, merchant_id)

Stored = tuple[dict[str, object], datetime] | None
"""What one entity of one view holds online now: its values by feature and their time (None:
the store does not have the entity)."""


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


def model(name: str, source: str) -> str:
    """One model of the three views in a check file's `models:` section; `source` is its
    `requests:` or `serving_log:` line."""
    return MODEL.format(name=name, source=source)


@dataclass(frozen=True)
class World:
    """What each view's online store holds now, entity by entity."""

    user: Callable[[int], Stored]
    merchant: Callable[[str], Stored]
    pair: Callable[[int, str], Stored]

    def served(self, request: Request) -> tuple[tuple[str, Stored], ...]:
        """What `request` is served by each view of the model."""
        user, merchant = request
        return (
            ("user_stats", self.user(user)),
            ("merchant_stats", self.merchant(merchant)),
            ("user_merchant", self.pair(user, merchant)),
        )

    def covered(self, request: Request) -> bool:
        """Every feature of the request present, non-null and no older than its max age,
        nor from further ahead than the default max_future."""
        return all(
            stored is not None
            and not any(
                v is None or (isinstance(v, float) and math.isnan(v)) for v in stored[0].values()
            )
            and -MAX_FUTURE <= NOW - stored[1] <= MAX_AGES[view]
            for view, stored in self.served(request)
        )


# The planted faults: user 1 with merchant m1 three times (a popular pair), then one of each.
REQUESTS: list[Request] = [
    (1, "m1"), (1, "m1"), (1, "m1"),  # covered
    (2, "m1"),  # covered
    (3, "m1"),  # user 3 missing from user_stats
    (4, "m1"),  # user 4's revenue null
    (5, "m1"),  # user 5 stale (2 days), pair (5, m1) missing
    (1, "m2"),  # merchant m2 stale (3h > its 2h max age), pair (1, m2)'s spend NaN
    (2, "m3"),  # merchant m3's risk an hour in the future
]  # fmt: skip
_USERS: dict[int, Stored] = {
    1: ({"revenue": 1.0, "orders": 1}, ago(minutes=10)),
    2: ({"revenue": 2.0, "orders": 2}, ago(minutes=30)),
    4: ({"revenue": None, "orders": 4}, ago(hours=1)),
    5: ({"revenue": 5.0, "orders": 5}, ago(days=2)),
}
_MERCHANTS: dict[str, Stored] = {
    "m1": ({"risk": 0.1}, ago(minutes=5)),
    "m2": ({"risk": 0.2}, ago(hours=3)),
    "m3": ({"risk": 0.3}, NOW + timedelta(hours=1)),
}
_PAIRS: dict[Request, Stored] = {
    pair: ({"spend": spend}, ago(minutes=20))
    for pair, spend in (
        ((1, "m1"), 10.0), ((2, "m1"), 20.0), ((3, "m1"), 11.0), ((4, "m1"), 40.0),
        ((1, "m2"), float("nan")), ((2, "m3"), 30.0),
    )
}  # fmt: skip
FAULTS = World(_USERS.get, _MERCHANTS.get, lambda user, merchant: _PAIRS.get((user, merchant)))
"""What the stores hold for `REQUESTS`."""


@dataclass(frozen=True)
class Planted:
    """The online stores, holding a world."""

    project: str  # the Feast project in the shared Redis
    online: Path  # Feast's SQLite online store


def plant(planter: Planter, root: Path, world: World, requests: Iterable[Request]) -> Planted:
    """Every entity the requests ask for, as `world` says, into a Redis project of its own
    and a SQLite online store below `root`."""
    project = unique("requests")
    asked = sorted(set(requests))
    for user in sorted({user for user, _ in asked}):
        stored = world.user(user)
        if stored is not None:
            fields = {name: (value, USER[name]) for name, value in stored[0].items()}
            planter.hset(feast_key(project, [user]), feast_hash("user_stats", fields, stored[1]))
    for user, merchant in asked:
        stored = world.pair(user, merchant)
        if stored is not None:
            spend = {"spend": (stored[0]["spend"], "double")}
            hashed = feast_hash("user_merchant", spend, stored[1])
            planter.hset(feast_key(project, (user, merchant), PAIR, PAIR_TYPES), hashed)
    online = root / "online.db"
    create_table(online, "shop_merchant_stats")
    rows = []
    for merchant in sorted({merchant for _, merchant in asked}):
        stored = world.merchant(merchant)
        if stored is not None:
            values = {"risk": (stored[0]["risk"], "double"), "unused": (0.0, "double")}
            entity = key(merchant, names=("merchant_id",))
            rows += entity_rows(entity, values, int(stored[1].timestamp()))
    write_rows(online, "shop_merchant_stats", rows)
    return Planted(project, online)


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


# -- the serving log ----------------------------------------------------------------------------

LOGGED = (
    ("user_stats", "revenue", "FLOAT"),
    ("user_stats", "orders", "BIGINT"),
    ("merchant_stats", "risk", "DOUBLE"),
    ("user_merchant", "spend", "DOUBLE"),
)
LOG_COLUMNS = (
    {"user_id": "BIGINT", "merchant_id": "VARCHAR"}
    | {
        f"{view}__{feature}{suffix}": dtype
        for view, feature, value_type in LOGGED
        for suffix, dtype in (
            ("", value_type),
            ("__timestamp", "TIMESTAMP_MS"),
            ("__status", "INTEGER"),
        )
    }
    | {"__log_timestamp": "TIMESTAMPTZ", "__log_date": "DATE", "__request_id": "VARCHAR"}
)


def log_cells(world: World, request: Request) -> list[str]:
    """One logged request in Feast's schema, as CSV text: what the stores hold now, logged at
    NOW; a value the store lacks is null with time 0 and status NOT_FOUND."""
    served = dict(world.served(request))
    cells = [str(request[0]), request[1]]
    for view, feature, _ in LOGGED:
        stored = served[view]
        if stored is None:
            cells += ["", "1970-01-01 00:00:00", str(FEAST_NOT_FOUND)]
            continue
        value = stored[0][feature]
        at = f"{stored[1]:%Y-%m-%d %H:%M:%S}"
        cells += ["" if value is None else str(value), at, str(FEAST_PRESENT)]
    return [*cells, f"{NOW:%Y-%m-%d %H:%M:%S}+00", f"{NOW:%Y-%m-%d}", uuid.uuid4().hex]


def write_log(directory: Path, world: World, requests: list[Request]) -> None:
    """The requests as Feast's file logging destination writes them: a directory of Parquet
    files (two here), value times as timestamp[ms], the log time as timestamp[us, UTC]."""
    directory.mkdir(parents=True)
    text = directory.parent / "log.csv"
    with text.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(LOG_COLUMNS)
        writer.writerows(log_cells(world, request) for request in requests)
    casts = ", ".join(
        f'CAST("{name}" AS {dtype}) AS "{name}"' for name, dtype in LOG_COLUMNS.items()
    )
    with contextlib.closing(duckdb.connect()) as conn:
        conn.execute(
            f"CREATE TABLE log AS SELECT {casts} FROM read_csv('{text}', header = true, "
            "all_varchar = true, nullstr = '')"
        )
        half = len(requests) // 2
        for part, where in enumerate((f"rowid < {half}", f"rowid >= {half}")):
            path = directory / f"part-{part}.parquet"
            conn.execute(f"COPY (SELECT * FROM log WHERE {where}) TO '{path}' (FORMAT parquet)")
