"""The statements behind alert state and the outbox (schema version 2), each on a connection
that `StateStore` opened inside the right transaction. No transaction is begun or committed here.

Alert state is read and rewritten by parts (`ScopedAlerts`): a run's step reads and locks the
records of its run's feature view, then the groups its alerts go to; the grouper's timer the
groups due. On PostgreSQL each part is a transaction-level advisory lock (a view, a group; taken
in sorted order, views first, so two steps never wait in a cycle), under a shared lock that an
unscoped step (a reload's, or the write-back after an outage) takes exclusively; on SQLite the
write lock that `BEGIN IMMEDIATE` takes serialises every step. Two replicas advancing the same
alerts at once therefore take turns, and neither overwrites what the other wrote.

Claiming outbox rows: a claim moves a due row's `next_attempt_at` forward by a lease and stamps
it with the claimer's token, in one short transaction; the send happens outside any transaction,
and only the holder of the token may then mark the row. On PostgreSQL the due rows are selected
`FOR UPDATE SKIP LOCKED`, so concurrent claimers take disjoint rows without waiting; on SQLite
the write lock serialises claims, and the update is conditional on the row still being due. A
worker that dies mid-send leaves its row pending: it is due again when the lease ends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from alerts.stored import (
    AlertChange,
    AlertDocuments,
    AlertScope,
    GroupId,
    OutboxRow,
    OutboxState,
    StoredGroup,
    StoredRecord,
    StoredSilence,
    freeze_object,
)
from checks.result import JSON
from monitor.state.schema import alert_groups, alert_records, alert_runs, outbox

# pg_advisory_xact_lock key of alert state: the bytes of "fmalerts" read as a signed integer.
# An unscoped step holds it exclusively; a scoped step shares it, then locks its views and groups.
ALERT_LOCK_KEY = int.from_bytes(b"fmalerts", "big", signed=True)
PENDING = OutboxState.PENDING.value


class ScopedAlerts:
    """One alerting step's part of the alert state on `conn` (see `alerts.abc.AlertTransaction`):
    the records of the scope's views read and locked when it is made, the groups when asked."""

    def __init__(
        self,
        conn: sa.Connection,
        scope: AlertScope,
        now: datetime,
        silences: tuple[StoredSilence, ...],
    ) -> None:
        self._conn, self._scope, self._now = conn, scope, now
        self._silences = silences
        _lock(conn, scope)
        self._records = _read_records(conn, scope.views)
        self._groups: dict[GroupId, StoredGroup] | None = None
        if scope.everything:
            self._groups = _read_groups(conn, None)
        self.written = False

    @property
    def records(self) -> Mapping[str, StoredRecord]:
        return self._records

    @property
    def silences(self) -> tuple[StoredSilence, ...]:
        return self._silences

    def groups(self, idents: Collection[GroupId]) -> Mapping[GroupId, StoredGroup]:
        if self._groups is None:
            wanted = sorted(set(idents))
            _lock_keys(self._conn, [f"group\x00{r}\x00{k}" for r, k in wanted])
            self._groups = _read_groups(self._conn, wanted)
        return self._groups

    def due_groups(self, now: datetime) -> Mapping[GroupId, StoredGroup]:
        if self._groups is None:
            due = sa.select(alert_groups.c.receiver, alert_groups.c.group_key).where(
                alert_groups.c.flush_at <= now
            )
            wanted = sorted((r, k) for r, k in self._conn.execute(due))
            _lock_keys(self._conn, [f"group\x00{r}\x00{k}" for r, k in wanted])
            found = _read_groups(self._conn, wanted)  # as they are once locked
            self._groups = {i: g for i, g in found.items() if g.flush_at and g.flush_at <= now}
        return self._groups

    def others(self, fingerprints: Collection[str]) -> Mapping[str, StoredRecord]:
        wanted = [fp for fp in fingerprints if fp not in self._records]
        return _read_records(self._conn, None, wanted) if wanted else {}

    def write(self, change: AlertChange) -> None:
        if self.written:
            raise RuntimeError("an alerting step writes once")
        before = AlertDocuments(self._records, self._groups or {})
        write_alerts(self._conn, before, change, self._now)
        self.written = True


def _lock(conn: sa.Connection, scope: AlertScope) -> None:
    """Serialise the steps that share a part of alert state (SQLite's BEGIN IMMEDIATE already
    serialises every write)."""
    if conn.dialect.name != "postgresql":
        return
    if scope.views is None:
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(ALERT_LOCK_KEY)))
        return
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock_shared(ALERT_LOCK_KEY)))
    _lock_keys(conn, [f"view\x00{view}" for view in sorted(scope.views)])


def _lock_keys(conn: sa.Connection, names: list[str]) -> None:
    """Transaction-level advisory locks on `names`, in the order given (callers sort them, so
    that two steps never wait for each other's locks in a cycle)."""
    if conn.dialect.name != "postgresql":
        return
    for name in names:
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


def run_seen(conn: sa.Connection, run_id: str) -> bool:
    query = sa.select(alert_runs.c.run_id).where(alert_runs.c.run_id == run_id)
    return conn.execute(query).first() is not None


def mark_run(conn: sa.Connection, run_id: str, now: datetime) -> None:
    conn.execute(sa.insert(alert_runs).values(run_id=run_id, processed_at=now))


def read_alerts(conn: sa.Connection) -> AlertDocuments:
    return AlertDocuments(_read_records(conn, None), _read_groups(conn, None))


def _read_records(
    conn: sa.Connection, views: Collection[str] | None, fingerprints: Collection[str] = ()
) -> dict[str, StoredRecord]:
    table = alert_records
    if views is not None and not views:
        return {}  # the grouper's timer: no record
    query = sa.select(table.c.fingerprint, table.c.record, table.c.feature_view)
    if views is not None:
        query = query.where(table.c.feature_view.in_(sorted(views)))
    if fingerprints:
        query = query.where(table.c.fingerprint.in_(sorted(fingerprints)))
    return {fp: StoredRecord(_object(doc), view) for fp, doc, view in conn.execute(query)}


def _read_groups(
    conn: sa.Connection, idents: Collection[GroupId] | None
) -> dict[GroupId, StoredGroup]:
    table = alert_groups
    query = sa.select(table.c.receiver, table.c.group_key, table.c.state, table.c.flush_at)
    if idents is not None:
        if not idents:
            return {}
        query = query.where(sa.tuple_(table.c.receiver, table.c.group_key).in_(list(idents)))
    return {
        (receiver, key): StoredGroup(_object(doc), flush_at)
        for receiver, key, doc, flush_at in conn.execute(query)
    }


def write_alerts(
    conn: sa.Connection, before: AlertDocuments, change: AlertChange, now: datetime
) -> None:
    """Write what changed from `before` to `change`, and enqueue its notifications."""
    table = alert_records
    gone = [fp for fp in before.records if fp not in change.records]
    if gone:
        conn.execute(sa.delete(table).where(table.c.fingerprint.in_(gone)))
    changed = [
        {
            "fingerprint": fp,
            "record": dict(stored.document),
            "feature_view": stored.feature_view,
            "updated_at": now,
        }
        for fp, stored in change.records.items()
        if before.records.get(fp) != stored
    ]
    if changed:
        stmt = _insert(conn, table)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[table.c.fingerprint],
                set_={
                    "record": stmt.excluded.record,
                    "feature_view": stmt.excluded.feature_view,
                    "updated_at": stmt.excluded.updated_at,
                },
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
