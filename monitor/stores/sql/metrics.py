"""Each offline metric as one aggregate expression of the one SELECT per table and run, and the
columns it needs. Pure: SQLAlchemy Core expressions, no connection, no clock.

Every windowed metric is a conditional aggregate: `COUNT(CASE WHEN <in window> AND <test>
THEN 1 END)`, `MAX(CASE WHEN <in window> THEN <expression> END)`, ..., so that all metrics of a
table share one scan. Three things have no portable SQL spelling and are compiled per dialect
(`sqlalchemy.ext.compiler`), with the SQL standard / PostgreSQL spelling as the default:

- `seconds_between(start, end)`: end - start in seconds, as a number.
    PostgreSQL  date_part('epoch', end - start)            (double precision, to the microsecond)
    others      EXTRACT(EPOCH FROM (end - start))
    DuckDB      (epoch_us(end) - epoch_us(start)) / 1e6    (exact to the microsecond)
    SQLite      round((julianday(end) - julianday(start)) * 86400000) / 1000
                (SQLite keeps times as whole milliseconds; rounding recovers them exactly)
- `micros_between(start, end)`: end - start in whole microseconds (serving logs' ages, exact:
  ordered and picked as integers, divided by 10^6 once in Python).
    PostgreSQL  round(date_part('epoch', end - start) * 1000000)   (double, integral)
    others      round(EXTRACT(EPOCH FROM (end - start)) * 1000000)
    DuckDB      epoch_us(end) - epoch_us(start)                     (BIGINT)
- `is_nan(x)`:       PostgreSQL x = 'NaN'::float8 (NaN equals itself there); DuckDB isnan(x);
                     SQLite false (it stores a NaN as NULL).
- `is_infinite(x)`:  PostgreSQL x IN ('Infinity', '-Infinity'); DuckDB isinf(x);
                     SQLite x IN (9e999, -9e999) (how SQLite spells the infinities).
- `is_finite(x)`:    PostgreSQL x > '-Infinity' AND x < 'Infinity' (NaN sorts above
                     'Infinity' there, so two comparisons exclude all three); DuckDB isfinite(x);
                     SQLite x NOT IN (9e999, -9e999); others NOT (is_nan OR is_infinite).
- `distinct_tuple(key..., event time)`: one value per (keys, event time), for COUNT(DISTINCT):
    PostgreSQL  the text encoding below, COLLATE "C": sorted as bytes, not by the database's
                collation (equality is byte equality under either, so the count is the same;
                the sort behind COUNT(DISTINCT) took about half the time)
    DuckDB      row(key..., event time): a struct, hashed as its values (about a third of the
                text encoding's time)
    others      `<length>:<key text>` per key, then the event time's text
- `late_by_at_most(event, ingested, s)`: a known lateness of at most s seconds.
    PostgreSQL  ingested <= event + INTERVAL 's seconds'  (timestamp arithmetic, no interval
                value or number per row: the cheapest of the spellings measured)
    DuckDB      epoch_us(ingested) - epoch_us(event) <= s * 10^6  (whole microseconds)
    others      seconds_between(event, ingested) <= s

The lateness histogram has about twenty boundaries and the range checks compare every value
with a bound, per row: these spellings are what keeps featmon's query as cheap as a hand-written
one (see bench/README.md). NaN and infinity exist only in float columns; for any other column
those tests are false and every value is finite. Comparisons with bounds only ever see finite
values: PostgreSQL and DuckDB order NaN above every number, so `x > bound` alone would count it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from checks.observation import (
    DistinctKeys,
    FutureCount,
    KeyedRows,
    LatenessCount,
    MaxLateness,
    MaxTimestamp,
    NullCount,
    OfflineMetric,
    Sampled,
    ValueCount,
    ValueStat,
)
from monitor.stores.sql.columns import NUMERIC, TIMESTAMP, Source, bound

_ONE: sa.ColumnClause[Any] = sa.literal_column("1")
_SEPARATOR: sa.ColumnClause[str] = sa.literal_column("':'", sa.String())

# --- constructs compiled per dialect ----------------------------------------------------------


class seconds_between(FunctionElement[float]):  # noqa: N801  (reads as the SQL function it is)
    """`seconds_between(start, end)`: end - start in seconds."""

    type = sa.Float()
    name = "seconds_between"
    inherit_cache = True


class micros_between(FunctionElement[float]):  # noqa: N801  (reads as the SQL function it is)
    """`micros_between(start, end)`: end - start in whole microseconds."""

    type = sa.Float()
    name = "micros_between"
    inherit_cache = True


class is_nan(FunctionElement[bool]):  # noqa: N801 - an SQL function, named in lower case as SQL spells it
    type = sa.Boolean()
    name = "is_nan"
    inherit_cache = True


class is_infinite(FunctionElement[bool]):  # noqa: N801 - an SQL function, named in lower case as SQL spells it
    type = sa.Boolean()
    name = "is_infinite"
    inherit_cache = True


class is_finite(FunctionElement[bool]):  # noqa: N801 - an SQL function, named in lower case as SQL spells it
    type = sa.Boolean()
    name = "is_finite"
    inherit_cache = True


class distinct_tuple(FunctionElement[Any]):  # noqa: N801 - an SQL function, named in lower case as SQL spells it
    """`distinct_tuple(key..., event_time)`: equal for equal tuples, different otherwise."""

    type = sa.String()
    name = "distinct_tuple"
    inherit_cache = True


class late_by_at_most(FunctionElement[bool]):  # noqa: N801 - an SQL function, named in lower case as SQL spells it
    """`late_by_at_most(event, ingested, seconds, microseconds)`: ingested - event is at most
    the bound, given exactly twice as SQL number literals (see `_bound_literals`)."""

    type = sa.Boolean()
    name = "late_by_at_most"
    inherit_cache = True


class count_where(FunctionElement[int]):  # noqa: N801 - an SQL function, named in lower case as SQL spells it
    """`count_where(condition)`: the rows matching `condition`, 0 (not NULL) when none do."""

    type = sa.BigInteger()
    name = "count_where"
    inherit_cache = True


def _arguments(element: FunctionElement[Any], compiler: SQLCompiler, **kw: object) -> list[str]:
    return [compiler.process(argument, **kw) for argument in element.clauses]


@compiles(count_where)
def _count_default(element: count_where, compiler: SQLCompiler, **kw: object) -> str:
    # COUNT of a CASE without ELSE: the portable spelling (SQLite before 3.30 has no FILTER).
    (condition,) = element.clauses
    return str(compiler.process(sa.func.count(sa.case((condition, _ONE))), **kw))


@compiles(count_where, "postgresql")
def _count_postgresql(element: count_where, compiler: SQLCompiler, **kw: object) -> str:
    # FILTER lets PostgreSQL skip the CASE per row: 5-10% of the whole scan of the offline
    # benchmark's forty counts. DuckDB is the other way round (CASE about twice as fast).
    (condition,) = _arguments(element, compiler, **kw)
    return f"count(*) FILTER (WHERE {condition})"


@compiles(seconds_between)
def _seconds_default(element: seconds_between, compiler: SQLCompiler, **kw: object) -> str:
    start, end = _arguments(element, compiler, **kw)
    return f"EXTRACT(EPOCH FROM ({end} - {start}))"


@compiles(seconds_between, "postgresql")
def _seconds_postgresql(element: seconds_between, compiler: SQLCompiler, **kw: object) -> str:
    # date_part gives double precision; EXTRACT gives numeric (PostgreSQL 14+), which made the
    # lateness histogram's twenty comparisons per row about three times slower.
    start, end = _arguments(element, compiler, **kw)
    return f"date_part('epoch', {end} - {start})"


@compiles(seconds_between, "duckdb")
def _seconds_duckdb(element: seconds_between, compiler: SQLCompiler, **kw: object) -> str:
    start, end = _arguments(element, compiler, **kw)
    return f"((epoch_us({end}) - epoch_us({start})) / 1000000.0)"


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: object) -> str:
    start, end = _arguments(element, compiler, **kw)
    return f"(round((julianday({end}) - julianday({start})) * 86400000.0) / 1000.0)"


@compiles(micros_between)
def _micros_default(element: micros_between, compiler: SQLCompiler, **kw: object) -> str:
    start, end = _arguments(element, compiler, **kw)
    return f"round(EXTRACT(EPOCH FROM ({end} - {start})) * 1000000)"


@compiles(micros_between, "postgresql")
def _micros_postgresql(element: micros_between, compiler: SQLCompiler, **kw: object) -> str:
    # date_part's double holds the whole microseconds of any age under about a century
    # exactly enough for round() to recover them; EXTRACT's numeric costs several times more.
    start, end = _arguments(element, compiler, **kw)
    return f"round(date_part('epoch', {end} - {start}) * 1000000)"


@compiles(micros_between, "duckdb")
def _micros_duckdb(element: micros_between, compiler: SQLCompiler, **kw: object) -> str:
    start, end = _arguments(element, compiler, **kw)
    return f"(epoch_us({end}) - epoch_us({start}))"


@compiles(is_nan)
def _nan_default(element: is_nan, compiler: SQLCompiler, **kw: object) -> str:
    (value,) = _arguments(element, compiler, **kw)
    return f"({value} = CAST('NaN' AS DOUBLE PRECISION))"


@compiles(is_nan, "duckdb")
def _nan_duckdb(element: is_nan, compiler: SQLCompiler, **kw: object) -> str:
    (value,) = _arguments(element, compiler, **kw)
    return f"isnan({value})"


@compiles(is_nan, "sqlite")
def _nan_sqlite(element: is_nan, compiler: SQLCompiler, **kw: object) -> str:  # noqa: ARG001 - SQLAlchemy's compiler hook signature; SQLite needs no element
    return "0"


@compiles(is_infinite)
def _infinite_default(element: is_infinite, compiler: SQLCompiler, **kw: object) -> str:
    (value,) = _arguments(element, compiler, **kw)
    return (
        f"({value} IN (CAST('Infinity' AS DOUBLE PRECISION), "
        f"CAST('-Infinity' AS DOUBLE PRECISION)))"
    )


@compiles(is_infinite, "duckdb")
def _infinite_duckdb(element: is_infinite, compiler: SQLCompiler, **kw: object) -> str:
    (value,) = _arguments(element, compiler, **kw)
    return f"isinf({value})"


@compiles(is_infinite, "sqlite")
def _infinite_sqlite(element: is_infinite, compiler: SQLCompiler, **kw: object) -> str:
    (value,) = _arguments(element, compiler, **kw)
    return f"({value} IN (9e999, -9e999))"


@compiles(is_finite)
def _finite_default(element: is_finite, compiler: SQLCompiler, **kw: object) -> str:
    (value,) = element.clauses
    test = sa.not_(sa.or_(is_nan(value), is_infinite(value)))
    return str(compiler.process(test, **kw))


@compiles(is_finite, "postgresql")
def _finite_postgresql(element: is_finite, compiler: SQLCompiler, **kw: object) -> str:
    (value,) = _arguments(element, compiler, **kw)
    return (
        f"({value} > CAST('-Infinity' AS DOUBLE PRECISION) "
        f"AND {value} < CAST('Infinity' AS DOUBLE PRECISION))"
    )


@compiles(is_finite, "duckdb")
def _finite_duckdb(element: is_finite, compiler: SQLCompiler, **kw: object) -> str:
    (value,) = _arguments(element, compiler, **kw)
    return f"isfinite({value})"


@compiles(is_finite, "sqlite")
def _finite_sqlite(element: is_finite, compiler: SQLCompiler, **kw: object) -> str:
    (value,) = _arguments(element, compiler, **kw)
    return f"({value} NOT IN (9e999, -9e999))"


@compiles(distinct_tuple)
def _tuple_default(element: distinct_tuple, compiler: SQLCompiler, **kw: object) -> str:
    *keys, event_time = element.clauses
    return str(compiler.process(_encoded(keys, event_time), **kw))


@compiles(distinct_tuple, "postgresql")
def _tuple_postgresql(element: distinct_tuple, compiler: SQLCompiler, **kw: object) -> str:
    return f'({_tuple_default(element, compiler, **kw)}) COLLATE "C"'


@compiles(distinct_tuple, "duckdb")
def _tuple_duckdb(element: distinct_tuple, compiler: SQLCompiler, **kw: object) -> str:
    return f"row({', '.join(_arguments(element, compiler, **kw))})"


@compiles(late_by_at_most)
def _late_default(element: late_by_at_most, compiler: SQLCompiler, **kw: object) -> str:
    event, ingested, seconds, _ = element.clauses
    return str(compiler.process(seconds_between(event, ingested) <= seconds, **kw))


@compiles(late_by_at_most, "postgresql")
def _late_postgresql(element: late_by_at_most, compiler: SQLCompiler, **kw: object) -> str:
    event, ingested, seconds, _ = _arguments(element, compiler, **kw)
    # Seconds only (never days), so that the interval is an exact span of time in every zone.
    return f"({ingested} <= {event} + INTERVAL '{seconds} seconds')"


@compiles(late_by_at_most, "duckdb")
def _late_duckdb(element: late_by_at_most, compiler: SQLCompiler, **kw: object) -> str:
    event, ingested, _, micros = _arguments(element, compiler, **kw)
    return f"((epoch_us({ingested}) - epoch_us({event})) <= {micros})"


def within(
    event: sa.ColumnElement[Any], later: sa.ColumnElement[Any], at_most: timedelta
) -> sa.ColumnElement[bool]:
    """`later - event <= at_most`, in the cheapest spelling of each engine (`late_by_at_most`);
    both times comparable (see `comparable`)."""
    return late_by_at_most(event, later, *_bound_literals(at_most))


def _bound_literals(at_most: timedelta) -> tuple[sa.ColumnClause[Any], sa.ColumnClause[Any]]:
    """A lateness bound as exact SQL number literals: seconds (decimal) and microseconds."""
    micros = (at_most.days * 86400 + at_most.seconds) * 1_000_000 + at_most.microseconds
    whole, fraction = divmod(abs(micros), 1_000_000)
    seconds = f"{'-' if micros < 0 else ''}{whole}" + (f".{fraction:06d}" if fraction else "")
    return sa.literal_column(seconds), sa.literal_column(str(micros))


# --- what a metric needs --------------------------------------------------------------------


def metric_order(metric: OfflineMetric) -> tuple[str, str]:
    """A stable order, so that the same metrics always give the same SQL text."""
    return type(metric).__name__, repr(metric)


def _needs(metric: OfflineMetric, timestamp: str) -> tuple[list[str], list[str], list[str]]:
    """The columns `metric` reads: (timestamps, numbers, any type)."""
    if isinstance(metric, Sampled):
        metric = metric.metric
    if isinstance(metric, MaxTimestamp | FutureCount):
        return [metric.column], [], []
    windowed = [timestamp] if metric.window is not None else []
    if isinstance(metric, LatenessCount | MaxLateness):
        return [metric.ingested_at, timestamp], [], []
    if isinstance(metric, DistinctKeys):
        return [timestamp], [], list(metric.keys)
    if isinstance(metric, KeyedRows):
        return windowed, [], list(metric.keys)
    if isinstance(metric, ValueCount | ValueStat):
        return windowed, [metric.column], []
    if isinstance(metric, NullCount):
        return windowed, [], [metric.column]
    return windowed, [], []


def unavailable(source: Source, timestamp: str, metric: OfflineMetric) -> str | None:
    """Why `metric` cannot be measured on `source` (a column missing, or of the wrong kind),
    or None."""
    timestamps, numbers, others = _needs(metric, timestamp)
    for name in dict.fromkeys((*timestamps, *numbers, *others)):
        family = source.family(name)
        if family is None:
            return f"column {name!r} is not in {source.named}"
        if name in timestamps and family != TIMESTAMP:
            return f"column {name!r} of {source.named} is not a timestamp (found {family})"
        if name in numbers and family not in NUMERIC:
            return f"column {name!r} of {source.named} is not numeric (found {family})"
    return None


# --- the expressions ------------------------------------------------------------------------


def aggregate(
    source: Source,
    timestamp: str,
    metric: OfflineMetric,
    scheduled_at: datetime,
    zone: tzinfo,
) -> sa.ColumnElement[Any]:
    """The aggregate measuring `metric`; a window `w` is (scheduled_at - w, scheduled_at]. A
    `Sampled` metric is its own metric, on `source` as given (the caller passes the sample)."""
    if isinstance(metric, Sampled):
        metric = metric.metric
    table = source.selectable
    if isinstance(metric, MaxTimestamp | FutureCount):
        return _timestamp_aggregate(table, metric, scheduled_at, zone)
    conditions = _in_window(table, timestamp, metric.window, scheduled_at, zone)
    if isinstance(metric, LatenessCount | MaxLateness):
        lateness = _lateness(table, timestamp, metric.ingested_at, zone)
        if isinstance(metric, MaxLateness):
            return sa.func.max(_when(conditions, lateness))
        event, ingested = _lateness_times(table, timestamp, metric.ingested_at, zone)
        if metric.at_most is None:
            return _count(*conditions, event.is_not(None), ingested.is_not(None))
        return _count(*conditions, within(event, ingested, metric.at_most))
    if isinstance(metric, KeyedRows | DistinctKeys):
        keys = [table.c[key] for key in metric.keys]
        conditions += [key.is_not(None) for key in keys]
        if isinstance(metric, KeyedRows):
            return _count(*conditions)
        conditions.append(table.c[timestamp].is_not(None))
        encoded = distinct_tuple(*keys, table.c[timestamp])
        return sa.func.count(sa.distinct(sa.case((sa.and_(*conditions), encoded))))
    if isinstance(metric, ValueCount | ValueStat):
        return _value_aggregate(source, metric, conditions)
    if isinstance(metric, NullCount):
        conditions.append(table.c[metric.column].is_(None))
    return _count(*conditions)


def _timestamp_aggregate(
    table: sa.FromClause, metric: MaxTimestamp | FutureCount, scheduled_at: datetime, zone: tzinfo
) -> sa.ColumnElement[Any]:
    """max(column), max(column) at or before scheduled + ahead, or the rows after that."""
    column = table.c[metric.column]
    if metric.ahead is None:
        return sa.func.max(column)
    limit = bound(scheduled_at + metric.ahead, column.type, zone)
    if isinstance(metric, FutureCount):
        return _count(column > limit)
    return sa.func.max(sa.case((column <= limit, column)))


def _in_window(
    table: sa.FromClause,
    timestamp: str,
    window: timedelta | None,
    scheduled_at: datetime,
    zone: tzinfo,
) -> list[sa.ColumnElement[bool]]:
    if window is None:
        return []
    event_time = table.c[timestamp]
    lower = bound(scheduled_at - window, event_time.type, zone)
    upper = bound(scheduled_at, event_time.type, zone)
    return [event_time > lower, event_time <= upper]


def _count(*conditions: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    """The rows matching every condition (all rows without one)."""
    if not conditions:
        return sa.func.count()
    return count_where(sa.and_(*conditions))


def _when(
    conditions: list[sa.ColumnElement[bool]], value: sa.ColumnElement[Any]
) -> sa.ColumnElement[Any]:
    return sa.case((sa.and_(*conditions), value)) if conditions else value


def _lateness(
    table: sa.FromClause, timestamp: str, ingested_at: str, zone: tzinfo
) -> sa.ColumnElement[float]:
    """ingested_at - event time in seconds."""
    return seconds_between(*_lateness_times(table, timestamp, ingested_at, zone))


def _lateness_times(
    table: sa.FromClause, timestamp: str, ingested_at: str, zone: tzinfo
) -> tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]]:
    """The event time and the ingestion time, comparable (see `comparable`)."""
    return comparable(table.c[timestamp], table.c[ingested_at], zone)


def comparable(
    first: sa.ColumnElement[Any], second: sa.ColumnElement[Any], zone: tzinfo
) -> tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]]:
    """Two timestamp columns, comparable. A column without a zone holds wall times in the
    store's zone: when only one of the two has a zone, the other is read in the store's zone."""
    aware = [bool(getattr(c.type, "timezone", False)) for c in (first, second)]
    if aware[0] != aware[1]:
        name = sa.cast(sa.literal(zone_name(zone)), sa.String())
        if aware[0]:
            return first, sa.func.timezone(name, second)
        return sa.func.timezone(name, first), second
    return first, second


def zone_name(zone: tzinfo) -> str:
    """The IANA name of the store's zone, as SQL's timezone() takes it."""
    if isinstance(zone, ZoneInfo):
        return zone.key
    if zone is UTC:
        return "UTC"
    raise ValueError(f"expected a time zone with an IANA name, found {zone!r}")


def _encoded(
    keys: Sequence[sa.ColumnElement[Any]], event_time: sa.ColumnElement[Any]
) -> sa.ColumnElement[str]:
    """One text per (keys..., event time), different for different tuples: each key is written
    as `<length>:<text>` (so no key can run into the next) and the event time last."""
    parts: list[sa.ColumnElement[str]] = []
    for key in keys:
        text = sa.cast(key, sa.String())
        parts += [sa.cast(sa.func.length(text), sa.String()), _SEPARATOR, text]
    parts.append(sa.cast(event_time, sa.String()))
    encoded = parts[0]
    for part in parts[1:]:
        encoded = encoded + part  # String + String compiles to || on every dialect
    return encoded


def _value_aggregate(
    source: Source,
    metric: ValueCount | ValueStat,
    conditions: list[sa.ColumnElement[bool]],
) -> sa.ColumnElement[Any]:
    value = source.selectable.c[metric.column]
    family = source.family(metric.column)
    floating = family == "float"
    finite: list[sa.ColumnElement[bool]] = [is_finite(value)] if floating else []
    if isinstance(metric, ValueStat):
        chosen = _when([*conditions, *finite], value)
        if metric.stat == "mean":
            return sa.func.avg(chosen)
        return sa.func.min(chosen) if metric.stat == "min" else sa.func.max(chosen)
    if metric.test in ("nan", "infinite"):
        if not floating:
            return _count(sa.false())
        test = is_nan(value) if metric.test == "nan" else is_infinite(value)
        return _count(*conditions, test)
    limit = _limit(0.0 if metric.bound is None else metric.bound, integral=family == "int")
    beyond = value > limit if metric.test == "above" else value < limit
    return _count(*conditions, *finite, beyond)


def _limit(bound: float, integral: bool) -> sa.ColumnElement[Any]:
    """A bound as a parameter: a whole bound of an integer column as an integer, so that the
    engine compares integers rather than converting every value to a float."""
    if integral and float(bound).is_integer():
        return sa.literal(int(bound), sa.BigInteger())
    return sa.literal(float(bound), sa.Float())
