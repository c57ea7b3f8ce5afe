"""Write the demo feature store: Feast's SQLite online layout and Parquet offline files, with
faults planted at known places so that every number featmon reports can be checked.

This module writes (it builds a store); featmon's probes never do. The planted facts are the
constants below; tests hold featmon's results against them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from monitor.feast.codec import encode_entity_key, encode_value

PROJECT = "demo"

# user_stats: 1000 users, TTL 1 day. Faults in the online store:
USERS = range(1, 1001)
MISSING_USERS = range(1, 41)  # 40 users never materialized: missing keys
STALE_USERS = range(41, 71)  # 30 users whose values stopped refreshing 3 days ago
NULL_REVENUE_USERS = range(71, 91)  # 20 users whose rolling_7d_revenue turned null
STALE_AGE = timedelta(days=3)
ORPHAN_FEATURE = "legacy_score"  # renamed upstream, still in the online table
USER_FEATURES = {
    "rolling_7d_revenue": "float",
    "purchase_count_30d": "int64",
    "last_active_days_ago": "int64",
}

# merchant_stats: 200 merchants, TTL 2 hours, healthy everywhere.
MERCHANTS = [f"m{i:03d}" for i in range(1, 201)]
MERCHANT_FEATURES = {
    "avg_ticket_usd": "double",
    "orders_1h": "int64",
    "is_high_risk": "bool",
    "category": "string",
}

# transaction_features: offline only; the batch job stopped 26 hours ago, `amount_usd` became
# text, `country` was dropped, `debug_blob` appeared, and 3% of merchant_category is null.
TRANSACTION_ROWS = 3000
TRANSACTIONS_STOPPED = timedelta(hours=26)
NULL_CATEGORY_EVERY = (3, 100)  # rows with i % 100 < 3

# checkout_model's serving log: 2000 requests in the hour before the scheduled time, each a
# (user, merchant) pair, in Feast's feature-service logging schema. Planted on different
# requests: every 40th request is for a user the store does not have (absent: null, time 0,
# status NOT_FOUND); every 25th (from the 2nd) got a merchant value 50 minutes old (the model
# allows 30); every 100th (from the 51st) was served a null revenue that Feast logged PRESENT.
# user_stats alone leaves 70 requests uncovered (96.5%), merchant_stats 80 (96%): each view
# passes 95%, the model covers 1850 of 2000 (92.5%) and fails.
LOGGED_REQUESTS = 2000
LOG_ABSENT_USER_EVERY = 40  # i % 40 == 0: 50 requests
LOG_STALE_MERCHANT_EVERY = (1, 25)  # i % 25 == 1: 80 requests
LOG_NULL_REVENUE_EVERY = (50, 100)  # i % 100 == 50: 20 requests
LOG_STALE_MERCHANT_AGE = timedelta(minutes=50)


def user_age(user: int) -> timedelta:
    """The age of a fresh user's online values at the demo's scheduled time."""
    return timedelta(minutes=user % 50)


def build(directory: Path, now: datetime) -> str:
    """(Re)build the demo store under `directory` for the scheduled time `now`; returns a
    one-line summary. Files are written beside their final names and moved into place."""
    directory.mkdir(parents=True, exist_ok=True)
    staging = directory / ".building"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "offline" / "transactions").mkdir(parents=True)
    (staging / "offline" / SERVING_LOG).mkdir(parents=True)
    _write_online(staging / "online.db", now)
    _write_offline(staging / "offline", now)
    for name in ("online.db", "offline"):
        target = directory / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        (staging / name).replace(target)
    shutil.rmtree(staging, ignore_errors=True)
    return (
        f"{len(USERS)} users, {len(MERCHANTS)} merchants, {TRANSACTION_ROWS} transactions; "
        f"planted: {len(MISSING_USERS)} missing, {len(STALE_USERS)} stale, "
        f"{len(NULL_REVENUE_USERS)} null revenue, orphan {ORPHAN_FEATURE}, "
        "stopped transactions job, retyped/dropped/added columns; "
        f"{LOGGED_REQUESTS} logged checkout_model requests"
    )


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _user_rows(now: datetime) -> Iterator[tuple[bytes, str, bytes, int]]:
    for user in USERS:
        if user in MISSING_USERS:
            continue
        key = encode_entity_key(("user_id",), (user,), ("int64",))
        age = STALE_AGE if user in STALE_USERS else user_age(user)
        stamp = _epoch(now - age)
        values: dict[str, object] = {
            "rolling_7d_revenue": None if user in NULL_REVENUE_USERS else round(user * 1.7, 2),
            "purchase_count_30d": user * 7 % 40,
            "last_active_days_ago": user % 30,
        }
        for feature, value in values.items():
            yield key, feature, encode_value(value, USER_FEATURES[feature]), stamp
        yield key, ORPHAN_FEATURE, encode_value(user / 1000, "double"), stamp


def _merchant_rows(now: datetime) -> Iterator[tuple[bytes, str, bytes, int]]:
    for index, merchant in enumerate(MERCHANTS):
        key = encode_entity_key(("merchant_id",), (merchant,), ("string",))
        stamp = _epoch(now - timedelta(minutes=index % 25))
        values: dict[str, object] = {
            "avg_ticket_usd": 20 + index * 0.25,
            "orders_1h": index % 17,
            "is_high_risk": index % 23 == 0,
            "category": ("grocery", "travel", "electronics")[index % 3],
        }
        for feature, value in values.items():
            yield key, feature, encode_value(value, MERCHANT_FEATURES[feature]), stamp


def _write_online(path: Path, now: datetime) -> None:
    """Feast's SQLite online store layout: one table per view, one row per entity and feature."""
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            for view, rows in (
                ("user_stats", _user_rows(now)),
                ("merchant_stats", _merchant_rows(now)),
            ):
                table = f"{PROJECT}_{view}"
                conn.exec_driver_sql(
                    f'CREATE TABLE "{table}" (entity_key BLOB, feature_name TEXT, value BLOB, '
                    "value_text TEXT, event_ts INTEGER, created_ts INTEGER, "
                    "PRIMARY KEY (entity_key, feature_name))"
                )
                conn.execute(
                    sa.text(
                        f'INSERT INTO "{table}" VALUES (:key, :feature, :value, NULL, :ts, :ts)'
                    ),
                    [{"key": k, "feature": f, "value": v, "ts": t} for k, f, v, t in rows],
                )
    finally:
        engine.dispose()


