"""FeastSqlOnlineStore on PostgreSQL (`feast-sql`): tables created with the DDL of Feast 0.67's
`PostgreSQLOnlineStore.update` (BYTEA keys and values, TIMESTAMPTZ times) in a schema of their
own, reached through the URL's search_path as Feast's `db_schema` is; the planted facts of the
SQLite tests, read back exactly, and random keys drawn from sampled pages at a bounded cost."""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from checks.model import FeatureView
from checks.observation import FeatureReading, FeatureState
from monitor.abc import EntityKey
from monitor.config import FeastSqlStoreConfig
from monitor.errors import QueryFailed, SourceNotFound
from monitor.feast.codec import encode_entity_key, encode_value
from monitor.stores.sql.feast_online import (
    DRAWS_PER_KEY,
    SAMPLE_ROUNDS,
    FeastSqlOnlineStore,
)
from tests.conftest import search_path
from tests.feast_fixtures import Row, entity_rows, key

pytestmark = pytest.mark.postgres

PROJECT = "shop"
T1 = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
LOGGER = "monitor.stores.sql.feast_online"


def view(name: str = "user_stats", **overrides: object) -> FeatureView:
    spec: dict[str, Any] = {
        "name": name,
        "entity": "user_id",
        "ttl": "1d",
        "features": {"revenue": "float", "orders": "int64", "segment": "string"},
        "online": {"store": "feast"},
    }
    spec.update(overrides)
    return FeatureView.model_validate(spec)


USERS = view()
PAIRS = view(
    "user_merchant",
    entity=["user_id", "merchant_id"],
    entity_types={"user_id": "int64", "merchant_id": "string"},
    features={"spend": "double"},
)


@dataclass(frozen=True)
class Schema:
    """A fresh PostgreSQL schema holding Feast online tables, and the URL that selects it."""

    name: str
    admin: sa.Engine
    url: str

    def create_table(self, table: str) -> None:
        """An empty online table with Feast 0.67's DDL and index."""
        quoted = f'"{self.name}"."{table}"'
        with self.admin.begin() as conn:
            conn.exec_driver_sql(
                f"CREATE TABLE {quoted} (entity_key BYTEA, feature_name TEXT, value BYTEA, "
                "value_text TEXT NULL, vector_value BYTEA NULL, event_ts TIMESTAMPTZ, "
                "created_ts TIMESTAMPTZ, PRIMARY KEY(entity_key, feature_name))"
            )
            conn.exec_driver_sql(f'CREATE INDEX "{table}_ek" ON {quoted} (entity_key)')

    def write(self, table: str, rows: Iterable[Row]) -> None:
        target = sa.table(
            table,
            sa.column("entity_key"),
            sa.column("feature_name"),
            sa.column("value"),
            sa.column("event_ts"),
            schema=self.name,
        )
        values = [
            {"entity_key": r.entity_key, "feature_name": r.feature_name, "value": r.value}
            | {"event_ts": r.event_ts}
            for r in rows
        ]
        with self.admin.begin() as conn:
            conn.execute(sa.insert(target), values)

    def sql(self, statement: str) -> None:
        with self.admin.begin() as conn:
            conn.exec_driver_sql(f'SET search_path TO "{self.name}"')
            conn.exec_driver_sql(statement)

    def store(
        self, timezone: str = "UTC", rng: random.Random | None = None, url: str | None = None
    ) -> FeastSqlOnlineStore:
        config = FeastSqlStoreConfig(
            type="feast-sql", url=SecretStr(url or self.url), project=PROJECT, timezone=timezone
        )
        return FeastSqlOnlineStore("feast_pg", config, rng=rng)


