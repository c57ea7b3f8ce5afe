"""How fast featmon judges a model's serving log, against hand-written aggregate SQL.

    .venv/bin/python -m bench.model_logs [--rows N] [--pg-rows N] [--repeat N] [--fresh]
                                         [--skip-postgres] [--skip-parquet]

A model over 3 views and 12 features (Feast's logging schema: per feature the value, its
`__timestamp` and `__status`; `__log_timestamp`), `--rows` logged requests (10,000,000 by
default; `--pg-rows` for PostgreSQL, default the same), built from the same formulas twice: as a
directory of Parquet files (DuckDB computes the rows, pyarrow writes them with Feast's types:
value times timestamp[ms, UTC], the log time timestamp[us, UTC]) and as a PostgreSQL table
(server-side `generate_series`). Both are cached between runs (`.cache/bench/model_logs/` and
the database `featmon_bench_model_logs`, one table per row count); `--fresh` rebuilds them.

Times, per engine, the median of `--repeat` runs after one warm-up of:

- featmon: `measure_serving_log` over the hour before the scheduled time (every request): one
  catalog lookup and featmon's one statement;
- (a) one hand-written SQL statement computing the same observation (coverage, the misses of
  each view and feature by reason, the disagreeing statuses, nearest-rank p50/p90/p99/max of
  value, view and request ages), in the cheapest spelling known on the engine;
- (a') for information: one hand-written statement computing only the coverage and the p99 of
  value ages, the least any judgment of the log must do.

Then checks that (a) and (a') computed exactly featmon's numbers: a mismatch stops the run with
exit status 2 before any ratio is printed. Target: featmon within 1.2x of (a). Then, for
information, the request-sample mode (`requests:`, `bench/model_requests.py`): `--sample`
requests (10,000; 0 skips it) probed in a private Redis now.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from bench.model_requests import bench_requests
from bench.redis_load import BenchError as RedisBenchError
from checks.model import FeatureView
from checks.observation import Ages, ModelObservation
from checks.served import Model, ServedModel, resolve
from monitor.config import ParquetStoreConfig, SqlStoreConfig
from monitor.stores.sql.offline import AggregateStore
from monitor.stores.sql.parquet import ParquetOfflineStore
from monitor.stores.sql.table import SqlOfflineStore

ADMIN_URL = os.environ.get(
    "FEATMON_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DATABASE = "featmon_bench_model_logs"
CACHE = Path(".cache/bench/model_logs")
S = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)  # the scheduled time: the window is the hour before
SINCE = S - timedelta(hours=1)
VIEWS = {  # view: (features, ttl)
    "user_stats": (("u0", "u1", "u2", "u3"), "1d"),
    "merchant_stats": (("m0", "m1", "m2", "m3"), "2h"),
    "user_merchant": (("x0", "x1", "x2", "x3"), "1d"),
}
MAX_FUTURE = timedelta(seconds=5)
COLUMNS = [(v, f"{v}__{f}") for v, (features, _) in VIEWS.items() for f in features]
REASONS = ("absent", "null", "stale", "future")

# Request k of n: logged at S - (7919 k mod 3.6e9) us, in the hour before S (k = 0 at S itself,
# outside the window); user k mod 100000, merchant k mod 5000. Feature j's value is (k mod 1000)
# / 10, its time whole seconds, (k (7919 + 104729 j)) mod 7200 s before the request, except:
# user_stats 25 h old for k mod 97 = 0 (stale), merchant m0 10 minutes ahead for k mod 1013 = 0
# (future), m1 null for k mod 53 = 0, user_merchant feature j absent for k mod 211 = j (null at
# time 0, status PRESENT, as Feast's Redis store logs it: a disagreement). Every status is 1.


@dataclass(frozen=True)
class Dialect:
    """How an engine spells the generator's arithmetic, and how the hand-written query spells
    what has no portable SQL (templates: {a} {b} numbers, {t} {lt} times, {c} a condition,
    {x} an expression, {s} seconds)."""

    mod: str
    seconds: str  # an interval of {x} whole seconds
    log_time: str  # request k's log time
    rows: str  # k = 0 .. n - 1
    count_if: str
    age_us: str  # {lt} - {t} in whole microseconds
    later_than: str  # {t} - {lt} > {s} seconds
    older_than: str  # {lt} - {t} > {s} seconds
    nan: str
    quantiles: str  # nearest-rank p50, p90, p99, max of {x} (an array)
    p99: str


POSTGRES = Dialect(
    mod="mod({a}, {b})",
    seconds="({x}) * INTERVAL '1 second'",
    log_time="TIMESTAMPTZ '2024-07-01 12:00:00+00' - mod(k * 7919, 3600000000) * INTERVAL '1 microsecond'",
    rows="generate_series(0::bigint, {n} - 1) AS k",
    count_if="count(*) FILTER (WHERE {c})",
    age_us="round(date_part('epoch', {lt} - {t}) * 1000000)",
    later_than="{t} > {lt} + INTERVAL '{s} seconds'",
    older_than="{lt} > {t} + INTERVAL '{s} seconds'",
    nan="{x} = 'NaN'::float8",
    quantiles="percentile_disc(ARRAY[0.5, 0.9, 0.99, 1.0]) WITHIN GROUP (ORDER BY {x})",
    p99="percentile_disc(0.99) WITHIN GROUP (ORDER BY {x})",
)
DUCKDB = Dialect(
    mod="({a}) % {b}",
    seconds="to_seconds({x})",
    log_time="TIMESTAMPTZ '2024-07-01 12:00:00+00' - to_microseconds((k * 7919) % 3600000000)",
    rows="range(0, {n}) AS r(k)",
    count_if="count(CASE WHEN {c} THEN 1 END)",
    age_us="(epoch_us({lt}) - epoch_us({t}))",
    later_than="epoch_us({t}) - epoch_us({lt}) > {s}000000",
    older_than="epoch_us({lt}) - epoch_us({t}) > {s}000000",
    nan="isnan({x})",
    quantiles="quantile_disc({x}, [0.5, 0.9, 0.99, 1.0])",
    p99="quantile_disc({x}, 0.99)",
)


def rows_query(d: Dialect, n: int) -> str:
    """The n logged requests, in Feast's column order."""

    def mod(a: str, b: int) -> str:
        return d.mod.format(a=a, b=b)

    columns = [f"{mod('k', 100000)} AS user_id", f"{mod('k', 5000)} AS merchant_id"]
    for j, (view, column) in enumerate(COLUMNS):
        feature = column.rsplit("__", 1)[1]
        age = mod(f"k * {7919 + 104729 * j}", 7200)
        if view == "user_stats":
            age = f"CASE WHEN {mod('k', 97)} = 0 THEN 90000 + {mod('k', 1000)} ELSE {age} END"
        elif feature == "m0":
            age = f"CASE WHEN {mod('k', 1013)} = 0 THEN -600 ELSE {age} END"
        absent = f"{mod('k', 211)} = {j}" if view == "user_merchant" else "false"
        null = f"{mod('k', 53)} = 0" if feature == "m1" else "false"
        columns += [
            f"CASE WHEN {absent} OR {null} THEN NULL ELSE {mod('k', 1000)} / 10.0 END AS {column}",
            f"CASE WHEN {absent} THEN TIMESTAMPTZ '1970-01-01 00:00:00+00' "
            f"ELSE date_trunc('second', lt - {d.seconds.format(x=age)}) END "
            f"AS {column}__timestamp",
            f"1 AS {column}__status",
        ]
    return (
        f"SELECT {', '.join(columns)}, lt AS __log_timestamp "
        f"FROM (SELECT k, {d.log_time} AS lt FROM {d.rows.format(n=n)}) AS g"
    )


