"""How fast featmon measures an offline table, against a hand-written query and Soda Core v4.

    .venv/bin/python -m bench.offline_scan [--rows N] [--quick] [--repeat N]

Builds one table of `--rows` rows (10,000,000 by default) twice, from the same formulas: in a
PostgreSQL database of its own (server-side `generate_series`), and as a Parquet file written by
DuckDB's COPY. Then times, per engine, the median of `--repeat` runs after one warm-up of:

- featmon: `probe_view` of a view with 8 aggregate checks (freshness, null rate, two row
  counts, late arrivals, duplicates, two ranges), i.e. one catalog lookup and one aggregate
  query, then evaluation;
- (a) one hand-written SQL query computing the same aggregates, each in the cheapest spelling
  known on that engine (see `POSTGRES` and `DUCKDB`);
- (b) Soda Core v4 verifying an equivalent contract of 8 checks (needs the `soda` extra):
  through soda-postgres on PostgreSQL, through soda-duckdb on the Parquet file (featmon's own
  Soda path: a private in-memory DuckDB with a view over the file).

Then checks that (a) computed exactly featmon's numbers (counts equal, times equal, floats
within 1e-9): a mismatch stops the run with exit status 2 before any ratio is printed.

Targets: featmon within 1.2x of (a); featmon faster than (b). Prints a table, the ratios and
PASS/MISS per target. The database is created on the local PostgreSQL
(FEATMON_TEST_PG_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/postgres) and dropped
afterwards. Exits 0 with the report (whatever the targets), 2 when something could not run or
(a) and featmon disagree.
"""

from __future__ import annotations

import argparse
import math
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
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import duckdb
import sqlalchemy as sa

from checks.model import FeatureView
from checks.observation import (
    DistinctKeys,
    KeyedRows,
    LatenessCount,
    MaxLateness,
    MaxTimestamp,
    MetricValue,
    NullCount,
    OfflineMetric,
    OfflineObservation,
    RowCount,
    ValueCount,
    ValueStat,
    ValueStatistic,
)
from checks.plan import plan_view
from checks.result import Status
from checks.serde import to_json
from monitor.config import ParquetStoreConfig, SqlStoreConfig
from monitor.runs.probe import Stores, probe_view
from monitor.stores import soda
from monitor.stores.sql.offline import AggregateStore
from monitor.stores.sql.parquet import ParquetOfflineStore
from monitor.stores.sql.table import SqlOfflineStore

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

# (a): the same aggregates, written by hand as one SELECT, each in the cheapest spelling known on
# the engine (measured one aggregate at a time; bench/README.md). Where featmon's spelling is the
# cheapest known, the hand-written query uses it too: the ratio is then featmon's own overhead.
LATENESS_SECONDS = (0, 1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200,
                    86400, 172800, 604800)  # fmt: skip
DAY, HOUR = timedelta(days=1), timedelta(hours=1)
STATISTICS: tuple[tuple[ValueStatistic, str], ...] = (
    ("min", "min"),
    ("max", "max"),
    ("mean", "avg"),
)


@dataclass(frozen=True)
class Spelling:
    """How the hand-written query spells, on one engine, a conditional aggregate and what has
    no portable SQL. Templates: {c} a condition, {f} an aggregate function, {e} an expression,
    {s} and {us} a lateness bound in seconds and microseconds."""

    count_if: str
    aggregate_if: str
    distinct_pairs: str  # count of distinct (user_id, event_timestamp) where {c}
    late_by_at_most: str
    lateness: str  # created_ts - event_timestamp in seconds
    nan: str
    infinite: str
    finite: str


