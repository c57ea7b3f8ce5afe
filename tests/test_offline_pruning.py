"""Offline scans that read only what the windows need: a Hive-partitioned Parquet dataset read
only in the partitions overlapping the measured windows (DuckDB's EXPLAIN ANALYZE counts the
files), and freshness on a PostgreSQL table answered from its index (EXPLAIN shows a backward
index scan), both with exactly the values a full scan gives, in one statement per run.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from checks.checkfile import CheckFile
from checks.errors import ConfigError
from checks.model import FeatureView
from checks.observation import (
    FutureCount,
    LatenessCount,
    MaxTimestamp,
    NullCount,
    OfflineMetric,
    RowCount,
    ValueStat,
)
from checks.source import load_yaml, validate
from monitor.config import ParquetStoreConfig, SqlStoreConfig
from monitor.errors import QueryFailed
from monitor.stores.sql.offline import AggregateStore
from monitor.stores.sql.parquet import ParquetOfflineStore
from monitor.stores.sql.table import SqlOfflineStore

ZONE = "Europe/Berlin"
DAYS = 10
# Row i (0 .. 10 * 24 * 4 - 1): event time 2026-12-01 00:00 Berlin + 15 min * i (naive, Berlin
# wall time), ingested 7 minutes later, a null value every 5th row; partition: its Berlin date.
FACTS = f"""
SELECT i AS id, i % 40 AS user_id,
       TIMESTAMP '2026-12-01 00:00:00' + to_minutes(15 * i) AS event_timestamp,
       TIMESTAMP '2026-12-01 00:07:00' + to_minutes(15 * i) AS created_ts,
       CASE WHEN i % 5 = 0 THEN NULL ELSE i / 10 END AS value,
       CAST(TIMESTAMP '2026-12-01 00:00:00' + to_minutes(15 * i) AS DATE) AS event_date,
       strftime(TIMESTAMP '2026-12-01 00:00:00' + to_minutes(15 * i), '%Y-%m') AS event_month
FROM range(0, {DAYS} * 24 * 4) AS r(i)
"""
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WINDOWED: frozenset[OfflineMetric] = frozenset(
    {
        RowCount(6 * HOUR),
        RowCount(DAY),
        NullCount("value", DAY),
        ValueStat("value", "max", 6 * HOUR),
        LatenessCount("created_ts", timedelta(minutes=10), DAY),
    }
)
FRESHNESS: frozenset[OfflineMetric] = frozenset(
    {MaxTimestamp("event_timestamp", timedelta(0)), FutureCount("event_timestamp", timedelta(0))}
)
EVERYTHING = WINDOWED | FRESHNESS | {MaxTimestamp("event_timestamp"), RowCount(None)}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root holding `by_day/event_date=<date>/` (ten partitions), `by_month/event_month=
    <YYYY-MM>/` (one) and `flat.parquet` (the same rows in one file, no partition)."""
    root = tmp_path_factory.mktemp("lake")
    engine = sa.create_engine("duckdb:///:memory:")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE TEMP TABLE facts AS {FACTS}")
        conn.exec_driver_sql(
            f"COPY (SELECT * EXCLUDE (event_month) FROM facts) TO '{root / 'by_day'}' "
            "(FORMAT parquet, PARTITION_BY (event_date))"
        )
        conn.exec_driver_sql(
            f"COPY (SELECT * EXCLUDE (event_date) FROM facts) TO '{root / 'by_month'}' "
            "(FORMAT parquet, PARTITION_BY (event_month))"
        )
        conn.exec_driver_sql(
            f"COPY (SELECT * EXCLUDE (event_date, event_month) FROM facts) "
            f"TO '{root / 'flat.parquet'}' (FORMAT parquet)"
        )
    engine.dispose()
    return root


@pytest.fixture
def parquet(lake: Path) -> Iterator[ParquetOfflineStore]:
    config = ParquetStoreConfig.model_validate(
        {"type": "parquet", "root": str(lake), "timezone": ZONE}
    )
    store = ParquetOfflineStore("lake", config)
    try:
        yield store
    finally:
        store.close()


def view(offline: dict[str, Any]) -> FeatureView:
    return FeatureView.model_validate(
        {
            "name": "events",
            "entity": "user_id",
            "ttl": "1d",
            "features": {"value": "float"},
            "offline": {"store": "lake", "ingested_at": "created_ts", **offline},
        }
    )


BY_DAY = view({"path": "by_day", "partition": {"column": "event_date", "by": "day"}})
BY_MONTH = view({"path": "by_month", "partition": {"column": "event_month", "by": "month"}})
UNPRUNED = view({"path": "by_day"})
FLAT = view({"path": "flat.parquet"})


@dataclass
class Sent:
    """The statements an engine was sent, with their parameters."""

    statements: list[tuple[str, Any]] = field(default_factory=list)

    def reading(self, pattern: str) -> list[tuple[str, Any]]:
        return [s for s in self.statements if re.search(pattern, s[0])]


