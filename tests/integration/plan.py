"""The planted truth of the real-Feast repository: its rows, and what featmon must measure.

Everything is relative to `now`, the scheduled time of the run (the build's minute), because
Feast materializes a window of real time. Two feature views:

- user_stats (user_id INT64; revenue Float64, orders Int64, segment String; TTL 1 day):
  users 1-160 fresh (latest event `uid` minutes old, over an older row that materialization must
  not pick), users 161-180 stale (36 h old, past the TTL), users 181-200 missing online (their
  only rows are 5 days old, before the materialization window, yet within featmon's 30-day
  lookback), revenue null for every 20th user, and `legacy_score`, removed from the view after the
  first materialization, left behind as orphan rows.
- merchant_stats (merchant_id STRING; avg_ticket Float32, is_high_risk Bool; TTL 2 h): healthy.

The feature service fraud_v1 (user_stats' revenue and orders, all of merchant_stats) is served
`fraud_requests` just before `now`, and logs them: each of `FRAUD_USERS` with two merchants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

USERS = range(1, 201)
FRESH = range(1, 161)
STALE = range(161, 181)
MISSING = range(181, 201)
PRESENT = range(1, 181)
MERCHANTS = tuple(f"m{i:03d}" for i in range(1, 31))
USER_FEATURES = ("revenue", "orders", "segment")
MERCHANT_FEATURES = ("avg_ticket", "is_high_risk")
WINDOW = timedelta(days=2)
STALE_AGE = timedelta(hours=36)
MISSING_AGE = timedelta(days=5)


def revenue(uid: int) -> float | None:
    return None if uid % 20 == 0 else uid * 1.25


def segment(uid: int) -> str:
    return "gold" if uid % 3 == 0 else "silver"


def user_age(uid: int) -> timedelta:
    """The age of a user's latest row."""
    if uid in FRESH:
        return timedelta(minutes=uid)
    if uid in STALE:
        return STALE_AGE + timedelta(minutes=uid - 160)
    return MISSING_AGE + timedelta(minutes=uid)


def merchant_age(index: int) -> timedelta:
    return timedelta(minutes=10, seconds=index)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def user_rows(now: datetime) -> list[dict[str, object]]:
    """The Parquet rows of user_stats: each user's latest row, and for fresh users an older
    row with other values (orders + 1000) that materialization must not pick."""
    rows: list[dict[str, object]] = []
    for uid in USERS:
        latest = now - user_age(uid)
        versions = [(latest, uid)]
        if uid in FRESH:
            versions.append((latest - timedelta(hours=3), uid + 1000))
        for at, orders in versions:
            rows.append(
                {
                    "user_id": uid,
                    "event_timestamp": epoch(at),
                    "created": epoch(at + timedelta(seconds=30)),
                    "revenue": revenue(uid),
                    "orders": orders,
                    "segment": segment(uid),
                    "legacy_score": uid / 10,
                }
            )
    return rows


def merchant_rows(now: datetime) -> list[dict[str, object]]:
    return [
        {
            "merchant_id": merchant,
            "event_timestamp": epoch(now - merchant_age(index)),
            "avg_ticket": index * 0.5,
            "is_high_risk": index % 7 == 0,
        }
        for index, merchant in enumerate(MERCHANTS, 1)
    ]


def user_values(uid: int) -> dict[str, object]:
    """What the online store must hold for a present user."""
    return {"revenue": revenue(uid), "orders": uid, "segment": segment(uid)}


def merchant_values(index: int) -> dict[str, object]:
    return {"avg_ticket": index * 0.5, "is_high_risk": index % 7 == 0}


FRAUD_USERS = (1, 2, 20, 40, 159, 161, 180, 181, 200, 999)
FRAUD_MERCHANTS = (MERCHANTS[0], MERCHANTS[6])


def fraud_requests() -> list[tuple[int, str]]:
    """The requests fraud_v1 logs: fresh users (1, 2, 159), null revenue (20, 40), stale (161,
    180), missing (181, 200) and unknown (999) users, each with two healthy merchants."""
    return [(uid, merchant) for uid in FRAUD_USERS for merchant in FRAUD_MERCHANTS]


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@dataclass(frozen=True)
class Expected:
    """The numbers featmon must report for user_stats over the offline population."""

    asked: int
    found: int
    p50: float
    p90: float
    p99: float
    max: float
    covered: int
    revenue_nulls: int


def expected_users() -> Expected:
    ages = [user_age(uid).total_seconds() for uid in PRESENT]
    return Expected(
        asked=len(USERS),
        found=len(PRESENT),
        p50=timedelta(minutes=90).total_seconds(),
        p90=(STALE_AGE + timedelta(minutes=2)).total_seconds(),
        p99=(STALE_AGE + timedelta(minutes=19)).total_seconds(),
        max=max(ages),
        covered=sum(1 for uid in FRESH if revenue(uid) is not None),
        revenue_nulls=sum(1 for uid in PRESENT if revenue(uid) is None),
    )
