"""How fast featmon measures an offline table, against a hand-written query and Soda Core v4.

    .venv/bin/python -m bench.offline_scan [--rows N] [--quick] [--repeat N]

Builds one table of `--rows` rows (10,000,000 by default) twice, from the same formulas: in a
PostgreSQL database of its own (server-side `generate_series`), and as a Parquet file written by
DuckDB's COPY. Then times, per engine, the median of `--repeat` runs after one warm-up of:

- featmon: `probe_view` of a view with 8 aggregate checks (freshness, null rate, two row
  counts, late arrivals, duplicates, two ranges), i.e. one catalog lookup and one aggregate
  query, then evaluation;
- (a) one hand-written SQL query computing the same aggregates (conditional counts with FILTER);
- (b) PostgreSQL only: Soda Core v4 verifying an equivalent contract of 8 checks (needs the
  `soda` extra).

Targets: featmon within 1.2x of (a); featmon faster than (b). Prints a table, the ratios and
PASS/MISS per target. The database is created on the local PostgreSQL
(FEATMON_TEST_PG_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/postgres) and dropped
afterwards. Exits 0 with the report (whatever the targets), 2 when something could not run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import sqlalchemy as sa

from checks.model import FeatureView
from checks.plan import plan_view
from checks.result import Status
from monitor.config import ParquetStoreConfig, SqlStoreConfig
from monitor.probe import Stores, probe_view
from monitor.stores import soda
from monitor.stores.sql.offline import AggregateStore, SqlOfflineStore
from monitor.stores.sql.parquet import ParquetOfflineStore

ADMIN_URL = os.environ.get(
    "FEATMON_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
S = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)  # the scheduled time; rows span the day before it
CHECKS: list[dict[str, object]] = [
    {"kind": "freshness", "max": "1h"},
    {"kind": "null_rate", "feature": "revenue", "max": 0.05},
    {"kind": "row_count", "min": 1000},
    {"kind": "row_count", "name": "recent_rows", "window": "1h", "min": 10},
    {"kind": "late_arrivals", "watermark": "10m", "max": 0.05},
    {"kind": "duplicates", "max": 0.01},
    {"kind": "range", "feature": "revenue", "min_value": 0, "max_value": 1000, "max": 0.05},
    {"kind": "range", "feature": "purchases", "non_negative": True, "max_value": 50, "max": 0.2},
]
# Row k of n: user k % 100000; event time S - (k % 86000) s; ingested 0..1799 s later (k % 1800,
# a third of them late against 10m); revenue null every 100th row, else (k % 10000) / 10;
# purchases k % 60 (a sixth above 50).
PG_FILL = """
INSERT INTO features.user_stats
SELECT mod(k, 100000), ts, ts + mod(k, 1800) * INTERVAL '1 second',
       CASE WHEN mod(k, 100) = 0 THEN NULL ELSE mod(k, 10000) / 10.0 END, mod(k, 60)::int
FROM (SELECT k, TIMESTAMPTZ '2024-07-01 12:00:00+00' - mod(k, 86000) * INTERVAL '1 second' AS ts
      FROM generate_series(1, {rows}) AS k) AS g
"""
DUCKDB_COPY = """
COPY (
  SELECT k % 100000 AS user_id, ts AS event_timestamp,
         ts + to_seconds(k % 1800) AS created_ts,
         CASE WHEN k % 100 = 0 THEN NULL ELSE (k % 10000) / 10.0 END::DOUBLE AS revenue,
         (k % 60)::INTEGER AS purchases
  FROM (SELECT k, TIMESTAMPTZ '2024-07-01 12:00:00+00' - to_seconds(k % 86000) AS ts
        FROM range(1, {rows} + 1) AS r(k))
) TO '{path}' (FORMAT parquet)
"""

# (a): the same aggregates, written by hand. {t} is the table or read_parquet(...), {late} the
# lateness histogram, w1d / w1h the windows (scheduled - w, scheduled], {finite} the engine's
# test for a finite float: like featmon, the range counts and min/max/mean see finite values
# only (NaN and +-infinity are counted apart).
_LATE = "count(*) FILTER (WHERE {w1d} AND created_ts - event_timestamp <= INTERVAL '{s} seconds')"
HAND = """
SELECT
  max(event_timestamp),
  count(*) FILTER (WHERE {w1d}),
  count(*) FILTER (WHERE {w1d} AND revenue IS NULL),
  count(*) FILTER (WHERE {w1h}),
  count(*) FILTER (WHERE {w1d} AND created_ts IS NOT NULL AND event_timestamp IS NOT NULL),
  {late},
  max({epoch}) FILTER (WHERE {w1d}),
  count(*) FILTER (WHERE {w1d} AND user_id IS NOT NULL),
  count(DISTINCT (user_id, event_timestamp)) FILTER (WHERE {w1d} AND user_id IS NOT NULL),
  count(*) FILTER (WHERE {w1d} AND {nan}),
  count(*) FILTER (WHERE {w1d} AND {infinite}),
  count(*) FILTER (WHERE {w1d} AND revenue < 0 AND {finite}),
  count(*) FILTER (WHERE {w1d} AND revenue > 1000 AND {finite}),
  min(revenue) FILTER (WHERE {w1d} AND {finite}), max(revenue) FILTER (WHERE {w1d} AND {finite}),
  avg(revenue) FILTER (WHERE {w1d} AND {finite}),
  count(*) FILTER (WHERE {w1d} AND purchases IS NULL),
  count(*) FILTER (WHERE {w1d} AND purchases < 0),
  count(*) FILTER (WHERE {w1d} AND purchases > 50),
  min(purchases) FILTER (WHERE {w1d}), max(purchases) FILTER (WHERE {w1d}),
  avg(purchases) FILTER (WHERE {w1d})
