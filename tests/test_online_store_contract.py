"""Every online store keeps the same contract: the same planted facts, written into each backend
in its own layout by one fixture per backend, read back as the same observations (found and
missing keys, values, nulls, absent features, event times, decode errors) and sampled as the same
keys. A new online backend joins by adding a planter to `PLANTERS`.

What only one backend has (Redis clusters and TLS, Feast's TIMESTAMPTZ, plain-hash time formats,
sampling costs) stays in that backend's own test module."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from checks.model import FeatureView
from checks.observation import EntityReading, FeatureState
from monitor.abc import EntityKey, OnlineStore
from monitor.config import FeastSqliteStoreConfig, FeastSqlStoreConfig
from monitor.feast.codec import encode_value
from monitor.feast.redis_layout import feature_field
from monitor.stores.redis import RedisOnlineStore
from monitor.stores.sql.feast_online import FeastSqlOnlineStore
from tests.conftest import search_path
from tests.feast_fixtures import Row, create_table, key, write_rows
from tests.redis_fixtures import (
    Planter,
    config,
    feast_hash,
    feast_key,
    plain_hash,
    unique,
)

T0 = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
PROJECT = "shop"
DTYPES = {"revenue": "float", "orders": "int64", "segment": "string"}
USERS = FeatureView.model_validate(
    {
        "name": "user_stats",
        "entity": "user_id",
        "ttl": "1d",
        "features": DTYPES,
        "online": {"store": "online"},
    }
)


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NULL = _Marker("NULL")  # written as each layout writes a null
CORRUPT = _Marker("CORRUPT")  # bytes (or text) the layout cannot decode as the declared type


@dataclass(frozen=True)
class Fact:
    """One entity as planted: its features (a value, NULL or CORRUPT) and its event time."""

    uid: int
    features: Mapping[str, object]
    at: datetime


FACTS = (
    Fact(1, {"revenue": 12.5, "orders": 3, "segment": "gold"}, T1),  # complete
    Fact(2, {"revenue": NULL, "orders": 4, "segment": "silver"}, T0),  # a null, an older time
    Fact(3, {"revenue": 1.0}, T1),  # orders and segment never written
    Fact(4, {"revenue": CORRUPT, "orders": 9}, T1),  # one value that does not decode
    Fact(6, {"revenue": 7.0, "orders": 7, "segment": "bronze"}, T1),  # stored, never asked
)
ASKED: list[EntityKey] = [(1,), (2,), (3,), (4,), (99,)]
STORED = {(f.uid,) for f in FACTS}

Opener = Callable[[], OnlineStore]


# --- one planter per backend: the facts in the backend's own layout ------------------------------


def _feast_rows(facts: tuple[Fact, ...], time: Callable[[datetime], object]) -> list[Row]:
    """Feast's online table rows: one per feature, values as Feast's serialized `Value`."""
    rows = []
    for fact in facts:
        for name, value in fact.features.items():
            blob = (
                b"\x48\x01"  # field 9 of feast.types.Value does not exist
                if value is CORRUPT
                else encode_value(None if value is NULL else value, DTYPES[name])
            )
            rows.append(Row(key(fact.uid), name, blob, time(fact.at)))
    return rows


def _feast_redis_hash(fact: Fact) -> dict[bytes, bytes]:
    fields = {
        name: (None if value is NULL else value, DTYPES[name])
        for name, value in fact.features.items()
        if value is not CORRUPT
    }
    written = feast_hash("user_stats", fields, fact.at)
    for name, value in fact.features.items():
        if value is CORRUPT:
            written[feature_field("user_stats", name)] = b"\x48\x01"
    return written


def _plain_hash(fact: Fact) -> dict[bytes, bytes]:
    text = {
        name: "" if value is NULL else "not a number" if value is CORRUPT else str(value)
        for name, value in fact.features.items()
    }
    return plain_hash({**text, "_ts": str(int(fact.at.timestamp()))})


@pytest.fixture
def feast_sqlite(tmp_path: Path) -> Opener:
    path = tmp_path / "online_store.db"
    create_table(path, f"{PROJECT}_user_stats")
    write_rows(path, f"{PROJECT}_user_stats", _feast_rows(FACTS, lambda at: int(at.timestamp())))
    cfg = FeastSqliteStoreConfig(type="feast-sqlite", path=str(path), project=PROJECT)
    return lambda: FeastSqlOnlineStore("online", cfg)


@pytest.fixture
def feast_postgres(pg_url: str, pg_schema: str) -> Opener:
    table = f'"{pg_schema}"."{PROJECT}_user_stats"'
    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(  # Feast's PostgreSQLOnlineStore DDL
            f"CREATE TABLE {table} (entity_key BYTEA, feature_name TEXT, value BYTEA, "
            "value_text TEXT NULL, vector_value BYTEA NULL, event_ts TIMESTAMPTZ, "
            "created_ts TIMESTAMPTZ, PRIMARY KEY(entity_key, feature_name))"
        )
        conn.execute(
            sa.text(
                f"INSERT INTO {table} (entity_key, feature_name, value, event_ts) "
                "VALUES (:k, :f, :v, :t)"
            ),
            [
                {"k": r.entity_key, "f": r.feature_name, "v": r.value, "t": r.event_ts}
                for r in _feast_rows(FACTS, lambda at: at)
            ],
        )
    admin.dispose()
    url = search_path(pg_url, pg_schema)
    cfg = FeastSqlStoreConfig(type="feast-sql", url=SecretStr(url), project=PROJECT)
    return lambda: FeastSqlOnlineStore("online", cfg)


@pytest.fixture
def redis_feast(redis_planter: Planter) -> Opener:
    project = unique("dedupe")
    for fact in FACTS:
        redis_planter.hset(feast_key(project, [fact.uid]), _feast_redis_hash(fact))
    return lambda: RedisOnlineStore("online", config(project=project))


@pytest.fixture
def redis_hash(redis_planter: Planter) -> Opener:
    prefix = unique("dedupe")
    for fact in FACTS:
        redis_planter.hset(f"{prefix}:user_stats:{fact.uid}".encode(), _plain_hash(fact))
    cfg = config(
        layout="hash", key_template=prefix + ":{feature_view}:{user_id}", timestamp_format="epoch_s"
    )
    return lambda: RedisOnlineStore("online", cfg)


PLANTERS: dict[str, object] = {
    "feast-sqlite": "feast_sqlite",
    "feast-sql": pytest.param("feast_postgres", marks=pytest.mark.postgres),
    "redis-feast": "redis_feast",
    "redis-hash": "redis_hash",
}


@pytest.fixture(params=list(PLANTERS.values()), ids=list(PLANTERS))
def store(request: pytest.FixtureRequest) -> Iterator[OnlineStore]:
    """Each online backend, holding `FACTS`."""
    opener: Opener = request.getfixturevalue(request.param)
    opened = opener()
    try:
        yield opened
    finally:
        opened.close()


# --- the contract -------------------------------------------------------------------------------


def values(entity: EntityReading) -> dict[str, tuple[FeatureState, object]]:
    """Each read feature's state and value (event times aside: layouts keep them differently)."""
    return {name: (r.state, r.value) for name, r in entity.features.items()}


