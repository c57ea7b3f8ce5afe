"""The statements behind alert state and the outbox (schema version 2), each on a connection
that `StateStore` opened inside the right transaction. No transaction is begun or committed here.

Alert state is read and rewritten under one lock per database: on PostgreSQL a transaction-level
advisory lock, on SQLite the write lock that `BEGIN IMMEDIATE` takes. Two replicas advancing
alerts at once therefore take turns, and neither overwrites what the other wrote.

Claiming outbox rows: a claim moves a due row's `next_attempt_at` forward by a lease and stamps
it with the claimer's token, in one short transaction; the send happens outside any transaction,
and only the holder of the token may then mark the row. On PostgreSQL the due rows are selected
`FOR UPDATE SKIP LOCKED`, so concurrent claimers take disjoint rows without waiting; on SQLite
the write lock serialises claims, and the update is conditional on the row still being due. A
worker that dies mid-send leaves its row pending: it is due again when the lease ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from checks.result import JSON
from monitor.state.schema import alert_groups, alert_records, alert_runs, outbox
from monitor.state.values import (
    AlertChange,
    AlertDocuments,
    OutboxRow,
    OutboxState,
    StoredGroup,
    freeze_object,
)

# pg_advisory_xact_lock key of alert state: the bytes of "fmalerts" read as a signed integer.
ALERT_LOCK_KEY = int.from_bytes(b"fmalerts", "big", signed=True)
PENDING = OutboxState.PENDING.value


def lock_alerts(conn: sa.Connection) -> None:
    """Serialise alert-state transactions (SQLite's BEGIN IMMEDIATE already does)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(ALERT_LOCK_KEY)))


def run_seen(conn: sa.Connection, run_id: str) -> bool:
    query = sa.select(alert_runs.c.run_id).where(alert_runs.c.run_id == run_id)
    return conn.execute(query).first() is not None


def mark_run(conn: sa.Connection, run_id: str, now: datetime) -> None:
    conn.execute(sa.insert(alert_runs).values(run_id=run_id, processed_at=now))


def read_alerts(conn: sa.Connection) -> AlertDocuments:
    records = {
        fp: _object(doc)
        for fp, doc in conn.execute(sa.select(alert_records.c.fingerprint, alert_records.c.record))
    }
    groups = {
        (receiver, key): StoredGroup(_object(doc), flush_at)
        for receiver, key, doc, flush_at in conn.execute(
            sa.select(
                alert_groups.c.receiver,
                alert_groups.c.group_key,
                alert_groups.c.state,
                alert_groups.c.flush_at,
            )
        )
    }
    return AlertDocuments(records, groups)


def write_alerts(
    conn: sa.Connection, before: AlertDocuments, change: AlertChange, now: datetime
) -> None:
    """Write what changed from `before` to `change`, and enqueue its notifications."""
    table = alert_records
    gone = [fp for fp in before.records if fp not in change.records]
    if gone:
        conn.execute(sa.delete(table).where(table.c.fingerprint.in_(gone)))
    changed = [
        {"fingerprint": fp, "record": dict(doc), "updated_at": now}
        for fp, doc in change.records.items()
        if before.records.get(fp) != doc
    ]
    if changed:
        stmt = _insert(conn, table)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[table.c.fingerprint],
                set_={"record": stmt.excluded.record, "updated_at": stmt.excluded.updated_at},
            ),
            changed,
        )
    _write_groups(conn, before.groups, change.groups, now)
    if change.outbox:
        rows = [
            {
                "receiver": item.receiver,
                "group_key": item.group_key,
                "dedup_key": item.dedup_key,
                "notification": dict(item.notification),
                "created_at": item.created_at,
                "next_attempt_at": item.created_at,
                "attempts": 0 if item.delivered_at is None else 1,
                "state": PENDING if item.delivered_at is None else OutboxState.DELIVERED.value,
                "delivered_at": item.delivered_at,
            }
            for item in change.outbox
        ]
        stmt = _insert(conn, outbox).on_conflict_do_nothing(index_elements=[outbox.c.dedup_key])
        conn.execute(stmt, rows)


