"""What part of a source the metrics of one aggregate query read, and the filters that let the
engine read only that part. Pure: SQLAlchemy Core expressions, no connection, no clock.

A windowed metric reads the rows whose event time lies in (scheduled - window, scheduled]; the
newest event time at or before scheduled + ahead reads (-inf, scheduled + ahead]; the rows from
the future read (scheduled + ahead, +inf); every other metric reads the whole table. The query
reads the `Reach` of its metrics (the smallest interval holding all of theirs), and says so in
its WHERE clause, which never changes a result: every metric keeps its own exact condition.

- `event_filter`: the reach on the event-time column, exactly (`> after`, `<= until`). An engine
  with an index or zone maps on it (PostgreSQL, DuckDB's row-group statistics) reads less.
- `partition_filter`: the reach on a Hive partition column holding the event date, kept
  conservative: a partition overlaps (after, until] when its date is at or after `after`'s and at
  or before `until`'s, in the store's zone. DuckDB then opens only those partitions' files.
- `seek`: on a column that leads a b-tree index, the newest value (at or before a bound) and the
  rows after a bound as scalar subqueries, `(SELECT max(ts) FROM t WHERE ts <= :bound)`, which
  PostgreSQL answers from the index (a backward index scan with a limit) rather than a scan.
  `seeks` uses them only when the other metrics read a bounded part of the table: when one of
  them reads it all anyway, one scan answers everything, as cheaply.
- `sampled`: the source read through a random sample of its blocks (`offline.sample`):
  `t AS sampled TABLESAMPLE SYSTEM (p)` on PostgreSQL (pages), `SYSTEM (p%)` on DuckDB (vectors
  of 2048 rows, row groups of a Parquet file). SQLite has no sampling clause: the store refuses
  before compiling, and compiling one anyway is an error, never a full scan in disguise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from checks.observation import FutureCount, MaxTimestamp, OfflineMetric, Sampled
from monitor.stores.sql.columns import Source, bound


@dataclass(frozen=True)
class Reach:
    """The event times read: after `after` (None: from the oldest row) and at or before
    `until` (None: to the newest)."""

    after: datetime | None
    until: datetime | None

    @property
    def bounded(self) -> bool:
        """Whether the reach has a lower bound: a window, not the table's whole history."""
        return self.after is not None


def reach(metric: OfflineMetric, timestamp: str, scheduled_at: datetime) -> Reach:
    """The event times (of column `timestamp`) whose rows `metric` reads."""
    if isinstance(metric, Sampled):
        metric = metric.metric
    if isinstance(metric, MaxTimestamp | FutureCount):
        if metric.column != timestamp or metric.ahead is None:
            return Reach(None, None)
        limit = scheduled_at + metric.ahead
        return Reach(None, limit) if isinstance(metric, MaxTimestamp) else Reach(limit, None)
    if metric.window is None:
        return Reach(None, None)
    return Reach(scheduled_at - metric.window, scheduled_at)


def hull(metrics: Iterable[OfflineMetric], timestamp: str, scheduled_at: datetime) -> Reach | None:
    """The smallest reach holding every metric's; None without metrics."""
    reaches = [reach(metric, timestamp, scheduled_at) for metric in metrics]
    if not reaches:
        return None
    afters = [r.after for r in reaches]
    untils = [r.until for r in reaches]
    return Reach(
        None if None in afters else min(a for a in afters if a is not None),
        None if None in untils else max(u for u in untils if u is not None),
    )


def event_filter(
    source: Source, timestamp: str, span: Reach, zone: tzinfo
) -> list[sa.ColumnElement[bool]]:
    """The reach as conditions on the event-time column, in the column's terms (`bound`)."""
    column = source.selectable.c[timestamp]
    conditions: list[sa.ColumnElement[bool]] = []
    if span.after is not None:
        conditions.append(column > bound(span.after, column.type, zone))
    if span.until is not None:
        conditions.append(column <= bound(span.until, column.type, zone))
    return conditions


def partition_filter(source: Source, span: Reach, zone: tzinfo) -> list[sa.ColumnElement[bool]]:
    """The partitions that may hold rows of the reach (none left out), or no condition when
    the source declares no partition column."""
    partition = source.partition
    if partition is None:
        return []
    column = source.selectable.c[partition.column]
    conditions: list[sa.ColumnElement[bool]] = []
    if span.after is not None:
        conditions.append(column >= _partition_of(span.after, partition.by, zone))
    if span.until is not None:
        conditions.append(column <= _partition_of(span.until, partition.by, zone))
    return conditions