# Offline data is generated by DuckDB itself from a bound scheduled time; every value is a
# deterministic function of the row number.
_USER_STATS = """
COPY (
  SELECT u AS user_id,
         CAST(:now AS TIMESTAMP) - d * INTERVAL 1 DAY - (u % 50) * INTERVAL 1 MINUTE
           AS event_timestamp,
         CAST(:now AS TIMESTAMP) - d * INTERVAL 1 DAY - (u % 50) * INTERVAL 1 MINUTE
           + INTERVAL 2 MINUTE AS created_ts,
         CAST(round(u * 1.7 + d, 2) AS FLOAT) AS rolling_7d_revenue,
         CAST((u * 7 + d) % 40 AS BIGINT) AS purchase_count_30d,
         CAST((u + d) % 30 AS BIGINT) AS last_active_days_ago
  FROM range(1, 1001) AS users(u), range(0, 7) AS days(d)
) TO '{path}' (FORMAT parquet)
"""

_MERCHANT_STATS = """
COPY (
  SELECT printf('m%03d', i + 1) AS merchant_id,
         CAST(:now AS TIMESTAMP) - k * INTERVAL 30 MINUTE - (i % 10) * INTERVAL 1 MINUTE
           AS event_timestamp,
         20 + i * 0.25 + k * 0.01 AS avg_ticket_usd,
         CAST((i + k) % 17 AS BIGINT) AS orders_1h,
         i % 23 = 0 AS is_high_risk,
         ['grocery', 'travel', 'electronics'][i % 3 + 1] AS category
  FROM range(0, 200) AS merchants(i), range(0, 96) AS slots(k)
) TO '{path}' (FORMAT parquet)
"""

SERVING_LOG = "feature_service_logs/checkout_model"

