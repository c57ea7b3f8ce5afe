"""Rate checks measured on a random sample of a large table's blocks (`offline.sample`): the
sampled null rate carries its rows read and a 95% Wilson interval holding the true rate, the
plan shows the sample scan, row counts and freshness stay exact in the same statement, and an
engine without TABLESAMPLE (SQLite) is refused naming the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from checks.evaluate import evaluate
from checks.model import FeatureView
from checks.plan import offline_metrics, plan_view
from checks.result import CheckResult, NullRateDetails, RangeDetails
from monitor.config import ParquetStoreConfig, SqlStoreConfig
from monitor.errors import QueryFailed
from monitor.stores.sql.offline import AggregateStore
from monitor.stores.sql.parquet import ParquetOfflineStore
from monitor.stores.sql.table import SqlOfflineStore

ROWS = 200_000
TRUE_NULL_RATE = 0.03
TRUE_OUT_OF_RANGE = 0.02
SCHEDULED = datetime(2026, 12, 8, 0, 0, tzinfo=UTC)
# Row i: event time i seconds after the start (all within the 7-day window, the newest 1h
# before the scheduled time), `value` null on exactly 3 rows of every 100 and negative on 2.
START = SCHEDULED - timedelta(hours=1) - timedelta(seconds=ROWS - 1)
FACTS = (
    "SELECT i AS user_id, {start} + i * INTERVAL '1 second' AS event_timestamp, "
    "CASE WHEN mod(i * 37, 100) < 3 THEN NULL WHEN mod(i * 37, 100) < 5 THEN -1.0 "
    "ELSE i / 10.0 END AS value FROM {series}"
)
CHECKS = [
    {"kind": "null_rate", "feature": "value", "max": 0.5},
    {"kind": "range", "feature": "value", "non_negative": True, "max": 0.5},
    {"kind": "row_count", "min": 1},
    {"kind": "freshness", "max": "2h"},
]


def view(offline: dict[str, Any]) -> FeatureView:
    return FeatureView.model_validate(
        {
            "name": "events",
            "entity": "user_id",
            "ttl": "7d",
            "features": {"value": "float"},
            "offline": {"store": "warehouse", **offline},
            "checks": CHECKS,
        }
    )


def run(store: AggregateStore, measured: FeatureView) -> dict[str, CheckResult]:
    """Every check of the view, planned, measured in one query and evaluated, by kind."""
    planned = [p for p in plan_view(measured) if p.target == "offline"]
    observation = store.measure(measured, offline_metrics(planned), SCHEDULED)
    return {p.kind: evaluate(p, observation, SCHEDULED) for p in planned}


def statements(engine: sa.Engine) -> tuple[list[tuple[str, Any]], Any]:
    sent: list[tuple[str, Any]] = []

    def record(*args: object) -> None:  # conn, cursor, statement, parameters, context, many
        sent.append((str(args[2]), args[3]))

    sa.event.listen(engine, "before_cursor_execute", record)
    return sent, record


@pytest.fixture(scope="module")
def warehouse(pg_url: str) -> Iterator[SqlOfflineStore]:
    """`sampling.events`: 200k rows, 3% null and 2% negative values spread over every page
    (exactly 3 and 2 of every 100 consecutive rows), so any sample of whole pages holds the
    true rates within far less than the Wilson interval's width: the test does not flake."""
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS sampling")
        start = f"TIMESTAMPTZ '{START.isoformat()}'"
        series = f"generate_series(0, {ROWS - 1}) AS i"
        conn.exec_driver_sql(
            f"CREATE TABLE sampling.events AS {FACTS.format(start=start, series=series)}"
        )
        conn.exec_driver_sql("ANALYZE sampling.events")
    engine.dispose()
    store = SqlOfflineStore(
        "warehouse", SqlStoreConfig.model_validate({"type": "sql", "url": pg_url})
    )
    try:
        yield store
    finally:
        store.close()


SAMPLED_PG = view({"table": "sampling.events", "sample": "5%"})


@pytest.mark.postgres
def test_a_sampled_null_rate_carries_its_sample_and_an_interval_holding_the_true_rate(
    warehouse: SqlOfflineStore,
) -> None:
    result = run(warehouse, SAMPLED_PG)["null_rate"]

    details = result.details
    assert isinstance(details, NullRateDetails)
    assert details.interval is not None
    assert details.interval.low <= TRUE_NULL_RATE <= details.interval.high, details
    assert 0 < details.rows < ROWS / 4, details  # a sample, not the table
    assert result.sample_size == details.rows