@contextlib.contextmanager
def sending(engine: sa.Engine) -> Iterator[Sent]:
    """What `engine` is sent while the block runs."""
    recorded = Sent()

    def record(*args: object) -> None:  # conn, cursor, statement, parameters, context, many
        recorded.statements.append((str(args[2]), args[3]))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield recorded
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def explain(store: AggregateStore, statement: tuple[str, Any], how: str = "EXPLAIN") -> str:
    """The plan of a statement the store sent, with its parameters, as one text."""
    text, parameters = statement
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(f"{how} {text}", parameters).all()
    return "\n".join(str(row[-1]) for row in rows)


def files_read(plan: str) -> int:
    found = re.search(r"Total Files Read:\s*(\d+)", plan)
    assert found is not None, plan
    return int(found[1])


# --- Parquet partitions -----------------------------------------------------------------------

SCHEDULED_TIMES = [
    pytest.param(datetime(2026, 12, 6, 11, 0, tzinfo=UTC), id="noon"),  # 12:00 in Berlin
    pytest.param(datetime(2026, 12, 5, 23, 0, tzinfo=UTC), id="midnight"),  # 00:00, Dec 6
    pytest.param(datetime(2026, 12, 10, 22, 50, tzinfo=UTC), id="after-the-last-day"),
]


@pytest.mark.parametrize("scheduled", SCHEDULED_TIMES)
@pytest.mark.parametrize("metrics", [WINDOWED, WINDOWED | FRESHNESS, EVERYTHING])
@pytest.mark.parametrize("pruned", [BY_DAY, BY_MONTH], ids=["by-day", "by-month"])
def test_pruned_partitions_measure_what_one_flat_file_measures(
    parquet: ParquetOfflineStore,
    pruned: FeatureView,
    metrics: frozenset[OfflineMetric],
    scheduled: datetime,
) -> None:
    """Every value read from the partitions the windows overlap equals the full scan's, even
    when a window starts or ends on a partition's first instant."""
    flat = parquet.measure(FLAT, metrics, scheduled)
    observed = parquet.measure(pruned, metrics, scheduled)

    assert dict(observed.values) == dict(flat.values)
    assert observed.unavailable == {}
    assert len(observed.values) == len(metrics)


def test_a_one_day_window_reads_two_of_ten_day_partitions(
    parquet: ParquetOfflineStore,
) -> None:
    """At noon, windows of up to a day overlap today's and yesterday's partitions: DuckDB
    filters the files by the partition column and opens those two; without the declaration it
    opens all ten."""
    scheduled = datetime(2026, 12, 6, 11, 0, tzinfo=UTC)
    with sending(parquet.engine) as sent:
        parquet.measure(BY_DAY, WINDOWED, scheduled)
        parquet.measure(UNPRUNED, WINDOWED, scheduled)
    pruned, unpruned = sent.reading(r"^SELECT\b")

    plan = explain(parquet, pruned, "EXPLAIN ANALYZE")
    filters = plan[plan.index("File Filters:") : plan.index("Scanning Files:")]
    assert "event_date BETWEEN '2026-12-05'::DATE AND '2026-12-06'::DATE" in filters, plan
    assert re.search(r"Scanning Files: 2/10\b", plan), plan
    assert files_read(plan) == 2
    assert files_read(explain(parquet, unpruned, "EXPLAIN ANALYZE")) == DAYS


def test_freshness_alone_bounds_the_partitions_from_above_only(
    parquet: ParquetOfflineStore,
) -> None:
    """The newest time at or before the scheduled time may lie in any earlier partition: the
    days after the scheduled one are left out, none before it."""
    newest = MaxTimestamp("event_timestamp", timedelta(0))
    with sending(parquet.engine) as sent:
        parquet.measure(BY_DAY, frozenset({newest}), datetime(2026, 12, 6, 11, tzinfo=UTC))
    (statement,) = sent.reading(r"^SELECT\b")

    assert files_read(explain(parquet, statement, "EXPLAIN ANALYZE")) == 6


def test_a_metric_of_the_whole_history_reads_every_partition(
    parquet: ParquetOfflineStore,
) -> None:
    """A row count of every row needs every file; the query says nothing about partitions."""
    with sending(parquet.engine) as sent:
        parquet.measure(BY_DAY, WINDOWED | {RowCount(None)}, datetime(2026, 12, 6, 11, tzinfo=UTC))
    (statement,) = sent.reading(r"^SELECT\b")

    assert "WHERE" not in statement[0]
    assert files_read(explain(parquet, statement, "EXPLAIN ANALYZE")) == DAYS


def test_a_path_without_the_partition_directories_is_an_error_naming_the_column(
    parquet: ParquetOfflineStore,
) -> None:
    source = view({"path": "flat.parquet", "partition": {"column": "event_date"}})

    with pytest.raises(QueryFailed) as raised:
        parquet.measure(source, WINDOWED, datetime(2026, 12, 6, 11, tzinfo=UTC))

    assert "has no partition column 'event_date'" in str(raised.value)
    assert "Parquet path 'flat.parquet'" in str(raised.value)


