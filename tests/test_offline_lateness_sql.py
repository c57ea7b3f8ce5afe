"""The lateness histogram's boundaries are exact on every engine: a row exactly at a boundary
is counted, a row one millisecond beyond it is not, a day-long boundary is 86,400 seconds
however the session's zone moves its clocks, and the ingestion time may be missing.

Each engine spells "lateness at most b" its own way (timestamp arithmetic on PostgreSQL,
whole microseconds on DuckDB, seconds on SQLite: see monitor.stores.sql.metrics); these tests
pin all of them to the same numbers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from checks.model import FeatureView
from checks.observation import LatenessCount, MaxLateness, OfflineMetric, RowCount
from monitor.config import SqlStoreConfig
from monitor.stores.sql.table import SqlOfflineStore

ZONE = "Europe/Berlin"
SCHEDULED = datetime(2024, 3, 31, 12, 0, tzinfo=UTC)  # Berlin moved to summer time at 01:00 UTC
DAY = timedelta(days=1)
# Lateness of each row in seconds (None: no ingestion time). The event times are an hour
# apart, from 2024-03-30 13:00 UTC on, so the day-long ones span the change of clocks.
LATENESS: list[float | None] = [0, 0.5, 0.501, 1.25, 600, 600.001, 86400, 86400.001, None]
BOUNDS = [timedelta(0), timedelta(milliseconds=500), timedelta(seconds=600), DAY]
EXPECTED: dict[OfflineMetric, object] = {
    RowCount(DAY): len(LATENESS),
    LatenessCount("created_ts", None, DAY): 8,
    LatenessCount("created_ts", timedelta(0), DAY): 1,
    LatenessCount("created_ts", timedelta(milliseconds=500), DAY): 2,
    LatenessCount("created_ts", timedelta(seconds=600), DAY): 5,
    LatenessCount("created_ts", DAY, DAY): 7,
    MaxLateness("created_ts", DAY): 86400.001,
}


Times = Literal["aware", "mixed", "naive-utc"]


def planted(times: Times) -> list[dict[str, Any]]:
    """`aware`: both times with a zone; `mixed`: the event time a wall time in the store's zone
    (Europe/Berlin), the ingestion time aware; `naive-utc`: both wall times in UTC."""
    out = []
    for i, late in enumerate(LATENESS):
        event = SCHEDULED - DAY + timedelta(hours=1 + i)
        ingested = None if late is None else event + timedelta(seconds=late)
        if times == "mixed":
            event = event.astimezone(ZoneInfo(ZONE)).replace(tzinfo=None)
        if times == "naive-utc":
            event = event.replace(tzinfo=None)
            ingested = None if ingested is None else ingested.replace(tzinfo=None)
        out.append({"event_timestamp": event, "created_ts": ingested})
    return out


def plant(engine: sa.Engine, name: str, times: Times) -> None:
    table = sa.Table(
        name,
        sa.MetaData(),
        sa.Column("event_timestamp", sa.DateTime(times == "aware")),
        sa.Column("created_ts", sa.DateTime(times != "naive-utc")),
    )
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(sa.insert(table), planted(times))


def measure(url: str, table: str, zone: str) -> dict[OfflineMetric, object]:
    config = SqlStoreConfig.model_validate({"type": "sql", "url": url, "timezone": zone})
    store = SqlOfflineStore("warehouse", config)
    view = FeatureView.model_validate(
        {
            "name": "events",
            "entity": "user_id",
            "ttl": "1d",
            "features": {"value": "float"},
            "offline": {"store": "warehouse", "table": table, "ingested_at": "created_ts"},
        }
    )
    try:
        observation = store.measure(view, frozenset(EXPECTED), SCHEDULED)
    finally:
        store.close()
    return dict(observation.values)


@pytest.fixture(scope="module")
def pg_tables(pg_url: str) -> Iterator[str]:
    """An aware and a mixed table in the session's database; the name prefix is yielded."""
    prefix = f"lateness_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(pg_url)
    try:
        plant(engine, f"{prefix}_aware", "aware")
        plant(engine, f"{prefix}_mixed", "mixed")
        yield prefix
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {prefix}_aware, {prefix}_mixed")
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("times", ["aware", "mixed"])
def test_postgresql_lateness_boundaries_are_exact_in_a_session_that_changes_clocks(
    pg_url: str, pg_tables: str, times: Times
) -> None:
    """The session's TimeZone is Europe/Berlin: a day-long interval would be 23 hours there."""
    url = sa.make_url(pg_url).update_query_dict({"options": f"-c TimeZone={ZONE}"})
    found = measure(url.render_as_string(hide_password=False), f"{pg_tables}_{times}", ZONE)
    assert found == EXPECTED


@pytest.mark.parametrize("times", ["aware", "mixed"])
def test_duckdb_lateness_boundaries_are_exact(tmp_path: Path, times: Times) -> None:
    path = tmp_path / "warehouse.duckdb"
    engine = sa.create_engine(f"duckdb:///{path}")
    plant(engine, "events", times)
    engine.dispose()
    assert measure(f"duckdb:///{path}", "events", ZONE) == EXPECTED


def test_sqlite_lateness_boundaries_are_exact_to_the_millisecond(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    plant(engine, "events", "naive-utc")
    engine.dispose()
    assert measure(f"sqlite:///{path}", "events", "UTC") == EXPECTED