@pytest.mark.postgres
def test_a_sampled_range_carries_an_interval_holding_the_true_rate(
    warehouse: SqlOfflineStore,
) -> None:
    details = run(warehouse, SAMPLED_PG)["range"].details

    assert isinstance(details, RangeDetails)
    assert details.interval is not None
    assert details.interval.low <= TRUE_OUT_OF_RANGE / (1 - TRUE_NULL_RATE) <= details.interval.high


@pytest.mark.postgres
def test_counts_and_freshness_stay_exact_beside_the_sample(warehouse: SqlOfflineStore) -> None:
    sampled = run(warehouse, SAMPLED_PG)
    exact = run(warehouse, view({"table": "sampling.events"}))

    assert sampled["row_count"].value == exact["row_count"].value == ROWS
    assert sampled["freshness"].value == exact["freshness"].value
    assert exact["null_rate"].value == pytest.approx(TRUE_NULL_RATE)
    assert isinstance(exact["null_rate"].details, NullRateDetails)
    assert exact["null_rate"].details.interval is None  # exact: no sampling error


@pytest.mark.postgres
def test_the_plan_of_the_one_statement_shows_the_sample_scan(warehouse: SqlOfflineStore) -> None:
    sent, record = statements(warehouse.engine)
    try:
        run(warehouse, SAMPLED_PG)
    finally:
        sa.event.remove(warehouse.engine, "before_cursor_execute", record)
    (statement,) = [s for s in sent if re.search(r"\bFROM\b.*\bevents\b", s[0])]

    with warehouse.engine.connect() as conn:
        plan = "\n".join(
            r[0] for r in conn.exec_driver_sql(f"EXPLAIN {statement[0]}", statement[1])
        )
    assert re.search(r"Sample Scan on events sampled", plan), plan
    assert re.search(r"Sampling: system", plan), plan
    assert "Seq Scan on events" in plan, plan  # the exact row count beside it


# --- DuckDB on Parquet --------------------------------------------------------------------


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ParquetOfflineStore]:
    """`events.parquet`: the same rows, in row groups of 2048 (DuckDB samples whole vectors)."""
    root = tmp_path_factory.mktemp("lake")
    engine = sa.create_engine("duckdb:///:memory:")
    start = f"TIMESTAMPTZ '{START.isoformat()}'"
    series = f"range(0, {ROWS}) AS r(i)"
    with engine.connect() as conn:
        conn.exec_driver_sql(
            f"COPY ({FACTS.format(start=start, series=series)}) TO '{root / 'events.parquet'}' "
            "(FORMAT parquet, ROW_GROUP_SIZE 2048)"
        )
    engine.dispose()
    config = ParquetStoreConfig.model_validate({"type": "parquet", "root": str(root)})
    store = ParquetOfflineStore("warehouse", config)
    try:
        yield store
    finally:
        store.close()


def test_a_sampled_parquet_null_rate_holds_the_true_rate_and_counts_stay_exact(
    lake: ParquetOfflineStore,
) -> None:
    results = run(lake, view({"path": "events.parquet", "sample": "10%"}))

    details = results["null_rate"].details
    assert isinstance(details, NullRateDetails)
    assert details.interval is not None
    assert details.interval.low <= TRUE_NULL_RATE <= details.interval.high, details
    assert 0 < details.rows < ROWS / 2, details
    assert results["row_count"].value == ROWS


# --- refusals -------------------------------------------------------------------------------


def test_sqlite_is_refused_naming_the_store(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE events (user_id INTEGER, event_timestamp TIMESTAMP, value REAL)"
        )
    engine.dispose()
    store = SqlOfflineStore(
        "lite", SqlStoreConfig.model_validate({"type": "sql", "url": f"sqlite:///{path}"})
    )
    try:
        with pytest.raises(QueryFailed, match=r"lite.*sqlite has no TABLESAMPLE"):
            run(store, view({"table": "events", "sample": "1%"}))
    finally:
        store.close()


@pytest.mark.parametrize(
    ("spelled", "expected"),
    [
        ("0%", "between 0.01% and 100%, found '0%'"),
        ("150%", "between 0.01% and 100%, found '150%'"),
        ("one percent", "a percentage such as `1%`"),
        (5, "with its sign, such as `5%`"),
    ],
)
def test_a_bad_sample_is_refused_saying_what_was_expected(spelled: object, expected: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(expected)):
        view({"table": "events", "sample": spelled})


def test_a_sample_is_read_as_a_percentage() -> None:
    offline = view({"table": "events", "sample": "0.5 %"}).offline
    assert offline is not None
    assert offline.sample == 0.5
