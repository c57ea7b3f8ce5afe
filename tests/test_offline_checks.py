"""The offline check kinds beyond the basics (late arrivals, row count, duplicates, range),
measured end to end on real engines: plan, one aggregate query, evaluation, the report.

Every warehouse holds the same planted facts (`events`), so every backend must give the same
exact numbers. The scheduled time is S = 2024-07-01 12:00 UTC and the window the view's TTL, 1d.

In the window, 216 rows:
  k = 0..203    event S - 5k min, user k % 50 (so every (user, event time) is distinct)
                ingested 720 s late for k < 10 (late against 10m), exactly 600 s for k = 10, 11
                (not late), 180 s for k = 12..49, 30 s for k = 50..199, never for k = 200..203
                revenue k, except NaN (k = 100..102), +inf (103), -inf (104), 5000.5 (105..109),
                -1.5 (110..113), NULL (114..119); purchases k % 20, except -1 (120), -3 (121),
                75 (122..124)
  7 duplicates  copies of k = 200, 200, 201, 201, 202, 202, 203 (same user and event time)
  2 rows        user NULL at the event times of k = 200, 201: no key, so never duplicates
  3 rows        users 997..999 at the event time of k = 202: other keys, not duplicates
  (the 12 extra rows have no ingestion time, revenue 7.0 or their copy's, purchases 1 or their
  copy's)
Outside it, 23 rows full of faults that must not count: 20 two days old (pairs of duplicates,
2h late, NaN revenue, purchases -5), one exactly on the window's open bound S - 1d, and two
after S (one duplicate pair, 1h late, +inf revenue, purchases -7).

Naive timestamps are wall times in Europe/Berlin, the stores' zone; `aware` tables hold
TIMESTAMPTZ; `mixed` tables a naive event time and an aware ingestion time.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from alerts.report import render_report
from checks.model import FeatureView
from checks.observation import (
    RowCount,
)
from checks.plan import plan_view
from checks.result import (
    CheckResult,
    DuplicateDetails,
    ErrorDetails,
    FreshnessDetails,
    LateArrivalDetails,
    RangeDetails,
    RowCountDetails,
    RunResult,
    Status,
    Threshold,
)
from monitor.config import ParquetStoreConfig, SqlStoreConfig
from monitor.runs.probe import Stores, probe_view
from monitor.stores.sql.offline import AggregateStore
from monitor.stores.sql.parquet import ParquetOfflineStore
from monitor.stores.sql.table import SqlOfflineStore
from tests.offline_fixtures import statements
from tests.test_report import Page

ZONE = "Europe/Berlin"
S = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
NAN, INF = math.nan, math.inf
Times = Literal["naive", "aware", "mixed"]

# --- the view: eight aggregate checks ---------------------------------------------------------

CHECKS: list[dict[str, object]] = [
    {"kind": "freshness", "max": "1h"},
    {"kind": "null_rate", "feature": "revenue", "max": 0.05},
    {"kind": "row_count", "min": 200, "max": 300},
    {"kind": "row_count", "name": "recent_rows", "window": "1h", "min": 10, "warn_min": 20},
    {"kind": "late_arrivals", "watermark": "10m", "warn": 0.01, "max": 0.05},
    {"kind": "duplicates", "max": 0},
    {"kind": "range", "feature": "revenue", "min_value": 0, "max_value": 1000, "max": 0.05},
    {"kind": "range", "feature": "purchases", "non_negative": True, "max_value": 50, "max": 0.01},
]


def view(
    location: dict[str, str],
    checks: list[dict[str, object]] = CHECKS,
    features: dict[str, str] | None = None,
) -> FeatureView:
    return FeatureView.model_validate(
        {
            "name": "user_stats",
            "entity": "user_id",
            "ttl": "1d",
            "features": features or {"revenue": "float", "purchases": "int"},
            "offline": {"store": "warehouse", **location, "ingested_at": "created_ts"},
            "checks": checks,
        }
    )


# --- the planted warehouse --------------------------------------------------------------------


def lateness_of(k: int) -> float | None:
    if k < 10:
        return 720.0
    if k < 12:
        return 600.0
    if k < 50:
        return 180.0
    return 30.0 if k < 200 else None


def revenue_of(k: int) -> float | None:
    special: dict[range, float | None] = {
        range(100, 103): NAN,
        range(103, 104): INF,
        range(104, 105): -INF,
        range(105, 110): 5000.5,
        range(110, 114): -1.5,
        range(114, 120): None,
    }
    return next((v for span, v in special.items() if k in span), float(k))


def purchases_of(k: int) -> int:
    return {120: -1, 121: -3, 122: 75, 123: 75, 124: 75}.get(k, k % 20)


def row(
    user: int | None,
    event: datetime,
    late: float | None,
    revenue: float | None,
    purchases: int,
) -> dict[str, Any]:
    ingested = None if late is None else event + timedelta(seconds=late)
    return {
        "user_id": user,
        "event_timestamp": event,
        "created_ts": ingested,
        "revenue": revenue,
        "purchases": purchases,
    }


def facts() -> list[dict[str, Any]]:
    """The planted rows, times aware UTC (see the module docstring)."""
    base = [
        row(k % 50, S - timedelta(minutes=5 * k), lateness_of(k), revenue_of(k), purchases_of(k))
        for k in range(204)
    ]
    copies = [dict(base[k]) for k in (200, 200, 201, 201, 202, 202, 203)]
    keyless = [row(None, base[k]["event_timestamp"], None, 7.0, 1) for k in (200, 201)]
    others = [row(user, base[202]["event_timestamp"], None, 7.0, 1) for user in (997, 998, 999)]
    old = [row(j // 2, S - 2 * DAY - timedelta(minutes=j // 2), 7200, NAN, -5) for j in range(20)]
    edge = [row(1, S - DAY, 7200, NAN, -9)]
    future = [row(0, S + timedelta(minutes=5), 3600, INF, -7) for _ in range(2)]
    return [*base, *copies, *keyless, *others, *old, *edge, *future]


# `skewed`: a table whose rows are a day old but for one future-dated row (a bad writer).
AHEAD = timedelta(days=10, hours=15)


def skewed_facts() -> list[dict[str, Any]]:
    day_old = [row(k, S - DAY + timedelta(minutes=k), 60, 1.0, 1) for k in range(5)]
    return [*day_old, row(99, S + AHEAD, 60, 1.0, 1)]


def stored(
    times: Times, drop: tuple[str, ...] = (), given: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The facts as a table stores them: naive times as Berlin wall times."""
    berlin = ZoneInfo(ZONE)

    def naive(moment: datetime | None) -> datetime | None:
        return None if moment is None else moment.astimezone(berlin).replace(tzinfo=None)

    out = []
    for fact in facts() if given is None else given:
        planted = dict(fact)
        if times != "aware":
            planted["event_timestamp"] = naive(fact["event_timestamp"])
        if times == "naive":
            planted["created_ts"] = naive(fact["created_ts"])
        out.append({k: v for k, v in planted.items() if k not in drop})
    return out


