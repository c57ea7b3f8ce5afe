"""The statements behind the silences created through the API (schema version 4), each on a
connection that `StateStore` opened inside the right transaction.

A silence is a row: its JSON document (what was posted, with its id), its window as columns,
when it was created and when it was expired. Expiring never deletes: it stamps `expired_at`, and
a silence mutes while `starts_at <= now < ends_at` and it was not expired at or before `now`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import sqlalchemy as sa

from checks.result import JSON
from monitor.state.schema import silences
from monitor.state.values import StoredSilence, freeze_object

_C = silences.c


def _not_expired(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(_C.expired_at.is_(None), _C.expired_at > now)


def add(
    conn: sa.Connection,
    silence_id: str,
    document: Mapping[str, JSON],
    window: tuple[datetime, datetime],
    now: datetime,
) -> None:
    starts_at, ends_at = window
    conn.execute(
        sa.insert(silences).values(
            id=silence_id,
            silence=dict(document),
            starts_at=starts_at,
            ends_at=ends_at,
            created_at=now,
        )
    )


def in_force(conn: sa.Connection, now: datetime) -> tuple[StoredSilence, ...]:
    """The silences that mute at `now`, by id."""
    query = (
        sa.select(silences)
        .where(_C.starts_at <= now, _C.ends_at > now, _not_expired(now))
        .order_by(_C.id)
    )
    return tuple(to_silence(row) for row in conn.execute(query).mappings())


def listed(conn: sa.Connection, now: datetime, ended_since: datetime | None) -> list[StoredSilence]:
    """Active and pending silences, and those that ended at or after `ended_since` if given;
    soonest start first."""
    since = now if ended_since is None else ended_since
    ended = sa.or_(_C.expired_at.is_(None), _C.expired_at >= since)
    if ended_since is None:  # still to end: strictly after now
        condition = sa.and_(_C.ends_at > now, _not_expired(now))
    else:
        condition = sa.and_(_C.ends_at >= since, ended)
    query = sa.select(silences).where(condition).order_by(_C.starts_at, _C.id)
    return [to_silence(row) for row in conn.execute(query).mappings()]


def get(conn: sa.Connection, silence_id: str) -> StoredSilence | None:
    row = conn.execute(sa.select(silences).where(_C.id == silence_id)).mappings().first()
    return None if row is None else to_silence(row)


def expire(conn: sa.Connection, silence_id: str, now: datetime) -> bool:
    """Stamp `expired_at = now` on a silence that has not ended; False when none was changed."""
    stmt = (
        sa.update(silences)
        .where(_C.id == silence_id, _C.ends_at > now, _not_expired(now))
        .values(expired_at=now)
    )
    return conn.execute(stmt).rowcount == 1


def to_silence(row: sa.RowMapping) -> StoredSilence:
    return StoredSilence(
        id=row["id"],
        document=freeze_object(row["silence"]),
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        created_at=row["created_at"],
        expired_at=row["expired_at"],
    )