# --- the hand-written queries ----------------------------------------------------------------


def _judged(d: Dialect, table: str, statuses: bool) -> str:
    """One row per request of the window: each value's code (0 usable, 1 absent, 2 null,
    3 stale, 4 future), its age in microseconds, its status."""
    max_age = {"user_stats": 86400, "merchant_stats": 7200, "user_merchant": 86400}
    parts = []
    lt = "__log_timestamp"
    for i, (view, c) in enumerate(COLUMNS):
        t = f"{c}__timestamp"
        absent = f"{t} IS NULL OR {t} <= TIMESTAMPTZ '1970-01-01 00:00:00+00'"
        future = d.later_than.format(t=t, lt=lt, s=5)
        stale = d.older_than.format(t=t, lt=lt, s=max_age[view])
        parts += [
            f"CASE WHEN {absent} THEN 1 WHEN {c} IS NULL OR {d.nan.format(x=c)} THEN 2 "
            f"WHEN {future} THEN 4 WHEN {stale} THEN 3 ELSE 0 END AS c{i}",
            f"CASE WHEN {absent} OR {future} THEN NULL "
            f"ELSE greatest({d.age_us.format(lt=lt, t=t)}, 0) END AS a{i}",
        ]
        if statuses:
            parts.append(f"{c}__status AS s{i}")
    return (
        f"SELECT {', '.join(parts)} FROM {table} "
        f"WHERE {lt} >= TIMESTAMPTZ '{SINCE.isoformat()}' AND {lt} < TIMESTAMPTZ '{S.isoformat()}'"
    )