POSTGRES = Spelling(
    # FILTER: 5-10% cheaper than COUNT(CASE ...) on PostgreSQL (featmon counts so too; its
    # min/max/avg keep the CASE form)
    count_if="count(*) FILTER (WHERE {c})",
    aggregate_if="{f}({e}) FILTER (WHERE {c})",
    # text, sorted as bytes: a row value sorts at about half the speed, text under the
    # database's collation at about two thirds (featmon's, with a length before the key)
    distinct_pairs=(
        "count(DISTINCT (user_id::text || ' ' || event_timestamp::text) COLLATE \"C\") "
        "FILTER (WHERE {c})"
    ),
    late_by_at_most="created_ts <= event_timestamp + INTERVAL '{s} seconds'",  # featmon's
    lateness="date_part('epoch', created_ts - event_timestamp)",  # featmon's
    nan="revenue = 'NaN'::float8",
    infinite="revenue IN ('Infinity', '-Infinity')",
    finite="revenue > '-Infinity'::float8 AND revenue < 'Infinity'::float8",  # featmon's
)
DUCKDB = Spelling(
    # COUNT(CASE ...), featmon's: FILTER took about 1.8x the time on DuckDB
    count_if="count(CASE WHEN {c} THEN 1 END)",
    aggregate_if="{f}(CASE WHEN {c} THEN {e} END)",
    distinct_pairs="count(DISTINCT CASE WHEN {c} THEN row(user_id, event_timestamp) END)",
    # whole microseconds, featmon's: an interval difference took 35x the time on DuckDB
    late_by_at_most="epoch_us(created_ts) - epoch_us(event_timestamp) <= {us}",
    lateness="(epoch_us(created_ts) - epoch_us(event_timestamp)) / 1000000.0",
    nan="isnan(revenue)",
    infinite="isinf(revenue)",
    finite="isfinite(revenue)",
)


def literal(moment: datetime) -> str:
    return f"TIMESTAMPTZ '{moment.isoformat()}'"


def hand_aggregates(sp: Spelling) -> list[tuple[OfflineMetric, str]]:
    """Each metric featmon measures for the view, with the aggregate that computes it by hand."""

    def window(w: timedelta) -> str:
        return f"event_timestamp > {literal(S - w)} AND event_timestamp <= {literal(S)}"

    day = window(DAY)

    def count(condition: str) -> str:
        return sp.count_if.format(c=f"{day} AND {condition}")

    def of(function: str, expression: str, condition: str = "TRUE") -> str:
        return sp.aggregate_if.format(f=function, e=expression, c=f"{day} AND {condition}")

    late = [
        (
            LatenessCount("created_ts", timedelta(seconds=s), DAY),
            count(sp.late_by_at_most.format(s=s, us=s * 1_000_000)),
        )
        for s in LATENESS_SECONDS
    ]
    stats = [
        (ValueStat(column, stat, DAY), of(function, column, condition))
        for column, condition in (("revenue", sp.finite), ("purchases", "TRUE"))
        for stat, function in STATISTICS
    ]
    return [
        (MaxTimestamp("event_timestamp"), "max(event_timestamp)"),
        (RowCount(DAY), sp.count_if.format(c=day)),
        (RowCount(HOUR), sp.count_if.format(c=window(HOUR))),
        (NullCount("revenue", DAY), count("revenue IS NULL")),
        (NullCount("purchases", DAY), count("purchases IS NULL")),
        (
            LatenessCount("created_ts", None, DAY),
            count("created_ts IS NOT NULL AND event_timestamp IS NOT NULL"),
        ),
        *late,
        (MaxLateness("created_ts", DAY), of("max", sp.lateness)),
        (KeyedRows(("user_id",), DAY), count("user_id IS NOT NULL")),
        (
            DistinctKeys(("user_id",), DAY),
            sp.distinct_pairs.format(
                c=f"{day} AND user_id IS NOT NULL AND event_timestamp IS NOT NULL"
            ),
        ),
        (ValueCount("revenue", "nan", DAY), count(sp.nan)),
        (ValueCount("revenue", "infinite", DAY), count(sp.infinite)),
        (ValueCount("revenue", "below", DAY, 0.0), count(f"{sp.finite} AND revenue < 0")),
        (ValueCount("revenue", "above", DAY, 1000.0), count(f"{sp.finite} AND revenue > 1000")),
        # an integer column holds no NaN and no infinity: no aggregate needed (featmon's
        # COUNT(CASE WHEN false ...) costs nothing either)
        (ValueCount("purchases", "nan", DAY), "0"),
        (ValueCount("purchases", "infinite", DAY), "0"),
        (ValueCount("purchases", "negative", DAY), count("purchases < 0")),
        (ValueCount("purchases", "above", DAY, 50.0), count("purchases > 50")),
        *stats,
    ]