def events_table(name: str, schema: str | None, times: Times, drop: tuple[str, ...]) -> sa.Table:
    columns: list[sa.Column[Any]] = [
        sa.Column("user_id", sa.Integer),
        sa.Column("event_timestamp", sa.DateTime(timezone=times == "aware")),
        sa.Column("created_ts", sa.DateTime(timezone=times != "naive")),
        sa.Column("revenue", sa.Float),
        sa.Column("purchases", sa.Integer),
    ]
    return sa.Table(name, sa.MetaData(), *(c for c in columns if c.name not in drop), schema=schema)


DROPPED = ("created_ts", "revenue")


def plant(engine: sa.Engine, schema: str | None, times: Times) -> None:
    """`events` (the facts), `dropped` (the facts without created_ts and revenue) and
    `skewed` (day-old rows and one from the future)."""
    with engine.begin() as conn:
        if schema:
            conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
        for name, drop in (("events", ()), ("dropped", DROPPED)):
            table = events_table(name, schema, times, drop)
            table.create(conn)
            conn.execute(sa.insert(table), stored(times, drop))
        skewed = events_table("skewed", schema, times, ())
        skewed.create(conn)
        conn.execute(sa.insert(skewed), stored(times, (), skewed_facts()))


@dataclass(frozen=True)
class Warehouse:
    """How to open a store on the planted tables, and where a view finds a table in it."""

    open: Callable[[], AggregateStore]
    location: Callable[[str], dict[str, str]]
    nan: bool = True  # SQLite stores a NaN as NULL


