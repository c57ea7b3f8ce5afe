"""A model's serving log with planted faults, written as Feast writes it (Parquet through pyarrow:
value times timestamp[ms, UTC], the log time timestamp[us, UTC], statuses int32), copied into a
DuckDB file and a PostgreSQL table (there with naive value times, wall times in Berlin), and the
truth of it computed in plain Python by a reference of its own (`reference`).

The model `fraud` serves user_stats (revenue, orders; max age 6h), merchant_stats (risk; TTL
2h) and pair_stats (seen, keyed by user and merchant) with max_future 5s. Request i of 240 is
logged at SINCE + 15 i s plus some microseconds; two more lie just outside [SINCE, UNTIL).
Planted: stale user values, null and NaN revenues, null orders with NULL_VALUE, stale merchant
risks (some OUTSIDE_MAX_AGE, some lying), risks from the future (beyond and within max_future),
pair values absent as Feast logs them (null at time 0, PRESENT as Redis says or NOT_FOUND), a
pair value with no time at all, an INVALID status.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from checks.model import FeatureView
from checks.observation import Ages, FeatureMisses, ModelObservation, ViewMisses
from checks.served import Model, ServedModel, resolve
from checks.stats import nearest_rank

SINCE = datetime(2024, 7, 1, 11, 0, tzinfo=UTC)
UNTIL = SINCE + timedelta(hours=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
REQUESTS = 240
PRESENT, NULL_VALUE, NOT_FOUND, OUTSIDE_MAX_AGE = 1, 2, 3, 4
# (view, feature, Feast type, pyarrow type of the value)
FEATURES = (
    ("user_stats", "revenue", "float", pa.float64()),
    ("user_stats", "orders", "int64", pa.int64()),
    ("merchant_stats", "risk", "float", pa.float64()),
    ("pair_stats", "seen", "int64", pa.int64()),
)
VIEWS = {
    "user_stats": ("user_id", "1d"),
    "merchant_stats": ("merchant_id", "2h"),
    "pair_stats": (("user_id", "merchant_id"), "1d"),
}


def served_model(log: Mapping[str, Any], checks: Sequence[Mapping[str, Any]] = ()) -> ServedModel:
    """The model `fraud` over the three views, its serving log at `log`, with `checks`."""
    views = {
        name: FeatureView.model_validate(
            {
                "name": name,
                "entity": entity,
                "ttl": ttl,
                "features": {f: t for v, f, t, _ in FEATURES if v == name},
            }
        )
        for name, (entity, ttl) in VIEWS.items()
    }
    model = Model.model_validate(
        {
            "name": "fraud",
            "features": ["user_stats", "merchant_stats:risk", "pair_stats"],
            "max_age": {"user_stats": "6h"},
            "max_future": "5s",
            "serving_log": dict(log),
            "checks": list(checks),
        }
    )
    served, problems = resolve(model, views)
    assert served is not None, problems
    return served


@dataclass(frozen=True)
class Value:
    value: float | int | None
    at: datetime | None
    status: int | None


@dataclass(frozen=True)
class Request:
    user_id: int
    merchant_id: int
    logged_at: datetime
    values: Mapping[str, Value]  # by `view__feature`


def _whole(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)  # Feast's value times are whole seconds


def _request(i: int, logged_at: datetime) -> Request:
    user_age = timedelta(hours=7) if i % 17 == 3 else timedelta(seconds=i * 37 % 3000)
    user_at = _whole(logged_at - user_age)
    revenue: float | None = i * 1.5
    if i % 23 == 5:
        revenue = None
    elif i % 29 == 7:
        revenue = math.nan
    orders = (None, NULL_VALUE) if i % 31 == 2 else (i % 9, PRESENT)
    risk_at, risk_status = _whole(logged_at - timedelta(seconds=i * 53 % 7000)), PRESENT
    if i % 41 == 1:
        risk_at, risk_status = _whole(logged_at - timedelta(hours=3)), OUTSIDE_MAX_AGE
    elif i % 43 == 4:
        risk_status = OUTSIDE_MAX_AGE  # not stale: the status lies
    elif i % 19 == 6:
        risk_at = _whole(logged_at + timedelta(seconds=60))  # beyond max_future
    elif i % 13 == 2:
        risk_at = _whole(logged_at + timedelta(seconds=3))  # within: age 0
    seen = Value(i % 5, _whole(logged_at - timedelta(seconds=i * 11 % 600)), PRESENT)
    if i % 11 == 0:  # the store had no pair: null at time 0, as Redis says PRESENT
        seen = Value(None, EPOCH, PRESENT if i % 22 == 0 else NOT_FOUND)
    elif i % 47 == 9:
        seen = Value(None, None, None)
    elif i == 100:
        seen = Value(seen.value, seen.at, 0)
    return Request(
        user_id=i % 50,
        merchant_id=i % 7,
        logged_at=logged_at,
        values={
            "user_stats__revenue": Value(revenue, user_at, PRESENT),
            "user_stats__orders": Value(orders[0], user_at, orders[1]),
            "merchant_stats__risk": Value(i / 100, risk_at, risk_status),
            "pair_stats__seen": seen,
        },
    )


def requests() -> list[Request]:
    """Every logged request: REQUESTS in the window, the first at SINCE exactly, and one just
    before it and one at UNTIL (both outside)."""
    inside = [
        _request(i, SINCE + timedelta(seconds=15 * i, microseconds=i * 7919 % 1_000_000))
        for i in range(REQUESTS)
    ]
    outside = [_request(i, at) for i, at in ((1, SINCE - timedelta(microseconds=1)), (2, UNTIL))]
    return inside + outside


# --- the truth, in plain Python ------------------------------------------------------------------


def reference(served: ServedModel, logged: list[Request], statuses: bool) -> ModelObservation:
    """What featmon must find, judged one value at a time (DESIGN.md section 3)."""
    window = [r for r in logged if SINCE <= r.logged_at < UNTIL]
    max_future = served.model.max_future
    misses: list[dict[str, str]] = []  # per request: `view:feature` -> reason
    ages: dict[str, list[float]] = {v.name: [] for v in served.views}
    oldest: list[float] = []
    disagreements = 0
    for r in window:
        reasons, mine = {}, []
        for view in served.views:
            for feature in view.features:
                v = r.values[view.column(feature)]
                timed = v.at is not None and v.at > EPOCH
                future = timed and v.at - r.logged_at > max_future  # type: ignore[operator]
                age = (r.logged_at - v.at).total_seconds() if timed else 0.0  # type: ignore[operator]
                if v.value is None or (isinstance(v.value, float) and math.isnan(v.value)):
                    reason = "null"
                elif future:
                    reason = "future"
                elif age > view.max_age.total_seconds():
                    reason = "stale"
                else:
                    reason = ""
                reason = reason if timed else "absent"
                if timed and not future:
                    ages[view.name].append(max(0.0, age))
                    mine.append(max(0.0, age))
                if reason:
                    reasons[f"{view.name}:{feature}"] = reason
                disagreements += v.status is not None and _disagrees(v.status, reason)
        misses.append(reasons)
        oldest += [max(mine)] if mine else []
    views = {}
    for view in served.views:
        hit = [{k: m for k, m in r.items() if k.startswith(f"{view.name}:")} for r in misses]
        views[view.name] = ViewMisses(
            uncovered=sum(bool(h) for h in hit),
            only=sum(bool(h) and len(h) == len(r) for h, r in zip(hit, misses, strict=True)),
            reasons=MappingProxyType(
                {
                    x: sum(x in h.values() for h in hit)
                    for x in ("absent", "null", "stale", "future")
                }
            ),
            ages=_ages(ages[view.name]),
        )
    return ModelObservation(
        source="serving_log",
        store="",
        requests=len(window),
        covered=sum(not r for r in misses),
        views=MappingProxyType(views),
        features=MappingProxyType(
            {
                ref: FeatureMisses(
                    **{
                        x: sum(r.get(ref) == x for r in misses)
                        for x in ("absent", "null", "stale", "future")
                    }
                )
                for ref in served.references
            }
        ),
        value_ages=_ages([a for values in ages.values() for a in values]),
        request_ages=_ages(oldest),
        since=SINCE,
        until=UNTIL,
        status_disagreements=disagreements if statuses else None,
    )


def _disagrees(status: int, reason: str) -> bool:
    """PRESENT but absent or null; NULL_VALUE but a value; NOT_FOUND but found; OUTSIDE_MAX_AGE
    but not stale; INVALID (or a code Feast has not) whatever the value."""
    value = reason not in ("absent", "null")
    rules = {
        PRESENT: not value,
        NULL_VALUE: value,
        NOT_FOUND: reason != "absent",
        OUTSIDE_MAX_AGE: reason != "stale",
    }
    return rules.get(status, True)


def _ages(ages: list[float]) -> Ages:
    if not ages:
        return Ages(0, None, None, None, None)
    ordered = sorted(ages)
    p50, p90, p99, top = (nearest_rank(ordered, q) for q in (0.5, 0.9, 0.99, 1.0))
    return Ages(len(ordered), p50, p90, p99, top)


# --- the log, written -------------------------------------------------------------------------


def arrow_table(logged: list[Request], statuses: bool = True) -> pa.Table:
    """The requests in Feast's logging schema (`FeatureServiceLoggingSource.get_schema`)."""
    columns: dict[str, pa.Array] = {
        "user_id": pa.array([r.user_id for r in logged], pa.int64()),
        "merchant_id": pa.array([r.merchant_id for r in logged], pa.int64()),
    }
    for view, feature, _, arrow_type in FEATURES:
        name = f"{view}__{feature}"
        values = [r.values[name] for r in logged]
        columns[name] = pa.array([v.value for v in values], arrow_type)
        columns[f"{name}__timestamp"] = pa.array([v.at for v in values], pa.timestamp("ms", "UTC"))
        if statuses:
            columns[f"{name}__status"] = pa.array([v.status for v in values], pa.int32())
    columns["__log_timestamp"] = pa.array([r.logged_at for r in logged], pa.timestamp("us", "UTC"))
    columns["__log_date"] = pa.array([r.logged_at.date() for r in logged], pa.date32())
    columns["__request_id"] = pa.array([f"req-{i}" for i in range(len(logged))], pa.string())
    return pa.table(columns)