def hand_query(d: Dialect, table: str) -> str:
    """(a): featmon's whole observation, by hand. Columns: requests, covered; per view
    uncovered, only, then absent, null, stale, future; per feature the same four; disagreeing
    statuses; then (count, quantiles) of value ages, of each view's, of request ages."""
    views = list(VIEWS)
    n = len(COLUMNS)
    mine = {v: [i for i, (w, _) in enumerate(COLUMNS) if w == v] for v in views}

    def count(condition: str) -> str:
        return d.count_if.format(c=condition)

    ok = " AND ".join(f"c{i} = 0" for i in range(n))
    counts = ["count(*)", count(ok)]
    for v in views:
        missed = "(" + " OR ".join(f"c{i} <> 0" for i in mine[v]) + ")"
        others = " AND ".join(f"c{i} = 0" for i in range(n) if i not in mine[v])
        counts += [count(missed), count(f"{missed} AND {others}")]
        counts += [count(" OR ".join(f"c{i} = {r}" for i in mine[v])) for r in (1, 2, 3, 4)]
    counts += [count(f"c{i} = {r}") for i in range(n) for r in (1, 2, 3, 4)]
    agrees = "s{i} = 1 AND c{i} IN (0, 3, 4) OR s{i} = 2 AND c{i} IN (1, 2) OR s{i} = 3 AND c{i} = 1 OR s{i} = 4 AND c{i} = 3"
    counts.append(
        "sum("
        + " + ".join(
            f"CASE WHEN s{i} IS NULL OR {agrees.format(i=i)} THEN 0 ELSE 1 END" for i in range(n)
        )
        + ")"
    )
    oldest = f"greatest({', '.join(f'a{i}' for i in range(n))})"
    counts += [f"count({oldest})", d.quantiles.format(x=oldest)]
    index = ", ".join(str(views.index(v)) for v, _ in COLUMNS)
    ages = ["count(age)", d.quantiles.format(x="age")]
    for k in range(len(views)):
        ages += [
            f"count(age) FILTER (WHERE view = {k})",
            f"{d.quantiles.format(x='age')} FILTER (WHERE view = {k})",
        ]
    return (
        f"WITH judged AS MATERIALIZED ({_judged(d, table, True)})\n"
        f"SELECT * FROM (SELECT {', '.join(counts)} FROM judged) AS counts,\n"
        f"(SELECT {', '.join(ages)} FROM (SELECT unnest(ARRAY[{', '.join(f'a{i}' for i in range(n))}]) AS age, "
        f"unnest(ARRAY[{index}]) AS view FROM judged) AS unpivoted) AS ages"
    )


def least_query(d: Dialect, table: str) -> str:
    """(a'): only requests, covered requests and the p99 of value ages."""
    n = len(COLUMNS)
    ok = " AND ".join(f"c{i} = 0" for i in range(n))
    return (
        f"WITH judged AS MATERIALIZED ({_judged(d, table, False)})\n"
        f"SELECT * FROM (SELECT count(*), {d.count_if.format(c=ok)} FROM judged) AS counts,\n"
        f"(SELECT {d.p99.format(x='age')} FROM (SELECT unnest(ARRAY[{', '.join(f'a{i}' for i in range(n))}]) "
        f"AS age FROM judged) AS unpivoted) AS ages"
    )


# --- what featmon measured, as the hand-written queries' columns -----------------------------


