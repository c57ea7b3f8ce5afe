"""The planted truth of the serving-log repository: its rows, and the requests served from it.

A model, Feast's feature service `fraud_v1`, is served user_stats (revenue, orders; TTL 1 day),
merchant_stats (avg_ticket, is_high_risk; TTL 2 h) and user_merchant (txn_count_7d,
amount_sum_7d; join keys user_id and merchant_id; TTL 1 day). The store is replayed over four
hours: a history is materialized first, then each step materializes one hour and serves a batch of
requests as of the step's log time (`STEP_LOG_OFFSETS` before `end`, the last step's).

Requests draw users and merchants by popularity (the i-th most popular weighs 1/i), so popular
entities weigh more. Three faults miss on different requests, each leaving under 5% of the
requests uncovered alone while together they leave the model under 95%:

- user_stats: revenue is null for `NULL_USERS`; `NEW_USER` is in no view (absent);
- merchant_stats: `STALE_MERCHANT`'s pipeline stopped after the first step: its value ages past
  the 2 h TTL by the third step;
- user_merchant: the pairs `MISSING_PAIRS` have no rows (absent), nor has `NEW_USER`.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

USERS = tuple(range(1, 61))
MERCHANTS = tuple(f"m{i:02d}" for i in range(1, 13))
NEW_USER = 999
NULL_USERS = frozenset({9, 30, 45})
STALE_MERCHANT = "m05"
MISSING_PAIRS = frozenset({(1, "m04"), (2, "m02")})
STEPS = 4
REQUESTS_PER_STEP = 250
SEED = 20261126


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def log_times(end: datetime) -> list[datetime]:
    """The log time of each step's first request: one hour apart, the last at `end`."""
    return [end - timedelta(hours=STEPS - k) for k in range(1, STEPS + 1)]


def user_rows(end: datetime) -> list[dict[str, object]]:
    """An hourly pipeline: a row per user in the history and in every step's hour."""
    first = log_times(end)[0]
    times = [first - timedelta(hours=1, minutes=30)]
    times += [at - timedelta(minutes=40) for at in log_times(end)]
    return [
        {
            "user_id": uid,
            "event_timestamp": epoch(moment + timedelta(seconds=uid)),
            "revenue": None if uid in NULL_USERS else uid * 1.5 + step,
            "orders": uid * 10 + step,
            "segment": "gold" if uid % 3 == 0 else "silver",
        }
        for step, moment in enumerate(times)
        for uid in USERS
    ]


def merchant_rows(end: datetime) -> list[dict[str, object]]:
    """An hourly pipeline that stopped for STALE_MERCHANT after the first step."""
    first = log_times(end)[0]
    times = [first - timedelta(hours=1, minutes=20)]
    times += [at - timedelta(minutes=45) for at in log_times(end)]
    return [
        {
            "merchant_id": merchant,
            "event_timestamp": epoch(moment + timedelta(seconds=index)),
            "avg_ticket": index * 0.5 + step,
            "is_high_risk": index % 7 == 0,
        }
        for step, moment in enumerate(times)
        for index, merchant in enumerate(MERCHANTS, 1)
        if step <= 1 or merchant != STALE_MERCHANT
    ]


def pair_rows(end: datetime) -> list[dict[str, object]]:
    """A daily pipeline, run once before the replay, that has no rows for MISSING_PAIRS."""
    at = log_times(end)[0] - timedelta(hours=3)
    return [
        {
            "user_id": uid,
            "merchant_id": merchant,
            "event_timestamp": epoch(at + timedelta(seconds=uid)),
            "txn_count_7d": uid + index,
            "amount_sum_7d": uid * 2.0 + index,
        }
        for uid in USERS
        for index, merchant in enumerate(MERCHANTS, 1)
        if (uid, merchant) not in MISSING_PAIRS
    ]


def requests() -> list[list[dict[str, object]]]:
    """Each step's entity rows, users and merchants drawn by popularity (NEW_USER weighs as
    the 40th user)."""
    rng = random.Random(SEED)
    users = [*USERS, NEW_USER]
    user_weights = [1 / uid for uid in USERS] + [1 / 40]
    merchant_weights = [1 / index for index in range(1, len(MERCHANTS) + 1)]
    return [
        [
            {"user_id": uid, "merchant_id": merchant}
            for uid, merchant in zip(
                rng.choices(users, user_weights, k=REQUESTS_PER_STEP),
                rng.choices(MERCHANTS, merchant_weights, k=REQUESTS_PER_STEP),
                strict=True,
            )
        ]
        for _ in range(STEPS)
    ]


def replay(end: datetime) -> dict[str, object]:
    """The history's window, then per step: the hour to materialize (bounds inclusive, as
    Feast's file offline store reads them, so no row sits on one) and its requests."""
    first = log_times(end)[0]
    history = [epoch(first - timedelta(days=2)), epoch(first - timedelta(hours=1))]
    steps = [
        {
            "materialize": [epoch(at - timedelta(hours=1)) + 1, epoch(at) - 1],
            "log_time": epoch(at),
            "requests": batch,
        }
        for at, batch in zip(log_times(end), requests(), strict=True)
    ]
    return {"history": history, "steps": steps}