def _partition_of(moment: datetime, by: str, zone: tzinfo) -> sa.ColumnElement[Any]:
    """The partition value holding `moment`: its date (a DATE) or its month (`YYYY-MM`), in
    the store's zone. A literal, not a parameter: DuckDB prunes Hive partitions while planning,
    before parameters are bound."""
    day: date = moment.astimezone(zone).date()
    if by == "month":
        return sa.literal_column(f"'{day:%Y-%m}'", sa.String())
    return sa.literal_column(f"DATE '{day.isoformat()}'", sa.Date())


def scan(
    source: Source,
    timestamp: str,
    scanned: Sequence[OfflineMetric],
    scheduled_at: datetime,
    zone: tzinfo,
) -> sa.Select[Any] | None:
    """The scan the metrics not sought in an index need (None without any): the source, only
    the rows (and partitions) they read."""
    span = hull(scanned, timestamp, scheduled_at)
    if span is None:
        return None
    conditions = [
        *event_filter(source, timestamp, span, zone),
        *partition_filter(source, span, zone),
    ]
    return sa.select().select_from(source.selectable).where(*conditions)


def seekable(source: Source, metric: OfflineMetric) -> bool:
    """Whether an index answers `metric` (a newest time, or the rows after a bound)."""
    return isinstance(metric, MaxTimestamp | FutureCount) and metric.column in source.indexed


def seeks(
    source: Source, timestamp: str, metrics: Iterable[OfflineMetric], scheduled_at: datetime
) -> frozenset[OfflineMetric]:
    """The metrics to answer from an index: the seekable ones, when every other metric reads a
    bounded part of the table (else none: the scan they need answers them too)."""
    measured = list(metrics)
    sought = frozenset(m for m in measured if seekable(source, m))
    rest = [m for m in measured if m not in sought]
    span = hull(rest, timestamp, scheduled_at)
    return sought if span is None or span.bounded else frozenset()


def seek(
    source: Source, metric: OfflineMetric, scheduled_at: datetime, zone: tzinfo
) -> sa.ScalarSelect[Any]:
    """`metric` (a `seekable` one) as a scalar subquery on its own alias of the table, spelled
    so that an index answers it: `max(ts)` with the bound in the WHERE clause, not in a CASE."""
    if not isinstance(metric, MaxTimestamp | FutureCount):
        raise TypeError(f"expected a newest time or a future count, found {metric!r}")
    table = source.selectable.alias("seek")
    column = table.c[metric.column]
    if isinstance(metric, FutureCount):
        limit = bound(scheduled_at + metric.ahead, column.type, zone)
        return sa.select(sa.func.count()).select_from(table).where(column > limit).scalar_subquery()
    newest = sa.select(sa.func.max(column)).select_from(table)
    if metric.ahead is not None:
        newest = newest.where(column <= bound(scheduled_at + metric.ahead, column.type, zone))
    return newest.scalar_subquery()


# Engines with a block-sampling clause (TABLESAMPLE SYSTEM) the sampled scan compiles to.
SAMPLING_ENGINES = frozenset({"postgresql", "duckdb"})


class sample_percent(FunctionElement[Any]):  # noqa: N801 - an SQL construct, named in lower case as SQL spells it
    """The argument of `TABLESAMPLE SYSTEM (...)`: a percentage, spelled per dialect."""

    name = "sample_percent"
    inherit_cache = True


def _percent_literal(element: sample_percent) -> str:
    (percent,) = element.clauses
    value = percent.value if isinstance(percent, sa.BindParameter) else None
    if not isinstance(value, float):
        raise sa_exc.CompileError(f"expected a sampling percentage, found {value!r}")
    return f"{value:.6g}"  # 0.01 to 100: never an exponent


@compiles(sample_percent)
def _percent_default(element: sample_percent, compiler: SQLCompiler, **kw: object) -> str:  # noqa: ARG001 - SQLAlchemy's compiler hook signature
    if compiler.dialect.name not in SAMPLING_ENGINES:
        raise sa_exc.CompileError(f"{compiler.dialect.name} has no TABLESAMPLE")
    return _percent_literal(element)  # PostgreSQL: SYSTEM (1)


@compiles(sample_percent, "duckdb")
def _percent_duckdb(element: sample_percent, compiler: SQLCompiler, **kw: object) -> str:  # noqa: ARG001 - SQLAlchemy's compiler hook signature
    return f"{_percent_literal(element)}%"  # DuckDB: SYSTEM (1%), not SYSTEM (1) rows


def sampled(source: Source, percent: float) -> Source:
    """`source` read through a random sample of `percent` percent of its blocks, under its own
    alias (the same table may be read whole in the same statement)."""
    selectable = source.selectable
    base = selectable.element if isinstance(selectable, sa.Alias) else selectable
    method = sa.func.system(sample_percent(sa.literal(float(percent))))
    sample = sa.tablesample(base, method, name="sampled")
    return replace(source, selectable=sample)