def _ages(ages: Ages) -> list[object]:
    return [ages.count, ages.p50, ages.p90, ages.p99, ages.max]


def flattened(o: ModelObservation) -> list[object]:
    """featmon's observation in `hand_query`'s column order."""
    out: list[object] = [o.requests, o.covered]
    for v in VIEWS:
        view = o.views[v]
        out += [view.uncovered, view.only, *(view.reasons[r] for r in REASONS)]
    for v, c in COLUMNS:
        feature = o.features[f"{v}:{c.rsplit('__', 1)[1]}"]
        out += [getattr(feature, r) for r in REASONS]
    out += [o.status_disagreements, *_ages(o.request_ages), *_ages(o.value_ages)]
    for v in VIEWS:
        out += _ages(o.views[v].ages)
    return out


def _hand_values(row: tuple[object, ...]) -> list[object]:
    """A hand-written row with each quantile array spread out, microseconds as seconds."""
    out: list[object] = []
    for value in row:
        if isinstance(value, list | tuple):
            out += [None if x is None else float(x) / 1_000_000 for x in value]
        elif value is None and out and isinstance(out[-1], int) and out[-1] == 0:
            out += [None] * 4  # no ages: no quantiles
        else:
            out.append(value)
    return out


def cross_check(
    engine: str, featmon: ModelObservation, hand: tuple[object, ...], least: tuple[object, ...]
) -> None:
    """Raise `Mismatch` unless (a) holds every number featmon measured and (a') its
    coverage and p99."""
    ours = flattened(featmon)
    theirs = _hand_values(hand)
    differences = [
        f"column {i}: featmon {a!r}, hand-written {b!r}"
        for i, (a, b) in enumerate(zip(ours, theirs, strict=False))
        if not same(a, b)
    ]
    if len(ours) != len(theirs):
        differences.append(f"featmon has {len(ours)} numbers, (a) {len(theirs)}")
    least_ours = [featmon.requests, featmon.covered, featmon.value_ages.p99]
    least_theirs = [least[0], least[1], None if least[2] is None else float(least[2]) / 1_000_000]  # type: ignore[arg-type]
    differences += [
        f"(a') {a!r} != {b!r}"
        for a, b in zip(least_ours, least_theirs, strict=True)
        if not same(a, b)
    ]
    if differences:
        raise Mismatch(engine, differences)
    print(f"{engine}: (a) and (a') computed featmon's {len(ours)} numbers (cross-checked)")


def same(ours: object, theirs: object) -> bool:
    if isinstance(theirs, Decimal):
        theirs = int(theirs) if theirs == theirs.to_integral_value() else float(theirs)
    if ours is None or theirs is None:
        return ours is theirs
    if isinstance(ours, int) and isinstance(theirs, int):
        return ours == theirs
    if isinstance(ours, int | float) and isinstance(theirs, int | float):
        return math.isclose(ours, theirs, rel_tol=1e-12, abs_tol=0.0)
    return False


class BenchError(Exception):
    """Something the benchmark needs could not be set up."""


class Mismatch(BenchError):
    """A hand-written query did not compute featmon's numbers."""

    def __init__(self, engine: str, differences: list[str]) -> None:
        shown = "\n  ".join(differences[:20])
        super().__init__(
            f"{engine}: a hand-written query disagrees with featmon on {len(differences)} "
            f"numbers, so its times mean nothing:\n  {shown}"
        )


@dataclass(frozen=True)
class Timing:
    label: str
    seconds: float


# --- the data, built once and cached ---------------------------------------------------------


def parquet_log(rows: int, fresh: bool) -> Path:
    """The log as a directory of Parquet files of Feast's types, one per million requests."""
    directory = CACHE / f"{rows}"
    done = directory / "_SUCCESS"
    if done.exists() and not fresh:
        print(f"Parquet: reusing {rows:,} requests in {directory}")
        return directory
    started = time.monotonic()
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.parquet"):
        old.unlink()
    with duckdb.connect() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        reader = conn.sql(rows_query(DUCKDB, rows)).to_arrow_reader(1_000_000)
        if reader is None:
            raise BenchError("DuckDB returned no rows to write")
        for number, batch in enumerate(reader):
            table = pa.Table.from_batches([batch])
            pq.write_table(
                table.cast(feast_schema(table.schema)), directory / f"part-{number:04d}.parquet"
            )
    done.write_text("")
    print(f"Parquet: wrote {rows:,} requests in {time.monotonic() - started:.1f}s")
    return directory