# --- the declaration --------------------------------------------------------------------------

DECLARED = """feature_views:
  - name: v
    entity: id
    ttl: 1d
    features: {amount: float}
    offline:
      store: lake
      LOCATION
      partition: PARTITION
"""


@pytest.mark.parametrize(
    ("location", "partition", "expected"),
    [
        (
            "path: events",
            "{column: event_date, by: week}",
            "t.yaml:9: feature_views[0].offline.partition.by: ",
        ),
        (
            "path: events",
            "{column: 'event date'}",
            "t.yaml:9: feature_views[0].offline.partition.column: ",
        ),
        (
            "table: events",
            "{column: event_date}",
            "t.yaml:6: feature_views[0].offline: expected `partition` only with `path`",
        ),
    ],
    ids=["granularity", "column", "on-a-table"],
)
def test_a_bad_partition_declaration_is_a_located_error(
    location: str, partition: str, expected: str
) -> None:
    text = DECLARED.replace("LOCATION", location).replace("PARTITION", partition)
    with pytest.raises(ConfigError) as caught:
        validate(CheckFile, load_yaml(text, "t.yaml"))

    assert str(caught.value.problems[0]).startswith(expected)


# --- freshness from a PostgreSQL index ----------------------------------------------------------

PG_SCHEDULED = datetime(2026, 12, 6, 11, 0, tzinfo=UTC)


@pytest.fixture
def warehouse(pg_url: str, pg_schema: str) -> Iterator[SqlOfflineStore]:
    """`events` (the facts, with a b-tree index on the event time) and `unindexed` (the same
    rows, no index), analysed, in a fresh schema; an offline store on the database."""
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        for name in ("events", "unindexed"):
            conn.exec_driver_sql(
                f'CREATE TABLE "{pg_schema}".{name} AS SELECT i AS id, mod(i, 40) AS user_id, '
                "TIMESTAMPTZ '2026-11-30 23:00:00+00' + i * INTERVAL '1 minute' "
                "AS event_timestamp, TIMESTAMPTZ '2026-11-30 23:07:00+00' + i * INTERVAL "
                "'1 minute' AS created_ts, CASE WHEN mod(i, 5) = 0 THEN NULL ELSE i / 10.0 END "
                "AS value FROM generate_series(0, 14399) AS i"
            )
        conn.exec_driver_sql(
            f'CREATE INDEX events_event_time ON "{pg_schema}".events (event_timestamp)'
        )
        conn.exec_driver_sql(f'ANALYZE "{pg_schema}".events, "{pg_schema}".unindexed')
    engine.dispose()
    config = SqlStoreConfig.model_validate({"type": "sql", "url": pg_url})
    store = SqlOfflineStore("warehouse", config)
    try:
        yield store
    finally:
        store.close()


def table(schema: str, name: str) -> FeatureView:
    return view({"table": f"{schema}.{name}"})


@pytest.mark.postgres
@pytest.mark.parametrize("metrics", [FRESHNESS, WINDOWED | FRESHNESS, EVERYTHING])
def test_an_indexed_table_measures_what_an_unindexed_one_does(
    warehouse: SqlOfflineStore, pg_schema: str, metrics: frozenset[OfflineMetric]
) -> None:
    indexed = warehouse.measure(table(pg_schema, "events"), metrics, PG_SCHEDULED)
    unindexed = warehouse.measure(table(pg_schema, "unindexed"), metrics, PG_SCHEDULED)

    assert dict(indexed.values) == dict(unindexed.values)
    assert len(indexed.values) == len(metrics)


@pytest.mark.postgres
def test_freshness_comes_from_the_index_in_the_one_statement(
    warehouse: SqlOfflineStore, pg_schema: str
) -> None:
    """With windowed checks beside it, the newest time at or before the scheduled time (and
    the rows after it) are scalar subqueries PostgreSQL answers with a backward scan of the
    event-time index; the windows are read through the index too; nothing scans the table."""
    with sending(warehouse.engine) as sent:
        warehouse.measure(table(pg_schema, "events"), WINDOWED | FRESHNESS, PG_SCHEDULED)
    (statement,) = sent.reading(r"\bFROM\b.*\bevents\b")

    plan = explain(warehouse, statement)
    assert re.search(r"Index Only Scan Backward using events_event_time", plan), plan
    assert "Seq Scan" not in plan, plan


@pytest.mark.postgres
def test_without_an_index_freshness_stays_in_the_one_scan(
    warehouse: SqlOfflineStore, pg_schema: str
) -> None:
    """No index: a subquery would be a second scan, so freshness is an aggregate of the one."""
    with sending(warehouse.engine) as sent:
        warehouse.measure(table(pg_schema, "unindexed"), WINDOWED | FRESHNESS, PG_SCHEDULED)
    (statement,) = sent.reading(r"\bFROM\b.*\bunindexed\b")

    assert len(re.findall(r"\bSeq Scan\b", explain(warehouse, statement))) == 1