FROM {t}
"""
LATENESS_SECONDS = (0, 1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200,
                    86400, 172800, 604800)  # fmt: skip

# (b): an equivalent Soda contract (Soda measures freshness against the clock, not S).
SODA_CONTRACT = """
filter: "event_timestamp > TIMESTAMPTZ '2024-06-30 12:00:00+00'
  AND event_timestamp <= TIMESTAMPTZ '2024-07-01 12:00:00+00'"
checks:
  - freshness:
      column: event_timestamp
      threshold: {must_be_less_than: 100000, unit: day}
  - row_count:
      threshold: {must_be_greater_than: 1000}
  - row_count:
      qualifier: recent
      filter: "event_timestamp > TIMESTAMPTZ '2024-07-01 11:00:00+00'"
      threshold: {must_be_greater_than: 10}
  - duplicate:
      columns: [user_id, event_timestamp]
      threshold: {metric: percent, must_be_less_than: 1}
  - metric:
      qualifier: late
      expression: "avg(CASE WHEN created_ts - event_timestamp > INTERVAL '10 minutes' THEN 1.0 ELSE 0 END)"
      threshold: {must_be_less_than: 0.05}
columns:
  - name: user_id
  - name: event_timestamp
  - name: created_ts
  - name: revenue
    checks:
      - missing:
          threshold: {metric: percent, must_be_less_than: 5}
      - invalid:
          valid_min: 0
          valid_max: 1000
          threshold: {metric: percent, must_be_less_than: 5}
  - name: purchases
    checks:
      - invalid:
          valid_min: 0
          valid_max: 50
          threshold: {metric: percent, must_be_less_than: 20}