def feast_schema(schema: pa.Schema) -> pa.Schema:
    """`schema` with Feast's logging types: value times timestamp[ms, UTC] (declared seconds,
    stored as milliseconds), the log time timestamp[us, UTC], statuses int32."""
    fields = []
    for field in schema:
        if field.name == "__log_timestamp":
            fields.append(pa.field(field.name, pa.timestamp("us", "UTC")))
        elif field.name.endswith("__timestamp"):
            fields.append(pa.field(field.name, pa.timestamp("ms", "UTC")))
        elif field.name.endswith("__status"):
            fields.append(pa.field(field.name, pa.int32()))
        else:
            fields.append(field)
    return pa.schema(fields)


def pg_database() -> str:
    """The benchmark's own database (kept between runs, for its cached tables); its URL."""
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.exec_driver_sql(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).first()
            if found is None:
                conn.exec_driver_sql(f'CREATE DATABASE "{DATABASE}"')
    except sa.exc.OperationalError as exc:
        raise BenchError(f"PostgreSQL is not reachable at {ADMIN_URL}: {exc.orig}") from exc
    finally:
        admin.dispose()
    return sa.make_url(ADMIN_URL).set(database=DATABASE).render_as_string(hide_password=False)


def pg_log(url: str, rows: int, fresh: bool) -> str:
    """The log as the table `fraud_log_<rows>`, built by the server; its name."""
    table = f"fraud_log_{rows}"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.exec_driver_sql("SELECT to_regclass(%s)", (table,)).scalar()
            if exists is not None and not fresh:
                print(f"PostgreSQL: reusing {rows:,} requests in {table}")
                return table
            started = time.monotonic()
            columns = ", ".join(
                f"{c} double precision, {c}__timestamp timestamptz, {c}__status integer"
                for _, c in COLUMNS
            )
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
            conn.exec_driver_sql(
                f"CREATE TABLE {table} (user_id bigint, merchant_id bigint, {columns}, "
                "__log_timestamp timestamptz)"
            )
            conn.exec_driver_sql(f"INSERT INTO {table} {rows_query(POSTGRES, rows)}")
            conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
            print(f"PostgreSQL: wrote {rows:,} requests in {time.monotonic() - started:.1f}s")
    finally:
        engine.dispose()
    return table


# --- the timings -----------------------------------------------------------------------------


def served(location: Mapping[str, str]) -> ServedModel:
    views = {
        name: FeatureView.model_validate(
            {
                "name": name,
                "entity": "user_id",
                "ttl": ttl,
                "features": dict.fromkeys(features, "float"),
            }
        )
        for name, (features, ttl) in VIEWS.items()
    }
    model = Model.model_validate(
        {
            "name": "fraud",
            "features": list(VIEWS),
            "max_future": "5s",
            "serving_log": {"store": "warehouse", **location},
        }
    )
    resolved, problems = resolve(model, views)
    if resolved is None:
        raise BenchError(f"the benchmark's model does not resolve: {problems}")
    return resolved


def timed(
    runs: Mapping[str, Callable[[], object]], repeat: int
) -> tuple[dict[str, float], dict[str, object]]:
    """The median wall time of each run over `repeat` rounds after one warm-up round (the runs
    interleaved, so that a burst of other work on the machine hits all alike), and the last
    value of each."""
    values = {label: run() for label, run in runs.items()}
    seconds: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(repeat):
        for label, run in runs.items():
            started = time.perf_counter()
            values[label] = run()
            seconds[label].append(time.perf_counter() - started)
    return {label: statistics.median(s) for label, s in seconds.items()}, values