def _write_groups(
    conn: sa.Connection,
    before: Mapping[tuple[str, str], StoredGroup],
    after: Mapping[tuple[str, str], StoredGroup],
    now: datetime,
) -> None:
    table = alert_groups
    for receiver, key in (ident for ident in before if ident not in after):
        conn.execute(sa.delete(table).where(table.c.receiver == receiver, table.c.group_key == key))
    changed = [
        {
            "receiver": receiver,
            "group_key": key,
            "state": dict(group.document),
            "flush_at": group.flush_at,
            "updated_at": now,
        }
        for (receiver, key), group in after.items()
        if before.get((receiver, key)) != group
    ]
    if changed:
        stmt = _insert(conn, table)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[table.c.receiver, table.c.group_key],
                set_={
                    "state": stmt.excluded.state,
                    "flush_at": stmt.excluded.flush_at,
                    "updated_at": stmt.excluded.updated_at,
                },
            ),
            changed,
        )


def next_flush(conn: sa.Connection) -> datetime | None:
    found: datetime | None = conn.execute(sa.select(sa.func.min(alert_groups.c.flush_at))).scalar()
    return found


# -- the outbox ------------------------------------------------------------------------------


def claim(
    conn: sa.Connection, now: datetime, lease: timedelta, limit: int, token: str
) -> list[OutboxRow]:
    """Claim up to `limit` due rows, oldest due first, for `lease`."""
    due = (
        sa.select(outbox.c.id)
        .where(outbox.c.state == PENDING, outbox.c.next_attempt_at <= now)
        .order_by(outbox.c.next_attempt_at, outbox.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = list(conn.execute(due).scalars())
    if not ids:
        return []
    conn.execute(
        sa.update(outbox)
        .where(outbox.c.id.in_(ids), outbox.c.state == PENDING, outbox.c.next_attempt_at <= now)
        .values(next_attempt_at=now + lease, attempts=outbox.c.attempts + 1, claim=token)
    )
    query = (
        sa.select(outbox).where(outbox.c.id.in_(ids), outbox.c.claim == token).order_by(outbox.c.id)
    )
    return [to_row(row) for row in conn.execute(query).mappings()]


def finish(conn: sa.Connection, row_id: int, token: str, values: Mapping[str, object]) -> bool:
    """Set `values` on a row this claim still holds; False when it no longer does."""
    stmt = (
        sa.update(outbox)
        .where(outbox.c.id == row_id, outbox.c.claim == token, outbox.c.state == PENDING)
        .values(dict(values))
    )
    return conn.execute(stmt).rowcount == 1


def rows(
    conn: sa.Connection, state: OutboxState | None, limit: int, receiver: str | None
) -> list[OutboxRow]:
    query = sa.select(outbox).order_by(outbox.c.id).limit(limit)
    if state is not None:
        query = query.where(outbox.c.state == state.value)
    if receiver is not None:
        query = query.where(outbox.c.receiver == receiver)
    return [to_row(row) for row in conn.execute(query).mappings()]


def prune(conn: sa.Connection, cutoff: datetime) -> int:
    """Delete delivered and dead rows created before `cutoff`, and processed-run marks."""
    done = [OutboxState.DELIVERED.value, OutboxState.DEAD.value]
    deleted = conn.execute(
        sa.delete(outbox).where(outbox.c.state.in_(done), outbox.c.created_at < cutoff)
    ).rowcount
    conn.execute(sa.delete(alert_runs).where(alert_runs.c.processed_at < cutoff))
    return int(deleted)


def to_row(row: sa.RowMapping) -> OutboxRow:
    return OutboxRow(
        id=int(row["id"]),
        receiver=row["receiver"],
        group_key=row["group_key"],
        dedup_key=row["dedup_key"],
        notification=freeze_object(row["notification"]),
        created_at=row["created_at"],
        next_attempt_at=row["next_attempt_at"],
        attempts=int(row["attempts"]),
        state=OutboxState(row["state"]),
        last_error=row["last_error"],
        delivered_at=row["delivered_at"],
        claim=row["claim"],
    )


def _object(doc: JSON) -> Mapping[str, JSON]:
    if not isinstance(doc, dict):
        raise TypeError(f"expected a JSON object, found {type(doc).__name__}")
    return doc


def _insert(conn: sa.Connection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    return postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)
