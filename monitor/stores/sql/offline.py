"""Offline metrics pushed down to the engine as one aggregate SELECT per table and run.

Four parts, kept apart so that every SQLAlchemy-reachable source shares them:

- `Source` (`monitor.stores.sql.columns`): a table or a set of files as a selectable with typed
  columns (what a store found in its catalog);
- the metrics (`monitor.stores.sql.metrics`): each offline metric as one aggregate expression,
  and the columns it needs;
- `aggregate_query` and `sample_query`: pure builders from a `Source` and the requested metrics
  to one SQLAlchemy Core `select` (no connection, no clock);
- `AggregateStore`: the execution (read-only transaction, one catalog lookup, one query, the
  results as UTC numbers), which `SqlOfflineStore` (`monitor.stores.sql.table`) and
  `ParquetOfflineStore` (`monitor.stores.sql.parquet`) specialise by how they find their
  `Source`.

Timestamps: a column without a zone holds times in the store's zone (`config.timezone`), so it is
compared with naive bound values in that zone and its values are read as times in that zone; a
column with a zone is compared with aware values. Everything returned is aware UTC.
"""

from __future__ import annotations

import contextlib
import logging
import time
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from types import MappingProxyType
from typing import Any, ClassVar

import sqlalchemy as sa

from checks.model import FeatureView
from checks.observation import (
    EntityValue,
    FeatureValue,
    MaxLateness,
    MaxTimestamp,
    MetricValue,
    ModelObservation,
    OfflineMetric,
    OfflineObservation,
    OfflineRow,
    ReferenceSample,
    Sampled,
    ValueStat,
)
from checks.served import ServedModel, ServingLog
from monitor.abc import EntityKey, OfflineStore
from monitor.errors import QueryFailed, SourceNotFound, StoreError
from monitor.stores.sql.columns import TIMESTAMP, Source, bound, require_aware
from monitor.stores.sql.engine import read_only
from monitor.stores.sql.metrics import aggregate, metric_order, unavailable
from monitor.stores.sql.pruning import SAMPLING_ENGINES, sampled, scan, seek, seeks
from monitor.stores.sql.rows import BATCH, latest_rows_query, reference_query
from monitor.stores.sql.serving_log import (
    ENGINES,
    logged_values,
    missing_columns,
    mistyped_columns,
    serving_log_query,
)

log = logging.getLogger(__name__)


# --- the pure query builders ----------------------------------------------------------------


@dataclass(frozen=True)
class AggregateQuery:
    """One SELECT measuring every available metric (None when none is), the result label of
    each measured metric, and why each other metric could not be measured."""

    statement: sa.Select[Any] | None
    labels: Mapping[OfflineMetric, str]
    unavailable: Mapping[OfflineMetric, str] = field(default_factory=lambda: MappingProxyType({}))


def aggregate_query(
    source: Source,
    timestamp: str,
    metrics: Iterable[OfflineMetric],
    scheduled_at: datetime,
    zone: tzinfo,
) -> AggregateQuery:
    """All `metrics` of `source` as conditional aggregates of one SELECT.

    `timestamp` is the event-time column that windows are measured on: a window `w` is the
    half-open interval (scheduled_at - w, scheduled_at]. A metric whose column is missing, or
    is not of the kind it needs (a timestamp, a number), is left out with its reason. The
    WHERE clause says which rows the scanned metrics read, and newest times come from an index
    where one answers them (`monitor.stores.sql.pruning`); neither changes a value.
    """
    require_aware(scheduled_at)
    labels: dict[OfflineMetric, str] = {}
    missing: dict[OfflineMetric, str] = {}
    measured: list[OfflineMetric] = []
    for metric in sorted(metrics, key=metric_order):
        reason = unavailable(source, timestamp, metric)
        if reason is not None:
            missing[metric] = reason
        else:
            measured.append(metric)
    exact = [m for m in measured if not isinstance(m, Sampled)]
    parts = [_part(source, timestamp, exact, scheduled_at, zone, labels)]
    for percent in sorted({m.percent for m in measured if isinstance(m, Sampled)}):
        on_sample = [m for m in measured if isinstance(m, Sampled) and m.percent == percent]
        parts.append(
            _part(sampled(source, percent), timestamp, on_sample, scheduled_at, zone, labels)
        )
    statement = _joined([part for part in parts if part is not None])
    return AggregateQuery(statement, MappingProxyType(labels), MappingProxyType(missing))