def bench(
    engine: str,
    store: AggregateStore,
    model: ServedModel,
    hand: Callable[[str], tuple[object, ...]],
    dialect: Dialect,
    table: str,
    repeat: int,
) -> list[Timing]:
    log = model.model.serving_log
    if log is None:
        raise BenchError("the benchmark's model has no serving log")

    def featmon() -> ModelObservation:
        return store.measure_serving_log(model, log, SINCE, S)

    def full() -> tuple[object, ...]:
        return hand(hand_query(dialect, table))

    def least() -> tuple[object, ...]:
        return hand(least_query(dialect, table))

    seconds, values = timed(
        {
            "featmon": featmon,
            "(a) hand-written, same numbers": full,
            "(a') hand-written, coverage and p99": least,
        },
        repeat,
    )
    observation = values["featmon"]
    full_row, least_row = (
        values["(a) hand-written, same numbers"],
        values["(a') hand-written, coverage and p99"],
    )
    if not (
        isinstance(observation, ModelObservation)
        and isinstance(full_row, tuple)
        and isinstance(least_row, tuple)
    ):
        raise BenchError("a run returned something other than its observation or row")
    cross_check(engine, observation, full_row, least_row)
    coverage = observation.covered / max(1, observation.requests)
    print(
        f"{engine}: {observation.requests:,} requests, {observation.value_ages.count:,} value "
        f"ages, coverage {coverage:.4f}, p99 of value ages {observation.value_ages.p99}s"
    )
    return [Timing(f"{engine} {label}", s) for label, s in seconds.items()]


def bench_postgres(rows: int, repeat: int, fresh: bool) -> list[Timing]:
    url = pg_database()
    table = pg_log(url, rows, fresh)
    store = SqlOfflineStore("warehouse", SqlStoreConfig(type="sql", url=url, timeout="30m"))
    engine = sa.create_engine(url)

    def hand(sql: str) -> tuple[object, ...]:
        with engine.connect() as conn:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            row = tuple(conn.exec_driver_sql(sql).one())
            conn.rollback()
        return row

    try:
        return bench("PostgreSQL", store, served({"table": table}), hand, POSTGRES, table, repeat)
    finally:
        engine.dispose()
        store.close()


def bench_parquet(rows: int, repeat: int, fresh: bool) -> list[Timing]:
    directory = parquet_log(rows, fresh)
    store = ParquetOfflineStore(
        "warehouse", ParquetStoreConfig(type="parquet", root=str(directory.parent), timeout="30m")
    )
    pattern = str(directory / "**" / "*.parquet").replace("'", "''")
    files = f"read_parquet('{pattern}', union_by_name = true)"
    try:
        with duckdb.connect() as conn:

            def hand(sql: str) -> tuple[object, ...]:
                row = conn.execute(sql).fetchone()
                if row is None:
                    raise BenchError("the hand-written query returned no row")
                return tuple(row)

            return bench(
                "Parquet", store, served({"path": directory.name}), hand, DUCKDB, files, repeat
            )
    finally:
        store.close()


def report(timings: list[Timing]) -> None:
    engine = timings[0].label.split(" ", 1)[0]
    by_label = {t.label.split(" ", 1)[1]: t.seconds for t in timings}
    print(f"\n{'what':<52} {'median':>10}")
    for t in timings:
        print(f"{t.label:<52} {t.seconds * 1000:>8.0f}ms")
    featmon = by_label["featmon"]
    ratio = featmon / by_label["(a) hand-written, same numbers"]
    print(
        f"{engine}: featmon / (a) = {ratio:.2f}x (target <= 1.20x): {'PASS' if ratio <= 1.2 else 'MISS'}"
    )
    least = featmon / by_label["(a') hand-written, coverage and p99"]
    print(f"{engine}: featmon / (a') = {least:.2f}x (for information: what the breakdown costs)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--pg-rows", type=int, default=None, help="PostgreSQL's (default --rows)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached logs")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-parquet", action="store_true")
    parser.add_argument("--sample", type=int, default=10_000, help="request sample (0: none)")
    args = parser.parse_args(argv)
    print(f"model_logs: median of {args.repeat} after a warm-up; load average {load_average()}")
    try:
        if not args.skip_parquet:
            report(bench_parquet(args.rows, args.repeat, args.fresh))
        if not args.skip_postgres:
            report(bench_postgres(args.pg_rows or args.rows, args.repeat, args.fresh))
        if args.sample:
            bench_requests(args.sample, args.repeat)
    except (BenchError, RedisBenchError) as exc:
        print(f"model_logs: {exc}", file=sys.stderr)
        return 2
    print(f"\nload average after: {load_average()}")
    return 0


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