def test_one_reading_per_asked_key_in_the_asked_order(store: OnlineStore) -> None:
    """Entities come back in the asked order; a key never stored is present=False."""
    observation = store.read(USERS, ASKED, "offline")
    assert [e.key for e in observation.entities] == ASKED
    assert [e.present for e in observation.entities] == [True, True, True, True, False]
    assert (observation.asked, observation.found) == (5, 4)
    assert (observation.store, observation.feature_view, observation.population) == (
        "online",
        "user_stats",
        "offline",
    )


def test_a_complete_entity_reads_every_declared_feature_and_its_time(store: OnlineStore) -> None:
    """Values decode to the declared Python types, and the entity's event time is aware UTC."""
    entity = store.read(USERS, [(1,)], "offline").entities[0]
    assert values(entity) == {
        "revenue": (FeatureState.VALUE, 12.5),
        "orders": (FeatureState.VALUE, 3),
        "segment": (FeatureState.VALUE, "gold"),
    }
    assert entity.event_time == T1
    assert entity.event_time is not None
    assert entity.event_time.utcoffset() == timedelta(0)


def test_a_null_is_null_with_no_decode_error(store: OnlineStore) -> None:
    """A null written as the layout writes nulls reads NULL beside the entity's other values."""
    observation = store.read(USERS, [(2,)], "offline")
    assert values(observation.entities[0]) == {
        "revenue": (FeatureState.NULL, None),
        "orders": (FeatureState.VALUE, 4),
        "segment": (FeatureState.VALUE, "silver"),
    }
    assert observation.entities[0].event_time == T0
    assert observation.decode_errors == 0


def test_a_feature_never_written_is_absent(store: OnlineStore) -> None:
    """Features the entity was never written read ABSENT, not NULL."""
    entity = store.read(USERS, [(3,)], "offline").entities[0]
    assert entity.reading("revenue").value == 1.0
    assert entity.reading("orders").state is FeatureState.ABSENT
    assert entity.reading("segment").state is FeatureState.ABSENT


def test_a_value_that_does_not_decode_is_counted_not_raised(store: OnlineStore) -> None:
    """An undecodable value reads UNDECODABLE and counts one decode error; its neighbours read."""
    observation = store.read(USERS, ASKED, "offline")
    four = observation.entities[3]
    assert four.reading("revenue").state is FeatureState.UNDECODABLE
    assert four.reading("orders").value == 9
    assert observation.decode_errors == 1


def test_sampling_finds_the_stored_keys_and_no_other(store: OnlineStore) -> None:
    """Sampled keys are distinct stored keys, at most the size asked; a size above the number
    of keys finds every one."""
    few = store.sample_keys(USERS, 3)
    assert len(few) == len(set(few)) <= 3
    assert set(few) <= STORED
    assert set(store.sample_keys(USERS, 50)) == STORED