def hand_query(table: str, aggregates: list[tuple[OfflineMetric, str]]) -> str:
    columns = ",\n  ".join(sql for _, sql in aggregates)
    return f"SELECT\n  {columns}\nFROM {table}"


# (b): an equivalent Soda contract (Soda measures freshness against the clock, not S). {late}
# is the engine's cheapest test of a lateness above 10 minutes (as in (a)).
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
      expression: "avg(CASE WHEN LATE THEN 1.0 ELSE 0 END)"
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
SODA_LATE = {
    "PostgreSQL": "created_ts > event_timestamp + INTERVAL '600 seconds'",
    "Parquet": "epoch_us(created_ts) - epoch_us(event_timestamp) > 600000000",
}


T = TypeVar("T")


class BenchError(Exception):
    """Something the benchmark needs could not be set up."""


class Mismatch(BenchError):
    """The hand-written query did not compute featmon's numbers."""

    def __init__(self, engine: str, differences: list[str]) -> None:
        self.engine = engine
        self.differences = differences
        shown = "\n  ".join(differences[:20])
        super().__init__(
            f"{engine}: the hand-written query (a) disagrees with featmon on "
            f"{len(differences)} metrics, so its times mean nothing:\n  {shown}"
        )


@dataclass(frozen=True)
class Timing:
    label: str
    seconds: float


class Recording(AggregateStore):
    """Keeps the last observation `measure` returned, for the cross-check (an assignment)."""

    last: OfflineObservation | None = None

    def measure(
        self, view: FeatureView, metrics: frozenset[OfflineMetric], scheduled_at: datetime
    ) -> OfflineObservation:
        self.last = super().measure(view, metrics, scheduled_at)
        return self.last


class RecordingSqlStore(Recording, SqlOfflineStore):
    pass


class RecordingParquetStore(Recording, ParquetOfflineStore):
    pass


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
            print(f"load average before: {load_average()}")
            parquet = Path(folder) / "user_stats.parquet"
            started = time.monotonic()
            fill_postgres(url, rows)
            fill_parquet(parquet, rows)
            print(f"built PostgreSQL table and Parquet file in {time.monotonic() - started:.1f}s")
            report(bench_postgres(url, repeat))
            report(bench_parquet(parquet, repeat))
            print(f"\nload average after: {load_average()}")
    except BenchError as exc:
        print(f"offline_scan: {exc}", file=sys.stderr)
        return 2
    return 0


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


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


def contract_view(the_view: FeatureView, engine: str) -> FeatureView:
    contract = SODA_CONTRACT.replace("LATE", SODA_LATE[engine])
    return FeatureView.model_validate(
        {
            **the_view.model_dump(exclude={"checks"}),
            "checks": [{"kind": "soda", "contract": contract}],
        }
    )


def bench_postgres(url: str, repeat: int) -> list[Timing]:
    store = RecordingSqlStore("warehouse", SqlStoreConfig(type="sql", url=url, timeout="10m"))
    the_view = view({"table": "features.user_stats"})
    aggregates = hand_aggregates(POSTGRES)
    hand = hand_query("features.user_stats", aggregates)
    engine = sa.create_engine(url)
    try:
        featmon = timed(lambda: probe(the_view, store), repeat)
        seconds, row = timed(lambda: one_query(engine, hand), repeat)
        timings = [Timing("featmon", featmon[0]), Timing("(a) hand-written SQL", seconds)]
        cross_check("PostgreSQL", store.last, aggregates, row)
        timings += soda_timing(contract_view(the_view, "PostgreSQL"), store, repeat)
    finally:
        engine.dispose()
        store.close()
    return [Timing(f"PostgreSQL {t.label}", t.seconds) for t in timings]


def bench_parquet(path: Path, repeat: int) -> list[Timing]:
    store = RecordingParquetStore(
        "warehouse",
        ParquetStoreConfig(type="parquet", root=str(path.parent), timeout="10m"),
    )
    the_view = view({"path": path.name})
    aggregates = hand_aggregates(DUCKDB)
    hand = hand_query(f"read_parquet('{str(path).replace(chr(39), chr(39) * 2)}')", aggregates)
    try:
        with duckdb.connect() as conn:
            featmon = timed(lambda: probe(the_view, store), repeat)
            seconds, row = timed(lambda: conn.execute(hand).fetchone(), repeat)
        timings = [Timing("featmon", featmon[0]), Timing("(a) hand-written SQL", seconds)]
        cross_check("Parquet", store.last, aggregates, row)
        timings += soda_timing(contract_view(the_view, "Parquet"), store, repeat)
    finally:
        store.close()
    return [Timing(f"Parquet {t.label}", t.seconds) for t in timings]


