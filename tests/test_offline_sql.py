"""The SQL offline store against real engines: a SQLite file, a DuckDB file and PostgreSQL.

Every warehouse holds the same planted facts (see `rows`), so every backend must measure the
same exact numbers. Naive timestamps are wall times in Europe/Berlin (UTC+2 in July), the
store's zone; aware ones are TIMESTAMPTZ.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from checks.model import FeatureView
from checks.observation import Column, MaxTimestamp, NullCount, OfflineMetric, RowCount
from monitor.config import SqlStoreConfig
from monitor.errors import QueryFailed, SourceNotFound
from monitor.stores.sql.offline import SqlOfflineStore

ZONE = "Europe/Berlin"
SCHEDULED = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
SIX_HOURS = timedelta(hours=6)
ONE_HOUR = timedelta(hours=1)
NULL_IN_SIX_HOURS = frozenset(range(0, 9 * 37, 9))  # 37 rows: i = 0, 9, ..., 324
NULL_ELSEWHERE = frozenset({*range(400, 413), -1, -2})  # 13 older rows, 2 future ones
NEWEST = SCHEDULED + timedelta(minutes=5)

ALL_METRICS: frozenset[OfflineMetric] = frozenset(
    {
        RowCount(SIX_HOURS),
        RowCount(ONE_HOUR),
        RowCount(None),
        NullCount("value", SIX_HOURS),
        NullCount("value", ONE_HOUR),
        NullCount("value", None),
        NullCount("clicks", SIX_HOURS),
        MaxTimestamp("event_timestamp"),
    }
)
EXPECTED = {
    RowCount(SIX_HOURS): 360,  # i = 0 (at scheduled) .. 359; i = 360 sits on the open bound
    RowCount(ONE_HOUR): 60,
    RowCount(None): 1000,
    NullCount("value", SIX_HOURS): 37,
    NullCount("value", ONE_HOUR): 7,  # i = 0, 9, ..., 54
    NullCount("value", None): 52,
    NullCount("clicks", SIX_HOURS): 0,
    MaxTimestamp("event_timestamp"): NEWEST,
}


def rows(aware: bool, drop: str | None = None, text_time: bool = False) -> list[dict[str, Any]]:
    """1000 rows, one a minute: row i has event time SCHEDULED - i minutes, i = -5 .. 994 (five
    rows lie after the scheduled time), user_id i // 4, and a null value where planted."""
    out = []
    for i in range(-5, 995):
        moment = SCHEDULED - timedelta(minutes=i)
        local = moment if aware else moment.astimezone(ZoneInfo(ZONE)).replace(tzinfo=None)
        stamp: datetime | str = local.isoformat(sep=" ") if text_time else local
        row = {
            "id": i,
            "user_id": i // 4,
            "region": "eu" if (i // 4) % 2 == 0 else "us",
            "event_timestamp": stamp,
            "value": None if i in NULL_IN_SIX_HOURS | NULL_ELSEWHERE else i / 10,
            "clicks": i % 7,
            "note": f"row {i}",
        }
        if drop:
            del row[drop]
        out.append(row)
    return out


def table(
    name: str, schema: str | None, aware: bool, drop: str | None, text_time: bool
) -> sa.Table:
    time_type: sa.types.TypeEngine[Any] = sa.String(40) if text_time else sa.DateTime(aware)
    columns: list[sa.Column[Any]] = [
        sa.Column("id", sa.Integer),
        sa.Column("user_id", sa.Integer),
        sa.Column("region", sa.String(8)),
        sa.Column("event_timestamp", time_type),
        sa.Column("value", sa.Float),
        sa.Column("clicks", sa.Integer),
        sa.Column("note", sa.String(40)),
    ]
    return sa.Table(name, sa.MetaData(), *(c for c in columns if c.name != drop), schema=schema)


def plant(engine: sa.Engine, schema: str | None, aware: bool, prefix: str = "") -> None:
    """The tables every warehouse holds: user_stats (the facts), no_value (the same rows
    without the `value` column), text_time (event time kept as text) and empty."""
    with engine.begin() as conn:
        if schema:
            conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
        for name, drop, text_time in [
            ("user_stats", None, False),
            ("no_value", "value", False),
            ("text_time", None, True),
            ("empty", None, False),
        ]:
            target = table(f"{prefix}{name}", schema, aware, drop, text_time)
            target.create(conn)
            if name != "empty":
                conn.execute(sa.insert(target), rows(aware, drop, text_time))


@dataclass(frozen=True)
class Warehouse:
    """A database holding the planted tables; `prefix` is how a view names them."""

    url: str
    prefix: str


@pytest.fixture(scope="module")
def sqlite_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    path = tmp_path_factory.mktemp("sqlite") / "warehouse.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    plant(engine, None, aware=False)
    engine.dispose()
    return Warehouse(f"sqlite:///{path}", "")


@pytest.fixture(scope="module")
def duckdb_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("duckdb") / "warehouse.duckdb"
    engine = sa.create_engine(f"duckdb:///{path}")
    plant(engine, None, aware=False)
    plant(engine, "features", aware=True)
    engine.dispose()
    return path


@pytest.fixture(scope="module")
def pg_schema(pg_url: str) -> Iterator[str]:
    """A schema of this module in the session's database, holding naive tables and, with the
    `tz_` prefix, TIMESTAMPTZ ones."""
    schema = f"offline_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(pg_url)
    try:
        plant(engine, schema, aware=False)
        plant(engine, schema, aware=True, prefix="tz_")
        yield schema
    finally:
        with engine.begin() as conn:
            conn.execute(sa.schema.DropSchema(schema, cascade=True, if_exists=True))
        engine.dispose()


BACKENDS = [
    pytest.param("sqlite", id="sqlite-naive"),
    pytest.param("duckdb", id="duckdb-naive"),
    pytest.param("duckdb-tz", id="duckdb-aware-schema"),
    pytest.param("postgres", id="postgres-naive-schema", marks=pytest.mark.postgres),
    pytest.param("postgres-tz", id="postgres-aware-schema", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def warehouse(request: pytest.FixtureRequest) -> Warehouse:
    backend: str = request.param
    if backend == "sqlite":
        found: Warehouse = request.getfixturevalue("sqlite_warehouse")
        return found
    if backend.startswith("duckdb"):
        path: Path = request.getfixturevalue("duckdb_file")
        return Warehouse(f"duckdb:///{path}", "features." if backend.endswith("tz") else "")
    url: str = request.getfixturevalue("pg_url")
    schema: str = request.getfixturevalue("pg_schema")
    return Warehouse(url, f"{schema}.tz_" if backend.endswith("tz") else f"{schema}.")


def open_store(url: str) -> SqlOfflineStore:
    config = SqlStoreConfig.model_validate({"type": "sql", "url": url, "timezone": ZONE})
    return SqlOfflineStore("warehouse", config)


@pytest.fixture
def store(warehouse: Warehouse) -> Iterator[SqlOfflineStore]:
    opened = open_store(warehouse.url)
    try:
        yield opened
    finally:
        opened.close()


def view(table_name: str, entity: str | tuple[str, ...] = "user_id") -> FeatureView:
    return FeatureView.model_validate(
        {
            "name": "user_stats",
            "entity": entity,
            "ttl": "1d",
            "features": {"value": "float", "clicks": "int"},
            "offline": {"store": "warehouse", "table": table_name},
        }
    )


@contextlib.contextmanager
def statements(store: SqlOfflineStore) -> Iterator[list[str]]:
    """Every statement the store's engine sends while the block runs."""
    sent: list[str] = []

    def record(*args: object) -> None:  # conn, cursor, statement, parameters, context, many
        sent.append(str(args[2]))

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)


def reads_table(statement: str) -> bool:
    """A SELECT whose FROM clause is one of the planted tables (not a catalog table)."""
    return bool(
        re.match(r"\s*SELECT\b", statement, re.IGNORECASE)
        and re.search(r"\bFROM\s+[\w\".]*(user_stats|no_value)\b", statement, re.IGNORECASE)
    )


def test_row_counts_cover_the_half_open_window_before_the_scheduled_time(
    store: SqlOfflineStore, warehouse: Warehouse
) -> None:
    metrics = frozenset({RowCount(SIX_HOURS), RowCount(ONE_HOUR), RowCount(None)})

    observation = store.measure(view(f"{warehouse.prefix}user_stats"), metrics, SCHEDULED)

    assert dict(observation.values) == {m: EXPECTED[m] for m in metrics}
    assert all(type(v) is int for v in observation.values.values())


def test_null_counts_count_null_values_in_the_same_window(
    store: SqlOfflineStore, warehouse: Warehouse
) -> None:
    metrics = frozenset(m for m in ALL_METRICS if isinstance(m, NullCount))

    observation = store.measure(view(f"{warehouse.prefix}user_stats"), metrics, SCHEDULED)

    assert dict(observation.values) == {m: EXPECTED[m] for m in metrics}


def test_max_timestamp_is_the_newest_event_time_in_utc(
    store: SqlOfflineStore, warehouse: Warehouse
) -> None:
    metric = MaxTimestamp("event_timestamp")

    observation = store.measure(
        view(f"{warehouse.prefix}user_stats"), frozenset({metric}), SCHEDULED
    )

    newest = observation.values[metric]
    assert newest == NEWEST
    assert isinstance(newest, datetime)
    assert newest.utcoffset() == timedelta(0)


def test_all_metrics_are_measured_by_one_aggregate_select(
    store: SqlOfflineStore, warehouse: Warehouse
) -> None:
    source = view(f"{warehouse.prefix}user_stats")
    with statements(store) as sent:
        store.measure(source, frozenset({RowCount(None)}), SCHEDULED)
        one_metric = list(sent)
        sent.clear()
        observation = store.measure(source, ALL_METRICS, SCHEDULED)

    assert dict(observation.values) == EXPECTED
    assert len([s for s in sent if reads_table(s)]) == 1
    assert len(sent) == len(one_metric)  # the catalog lookup and one SELECT, whatever N is


def test_columns_are_reported_with_their_families(
    store: SqlOfflineStore, warehouse: Warehouse
) -> None:
    observation = store.measure(view(f"{warehouse.prefix}user_stats"), frozenset(), SCHEDULED)

    assert [(c.name, c.family) for c in observation.columns] == [
        ("id", "int"),
        ("user_id", "int"),
        ("region", "string"),
        ("event_timestamp", "timestamp"),
        ("value", "float"),
        ("clicks", "int"),
        ("note", "string"),
    ]
    assert observation.values == {}


def test_a_window_without_rows_counts_zero(store: SqlOfflineStore, warehouse: Warehouse) -> None:
    before_any_row = SCHEDULED - timedelta(days=30)

    observation = store.measure(view(f"{warehouse.prefix}user_stats"), ALL_METRICS, before_any_row)

    windowed = {m for m in ALL_METRICS if getattr(m, "window", None) is not None}
    assert {m: observation.values[m] for m in windowed} == dict.fromkeys(windowed, 0)


def test_an_empty_table_has_no_newest_timestamp_and_zero_counts(
    store: SqlOfflineStore, warehouse: Warehouse
) -> None:
    observation = store.measure(view(f"{warehouse.prefix}empty"), ALL_METRICS, SCHEDULED)

    assert observation.values[MaxTimestamp("event_timestamp")] is None
    assert {v for m, v in observation.values.items() if not isinstance(m, MaxTimestamp)} == {0}


def test_a_missing_column_makes_its_metric_unavailable_and_the_others_measured(
    store: SqlOfflineStore, warehouse: Warehouse
) -> None:
    table_name = f"{warehouse.prefix}no_value"

    observation = store.measure(view(table_name), ALL_METRICS, SCHEDULED)

    lost = {m for m in ALL_METRICS if isinstance(m, NullCount) and m.column == "value"}
    assert set(observation.unavailable) == lost
    assert set(observation.unavailable.values()) == {
        f"column 'value' is not in table '{table_name}'"
    }
    assert dict(observation.values) == {m: v for m, v in EXPECTED.items() if m not in lost}


def test_an_event_time_kept_as_text_makes_windowed_metrics_unavailable(
    store: SqlOfflineStore, warehouse: Warehouse
) -> None:
    table_name = f"{warehouse.prefix}text_time"

    observation = store.measure(view(table_name), ALL_METRICS, SCHEDULED)

    measured = {RowCount(None), NullCount("value", None)}
    assert dict(observation.values) == {m: EXPECTED[m] for m in measured}
    assert set(observation.unavailable) == ALL_METRICS - measured
    assert observation.unavailable[MaxTimestamp("event_timestamp")] == (
        f"column 'event_timestamp' of table '{table_name}' is not a timestamp (found string)"
    )


def test_a_missing_table_raises_source_not_found_naming_it(
    store: SqlOfflineStore, warehouse: Warehouse
) -> None:
    table_name = f"{warehouse.prefix}no_such_table"

    with pytest.raises(SourceNotFound, match=re.escape(table_name)) as raised:
        store.measure(view(table_name), ALL_METRICS, SCHEDULED)

    assert raised.value.store == "warehouse"


def test_sample_entities_returns_every_distinct_key_of_the_closed_window(
    store: SqlOfflineStore, warehouse: Warehouse
) -> None:
    # Both bounds hold a key's only row in the window: user 90 by row 360 (rows 360..363),
    # user 0 by row 3 (rows 0..3); rows 0..2 and users -2, -1 are after `until`.
    since = SCHEDULED - timedelta(minutes=360)
    until = SCHEDULED - timedelta(minutes=3)

    keys = store.sample_entities(view(f"{warehouse.prefix}user_stats"), 1000, since, until)

    assert sorted(keys) == [(user,) for user in range(91)]


def test_sample_entities_returns_at_most_size_distinct_keys(
    store: SqlOfflineStore, warehouse: Warehouse
) -> None:
    since = SCHEDULED - timedelta(minutes=359)

    keys = store.sample_entities(view(f"{warehouse.prefix}user_stats"), 10, since, SCHEDULED)

    assert len(keys) == len(set(keys)) == 10
    assert {user for (user,) in keys} <= set(range(90))


def test_sample_entities_orders_keys_as_the_view_joins_them(
    store: SqlOfflineStore, warehouse: Warehouse
) -> None:
    source = view(f"{warehouse.prefix}user_stats", entity=("region", "user_id"))

    keys = store.sample_entities(source, 1000, SCHEDULED - timedelta(minutes=7), SCHEDULED)

    assert sorted(keys) == [("eu", 0), ("us", 1)]


def test_sample_entities_lets_the_engine_draw_the_random_sample(
    store: SqlOfflineStore, warehouse: Warehouse
) -> None:
    source = view(f"{warehouse.prefix}user_stats")
    since = SCHEDULED - timedelta(minutes=359)
    with statements(store) as sent:
        draws = {frozenset(store.sample_entities(source, 10, since, SCHEDULED)) for _ in range(3)}

    assert len(draws) > 1  # three equal draws of 10 among 90: about 1 in 10^25
    sampling = [s for s in sent if "DISTINCT" in s]
    assert len(sampling) == 3
    assert re.search(r"ORDER BY random\(\)\s+LIMIT", sampling[0])


def test_sample_entities_of_a_missing_key_column_fails_naming_it(
    store: SqlOfflineStore, warehouse: Warehouse
) -> None:
    source = view(f"{warehouse.prefix}user_stats", entity="account_id")

    with pytest.raises(QueryFailed, match="account_id"):
        store.sample_entities(source, 10, SCHEDULED - ONE_HOUR, SCHEDULED)


def test_measure_logs_one_line_with_store_table_metric_count_and_time(
    store: SqlOfflineStore, warehouse: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    table_name = f"{warehouse.prefix}user_stats"

    with caplog.at_level(logging.INFO, logger="monitor.stores.sql"):
        store.measure(view(table_name), ALL_METRICS, SCHEDULED)

    assert len(caplog.records) == 1
    line = caplog.records[0].getMessage()
    assert re.fullmatch(
        rf"store warehouse: measured 8 of 8 metrics of {re.escape(table_name)} in [\d.]+ ms", line
    )


def test_a_failed_measure_logs_one_line_naming_the_table_and_the_reason(
    store: SqlOfflineStore, warehouse: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    table_name = f"{warehouse.prefix}no_such_table"

    with caplog.at_level(logging.INFO, logger="monitor.stores.sql"), pytest.raises(SourceNotFound):
        store.measure(view(table_name), ALL_METRICS, SCHEDULED)

    assert len(caplog.records) == 1
    line = caplog.records[0].getMessage()
    assert line.startswith(f"store warehouse: measuring {table_name} failed after ")
    assert line.endswith("does not exist")


def test_a_naive_scheduled_time_is_refused(store: SqlOfflineStore, warehouse: Warehouse) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.measure(
            view(f"{warehouse.prefix}user_stats"), ALL_METRICS, SCHEDULED.replace(tzinfo=None)
        )


def file_state(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def test_the_store_never_writes_to_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "watched.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    plant(engine, None, aware=False)
    engine.dispose()
    before = file_state(path)
    store = open_store(f"sqlite:///{path}")

    store.measure(view("user_stats"), ALL_METRICS, SCHEDULED)
    store.sample_entities(view("user_stats"), 10, SCHEDULED - ONE_HOUR, SCHEDULED)
    store.close()

    assert file_state(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["watched.db"]  # no journal left


@pytest.mark.postgres
def test_the_password_of_the_url_never_reaches_the_log(
    pg_url: str, pg_schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cret-" + uuid.uuid4().hex[:6]  # trust auth: PostgreSQL ignores the password
    url = sa.make_url(pg_url).set(password=secret).render_as_string(hide_password=False)

    with caplog.at_level(logging.DEBUG, logger="monitor.stores.sql"):
        store = open_store(url)
        store.measure(view(f"{pg_schema}.user_stats"), ALL_METRICS, SCHEDULED)
        with pytest.raises(SourceNotFound) as raised:
            store.measure(view(f"{pg_schema}.absent"), ALL_METRICS, SCHEDULED)
        store.close()

    assert len(caplog.records) == 3  # the engine (URL masked), the measure, the failure
    assert "***" in caplog.records[0].getMessage()
    assert secret not in caplog.text
    assert secret not in str(raised.value)


def test_naive_times_are_read_in_the_store_zone(sqlite_warehouse: Warehouse) -> None:
    """The same rows read by a store that believes they are UTC shift by Berlin's two hours."""
    config = SqlStoreConfig.model_validate(
        {"type": "sql", "url": sqlite_warehouse.url, "timezone": "UTC"}
    )
    utc_store = SqlOfflineStore("warehouse", config)

    observation = utc_store.measure(view("user_stats"), ALL_METRICS, SCHEDULED)
    utc_store.close()

    assert observation.values[MaxTimestamp("event_timestamp")] == NEWEST + timedelta(hours=2)
    assert observation.values[NullCount("value", SIX_HOURS)] == 36  # 23 planted + 13 older


def test_columns_carry_the_native_type(sqlite_warehouse: Warehouse) -> None:
    store = open_store(sqlite_warehouse.url)

    observation = store.measure(view("user_stats"), frozenset(), SCHEDULED)
    store.close()

    assert observation.columns[3] == Column("event_timestamp", "timestamp", "DATETIME")
