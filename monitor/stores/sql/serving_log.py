"""A model's serving log judged by the engine in one aggregate statement (DESIGN.md section 3).

Pure: SQLAlchemy Core, no connection, no clock. `serving_log_query` builds the statement from
the log's `Source` (its columns as the store's catalog gave them); `ServingLogQuery.observation`
turns its one result row into a `ModelObservation`.

The statement, for requests logged in [since, until):

    WITH judged AS MATERIALIZED (            -- one row per request, the log read once
        SELECT <code of each value>, <age of each value>, <the request's oldest age>,
               <status of each value>
        FROM log WHERE since <= log time < until)
    SELECT * FROM
        (SELECT <counts>, quantiles(request age) FROM judged),
        (SELECT quantiles(age), quantiles(age) FILTER (WHERE view = k) ...
         FROM (SELECT unnest(ARRAY[age...]) AS age, unnest(ARRAY[view...]) AS view
               FROM judged))                 -- every value, unpivoted

A value's code is the first that holds of: 1 absent (no value time, or one at or before
1970-01-01: Feast logs a value its store lacked as null at time 0), 2 null (null, or NaN in a
float column), 4 future (value time after the log time plus the model's `max_future`), 3 stale
(log time minus value time beyond the view's max age); else 0, usable. Codes 1-4 are
`MISS_REASONS` in order. A value's age is max(0, log time - value time) in whole microseconds,
for every value with a time that is not future; divided by 10^6 in Python, so that every engine
gives the same floats.

Quantiles are nearest-rank (`checks.stats.nearest_rank`), exact over every request:
PostgreSQL's `percentile_disc(ARRAY[...]) WITHIN GROUP (ORDER BY age)` and DuckDB's
`quantile_disc(age, [...])` both pick the value of rank max(1, ceil(q * n)). Engines without a
discrete percentile aggregate (SQLite) are refused by the store, not approximated.

A view's `reasons` keep all four keys (zeros too), so that results have one shape.

A status disagrees with featmon's judgment (`status_disagreements`) when it is set and is not
one that the judgment allows: PRESENT (1) for a usable, stale or future value; NULL_VALUE (2)
for a null or absent one; NOT_FOUND (3) for an absent one; OUTSIDE_MAX_AGE (4) for a stale one.
INVALID (0) and codes Feast does not define agree with nothing; a null status is not counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from checks.observation import (
    MISS_REASONS,
    NO_AGES,
    Ages,
    FeatureMisses,
    ModelObservation,
    ViewMisses,
)
from checks.served import ServedModel, ServedView, ServingLog
from monitor.stores.sql.columns import TIMESTAMP, Source, bound, require_aware
from monitor.stores.sql.metrics import comparable, count_where, is_nan, micros_between, within

QUANTILES = (0.5, 0.9, 0.99, 1.0)  # p50, p90, p99 and max, as `Ages` holds them
ENGINES = frozenset({"postgresql", "duckdb"})  # the dialects with a discrete percentile
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
USABLE, ABSENT, NULL, STALE, FUTURE = range(5)  # a value's code; 1-4 are MISS_REASONS in order
# The judgments each status allows (see the module's docstring).
AGREES = MappingProxyType(
    {1: (USABLE, STALE, FUTURE), 2: (ABSENT, NULL), 3: (ABSENT,), 4: (STALE,)}
)
_MICROS = 1_000_000


def _number(value: int) -> sa.ColumnClause[int]:
    """A small integer (a code, a view's index) as an SQL literal, never a parameter: constant
    in the statement's text, so that engines fold it."""
    return sa.literal_column(str(int(value)), sa.Integer())


class quantiles(FunctionElement[Any]):  # noqa: N801 - an SQL aggregate, named in lower case as SQL spells it
    """`quantiles(x)`: the nearest-rank `QUANTILES` of x, as one array."""

    type = sa.ARRAY(sa.Float())
    name = "quantiles"
    inherit_cache = True


def _fractions() -> str:
    return ", ".join(repr(q) for q in QUANTILES)


@compiles(quantiles)
def _quantiles_default(element: quantiles, compiler: SQLCompiler, **kw: object) -> str:
    (value,) = element.clauses
    ordered = compiler.process(value, **kw)
    return f"percentile_disc(ARRAY[{_fractions()}]) WITHIN GROUP (ORDER BY {ordered})"


@compiles(quantiles, "duckdb")
def _quantiles_duckdb(element: quantiles, compiler: SQLCompiler, **kw: object) -> str:
    # quantile_disc picks index max(1, n - floor(n - q n)) - 1 = ceil(q n) - 1: nearest rank.
    (value,) = element.clauses
    return f"quantile_disc({compiler.process(value, **kw)}, [{_fractions()}])"


# --- what the log must hold -----------------------------------------------------------------


@dataclass(frozen=True)
class LoggedValue:
    """One served feature's columns in the log: the value, its time and (maybe) its status."""

    view: int  # the index of its view in `served.views`
    reference: str  # `view:feature`
    value: str
    time: str
    status: str | None


def logged_values(served: ServedModel, log: ServingLog) -> tuple[LoggedValue, ...]:
    """Every served feature's log columns, in the model's order."""
    return tuple(
        LoggedValue(
            view=index,
            reference=f"{view.name}:{feature}",
            value=view.column(feature),
            time=f"{view.column(feature)}__timestamp",
            status=f"{view.column(feature)}__status" if log.statuses else None,
        )
        for index, view in enumerate(served.views)
        for feature in view.features
    )


def missing_columns(source: Source, log: ServingLog, values: Sequence[LoggedValue]) -> list[str]:
    """The columns the judgment needs that the log lacks, in the log's schema order."""
    needed = [c for v in values for c in (v.value, v.time, v.status) if c is not None]
    return source.missing([*needed, log.log_timestamp])


def mistyped_columns(source: Source, log: ServingLog, values: Sequence[LoggedValue]) -> list[str]:
    """Each column of the wrong kind, as `'name' (expected ..., found ...)`."""
    expected = {log.log_timestamp: TIMESTAMP}
    expected.update({v.time: TIMESTAMP for v in values})
    expected.update({v.status: "int" for v in values if v.status is not None})
    return [
        f"{name!r} (expected {kind}, found {source.family(name)})"
        for name, kind in expected.items()
        if source.family(name) != kind
    ]


# --- the statement --------------------------------------------------------------------------


@dataclass(frozen=True)
class ServingLogQuery:
    """The one statement judging a model's log over a window, and how to read its row."""

    statement: sa.Select[Any]
    served: ServedModel
    values: tuple[LoggedValue, ...]
    statuses: bool

    def observation(
        self, row: Mapping[Any, Any], store: str, since: datetime, until: datetime
    ) -> ModelObservation:
        """The model's observation from the statement's one row."""
        views = {
            view.name: ViewMisses(
                uncovered=_count(row[f"v{k}_uncovered"]),
                only=_count(row[f"v{k}_only"]),
                reasons=MappingProxyType(
                    {reason: _count(row[f"v{k}_{reason}"]) for reason in MISS_REASONS}
                ),
                ages=_ages(row[f"v{k}_ages"], row[f"v{k}_ages_n"]),
            )
            for k, view in enumerate(self.served.views)
        }
        features = {
            value.reference: FeatureMisses(
                **{reason: _count(row[f"f{i}_{reason}"]) for reason in MISS_REASONS}
            )
            for i, value in enumerate(self.values)
        }
        disagreements = _count(row["disagreements"]) if self.statuses else None
        return ModelObservation(
            source="serving_log",
            store=store,
            requests=_count(row["requests"]),
            covered=_count(row["covered"]),
            views=MappingProxyType(views),
            features=MappingProxyType(features),
            value_ages=_ages(row["value_ages"], row["value_ages_n"]),
            request_ages=_ages(row["request_ages"], row["request_ages_n"]),
            since=since,
            until=until,
            status_disagreements=disagreements,
        )


def serving_log_query(
    source: Source,
    served: ServedModel,
    log: ServingLog,
    since: datetime,
    until: datetime,
    zone: tzinfo,
) -> ServingLogQuery:
    """The statement judging every request logged in [since, until). The source must hold
    every column `logged_values` names, of the right kind (`missing_columns`,
    `mistyped_columns`)."""
    require_aware(since)
    require_aware(until)
    values = logged_values(served, log)
    judged = _judged(source, served, log, values, since, until, zone).cte("judged")
    judged = judged.prefix_with("MATERIALIZED")
    counts = sa.select(*_counts(judged, served, values, log.statuses)).subquery("counts")
    ages = sa.select(*_value_ages(judged, served, values)).subquery("ages")
    statement = sa.select(counts, ages).select_from(counts.join(ages, sa.true()))
    return ServingLogQuery(statement, served, values, log.statuses)


def _judged(
    source: Source,
    served: ServedModel,
    log: ServingLog,
    values: Sequence[LoggedValue],
    since: datetime,
    until: datetime,
    zone: tzinfo,
) -> sa.Select[Any]:
    """One row per request of the window: each value's code, age and status."""
    table = source.selectable
    logged_at = table.c[log.log_timestamp]
    columns: list[sa.ColumnElement[Any]] = []
    for i, value in enumerate(values):
        view = served.views[value.view]
        code, age = _judgment(source, value, view, logged_at, served.model.max_future, zone)
        columns += [code.label(f"c{i}"), age.label(f"a{i}")]
        if value.status is not None:
            columns.append(table.c[value.status].label(f"s{i}"))
    return sa.select(*columns).where(
        logged_at >= bound(since, logged_at.type, zone),
        logged_at < bound(until, logged_at.type, zone),
    )


def _judgment(
    source: Source,
    value: LoggedValue,
    view: ServedView,
    logged_at: sa.ColumnElement[Any],
    max_future: timedelta,
    zone: tzinfo,
) -> tuple[sa.ColumnElement[int], sa.ColumnElement[Any]]:
    """A value's code and its age in microseconds (null when absent or future)."""
    table = source.selectable
    raw_time, served = table.c[value.time], table.c[value.value]
    valued_at, requested_at = comparable(raw_time, logged_at, zone)
    absent = sa.or_(raw_time.is_(None), raw_time <= bound(EPOCH, raw_time.type, zone))
    null: sa.ColumnElement[bool] = served.is_(None)
    if source.family(value.value) == "float":
        null = sa.or_(null, is_nan(served))
    future = sa.not_(within(requested_at, valued_at, max_future))
    stale = sa.not_(within(valued_at, requested_at, view.max_age))
    code = sa.case(
        (absent, _number(ABSENT)),
        (null, _number(NULL)),
        (future, _number(FUTURE)),
        (stale, _number(STALE)),
        else_=_number(USABLE),
    )
    age = sa.case(
        (sa.or_(absent, future), sa.null()),
        else_=sa.func.greatest(micros_between(valued_at, requested_at), _number(0)),
    )
    return code, age


def _counts(
    judged: sa.CTE, served: ServedModel, values: Sequence[LoggedValue], statuses: bool
) -> list[sa.Label[Any]]:
    """Requests, covered, each view's misses, each feature's, the disagreeing statuses, and
    the quantiles of each request's oldest age: one row over the requests."""
    code = [judged.c[f"c{i}"] for i in range(len(values))]
    usable = [c == _number(USABLE) for c in code]
    out: list[sa.Label[Any]] = [
        sa.func.count().label("requests"),
        count_where(sa.and_(*usable)).label("covered"),
    ]
    for k, _ in enumerate(served.views):
        mine = [i for i, v in enumerate(values) if v.view == k]
        missed = sa.or_(*(code[i] != _number(USABLE) for i in mine))
        others = [usable[i] for i, v in enumerate(values) if v.view != k]
        out += [
            count_where(missed).label(f"v{k}_uncovered"),
            count_where(sa.and_(missed, *others)).label(f"v{k}_only"),
        ]
        out += [
            count_where(sa.or_(*(code[i] == _number(r) for i in mine))).label(f"v{k}_{reason}")
            for r, reason in enumerate(MISS_REASONS, start=ABSENT)
        ]
    for i in range(len(values)):
        out += [
            count_where(code[i] == _number(r)).label(f"f{i}_{reason}")
            for r, reason in enumerate(MISS_REASONS, start=ABSENT)
        ]
    if statuses:
        out.append(sa.func.sum(_disagreements(judged, len(values))).label("disagreements"))
    ages = [judged.c[f"a{i}"] for i in range(len(values))]
    oldest = sa.func.greatest(*ages) if len(ages) > 1 else ages[0]  # greatest skips nulls
    out += [
        quantiles(oldest).label("request_ages"),
        sa.func.count(oldest).label("request_ages_n"),
    ]
    return out


def _disagreements(judged: sa.CTE, count: int) -> sa.ColumnElement[int]:
    """A request's values whose status is set and is not one its judgment allows."""
    total: sa.ColumnElement[int] | None = None
    for i in range(count):
        status, code = judged.c[f"s{i}"], judged.c[f"c{i}"]
        agrees = sa.or_(
            *(
                sa.and_(status == _number(s), sa.or_(*(code == _number(c) for c in codes)))
                for s, codes in AGREES.items()
            )
        )
        one = sa.case((sa.or_(status.is_(None), agrees), _number(0)), else_=_number(1))
        total = one if total is None else total + one
    assert total is not None  # noqa: S101  (a model serves at least one feature)
    return total


def _value_ages(
    judged: sa.CTE, served: ServedModel, values: Sequence[LoggedValue]
) -> list[sa.Label[Any]]:
    """The quantiles of every value's age, and of each view's values: every request's ages
    unpivoted, each with its view's index."""
    ages = postgresql.array([judged.c[f"a{i}"] for i in range(len(values))])
    views = postgresql.array([_number(v.view) for v in values])
    unpivoted = sa.select(
        sa.func.unnest(ages).label("age"), sa.func.unnest(views).label("view")
    ).subquery("unpivoted")
    age, view = unpivoted.c.age, unpivoted.c.view
    out: list[sa.Label[Any]] = [
        quantiles(age).label("value_ages"),
        sa.func.count(age).label("value_ages_n"),
    ]
    for k, _ in enumerate(served.views):
        out += [
            quantiles(age).filter(view == _number(k)).label(f"v{k}_ages"),
            sa.func.count(age).filter(view == _number(k)).label(f"v{k}_ages_n"),
        ]
    return out


# --- reading the row ------------------------------------------------------------------------


def _count(raw: object) -> int:
    """A count as int (PostgreSQL sums in NUMERIC; a sum over no rows is null)."""
    if raw is None:
        return 0
    if isinstance(raw, int | Decimal) and not isinstance(raw, bool):
        return int(raw)
    raise TypeError(f"expected a count, found {type(raw).__name__}")


def _ages(raw: Sequence[float] | None, count: object) -> Ages:
    """`QUANTILES` in whole microseconds as `Ages` in seconds."""
    n = _count(count)
    if n == 0 or raw is None:
        return NO_AGES
    p50, p90, p99, top = (float(value) / _MICROS for value in raw)
    return Ages(n, p50, p90, p99, top)
