"""The facts every offline warehouse of the tests holds, planted in SQL tables (SQLite, DuckDB,
PostgreSQL) and in Parquet files, and what every engine must measure of them.

1000 rows, one a minute: row i, for i = -5 .. 994, has event time SCHEDULED - i minutes (five
rows lie after the scheduled time), user i // 4, region eu or us by user, and a null value for
37 rows in the last six hours (i = 0, 9, ..., 324), 13 older ones and 2 after the scheduled
time. Naive timestamps are wall times in Europe/Berlin (UTC+2 in July), the stores' zone;
aware ones are TIMESTAMPTZ.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from checks.observation import MaxTimestamp, NullCount, OfflineMetric, RowCount

ZONE = "Europe/Berlin"
SCHEDULED = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)  # 14:00 in Berlin
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
FAMILIES = [
    ("id", "int"),
    ("user_id", "int"),
    ("region", "string"),
    ("event_timestamp", "timestamp"),
    ("value", "float"),
    ("clicks", "int"),
    ("note", "string"),
]

# -- SQL tables ---------------------------------------------------------------------------------


def rows(aware: bool, drop: str | None = None, text_time: bool = False) -> list[dict[str, Any]]:
    """The facts as rows, without the column `drop`, the event time as text if asked."""
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


def sqlite_warehouse(directory: Path) -> str:
    """A SQLite file in `directory` holding the naive tables; its URL."""
    url = f"sqlite:///{directory / 'warehouse.db'}"
    engine = sa.create_engine(url)
    plant(engine, None, aware=False)
    engine.dispose()
    return url


def duckdb_warehouse(directory: Path) -> str:
    """A DuckDB file in `directory` holding the naive tables and, in schema `features`, the
    TIMESTAMPTZ ones; its URL."""
    url = f"duckdb:///{directory / 'warehouse.duckdb'}"
    engine = sa.create_engine(url)
    plant(engine, None, aware=False)
    plant(engine, "features", aware=True)
    engine.dispose()
    return url


@contextlib.contextmanager
def pg_warehouse(pg_url: str, schema: str) -> Iterator[str]:
    """`schema` of the session's database holding the naive tables and, with the `tz_`
    prefix, TIMESTAMPTZ ones; dropped afterwards."""
    engine = sa.create_engine(pg_url)
    try:
        plant(engine, schema, aware=False)
        plant(engine, schema, aware=True, prefix="tz_")
        yield schema
    finally:
        with engine.begin() as conn:
            conn.execute(sa.schema.DropSchema(schema, cascade=True, if_exists=True))
        engine.dispose()


# -- Parquet files ------------------------------------------------------------------------------

FACTS = """
SELECT i AS id,
       floor(i / 4)::BIGINT AS user_id,
       CASE WHEN floor(i / 4)::BIGINT % 2 = 0 THEN 'eu' ELSE 'us' END AS region,
       {event_time} AS event_timestamp,
       CASE WHEN (i BETWEEN 0 AND 324 AND i % 9 = 0) OR i BETWEEN 400 AND 412 OR i IN (-1, -2)
            THEN NULL ELSE i / 10 END AS value,
       i % 7 AS clicks,
       'row ' || i AS note
FROM range(-5, 995) AS r(i)
"""
NAIVE = "TIMESTAMP '2024-07-01 14:00:00' - to_minutes(i)"
AWARE = "TIMESTAMPTZ '2024-07-01 12:00:00+00:00' - to_minutes(i)"
NANOSECONDS = f"({NAIVE})::TIMESTAMP_NS"  # as pandas writes them
TEXT = "strftime(TIMESTAMP '2024-07-01 14:00:00' - to_minutes(i), '%Y-%m-%d %H:%M:%S')"


def write(conn: sa.Connection, query: str, path: Path) -> None:
    """COPY the rows of `query` to a Parquet file at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn.exec_driver_sql(f"CREATE OR REPLACE TEMP TABLE rows AS {query}")
    conn.exec_driver_sql(f"COPY rows TO '{path}' (FORMAT parquet)")  # a test-made path


def parquet_root(base: Path) -> Path:
    """Parquet files below `base`, written by DuckDB:

    user_stats.parquet       the facts, naive times      user_stats_tz.parquet  TIMESTAMPTZ
                                                         user_stats_ns.parquet  TIMESTAMP_NS
    parts/                   the facts in three files; the newest also has a column `extra`
    no_value.parquet         the facts without `value`   text_time.parquet      time as text
    empty.parquet            no rows                     empty_dir/             no Parquet file
    """
    facts = FACTS.format(event_time=NAIVE)
    engine = sa.create_engine("duckdb:///:memory:")
    with engine.connect() as conn:
        write(conn, facts, base / "user_stats.parquet")
        write(conn, FACTS.format(event_time=AWARE), base / "user_stats_tz.parquet")
        write(conn, FACTS.format(event_time=NANOSECONDS), base / "user_stats_ns.parquet")
        write(conn, f"SELECT * FROM ({facts}) WHERE id >= 500", base / "parts" / "a.parquet")
        write(
            conn,
            f"SELECT * FROM ({facts}) WHERE id BETWEEN 100 AND 499",
            base / "parts/2024/b.parquet",
        )
        write(
            conn,
            f"SELECT *, 'new' AS extra FROM ({facts}) WHERE id < 100",
            base / "parts/2024/07/c.parquet",
        )
        write(conn, f"SELECT * EXCLUDE (value) FROM ({facts})", base / "no_value.parquet")
        write(conn, FACTS.format(event_time=TEXT), base / "text_time.parquet")
        write(conn, f"SELECT * FROM ({facts}) WHERE false", base / "empty.parquet")
    engine.dispose()
    (base / "parts" / "_SUCCESS").write_text("")
    (base / "empty_dir").mkdir()
    (base / "empty_dir" / "notes.txt").write_text("not parquet")
    return base


# -- what an engine is sent ---------------------------------------------------------------------


@contextlib.contextmanager
def statements(engine: sa.Engine) -> Iterator[list[str]]:
    """Every statement `engine` sends while the block runs."""
    sent: list[str] = []

    def record(*args: object) -> None:  # conn, cursor, statement, parameters, context, many
        sent.append(str(args[2]))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