# The serving log as Feast writes it: value times are whole seconds before the request's time
# (a value the store lacked: null at 1970-01-01), the log time is UTC.
_SERVING_LOG = """
COPY (
  WITH requests AS (
    SELECT i,
           CAST(:now AS TIMESTAMP) - INTERVAL 59 MINUTE + i * INTERVAL 1770 MILLISECOND AS logged,
           CASE WHEN i % 40 = 0 THEN 1 + (i // 40) % 40 ELSE 91 + (i * 7919) % 910 END AS u,
           i % 200 AS m,
           i % 40 = 0 AS absent_user
    FROM range(0, {requests}) AS r(i)
  ), timed AS (
    SELECT *,
           CASE WHEN absent_user THEN TIMESTAMP '1970-01-01'
                ELSE date_trunc('second', logged - (u % 50) * INTERVAL 1 MINUTE) END AS user_ts,
           date_trunc('second', logged - CASE WHEN i % 25 = 1 THEN 50 ELSE m % 25 END
                                     * INTERVAL 1 MINUTE) AS merchant_ts
    FROM requests
  )
  SELECT CAST(u AS BIGINT) AS user_id,
         printf('m%03d', m + 1) AS merchant_id,
         CASE WHEN absent_user THEN NULL ELSE CAST((u * 7) % 40 AS BIGINT) END
           AS user_stats__purchase_count_30d,
         CAST(user_ts AS TIMESTAMP_MS) AS user_stats__purchase_count_30d__timestamp,
         CAST(CASE WHEN absent_user THEN 3 ELSE 1 END AS INTEGER)
           AS user_stats__purchase_count_30d__status,
         CASE WHEN absent_user OR i % 100 = 50 THEN NULL ELSE CAST(round(u * 1.7, 2) AS FLOAT) END
           AS user_stats__rolling_7d_revenue,
         CAST(user_ts AS TIMESTAMP_MS) AS user_stats__rolling_7d_revenue__timestamp,
         CAST(CASE WHEN absent_user THEN 3 ELSE 1 END AS INTEGER)
           AS user_stats__rolling_7d_revenue__status,
         CAST(20 + m * 0.25 AS DOUBLE) AS merchant_stats__avg_ticket_usd,
         CAST(merchant_ts AS TIMESTAMP_MS) AS merchant_stats__avg_ticket_usd__timestamp,
         CAST(1 AS INTEGER) AS merchant_stats__avg_ticket_usd__status,
         m % 23 = 0 AS merchant_stats__is_high_risk,
         CAST(merchant_ts AS TIMESTAMP_MS) AS merchant_stats__is_high_risk__timestamp,
         CAST(1 AS INTEGER) AS merchant_stats__is_high_risk__status,
         CAST(logged AS TIMESTAMPTZ) AS __log_timestamp,
         CAST(logged AS DATE) AS __log_date,
         printf('req-%05d', i) AS __request_id
  FROM timed
) TO '{path}' (FORMAT parquet)
"""

_TRANSACTIONS = """
COPY (
  SELECT printf('m%03d', i % 200 + 1) AS merchant_id,
         CAST(i % 1000 + 1 AS BIGINT) AS user_id,
         CAST(:now AS TIMESTAMP) - INTERVAL 26 HOUR - (i % 72) * INTERVAL 1 HOUR
           AS event_timestamp,
         CAST(round(5 + (i % 500) * 0.37, 2) AS VARCHAR) AS amount_usd,
         CASE WHEN i % 100 < 3 THEN NULL ELSE ['grocery', 'travel'][i % 2 + 1] END
           AS merchant_category,
         CAST('debug' AS BLOB) AS debug_blob
  FROM range({start}, {stop}) AS rows(i)
) TO '{path}' (FORMAT parquet)
"""


def _write_offline(directory: Path, now: datetime) -> None:
    engine = sa.create_engine("duckdb:///:memory:")
    naive = now.replace(tzinfo=None)  # the store's zone is UTC; Parquet holds naive UTC
    parts = 3
    size = TRANSACTION_ROWS // parts
    statements = [
        _USER_STATS.format(path=_literal(directory / "user_stats.parquet")),
        _MERCHANT_STATS.format(path=_literal(directory / "merchant_stats.parquet")),
        _SERVING_LOG.format(
            requests=LOGGED_REQUESTS,
            path=_literal(directory / SERVING_LOG / "part-0.parquet"),
        ),
        *(
            _TRANSACTIONS.format(
                start=part * size,
                stop=(part + 1) * size,
                path=_literal(directory / "transactions" / f"part-{part}.parquet"),
            )
            for part in range(parts)
        ),
    ]
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("SET TimeZone = 'UTC'"))  # the log's times are UTC
            for statement in statements:
                conn.execute(sa.text(statement), {"now": naive})
    finally:
        engine.dispose()


def _literal(path: Path) -> str:
    """A path inside a SQL string literal (COPY takes no bound parameter for its target)."""
    return str(path).replace("'", "''")
