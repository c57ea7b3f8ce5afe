"""The statements behind run claims (schema version 3), each on a connection that `StateStore`
opened inside a write transaction. No transaction is begun or committed here.

A claim is one row per (feature view, scheduled time). Every replica computes the same scheduled
times, so at each of them every replica tries the same INSERT, and exactly one row is inserted:
the primary key decides, on PostgreSQL and SQLite alike. The conflicting INSERT of the others
becomes an UPDATE only when the row it met is an abandoned claim (not finished, lease ended):
that is a takeover, and only one replica's conditional UPDATE can match, because PostgreSQL
locks the conflicting row and re-checks the condition on its newest version (SQLite runs one
writer at a time). `RETURNING attempt` tells the winner apart: 1 for the first claim, more for a
takeover, no row for a loser.

Finishing, renewing and declaring a run lost are UPDATEs conditional on the holder or on the
lease, so a replica can never finish (or renew) a claim that was taken away from it, and a lost
run is declared by exactly one replica.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from monitor.state import upserts
from monitor.state.schema import run_claims
from monitor.state.values import ClaimEnd, ClaimOutcome, RunClaim

_C = run_claims.c


def claim(
    conn: sa.Connection,
    view: str,
    scheduled_at: datetime,
    holder: str,
    now: datetime,
    lease: timedelta,
) -> ClaimOutcome:
    """Claim the run of `view` at `scheduled_at` for `holder` until `now + lease`, or take it
    over when its claim was abandoned before `now`."""
    params = {
        "feature_view": view,
        "scheduled_at": scheduled_at,
        "holder": holder,
        "claimed_at": now,
        "expires_at": now + lease,
    }
    attempt = conn.execute(upserts.CLAIM, params).scalar_one_or_none()
    if attempt is None:
        return ClaimOutcome.ELSEWHERE
    return ClaimOutcome.WON if attempt == 1 else ClaimOutcome.TAKEN_OVER


def finish(
    conn: sa.Connection, view: str, scheduled_at: datetime, holder: str, now: datetime
) -> bool:
    """Mark the claim of `holder` done; False when it is no longer this holder's."""
    stmt = (
        sa.update(run_claims)
        .where(
            _C.feature_view == view,
            _C.scheduled_at == scheduled_at,
            _C.holder == holder,
            _C.finished_at.is_(None),
        )
        .values(finished_at=now, end=ClaimEnd.DONE.value)
    )
    return conn.execute(stmt).rowcount == 1


def renew(conn: sa.Connection, holder: str, now: datetime, lease: timedelta) -> int:
    """Extend every unfinished claim of `holder`; returns how many there were."""
    stmt = (
        sa.update(run_claims)
        .where(_C.finished_at.is_(None), _C.holder == holder)
        .values(expires_at=now + lease)
    )
    return int(conn.execute(stmt).rowcount)


def abandoned(conn: sa.Connection, now: datetime, limit: int) -> list[RunClaim]:
    """Unfinished claims whose lease ended before `now`, oldest scheduled time first."""
    query = (
        sa.select(run_claims)
        .where(_C.finished_at.is_(None), _C.expires_at < now)
        .order_by(_C.scheduled_at, _C.feature_view)
        .limit(limit)
    )
    return [to_claim(row) for row in conn.execute(query).mappings()]


def lose(conn: sa.Connection, view: str, scheduled_at: datetime, now: datetime) -> bool:
    """Declare an abandoned claim lost; True for the one caller whose UPDATE did it."""
    stmt = (
        sa.update(run_claims)
        .where(
            _C.feature_view == view,
            _C.scheduled_at == scheduled_at,
            _C.finished_at.is_(None),
            _C.expires_at < now,
        )
        .values(finished_at=now, end=ClaimEnd.LOST.value)
    )
    return conn.execute(stmt).rowcount == 1


def prune(conn: sa.Connection, cutoff: datetime) -> int:
    """Delete the claims of runs scheduled before `cutoff`, finished or not."""
    return int(conn.execute(sa.delete(run_claims).where(_C.scheduled_at < cutoff)).rowcount)


def listed(conn: sa.Connection, view: str | None, since: datetime | None) -> list[RunClaim]:
    conditions: list[sa.ColumnElement[bool]] = []
    if view is not None:
        conditions.append(_C.feature_view == view)
    if since is not None:
        conditions.append(_C.scheduled_at >= since)
    query = (
        sa.select(run_claims)
        .where(sa.true(), *conditions)
        .order_by(_C.scheduled_at, _C.feature_view)
    )
    return [to_claim(row) for row in conn.execute(query).mappings()]


def to_claim(row: sa.RowMapping) -> RunClaim:
    return RunClaim(
        feature_view=row["feature_view"],
        scheduled_at=row["scheduled_at"],
        holder=row["holder"],
        claimed_at=row["claimed_at"],
        expires_at=row["expires_at"],
        attempt=int(row["attempt"]),
        finished_at=row["finished_at"],
        end=None if row["end"] is None else ClaimEnd(row["end"]),
    )