@pytest.fixture(scope="module")
def admin(pg_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(pg_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def schema(admin: sa.Engine, pg_url: str, pg_schema: str) -> Schema:
    return Schema(pg_schema, admin, search_path(pg_url, pg_schema))


def user(revenue: object, orders: object, segment: object, ts: object, uid: int) -> list[Row]:
    return entity_rows(
        key(uid),
        {
            "revenue": (revenue, "float"),
            "orders": (orders, "int64"),
            "segment": (segment, "string"),
        },
        ts,
    )


PLUS_ONE = timezone(timedelta(hours=1))


def plant_users(schema: Schema) -> None:
    """The user_stats facts the read tests assert (the SQLite tests' facts, in TIMESTAMPTZ)."""
    table = f"{PROJECT}_user_stats"
    schema.create_table(table)
    rows = [
        *user(12.5, 3, "gold", T1, uid=1),  # complete
        *user(None, 4, "", datetime(2026, 11, 26, 4, 0, tzinfo=UTC), uid=2),  # null revenue
        Row(key(3), "revenue", encode_value(1.0, "float"), T1),  # orders, segment absent
        Row(key(3), "legacy_score", encode_value(0.5, "double"), T1),  # undeclared
        Row(key(4), "revenue", b"\x48\x01", T1),  # corrupt value: unknown field 9
        Row(key(4), "orders", encode_value(9, "int64"), datetime(2026, 11, 26, 6, tzinfo=PLUS_ONE)),
        Row(key(5), "revenue", encode_value(2.0, "float"), None),  # no event time
        Row(key(5), "orders", encode_value((1, 2), "int64"), T1),  # a list value
        Row(key(5), "segment", None, T1),  # SQL NULL value
        *user(7.0, 7, "silver", T1, uid=6),  # present but never asked
    ]
    schema.write(table, rows)


@pytest.fixture
def store(schema: Schema) -> Iterator[FeastSqlOnlineStore]:
    plant_users(schema)
    opened = schema.store()
    try:
        yield opened
    finally:
        opened.close()


ASKED: list[EntityKey] = [(1,), (2,), (3,), (4,), (5,), (99,)]


# --- read: planted facts -----------------------------------------------------------------------


def test_empty_blobs_and_sql_nulls_are_null_and_an_empty_string_is_a_value(
    store: FeastSqlOnlineStore,
) -> None:
    """b"" and a NULL value read NULL without a decode error; "" is a present value."""
    observation = store.read(USERS, [(2,), (5,)], "offline")
    two, five = observation.entities
    at_four = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
    assert two.reading("revenue") == FeatureReading(FeatureState.NULL, None, at_four)
    assert two.reading("segment") == FeatureReading(FeatureState.VALUE, "", at_four)
    assert five.reading("segment") == FeatureReading(FeatureState.NULL, None, T1)
    assert observation.decode_errors == 0


def test_absent_undeclared_and_corrupt_features(store: FeastSqlOnlineStore) -> None:
    """Missing rows read ABSENT, undeclared names are reported, a corrupt value is counted."""
    observation = store.read(USERS, ASKED, "offline")
    three, four, five = observation.entities[2:5]
    assert set(three.features) == {"revenue"}
    assert three.reading("orders").state is FeatureState.ABSENT
    assert observation.undeclared_fields == frozenset({"legacy_score"})
    assert four.reading("revenue") == FeatureReading(FeatureState.UNDECODABLE, None, T1)
    assert five.reading("revenue") == FeatureReading(FeatureState.VALUE, 2.0, None)
    assert five.reading("orders").value == (1, 2)
    assert observation.decode_errors == 1


def test_timestamptz_written_with_an_offset_is_the_same_instant_in_utc(
    store: FeastSqlOnlineStore,
) -> None:
    """06:00+01:00 is 05:00 UTC."""
    entity = store.read(USERS, [(4,)], "offline").entities[0]
    assert entity.reading("orders").event_time == T1


def test_timestamptz_ignores_the_stores_zone_and_the_sessions(schema: Schema) -> None:
    """The store's `timezone` applies to naive times only, and a session TimeZone of Tokyo
    changes nothing: TIMESTAMPTZ is an instant."""
    plant_users(schema)
    tokyo = search_path(schema.url, schema.name, "-cTimeZone=Asia/Tokyo")
    opened = schema.store(timezone="Europe/Berlin", url=tokyo)
    try:
        entity = opened.read(USERS, [(1,)], "offline").entities[0]
    finally:
        opened.close()
    assert entity.reading("orders").event_time == T1
    assert entity.reading("orders").event_time.utcoffset() == timedelta(0)  # type: ignore[union-attr]  # the line above asserts it is not None


def test_compound_keys_are_read_by_their_sorted_serialization(schema: Schema) -> None:
    """A two-column key is found whatever the order of its join keys in the view."""
    schema.create_table(f"{PROJECT}_user_merchant")
    stored = encode_entity_key(("merchant_id", "user_id"), ("m1", 7), ("string", "int64"))
    schema.write(
        f"{PROJECT}_user_merchant", [Row(stored, "spend", encode_value(3.25, "double"), T1)]
    )
    opened = schema.store()
    try:
        observation = opened.read(PAIRS, [(7, "m1"), (7, "m2")], "offline")
    finally:
        opened.close()
    assert [e.present for e in observation.entities] == [True, False]
    assert observation.entities[0].reading("spend").value == 3.25


def test_the_views_online_table_overrides_the_default_name(store: FeastSqlOnlineStore) -> None:
    """`online.table` names the table (here Feast's versioned name) instead of {project}_{view}."""
    store_table = f"{PROJECT}_user_stats"
    custom = view(online={"store": "feast", "table": store_table})
    assert store.read(view("renamed", online=custom.online), [(1,), (99,)], "offline").found == 1


def test_each_read_logs_one_info_line_with_its_outcome(
    store: FeastSqlOnlineStore, caplog: pytest.LogCaptureFixture
) -> None:
    """One INFO line names the store, the view and table, keys asked and found."""
    with caplog.at_level(logging.INFO, logger=LOGGER):
        store.read(USERS, ASKED, "offline")
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(lines) == 1
    assert "store feast_pg: read view user_stats from shop_user_stats" in lines[0]
    assert "6 keys asked, 5 found, 1 decode errors in" in lines[0]


# --- errors and read-only ----------------------------------------------------------------------


def test_a_missing_table_is_source_not_found_naming_it(store: FeastSqlOnlineStore) -> None:
    """Reading, reading nothing, or sampling a view without a table raises SourceNotFound."""
    ghost = view("ghost_view")
    with pytest.raises(SourceNotFound, match="shop_ghost_view") as info:
        store.read(ghost, [(1,)], "offline")
    assert info.value.store == "feast_pg"
    with pytest.raises(SourceNotFound, match="shop_ghost_view"):
        store.read(ghost, [], "offline")
    with pytest.raises(SourceNotFound, match="shop_ghost_view"):
        store.sample_keys(ghost, 10)


def test_a_table_outside_the_search_path_is_not_found(schema: Schema, pg_url: str) -> None:
    """Without the schema on the search_path, Feast's table is not seen: db_schema matters."""
    plant_users(schema)
    opened = schema.store(url=pg_url)
    try:
        with pytest.raises(SourceNotFound, match="shop_user_stats"):
            opened.read(USERS, [(1,)], "offline")
    finally:
        opened.close()


def test_the_store_runs_in_a_read_only_transaction(store: FeastSqlOnlineStore) -> None:
    """Reads and samples leave the table as it was (the transaction is READ ONLY)."""
    before = store.read(USERS, ASKED, "offline")
    store.sample_keys(USERS, 3)
    assert store.read(USERS, ASKED, "offline") == before


def test_a_join_key_type_feast_keys_cannot_hold_fails_the_read(store: FeastSqlOnlineStore) -> None:
    """entity_types float is a configuration error reported as QueryFailed."""
    with pytest.raises(QueryFailed, match="'user_id' is declared float"):
        store.read(view(entity_types={"user_id": "float"}), [(1,)], "offline")


# --- sample_keys -------------------------------------------------------------------------------


def plant_many(schema: Schema, users: Sequence[int], features: int = 3) -> str:
    table = f"{PROJECT}_user_stats"
    schema.create_table(table)
    names = ["revenue", "orders", "segment"][:features]
    rows = [Row(key(u), n, encode_value(u, "int64"), T1) for u in users for n in names]
    for start in range(0, len(rows), 5000):
        schema.write(table, rows[start : start + 5000])
    return table


def sample(
    schema: Schema, size: int, rng: random.Random | None = None, of: FeatureView = USERS
) -> list[EntityKey]:
    opened = schema.store(rng=rng)
    try:
        return opened.sample_keys(of, size)
    finally:
        opened.close()


def test_sample_keys_returns_distinct_stored_keys_at_most_size(schema: Schema) -> None:
    """Sampled keys are distinct, held by the store, and no more than asked."""
    plant_many(schema, range(1, 51))
    keys = sample(schema, 10)
    assert len(keys) == len(set(keys)) == 10
    assert set(keys) <= {(u,) for u in range(1, 51)}


def test_sample_keys_returns_every_key_of_a_small_table(schema: Schema) -> None:
    """Asking for more keys than stored reads the whole (small) table once: each key once."""
    plant_many(schema, range(1, 51))
    assert sorted(sample(schema, 500)) == [(u,) for u in range(1, 51)]


def test_sample_keys_of_an_empty_table_is_empty(schema: Schema) -> None:
    """An empty table samples to no keys, without error."""
    schema.create_table(f"{PROJECT}_user_stats")
    assert sample(schema, 10) == []
    assert sample(schema, 0) == []


def test_sample_keys_orders_compound_keys_as_the_view_declares(schema: Schema) -> None:
    """Keys stored sorted by name (merchant_id, user_id) come back as (user_id, merchant_id)."""
    table = f"{PROJECT}_user_merchant"
    schema.create_table(table)
    stored = {(u, f"m{u % 3}") for u in range(1, 21)}
    rows = [
        Row(
            encode_entity_key(("user_id", "merchant_id"), k, ("int64", "string")),
            "spend",
            encode_value(1.0, "double"),
            T1,
        )
        for k in stored
    ]
    schema.write(table, rows)
    assert set(sample(schema, 100, of=PAIRS)) == stored


def test_sample_keys_skips_and_logs_keys_that_do_not_decode(
    schema: Schema, caplog: pytest.LogCaptureFixture
) -> None:
    """Garbage and other entities' keys are skipped and counted in one warning."""
    table = plant_many(schema, range(1, 6), features=1)
    other_entity = encode_entity_key(["driver_id"], [1], ["int64"])
    schema.write(table, [Row(b"garbage", "orders", b"", T1), Row(other_entity, "orders", b"", T1)])
    with caplog.at_level(logging.INFO, logger=LOGGER):
        keys = sample(schema, 100)
    assert sorted(keys) == [(u,) for u in range(1, 6)]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "store feast_pg view user_stats: 2 sampled keys did not decode and were skipped"
    ]


@dataclass
class Statements:
    """Every statement sent to PostgreSQL while it is installed, with its parameters."""

    sent: list[tuple[str, Any]]

    def on(self, *args: object) -> None:
        """SQLAlchemy's before_cursor_execute: (conn, cursor, statement, parameters, ...)."""
        statement, parameters = args[2], args[3]
        assert isinstance(statement, str)
        self.sent.append((statement, parameters))

    def samples(self) -> list[tuple[str, Any]]:
        return [(s, p) for s, p in self.sent if "TABLESAMPLE" in s]


@pytest.fixture
def statements() -> Iterator[Statements]:
    recorded = Statements([])
    sa.event.listen(sa.Engine, "before_cursor_execute", recorded.on)
    try:
        yield recorded
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", recorded.on)


def limit_of(statement: str, parameters: Mapping[str, object]) -> int:
    """The LIMIT bound to a sampling statement."""
    match = re.search(r"LIMIT %\((\w+)\)s", statement)
    assert match is not None, statement
    bound = parameters[match.group(1)]
    assert isinstance(bound, int)
    return bound


def test_sampling_reads_sampled_pages_with_a_limit_bounded_by_size(
    schema: Schema, statements: Statements
) -> None:
    """On 30,000 rows, sampling 5 keys runs TABLESAMPLE SYSTEM statements only, each LIMITed
    to max(DRAWS_PER_KEY x 5, 32) rows, in at most SAMPLE_ROUNDS rounds; no statement reads the
    table without sampling it or naming keys."""
    table = plant_many(schema, range(1, 10_001))
    schema.sql(f"ANALYZE {table}")
    keys = sample(schema, 5, rng=random.Random(3))
    assert len(set(keys)) == 5
    samples = statements.samples()
    assert 1 <= len(samples) <= SAMPLE_ROUNDS
    assert all("TABLESAMPLE system" in s for s, _ in samples)
    assert max(limit_of(s, p) for s, p in samples) <= max(DRAWS_PER_KEY * 5, 32)
    reads = [s for s, _ in statements.sent if s.startswith("SELECT") and table in s]
    assert all("TABLESAMPLE" in s or "WHERE" in s for s in reads), reads


def test_sampling_a_table_never_analyzed_still_finds_keys(
    schema: Schema, statements: Statements
) -> None:
    """Before the first ANALYZE the catalog knows no row count; pages times a guessed density
    sizes the first draw, and the result is still `size` distinct keys within the bound."""
    plant_many(schema, range(1, 4001), features=2)
    keys = sample(schema, 20, rng=random.Random(5))
    assert len(set(keys)) == 20
    assert max(limit_of(s, p) for s, p in statements.samples()) <= max(DRAWS_PER_KEY * 20, 32)


def test_sampling_with_stale_statistics_stays_bounded(
    schema: Schema, statements: Statements
) -> None:
    """Statistics taken when the table held 10 entities, then 5,000 more rows: the LIMIT caps
    every draw, and keys are still found."""
    table = plant_many(schema, range(1, 11), features=1)
    schema.sql(f"ANALYZE {table}")
    schema.write(table, [Row(key(u), "orders", b"", T1) for u in range(11, 5011)])
    keys = sample(schema, 8, rng=random.Random(9))
    assert len(set(keys)) == 8
    assert max(limit_of(s, p) for s, p in statements.samples()) <= max(DRAWS_PER_KEY * 8, 32)


def test_sampling_is_random(schema: Schema) -> None:
    """Two differently seeded samples of 10 among 3,000 entities differ."""
    table = plant_many(schema, range(1, 3001), features=1)
    schema.sql(f"ANALYZE {table}")
    first = sample(schema, 10, rng=random.Random(1))
    second = sample(schema, 10, rng=random.Random(2))
    assert set(first) != set(second)