def sql_warehouse(url: str, prefix: str = "", nan: bool = True) -> Warehouse:
    def open_store() -> AggregateStore:
        config = SqlStoreConfig.model_validate({"type": "sql", "url": url, "timezone": ZONE})
        return SqlOfflineStore("warehouse", config)

    return Warehouse(open_store, lambda name: {"table": f"{prefix}{name}"}, nan)


@pytest.fixture(scope="module")
def sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "warehouse.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    plant(engine, None, "naive")
    engine.dispose()
    return path


@pytest.fixture(scope="module")
def duckdb_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("duckdb") / "warehouse.duckdb"
    engine = sa.create_engine(f"duckdb:///{path}")
    plant(engine, None, "naive")
    plant(engine, "aware", "aware")
    plant(engine, "mixed", "mixed")
    engine.dispose()
    return path


@pytest.fixture(scope="module")
def parquet_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """events.parquet and dropped.parquet, written by DuckDB from the planted tables."""
    root = tmp_path_factory.mktemp("parquet")
    engine = sa.create_engine("duckdb:///:memory:")
    plant(engine, None, "naive")
    with engine.connect() as conn:
        for name in ("events", "dropped", "skewed"):
            conn.exec_driver_sql(f"COPY {name} TO '{root / name}.parquet' (FORMAT parquet)")
    engine.dispose()
    return root