def soda_timing(the_view: FeatureView, store: AggregateStore, repeat: int) -> list[Timing]:
    if not soda.available():
        print(f"(b) skipped: soda-core is not installed ({soda.INSTALL})")
        return []
    return [Timing("(b) Soda Core v4", timed(lambda: verify(the_view, store), repeat)[0])]


def probe(the_view: FeatureView, store: AggregateStore) -> None:
    results = probe_view(the_view, tuple(plan_view(the_view)), Stores({}, {store.name: store}), S)
    errors = [r for r in results if r.status is Status.ERROR]
    if len(results) != len(CHECKS) or errors:
        raise BenchError(f"featmon did not measure every check: {[to_json(r) for r in errors]}")


def verify(the_view: FeatureView, store: AggregateStore) -> None:
    (check,) = the_view.checks
    assert check.kind == "soda"  # noqa: S101  (built above)
    observation = soda.verify(the_view, check, store)
    if len(observation.outcomes) != len(CHECKS) or observation.errors:
        raise BenchError(f"Soda did not verify every check: {observation.errors}")


def one_query(engine: sa.Engine, sql: str) -> tuple[object, ...]:
    with engine.connect() as conn:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        row = tuple(conn.exec_driver_sql(sql).one())
        conn.rollback()
    return row


def timed(run: Callable[[], T], repeat: int) -> tuple[float, T]:
    """The median wall time of `repeat` runs after one warm-up run, and the last run's value."""
    value = run()
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        value = run()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), value


# --- the cross-check -------------------------------------------------------------------------


def cross_check(
    engine: str,
    featmon: OfflineObservation | None,
    aggregates: list[tuple[OfflineMetric, str]],
    row: tuple[object, ...] | None,
) -> None:
    """Raise `Mismatch` unless the hand-written query's row holds featmon's measured values:
    the same metrics, counts and times equal, floats within 1e-9 (relative)."""
    if featmon is None or row is None:
        raise Mismatch(engine, ["featmon or the hand-written query returned nothing"])
    hand = {metric: value for (metric, _), value in zip(aggregates, row, strict=True)}
    differences = [
        f"{metric}: measured by featmon only" for metric in featmon.values if metric not in hand
    ]
    differences += [
        f"{metric}: computed by hand only" for metric in hand if metric not in featmon.values
    ]
    for metric, ours in featmon.values.items():
        if metric in hand and not same(ours, hand[metric]):
            differences.append(f"{metric}: featmon {ours!r}, hand-written {hand[metric]!r}")
    if differences:
        raise Mismatch(engine, differences)
    print(f"{engine}: (a) computed featmon's {len(featmon.values)} values (cross-checked)")


def same(ours: MetricValue, theirs: object) -> bool:
    if isinstance(ours, datetime) or isinstance(theirs, datetime):
        return (
            isinstance(ours, datetime)
            and isinstance(theirs, datetime)
            and theirs.tzinfo is not None
            and ours == theirs
        )
    if ours is None or theirs is None:
        return ours is theirs
    if isinstance(theirs, Decimal):
        theirs = float(theirs) if theirs != theirs.to_integral_value() else int(theirs)
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return False
    if isinstance(ours, int) and isinstance(theirs, int):
        return ours == theirs
    if isinstance(ours, int | float) and isinstance(theirs, int | float):
        return math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-9)
    return False


# --- the report ------------------------------------------------------------------------------


def report(timings: list[Timing]) -> None:
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
    if soda_seconds is not None:
        ratio = featmon / soda_seconds
        verdict = "PASS" if ratio < 1.0 else "MISS"
        print(f"{engine}: featmon / (b) Soda Core v4 = {ratio:.2f}x (target < 1.00x): {verdict}")


if __name__ == "__main__":
    sys.exit(main())