def _part(
    source: Source,
    timestamp: str,
    metrics: Sequence[OfflineMetric],
    scheduled_at: datetime,
    zone: tzinfo,
    labels: dict[OfflineMetric, str],
) -> sa.Select[Any] | None:
    """One SELECT of `metrics` on `source` (one row), each labelled `m<n>` after those already
    in `labels`; None without metrics."""
    sought = seeks(source, timestamp, metrics, scheduled_at)
    selected: list[sa.Label[Any]] = []
    for metric in metrics:
        label = f"m{len(labels)}"
        expression = (
            seek(source, metric, scheduled_at, zone)
            if metric in sought
            else aggregate(source, timestamp, metric, scheduled_at, zone)
        )
        selected.append(expression.label(label))
        labels[metric] = label
    statement = scan(source, timestamp, [m for m in metrics if m not in sought], scheduled_at, zone)
    if statement is not None:
        return statement.add_columns(*selected)
    return sa.select(*selected) if selected else None


def _joined(parts: Sequence[sa.Select[Any]]) -> sa.Select[Any] | None:
    """The one-row SELECTs as one statement: the only one as it is, several as subqueries
    joined on true (each has one row, so the join has one: the exact and the sampled reads of
    a table in one statement)."""
    if len(parts) <= 1:
        return parts[0] if parts else None
    subqueries = [part.subquery(f"part{i}") for i, part in enumerate(parts)]
    joined: sa.FromClause = subqueries[0]
    for subquery in subqueries[1:]:
        joined = joined.join(subquery, sa.true())
    return sa.select(*(c for s in subqueries for c in s.c)).select_from(joined)


def sample_query(
    source: Source,
    keys: Sequence[str],
    timestamp: str,
    since: datetime,
    until: datetime,
    size: int,
) -> sa.Select[Any]:
    """At most `size` distinct non-null key tuples with an event time in [since, until], in
    the engine's random order: `SELECT ... FROM (SELECT DISTINCT ...) ORDER BY random() LIMIT`.
    The bounds are already in the column's terms (see `bound`)."""
    table = source.selectable
    event_time = table.c[timestamp]
    columns = [table.c[key] for key in keys]
    distinct = (
        sa.select(*columns)
        .where(event_time >= since, event_time <= until, *(c.is_not(None) for c in columns))
        .distinct()
        .subquery("entities")
    )
    return sa.select(*distinct.c).order_by(sa.func.random()).limit(size)


def requests_query(query: str, keys: Sequence[str], size: int) -> sa.Select[Any]:
    """At most `size` rows (serving requests: an entity requested often may be drawn often) of
    the user's `query`, with non-null keys, in the engine's random order. The query is the
    user's own SQL from their check file; its columns must be named as the join keys."""
    text = sa.text(query.strip().rstrip(";")).columns(*(sa.column(key) for key in keys))
    requests = text.subquery("requests")
    columns = [requests.c[key] for key in keys]
    return (
        sa.select(*columns)
        .where(*(c.is_not(None) for c in columns))
        .order_by(sa.func.random())
        .limit(size)
    )


# --- execution ------------------------------------------------------------------------------