"""


class BenchError(Exception):
    """Something the benchmark needs could not be set up."""


@dataclass(frozen=True)
class Timing:
    label: str
    seconds: float


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true", help="200,000 rows, 3 repeats")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    rows, repeat = (200_000, 3) if args.quick else (args.rows, args.repeat)
    try:
        with database() as url, tempfile.TemporaryDirectory() as folder:
            print(f"offline_scan: {rows:,} rows, median of {repeat} after a warm-up")
            parquet = Path(folder) / "user_stats.parquet"
            started = time.monotonic()
            fill_postgres(url, rows)
            fill_parquet(parquet, rows)
            print(f"built PostgreSQL table and Parquet file in {time.monotonic() - started:.1f}s")
            report(bench_postgres(url, repeat), with_soda=True)
            report(bench_parquet(parquet, repeat), with_soda=False)
    except BenchError as exc:
        print(f"offline_scan: {exc}", file=sys.stderr)
        return 2
    return 0


@contextmanager
def database() -> Iterator[str]:
    """A database of its own on the local PostgreSQL, dropped afterwards."""
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"featmon_bench_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        raise BenchError(f"PostgreSQL is not reachable at {ADMIN_URL}: {exc.orig}") from exc
    try:
        yield sa.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def fill_postgres(url: str, rows: int) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE SCHEMA features")
            conn.exec_driver_sql(
                "CREATE TABLE features.user_stats (user_id bigint, event_timestamp timestamptz, "
                "created_ts timestamptz, revenue double precision, purchases integer)"
            )
            conn.exec_driver_sql(PG_FILL.format(rows=int(rows)))
            conn.exec_driver_sql("VACUUM ANALYZE features.user_stats")
    finally:
        engine.dispose()


def fill_parquet(path: Path, rows: int) -> None:
    with duckdb.connect() as conn:
        conn.execute(DUCKDB_COPY.format(rows=int(rows), path=str(path).replace("'", "''")))


def view(location: dict[str, str]) -> FeatureView:
    return FeatureView.model_validate(
        {
            "name": "user_stats",
            "entity": "user_id",
            "ttl": "1d",
            "features": {"revenue": "float", "purchases": "int"},
            "offline": {"store": "warehouse", **location, "ingested_at": "created_ts"},
            "checks": CHECKS,
        }
    )


@dataclass(frozen=True)
class Spelling:
    """How the hand-written query spells, on one engine, what has no portable SQL."""

    epoch: str  # created_ts - event_timestamp in seconds
    nan: str
    infinite: str
    finite: str


def hand_query(table: str, spelling: Spelling, literal: Callable[[datetime], str]) -> str:
    def window(hours: int) -> str:
        since = literal(S - timedelta(hours=hours))
        return f"(event_timestamp > {since} AND event_timestamp <= {literal(S)})"

    w1d = window(24)
    late = ",\n  ".join(_LATE.format(w1d=w1d, s=s) for s in LATENESS_SECONDS)
    return HAND.format(
        t=table,
        w1d=w1d,
        w1h=window(1),
        late=late,
        epoch=spelling.epoch,
        nan=spelling.nan,
        infinite=spelling.infinite,
        finite=spelling.finite,
    )


def bench_postgres(url: str, repeat: int) -> list[Timing]:
    store = SqlOfflineStore("warehouse", SqlStoreConfig(type="sql", url=url, timeout="10m"))
    the_view = view({"table": "features.user_stats"})
    hand = hand_query(
        "features.user_stats",
        Spelling(
            # date_part (double precision), not EXTRACT (numeric since PostgreSQL 14, slower)
            epoch="date_part('epoch', created_ts - event_timestamp)",
            nan="revenue = 'NaN'::float8",
            infinite="revenue IN ('Infinity', '-Infinity')",
            finite="revenue NOT IN ('NaN', 'Infinity', '-Infinity')",
        ),
        lambda t: f"TIMESTAMPTZ '{t.isoformat()}'",
    )
    engine = sa.create_engine(url)
    timings = [
        Timing("featmon", timed(lambda: probe(the_view, store), repeat)),
        Timing("(a) hand-written SQL", timed(lambda: one_query(engine, hand), repeat)),
    ]
    engine.dispose()
    if soda.available():
        contract_view = FeatureView.model_validate(
            {
                **the_view.model_dump(exclude={"checks"}),
                "checks": [{"kind": "soda", "contract": SODA_CONTRACT}],
            }
        )
        timings.append(
            Timing("(b) Soda Core v4", timed(lambda: verify(contract_view, store), repeat))
        )
    else:
        print(f"(b) skipped: soda-core is not installed ({soda.INSTALL})")
    store.close()
    return [Timing(f"PostgreSQL {t.label}", t.seconds) for t in timings]


def bench_parquet(path: Path, repeat: int) -> list[Timing]:
    store = ParquetOfflineStore(
        "warehouse",
        ParquetStoreConfig(type="parquet", root=str(path.parent), timeout="10m"),
    )
    the_view = view({"path": path.name})
    source = f"read_parquet('{str(path).replace(chr(39), chr(39) * 2)}')"
    hand = hand_query(
        source,
        Spelling(
            epoch="(epoch_us(created_ts) - epoch_us(event_timestamp)) / 1e6",
            nan="isnan(revenue)",
            infinite="isinf(revenue)",
            finite="isfinite(revenue)",
        ),
        lambda t: f"TIMESTAMPTZ '{t.isoformat()}'",
    )
    with duckdb.connect() as conn:
        timings = [
            Timing("Parquet featmon", timed(lambda: probe(the_view, store), repeat)),
            Timing(
                "Parquet (a) hand-written SQL",
                timed(lambda: conn.execute(hand).fetchall(), repeat),
            ),
        ]
    store.close()
    return timings


def probe(the_view: FeatureView, store: AggregateStore) -> None:
    results = probe_view(the_view, tuple(plan_view(the_view)), Stores({}, {store.name: store}), S)
    errors = [r for r in results if r.status is Status.ERROR]
    if len(results) != len(CHECKS) or errors:
        raise BenchError(f"featmon did not measure every check: {[r.as_json() for r in errors]}")


def verify(the_view: FeatureView, store: SqlOfflineStore) -> None:
    (check,) = the_view.checks
    assert check.kind == "soda"  # noqa: S101  (built above)
    observation = soda.verify(the_view, check, store)
    if len(observation.outcomes) != len(CHECKS) or observation.errors:
        raise BenchError(f"Soda did not verify every check: {observation.errors}")


def one_query(engine: sa.Engine, sql: str) -> None:
    with engine.connect() as conn:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        conn.exec_driver_sql(sql).one()
        conn.rollback()


def timed(run: Callable[[], object], repeat: int) -> float:
    """The median wall time of `repeat` runs after one warm-up run."""
    run()
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def report(timings: list[Timing], with_soda: bool) -> None:
    by_label = {t.label.split(" ", 1)[1]: t.seconds for t in timings}
    engine = timings[0].label.split(" ", 1)[0]
    print(f"\n{'what':<36} {'median':>10}")
    for t in timings:
        print(f"{t.label:<36} {t.seconds * 1000:>8.0f}ms")
    featmon = by_label["featmon"]
    ratio = featmon / by_label["(a) hand-written SQL"]
    verdict = "PASS" if ratio <= 1.2 else "MISS"
    print(f"{engine}: featmon / (a) hand-written = {ratio:.2f}x (target <= 1.20x): {verdict}")
    soda_seconds = by_label.get("(b) Soda Core v4")
    if with_soda and soda_seconds is not None:
        ratio = featmon / soda_seconds
        verdict = "PASS" if ratio < 1.0 else "MISS"
        print(f"{engine}: featmon / (b) Soda Core v4 = {ratio:.2f}x (target < 1.00x): {verdict}")


if __name__ == "__main__":
    sys.exit(main())