def write_parquet(directory: Path, logged: list[Request], statuses: bool = True) -> Path:
    """The log as a directory of Parquet files (two, as a file destination writes over time)."""
    table = arrow_table(logged, statuses)
    directory.mkdir(parents=True, exist_ok=True)
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), directory / "part-0.parquet")
    pq.write_table(table.slice(half), directory / "part-1.parquet")
    return directory


def write_duckdb(path: Path, parquet: Path, table: str = "fraud_log") -> str:
    """A DuckDB file holding the Parquet log as a table; its URL."""
    url = f"duckdb:///{path}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE {table} AS SELECT * FROM read_parquet('{parquet}/*.parquet')"
        )
    engine.dispose()
    return url


def pg_rows(logged: list[Request]) -> Iterator[dict[str, Any]]:
    """The requests as rows of a PostgreSQL table whose value times are naive Berlin times."""
    for r in logged:
        row: dict[str, Any] = {"user_id": r.user_id, "merchant_id": r.merchant_id}
        for name, v in r.values.items():
            at = None if v.at is None else v.at.astimezone(BERLIN).replace(tzinfo=None)
            row.update({name: v.value, f"{name}__timestamp": at, f"{name}__status": v.status})
        row.update({"__log_timestamp": r.logged_at, "__log_date": r.logged_at.date()})
        yield row


def write_postgres(pg_url: str, schema: str, logged: list[Request]) -> str:
    """The log as `<schema>.fraud_log`: value times `timestamp` (Berlin wall times), the log
    time `timestamptz`; the table's name."""
    columns: list[sa.Column[Any]] = [
        sa.Column("user_id", sa.BigInteger),
        sa.Column("merchant_id", sa.BigInteger),
    ]
    for view, feature, kind, _ in FEATURES:
        name = f"{view}__{feature}"
        columns += [
            sa.Column(name, sa.Float if kind == "float" else sa.BigInteger),
            sa.Column(f"{name}__timestamp", sa.DateTime(timezone=False)),
            sa.Column(f"{name}__status", sa.Integer),
        ]
    columns += [
        sa.Column("__log_timestamp", sa.DateTime(timezone=True)),
        sa.Column("__log_date", sa.Date),
    ]
    table = sa.Table("fraud_log", sa.MetaData(), *columns, schema=schema)
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(sa.insert(table), list(pg_rows(logged)))
    engine.dispose()
    return f"{schema}.fraud_log"