class AggregateStore(OfflineStore):
    """An offline store that measures through a SQLAlchemy engine it owns: one catalog lookup
    and one aggregate SELECT per `measure`, inside a read-only transaction with a timeout.

    Subclasses say how a view's `Source` is found (`_source`). The engine is created by the
    subclass through `open_engine`, handed over here, and disposed of by `close`.
    """

    _log: ClassVar[logging.Logger] = log  # each subclass logs under its own module's name

    def __init__(self, name: str, engine: sa.Engine, zone: tzinfo, timeout: timedelta) -> None:
        self.name = name
        self._engine = engine
        self._zone = zone
        self._timeout = timeout

    @property
    def engine(self) -> sa.Engine:
        """The engine every query runs on (read it to attach events; never replace it)."""
        return self._engine

    @property
    def timeout(self) -> timedelta:
        """The longest one query may take (Soda contracts run with it too)."""
        return self._timeout

    @abstractmethod
    def _source(self, conn: sa.Connection, view: FeatureView) -> Source:
        """Look the view's table or files up in the catalog (one lookup); raise
        `SourceNotFound` naming it when it does not exist."""

    @abstractmethod
    def _log_source(self, conn: sa.Connection, served: ServedModel, log: ServingLog) -> Source:
        """Look the model's serving log up in the catalog (one lookup); raise `SourceNotFound`
        naming it when it does not exist."""

    def measure_serving_log(
        self, served: ServedModel, log: ServingLog, since: datetime, until: datetime
    ) -> ModelObservation:
        where = f"the serving log of model {served.name}"
        with self._outcome("judging", where) as started:
            if self._engine.dialect.name not in ENGINES:
                raise QueryFailed(
                    self.name,
                    f"cannot judge {where}: serving logs need PostgreSQL or DuckDB (Parquet), "
                    f"whose discrete percentiles give exact quantiles; "
                    f"{self._engine.dialect.name} has none",
                )
            with read_only(self._engine, self.name, self._timeout) as conn:
                source = self._log_source(conn, served, log)
                self._require_log_columns(source, served, log)
                query = serving_log_query(source, served, log, since, until, self._zone)
                row = conn.execute(query.statement).one()._mapping
            try:
                observation = query.observation(row, self.name, since, until)
            except TypeError as exc:
                raise QueryFailed(self.name, f"judging {source.named}: {exc}") from exc
            self._log.info(
                "store %s: judged %d requests of model %s in %s in %.1f ms",
                self.name,
                observation.requests,
                served.name,
                source.label,
                _elapsed_ms(started),
            )
        return observation

    def _require_log_columns(self, source: Source, served: ServedModel, log: ServingLog) -> None:
        """Raise naming the model, the log and every column it lacks or holds of the wrong
        kind, before any query."""
        values = logged_values(served, log)
        missing = missing_columns(source, log, values)
        if missing:
            raise SourceNotFound(
                self.name,
                f"the serving log of model {served.name} ({source.named}) has no column "
                f"{', '.join(repr(m) for m in missing)}",
            )
        mistyped = mistyped_columns(source, log, values)
        if mistyped:
            raise QueryFailed(
                self.name,
                f"the serving log of model {served.name} ({source.named}) has columns of the "
                f"wrong kind: {', '.join(mistyped)}",
            )

    def measure(
        self, view: FeatureView, metrics: frozenset[OfflineMetric], scheduled_at: datetime
    ) -> OfflineObservation:
        require_aware(scheduled_at)
        with self._outcome("measuring", _location(view)) as started:
            self._require_sampling(view, metrics)
            with read_only(self._engine, self.name, self._timeout) as conn:
                source = self._source(conn, view)
                query = aggregate_query(source, view.timestamp, metrics, scheduled_at, self._zone)
                row = conn.execute(query.statement).one() if query.statement is not None else None
            values: dict[OfflineMetric, MetricValue] = {}
            if row is not None:
                values = {
                    m: self._value(m, row._mapping[k], source) for m, k in query.labels.items()
                }
            self._log.info(
                "store %s: measured %d of %d metrics of %s in %.1f ms",
                self.name,
                len(values),
                len(metrics),
                source.label,
                _elapsed_ms(started),
            )
        return OfflineObservation(
            store=self.name,
            feature_view=view.name,
            source=source.label,
            columns=source.columns,
            values=MappingProxyType(values),
            unavailable=query.unavailable,
        )

    def sample_entities(
        self, view: FeatureView, size: int, since: datetime, until: datetime
    ) -> list[EntityKey]:
        require_aware(since)
        require_aware(until)
        with self._outcome("sampling", _location(view)) as started:
            with read_only(self._engine, self.name, self._timeout) as conn:
                source = self._source(conn, view)
                self._require_sampleable(source, view)
                event_type = source.selectable.c[view.timestamp].type
                query = sample_query(
                    source,
                    view.join_keys,
                    view.timestamp,
                    bound(since, event_type, self._zone),
                    bound(until, event_type, self._zone),
                    size,
                )
                rows = conn.execute(query).all()
            keys = [tuple(_entity_value(value) for value in row) for row in rows]
            self._log.info(
                "store %s: sampled %d of at most %d entities of %s in %.1f ms",
                self.name,
                len(keys),
                size,
                source.label,
                _elapsed_ms(started),
            )
        return keys

    def query_entities(self, join_keys: Sequence[str], query: str, size: int) -> list[EntityKey]:
        with self._outcome("sampling", "the population query") as started:
            with read_only(self._engine, self.name, self._timeout) as conn:
                rows = conn.execute(requests_query(query, join_keys, size)).all()
            keys = [tuple(_entity_value(value) for value in row) for row in rows]
            self._log.info(
                "store %s: sampled %d of at most %d entities of the population query in %.1f ms",
                self.name,
                len(keys),
                size,
                _elapsed_ms(started),
            )
        return keys

    def latest_rows(
        self, view: FeatureView, bounds: Mapping[EntityKey, datetime], features: Sequence[str]
    ) -> dict[EntityKey, OfflineRow]:
        found: dict[EntityKey, OfflineRow] = {}
        if not bounds:
            return found
        with self._outcome("reading the latest rows of", _location(view)) as started:
            with read_only(self._engine, self.name, self._timeout) as conn:
                source = self._source(conn, view)
                self._require_sampleable(source, view)
                columns = [name for name in features if not source.missing((name,))]
                event_type = source.selectable.c[view.timestamp].type
                entries = [(k, bound(b, event_type, self._zone)) for k, b in bounds.items()]
                for start in range(0, len(entries), BATCH):
                    query = latest_rows_query(
                        source, view.join_keys, view.timestamp, entries[start : start + BATCH],
                        columns,
                    )  # fmt: skip
                    for row in conn.execute(query).mappings():
                        key = tuple(_entity_value(row[k]) for k in view.join_keys)
                        found[key] = OfflineRow(
                            self._moment(row[view.timestamp]),
                            MappingProxyType({n: self._feature(row[n]) for n in columns}),
                        )
            self._log.info(
                "store %s: read the latest rows of %d of %d entities of %s in %.1f ms",
                self.name,
                len(found),
                len(bounds),
                source.label,
                _elapsed_ms(started),
            )
        return found

    def sample_rows(
        self,
        view: FeatureView,
        features: Sequence[str],
        since: datetime,
        until: datetime,
        size: int,
    ) -> ReferenceSample:
        require_aware(since)
        require_aware(until)
        with self._outcome("sampling the reference rows of", _location(view)) as started:
            with read_only(self._engine, self.name, self._timeout) as conn:
                source = self._source(conn, view)
                self._require_sampleable(source, view)
                columns = [name for name in features if not source.missing((name,))]
                event_type = source.selectable.c[view.timestamp].type
                lower, upper = (
                    bound(since, event_type, self._zone),
                    bound(until, event_type, self._zone),
                )
                query = reference_query(source, view.timestamp, columns, lower, upper, size)
                rows = conn.execute(query).all() if columns else []
            values = {
                name: tuple(self._feature(row[i]) for row in rows) for i, name in enumerate(columns)
            }
            self._log.info(
                "store %s: sampled %d reference rows of %s in %.1f ms",
                self.name,
                len(rows),
                source.label,
                _elapsed_ms(started),
            )
        return ReferenceSample(since, until, size, MappingProxyType(values), source.label)

    def _moment(self, raw: object) -> datetime:
        if not isinstance(raw, datetime):
            raise QueryFailed(self.name, f"expected an event time, found {type(raw).__name__}")
        return (raw.replace(tzinfo=self._zone) if raw.tzinfo is None else raw).astimezone(UTC)

    def _feature(self, raw: object) -> FeatureValue:
        """A feature value as the online store's codec gives it: numbers as int or float,
        times aware UTC, lists as tuples, anything unknown as its text."""
        if raw is None or isinstance(raw, bool | int | float | str | bytes):
            return raw
        if isinstance(raw, Decimal):
            return (
                int(raw)
                if raw == raw.to_integral_value() and raw.as_tuple().exponent == 0
                else float(raw)
            )
        if isinstance(raw, datetime):
            return self._moment(raw)
        if isinstance(raw, list | tuple):
            return tuple(
                v for v in map(self._feature, raw) if v is not None and not isinstance(v, tuple)
            )
        return str(raw)

    def close(self) -> None:
        """Dispose of the engine (its pooled connections)."""
        self._engine.dispose()

    @contextlib.contextmanager
    def _outcome(self, action: str, where: str) -> Iterator[float]:
        """Time the block; a `StoreError` leaving it is logged (one line) and re-raised."""
        started = time.monotonic()
        try:
            yield started
        except StoreError as exc:
            self._log.info(
                "store %s: %s %s failed after %.1f ms: %s",
                self.name,
                action,
                where,
                _elapsed_ms(started),
                exc.detail,
            )
            raise

    def _require_sampling(self, view: FeatureView, metrics: Iterable[OfflineMetric]) -> None:
        """Raise naming the store and its engine when `metrics` read a sample and the engine
        has no sampling clause: reading every row instead would hide the cost asked to avoid."""
        engine = self._engine.dialect.name
        if engine not in SAMPLING_ENGINES and any(isinstance(m, Sampled) for m in metrics):
            raise QueryFailed(
                self.name,
                f"cannot sample {_location(view)} of feature view {view.name!r} "
                f"(offline.sample): {engine} has no TABLESAMPLE; sampling needs PostgreSQL or "
                f"DuckDB (Parquet)",
            )

    def _require_sampleable(self, source: Source, view: FeatureView) -> None:
        missing = source.missing((*view.join_keys, view.timestamp))
        if missing:
            raise QueryFailed(
                self.name, f"cannot sample {source.named}: no column {', '.join(missing)}"
            )
        family = source.family(view.timestamp)
        if family != TIMESTAMP:
            raise QueryFailed(
                self.name,
                f"cannot sample {source.named}: column {view.timestamp!r} is not a timestamp "
                f"(found {family})",
            )

    def _value(self, metric: OfflineMetric, raw: object, source: Source) -> MetricValue:
        """A measured value as featmon keeps it: counts as int, lateness and value statistics
        as float (None without rows), timestamps as aware UTC."""
        if isinstance(metric, Sampled):
            metric = metric.metric
        if isinstance(metric, MaxTimestamp):
            return self._timestamp(metric, raw, source)
        if isinstance(metric, MaxLateness | ValueStat):
            if raw is None:
                return None
            if isinstance(raw, int | float | Decimal) and not isinstance(raw, bool):
                return float(raw)
            raise QueryFailed(
                self.name, f"expected a number from {source.named}, found {type(raw).__name__}"
            )
        if isinstance(raw, int | Decimal):  # some engines count in NUMERIC
            return int(raw)
        raise QueryFailed(
            self.name, f"expected a count of {source.named}, found {type(raw).__name__}"
        )

    def _timestamp(self, metric: MaxTimestamp, raw: object, source: Source) -> MetricValue:
        if raw is None:
            return None
        if not isinstance(raw, datetime):
            raise QueryFailed(
                self.name,
                f"expected a timestamp as max({metric.column}) of {source.named}, "
                f"found {type(raw).__name__}",
            )
        if raw.tzinfo is None:
            raw = raw.replace(tzinfo=self._zone)
        return raw.astimezone(UTC)


def _location(view: FeatureView) -> str:
    offline = view.offline
    return (offline.table or offline.path or "?") if offline is not None else "no offline source"


def _elapsed_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000


def _entity_value(value: object) -> EntityValue:
    """A key value as featmon keeps it: int, str or bytes (integral decimals as int; anything
    else, a UUID say, as its text)."""
    if isinstance(value, int | str | bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return str(value)