@pytest.fixture(scope="module")
def pg_schemas(pg_url: str) -> Iterator[str]:
    """Three schemas of this module in the session's database: `<base>_naive`, `_aware` and
    `_mixed`, each holding the planted tables."""
    base = f"checks_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(pg_url)
    try:
        for times in ("naive", "aware", "mixed"):
            plant(engine, f"{base}_{times}", times)
        yield base
    finally:
        with engine.begin() as conn:
            for times in ("naive", "aware", "mixed"):
                conn.execute(sa.schema.DropSchema(f"{base}_{times}", cascade=True, if_exists=True))
        engine.dispose()


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("duckdb", id="duckdb-naive"),
    pytest.param("duckdb-aware", id="duckdb-aware"),
    pytest.param("duckdb-mixed", id="duckdb-mixed"),
    pytest.param("parquet", id="parquet"),
    pytest.param("postgres-naive", id="postgres-naive", marks=pytest.mark.postgres),
    pytest.param("postgres-aware", id="postgres-aware", marks=pytest.mark.postgres),
    pytest.param("postgres-mixed", id="postgres-mixed", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def warehouse(request: pytest.FixtureRequest) -> Warehouse:
    backend: str = request.param
    if backend == "sqlite":
        path: Path = request.getfixturevalue("sqlite_file")
        return sql_warehouse(f"sqlite:///{path}", nan=False)
    if backend.startswith("duckdb"):
        path = request.getfixturevalue("duckdb_file")
        schema = backend.removeprefix("duckdb").removeprefix("-")
        return sql_warehouse(f"duckdb:///{path}", f"{schema}." if schema else "")
    if backend == "parquet":
        root: Path = request.getfixturevalue("parquet_root")

        def open_lake() -> AggregateStore:
            config = {"type": "parquet", "root": str(root), "timezone": ZONE}
            return ParquetOfflineStore("warehouse", ParquetStoreConfig.model_validate(config))

        return Warehouse(open_lake, lambda name: {"path": f"{name}.parquet"})
    url: str = request.getfixturevalue("pg_url")
    base: str = request.getfixturevalue("pg_schemas")
    return sql_warehouse(url, f"{base}_{backend.removeprefix('postgres-')}.")


@pytest.fixture
def store(warehouse: Warehouse) -> Iterator[AggregateStore]:
    opened = warehouse.open()
    try:
        yield opened
    finally:
        opened.close()


def probe(store: AggregateStore, source: FeatureView) -> dict[str, CheckResult]:
    planned = tuple(plan_view(source))
    results = probe_view(source, planned, Stores(online={}, offline={"warehouse": store}), S)
    return {r.check: r for r in results}


# --- measured end to end ----------------------------------------------------------------------


def test_late_arrivals_count_rows_later_than_the_watermark_with_lateness_quantiles(
    store: AggregateStore, warehouse: Warehouse
) -> None:
    """10 of the 200 rows with an ingestion time are 12 minutes late: 0.05, at max, above warn.
    p50 30 s (exact: a boundary); p99 in (10m, 15m], capped at the largest lateness, 12m."""
    result = probe(store, view(warehouse.location("events")))["user_stats.late_arrivals@offline"]

    assert (result.value, result.status, result.sample_size) == (0.05, Status.WARN, 200)
    assert result.details == LateArrivalDetails(
        late=10,
        rows=200,
        without_ingestion_time=16,
        watermark_seconds=600.0,
        window_seconds=86400.0,
        p50=30.0,
        p99=720.0,
        max=720.0,
    )


def test_row_counts_count_the_rows_of_their_own_window(
    store: AggregateStore, warehouse: Warehouse
) -> None:
    """216 rows in the last day (the row on its open bound is not); 12 in the last hour
    (k = 0..11), which is under warn_min 20 but not under min 10."""
    results = probe(store, view(warehouse.location("events")))

    day, hour = results["user_stats.row_count@offline"], results["recent_rows"]
    assert (day.value, day.status, day.details) == (
        216.0,
        Status.PASS,
        RowCountDetails(rows=216, window_seconds=86400.0),
    )
    assert (hour.value, hour.status) == (12.0, Status.WARN)


def test_duplicates_are_the_seven_planted_copies_over_the_keyed_rows(
    store: AggregateStore, warehouse: Warehouse
) -> None:
    """214 rows with a user (2 have none), 207 distinct (user, event time): 7 duplicates; the
    rows at one time for other users and the duplicates outside the window do not count."""
    result = probe(store, view(warehouse.location("events")))["user_stats.duplicates@offline"]

    assert result.details == DuplicateDetails(
        duplicates=7, rows=214, distinct=207, keys=("user_id",), window_seconds=86400.0
    )
    assert (result.value, result.status) == (7 / 214, Status.FAIL)


def test_range_of_a_float_counts_nan_infinity_and_values_beyond_its_bounds(
    store: AggregateStore, warehouse: Warehouse
) -> None:
    """210 non-null values: 3 NaN, 2 infinite, 4 below 0, 5 above 1000: 14, i.e. 1/15. SQLite
    keeps no NaN (it stores NULL): 207 values, 11 out of range. Finite values: min -1.5,
    max 5000.5, mean 44956.5 / 205 = 219.3 (the NaN are not finite either way)."""
    result = probe(store, view(warehouse.location("events")))["user_stats.range.revenue@offline"]

    nan = 3 if warehouse.nan else 0
    assert isinstance(result.details, RangeDetails)
    assert replace(result.details, mean=None) == RangeDetails(
        rows=207 + nan,
        nan=nan,
        infinite=2,
        negative=None,
        below_min=4,
        above_max=5,
        min=-1.5,
        max=5000.5,
        mean=None,
        min_value=0.0,
        max_value=1000.0,
        window_seconds=86400.0,
    )
    assert result.details.mean == pytest.approx(219.3)
    assert result.value == pytest.approx((11 + nan) / (207 + nan))
    assert result.status is Status.FAIL


def test_range_of_a_count_counts_negative_values_and_values_above_its_maximum(
    store: AggregateStore, warehouse: Warehouse
) -> None:
    """216 values: -1 and -3 are negative counts, 3 x 75 are above 50; mean 2131 / 216."""
    results = probe(store, view(warehouse.location("events")))

    result = results["user_stats.range.purchases@offline"]
    assert isinstance(result.details, RangeDetails)
    details = result.details
    assert (details.rows, details.negative, details.above_max, details.below_min) == (
        216,
        2,
        3,
        None,
    )
    assert (details.nan, details.infinite, details.min, details.max) == (0, 0, -3.0, 75.0)
    assert details.mean == pytest.approx(2131 / 216)
    assert (result.value, result.status) == (5 / 216, Status.FAIL)


def test_every_check_of_the_view_gets_its_status(
    store: AggregateStore, warehouse: Warehouse
) -> None:
    results = probe(store, view(warehouse.location("events")))

    nulls = 6 if warehouse.nan else 9  # SQLite: the 3 NaN are NULL too
    null_rate = results["user_stats.null_rate.revenue@offline"]
    assert null_rate.value == nulls / 216
    freshness = results["user_stats.freshness@offline"]
    assert freshness.value == 0.0  # the newest row not from the future is at the scheduled time
    assert {check: r.status.value for check, r in results.items()} == {
        "user_stats.freshness@offline": "fail",  # two rows 5 minutes after the scheduled time
        "user_stats.null_rate.revenue@offline": "pass",
        "user_stats.row_count@offline": "pass",
        "recent_rows": "warn",
        "user_stats.late_arrivals@offline": "warn",
        "user_stats.duplicates@offline": "fail",
        "user_stats.range.revenue@offline": "fail",
        "user_stats.range.purchases@offline": "fail",
    }


def test_one_future_dated_row_fails_freshness_and_leaves_the_age_a_day(
    store: AggregateStore, warehouse: Warehouse
) -> None:
    """Rows a day old and one 10d 15h after the scheduled time: the age is of the newest row at
    or before the scheduled time (never negative), and the future row fails the check."""
    source = view(warehouse.location("skewed"), [{"kind": "freshness", "max": "2d"}])
    result = probe(store, source)["user_stats.freshness@offline"]

    assert isinstance(result.details, FreshnessDetails)
    assert (result.value, result.status) == (DAY.total_seconds() - 4 * 60, Status.FAIL)
    assert result.details.newest == S - DAY + timedelta(minutes=4)
    assert (result.details.future, result.details.future_ahead) == (1, AHEAD.total_seconds())
    assert result.details.reason is not None
    assert result.details.reason.startswith("1 row with an event time in the future")


def reads_events(statement: str) -> bool:
    return bool(
        re.match(r"\s*SELECT\b", statement, re.IGNORECASE)
        and re.search(r"\bFROM\s+(read_parquet\(|[\w\".]*events\b)", statement, re.IGNORECASE)
    )


def test_eight_aggregate_checks_are_measured_by_one_select(
    store: AggregateStore, warehouse: Warehouse
) -> None:
    """The catalog lookup and one SELECT, exactly as many statements as for one row count."""
    source = view(warehouse.location("events"))
    with statements(store.engine) as sent:
        store.measure(source, frozenset({RowCount(None)}), S)
        one_metric = list(sent)
        sent.clear()
        results = probe(store, source)

    assert len(results) == 8
    assert len([s for s in sent if reads_events(s)]) == 1
    assert len(sent) == len(one_metric)


def test_a_dropped_column_errors_only_the_checks_that_need_it(
    store: AggregateStore, warehouse: Warehouse
) -> None:
    """Without created_ts and revenue: late arrivals, the null rate and the range of revenue
    are errors naming the column; the other five checks measure as on the full table."""
    full = probe(store, view(warehouse.location("events")))
    location = warehouse.location("dropped")
    named = f"{'Parquet path' if 'path' in location else 'table'} {next(iter(location.values()))!r}"

    dropped = probe(store, view(location))

    errors = {c: r.details for c, r in dropped.items() if r.status is Status.ERROR}
    assert errors == {
        "user_stats.late_arrivals@offline": ErrorDetails(f"column 'created_ts' is not in {named}"),
        "user_stats.null_rate.revenue@offline": ErrorDetails(f"column 'revenue' is not in {named}"),
        "user_stats.range.revenue@offline": ErrorDetails(f"column 'revenue' is not in {named}"),
    }
    kept = set(full) - set(errors)
    assert {c: (dropped[c].value, dropped[c].details) for c in kept} == {
        c: (full[c].value, full[c].details) for c in kept
    }


def test_a_range_of_a_column_that_holds_no_numbers_is_an_error_naming_its_type(
    store: AggregateStore, warehouse: Warehouse
) -> None:
    """created_ts declared as a float feature, but the table holds timestamps in it."""
    checks: list[dict[str, object]] = [{"kind": "range", "feature": "created_ts", "max": 0.0}]
    source = view(warehouse.location("events"), checks, features={"created_ts": "float"})

    (result,) = probe(store, source).values()

    assert result.status is Status.ERROR
    assert isinstance(result.details, ErrorDetails)
    assert re.fullmatch(
        r"column 'created_ts' of .* is not numeric \(found timestamp\)", result.details.reason
    )


# --- the report -------------------------------------------------------------------------------


def test_the_report_shows_the_numbers_of_the_new_kinds(sqlite_file: Path) -> None:
    store = sql_warehouse(f"sqlite:///{sqlite_file}", nan=False).open()
    results = probe(store, view({"table": "events"}))
    store.close()
    run = RunResult("r1", S, S, S + timedelta(seconds=1), tuple(results.values()))

    page = Page(render_report(run))

    late = page.row("user_stats.late_arrivals@offline")
    assert "5.00% n = 200 max 5.00% warn 1.00% warn" in late
    assert "late 10 of 200 (ingested more than 10m 00s after their event time)" in late
    assert "lateness p50 ≤ 30s lateness p99 ≤ 12m 00s max lateness 12m 00s" in late
    assert "no ingestion time 16 rows (not counted) window last 1d 00h" in late
    assert "216 min 200 max 300 pass" in page.row("user_stats.row_count@offline")
    assert "12 min 10 warn 20 warn" in page.row("recent_rows")  # one-sided: a min threshold
    duplicates = page.row("user_stats.duplicates@offline")
    assert "duplicates 7 of 214 rows distinct 207 key user_id and the event time" in duplicates
    revenue = page.row("user_stats.range.revenue@offline")
    assert "out of range 11 of 207 values valid range 0 … 1000" in revenue
    assert "min / mean / max -1.5 / 219.3 / 5000.5" in revenue
    assert "NaN 0 infinite 2 negative (a count) — below the minimum 4 above the maximum 5" in (
        revenue
    )


def test_the_report_escapes_a_key_column_name() -> None:
    hostile = "<script>alert(1)</script>"
    details = DuplicateDetails(duplicates=0, rows=1, distinct=1, keys=(hostile,), window_seconds=1)
    result = CheckResult(
        check="d",
        kind="duplicates",
        feature_view="v",
        feature=None,
        store="w",
        target="offline",
        status=Status.PASS,
        severity="P3",
        value=0.0,
        threshold=Threshold("max", 0.0, None, "ratio"),
        sample_size=1,
        details=details,
    )

    html = render_report(RunResult("r2", S, S, S, (result,)))

    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
