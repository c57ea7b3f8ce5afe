"""The bounded row queries of the analytical checks, as pure builders (no connection, no clock).

- `latest_rows_query`: for a batch of entities, each with its own bound, the latest row of each
  at or before its bound (skew). The bounds are a derived table of `SELECT :key, :bound UNION
  ALL ...` (portable: SQLite, PostgreSQL, DuckDB), joined on the keys with `event time <=
  bound`, and `row_number() OVER (PARTITION BY keys ORDER BY event time DESC)` keeps one row per
  entity (of rows tied on the newest event time, the engine's pick). At most one row per entity.
- `reference_query`: at most `size` rows with an event time in [since, until), in the engine's
  random order (distribution drift's reference sample).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from checks.observation import EntityValue
from monitor.stores.sql.columns import Source

BATCH = 200  # entities per latest-rows query: well below SQLite's 500 terms of a compound SELECT
_RANK = "featmon_rank"


def latest_rows_query(
    source: Source,
    keys: Sequence[str],
    timestamp: str,
    bounds: Sequence[tuple[tuple[EntityValue, ...], datetime]],
    features: Sequence[str],
) -> sa.Select[Any]:
    """Keys, event time and `features` of the latest row of each entity at or before its bound
    (bounds already in the column's terms, see `columns.bound`)."""
    table = source.selectable
    event_time = table.c[timestamp]
    names = [f"k{i}" for i in range(len(keys))]
    parts = [
        sa.select(
            *(
                sa.literal(value, type_=table.c[key].type).label(name)
                for key, value, name in zip(keys, key_values, names, strict=True)
            ),
            sa.literal(moment, type_=event_time.type).label("bound"),
        )
        for key_values, moment in bounds
    ]
    derived = (parts[0] if len(parts) == 1 else sa.union_all(*parts)).subquery("bounds")
    joined = table.join(
        derived,
        sa.and_(
            *(table.c[key] == derived.c[name] for key, name in zip(keys, names, strict=True)),
            event_time <= derived.c.bound,
        ),
    )
    rank = sa.func.row_number().over(
        partition_by=[table.c[key] for key in keys], order_by=event_time.desc()
    )
    ranked = (
        sa.select(
            *(table.c[key] for key in keys),
            event_time,
            *(table.c[name] for name in features if name not in (*keys, timestamp)),
            rank.label(_RANK),
        )
        .select_from(joined)
        .subquery("ranked")
    )
    return sa.select(*(c for c in ranked.c if c.name != _RANK)).where(ranked.c[_RANK] == 1)


def reference_query(
    source: Source,
    timestamp: str,
    features: Sequence[str],
    since: datetime,
    until: datetime,
    size: int,
) -> sa.Select[Any]:
    """At most `size` rows of `features` with an event time in [since, until), at random."""
    table = source.selectable
    event_time = table.c[timestamp]
    return (
        sa.select(*(table.c[name] for name in features))
        .where(event_time >= since, event_time < until)
        .order_by(sa.func.random())
        .limit(size)
    )
