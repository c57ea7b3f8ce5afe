"""Numbered migrations of the state database, and the one function that applies them.

A migration is a version number, a description and an `upgrade(conn)` that changes the schema
(and data) inside the transaction it is given. `MIGRATIONS` lists them from 1 without gaps;
a database records each applied version in `featmon_schema_version` (one row per version, with
when it was applied). To change the schema, append a migration; never edit a released one, and
keep `monitor.state.schema` (what the queries see) in step: a test compares the two.

`migrate` applies every pending migration in order, all in one transaction, under a lock:
PostgreSQL takes a transaction-level advisory lock first (before even creating the version
table), SQLite begins with `BEGIN IMMEDIATE`. A second process starting at the same time waits,
then finds nothing left to do. A database at a version above the last known migration is
refused with `SchemaTooNew` and left untouched.

Version 2 adds alert state and the outbox; version 3 the claims of scheduled runs (leases shared
by daemon replicas); version 4 the silences created through the API; version 5 each alert
record's feature view (alerting reads and locks one view's records); version 6 the results and
runs of models (see `_v6_models`).
PostgreSQL DDL that cannot run in a transaction (CREATE INDEX CONCURRENTLY) is not supported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from monitor.state import schema
from monitor.state.errors import SchemaTooNew

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key: the bytes of "featmon" read as a big-endian integer.
ADVISORY_LOCK_KEY = int.from_bytes(b"featmon", "big")


@dataclass(frozen=True)
class Migration:
    """One step of the schema: `upgrade` runs inside the migration transaction."""

    version: int
    description: str
    upgrade: Callable[[sa.Connection], None]


def _v1_history(conn: sa.Connection) -> None:
    """Runs, their results, the latest result of each check, and schema baselines."""
    meta = sa.MetaData(naming_convention=schema.NAMING)
    time = sa.DateTime(timezone=True)
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    sa.Table(
        "runs",
        meta,
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("feature_view", sa.Text, nullable=True),
        sa.Column("scheduled_at", time, nullable=False),
        sa.Column("started_at", time, nullable=False),
        sa.Column("finished_at", time, nullable=False),
        sa.Column("duration_seconds", sa.Double, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        *(
            sa.Column(f"n_{s}", sa.Integer, nullable=False)
            for s in ("pass", "warn", "fail", "error")
        ),
        sa.Column("recorded_at", time, nullable=False),
        sa.Index(None, "scheduled_at"),
    )
    sa.Table(
        "results",
        meta,
        sa.Column("run_id", sa.Text, sa.ForeignKey("runs.run_id", ondelete="CASCADE")),
        sa.Column("seq", sa.Integer, autoincrement=False),
        sa.Column("scheduled_at", time, nullable=False),
        sa.Column("check_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("feature_view", sa.Text, nullable=False),
        sa.Column("feature", sa.Text, nullable=True),
        sa.Column("store", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("value", sa.Double, nullable=True),
        sa.Column("threshold", json, nullable=False),
        sa.Column("sample_size", sa.Integer, nullable=True),
        sa.Column("details", json, nullable=False),
        sa.Column("labels", json, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "seq"),
        sa.Index(None, "check_id", "scheduled_at"),
        sa.Index(None, "feature_view", "scheduled_at"),
        sa.Index(None, "status", "scheduled_at"),
        sa.Index(None, "scheduled_at"),
    )
    sa.Table(
        "latest_results",
        meta,
        sa.Column("check_id", sa.Text, primary_key=True),
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("scheduled_at", time, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id", "seq"], ["results.run_id", "results.seq"], ondelete="CASCADE"
        ),
        sa.Index(None, "run_id", "seq"),
    )
    sa.Table(
        "schema_baselines",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("feature_view", sa.Text, nullable=False),
        sa.Column("store", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("columns", json, nullable=False),
        sa.Column("captured_at", time, nullable=False),
        sa.Column("accepted_by", sa.Text, nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Index(None, "feature_view", "store", "captured_at"),
    )
    meta.create_all(conn)


def _v2_alerting(conn: sa.Connection) -> None:
    """Alert records, the grouper's groups, the runs alerting has processed, and the outbox of
    notifications waiting for (or done with) their receiver."""
    meta = sa.MetaData(naming_convention=schema.NAMING)
    time = sa.DateTime(timezone=True)
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    sa.Table(
        "alert_records",
        meta,
        sa.Column("fingerprint", sa.Text, primary_key=True),
        sa.Column("record", json, nullable=False),
        sa.Column("updated_at", time, nullable=False),
    )
    sa.Table(
        "alert_groups",
        meta,
        sa.Column("receiver", sa.Text, primary_key=True),
        sa.Column("group_key", sa.Text, primary_key=True),
        sa.Column("state", json, nullable=False),
        sa.Column("flush_at", time, nullable=True),
        sa.Column("updated_at", time, nullable=False),
        sa.Index(None, "flush_at"),
    )
    sa.Table(
        "alert_runs",
        meta,
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("processed_at", time, nullable=False),
        sa.Index(None, "processed_at"),
    )
    sa.Table(
        "outbox",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("receiver", sa.Text, nullable=False),
        sa.Column("group_key", sa.Text, nullable=False),
        sa.Column("dedup_key", sa.Text, nullable=False),
        sa.Column("notification", json, nullable=False),
        sa.Column("created_at", time, nullable=False),
        sa.Column("next_attempt_at", time, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("delivered_at", time, nullable=True),
        sa.Column("claim", sa.Text, nullable=True),
        sa.Index(None, "state", "next_attempt_at"),
        sa.Index(None, "dedup_key", unique=True),
        sa.Index(None, "created_at"),
    )
    meta.create_all(conn)


def _v3_run_claims(conn: sa.Connection) -> None:
    """Claims of scheduled runs: one row per (feature view, scheduled time), inserted by the
    one replica that runs it, with a lease its holder renews until the run is finished."""
    meta = sa.MetaData(naming_convention=schema.NAMING)
    time = sa.DateTime(timezone=True)
    sa.Table(
        "run_claims",
        meta,
        sa.Column("feature_view", sa.Text, primary_key=True),
        sa.Column("scheduled_at", time, primary_key=True),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("claimed_at", time, nullable=False),
        sa.Column("expires_at", time, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("finished_at", time, nullable=True),
        sa.Column("end", sa.Text, nullable=True),
        sa.Index(None, "finished_at", "expires_at"),
        sa.Index(None, "scheduled_at"),
    )
    meta.create_all(conn)


def _v4_silences(conn: sa.Connection) -> None:
    """Silences created through the API: the silence as JSON, its window as columns (to find
    those in force without reading every document), and when it was created and expired."""
    meta = sa.MetaData(naming_convention=schema.NAMING)
    time = sa.DateTime(timezone=True)
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    sa.Table(
        "silences",
        meta,
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("silence", json, nullable=False),
        sa.Column("starts_at", time, nullable=False),
        sa.Column("ends_at", time, nullable=False),
        sa.Column("created_at", time, nullable=False),
        sa.Column("expired_at", time, nullable=True),
        sa.Index(None, "ends_at"),
    )
    meta.create_all(conn)


def _v5_alert_views(conn: sa.Connection) -> None:
    """Each alert record's feature view as a column (an alerting step reads and locks only the
    records of its run's view): added, filled from the records' labels, then indexed."""
    conn.execute(
        sa.text("ALTER TABLE alert_records ADD COLUMN feature_view TEXT NOT NULL DEFAULT ''")
    )
    records = sa.table(
        "alert_records",
        sa.column("fingerprint", sa.Text),
        sa.column("record", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
        sa.column("feature_view", sa.Text),
    )
    found = conn.execute(sa.select(records.c.fingerprint, records.c.record)).all()
    views = [{"fp": fp, "view": _labelled_view(record)} for fp, record in found]
    if views:
        conn.execute(
            sa.update(records)
            .where(records.c.fingerprint == sa.bindparam("fp"))
            .values(feature_view=sa.bindparam("view")),
            views,
        )
    conn.execute(
        sa.text("CREATE INDEX ix_alert_records_feature_view ON alert_records (feature_view)")
    )


def _labelled_view(record: object) -> str:
    """The `feature_view` label of a stored alert record ('' when it has none)."""
    labels = record.get("labels") if isinstance(record, dict) else None
    view = labels.get("feature_view") if isinstance(labels, dict) else None
    return view if isinstance(view, str) else ""


def _v6_models(conn: sa.Connection) -> None:
    """Results and runs of models: a nullable `model` column on `results` (indexed with the
    scheduled time, as `feature_view` is) and on `runs`.

    A model's result keeps `feature_view` NOT NULL and stores '' there (no view is named so):
    making the column nullable would rebuild the whole `results` table on SQLite, which cannot
    change a column's nullability in place, and copy every recorded result in one transaction.
    A model's run stores its model in `runs.model` and null in `runs.feature_view`, as a run of
    several views does. Claims and alert records are keyed by the run's subject already (a
    view's name, or `model:<name>`: a view's name holds no colon), in their `feature_view`
    columns; nothing of theirs changes."""
    conn.execute(sa.text("ALTER TABLE results ADD COLUMN model TEXT"))
    conn.execute(sa.text("ALTER TABLE runs ADD COLUMN model TEXT"))
    conn.execute(
        sa.text("CREATE INDEX ix_results_model_scheduled_at ON results (model, scheduled_at)")
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "runs, results, latest results, schema baselines", _v1_history),
    Migration(2, "alert records, alert groups, alerted runs, notification outbox", _v2_alerting),
    Migration(3, "claims of scheduled runs (replicas run each run once)", _v3_run_claims),
    Migration(4, "silences created through the API", _v4_silences),
    Migration(5, "the feature view of each alert record, indexed", _v5_alert_views),
    Migration(6, "the model of each result and run", _v6_models),
)


def current_version(conn: sa.Connection) -> int:
    """The highest applied version; 0 for a database featmon never migrated."""
    if not sa.inspect(conn).has_table(schema.schema_version.name):
        return 0
    found = conn.execute(sa.select(sa.func.max(schema.schema_version.c.version))).scalar_one()
    return int(found or 0)


def migrate(conn: sa.Connection, migrations: Sequence[Migration], database: str) -> list[int]:
    """Apply the pending `migrations` on `conn`, which is inside a fresh write transaction;
    returns the versions applied (none when the database is current)."""
    _check_numbering(migrations)
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY)))
    schema.schema_version.create(conn, checkfirst=True)
    found = current_version(conn)
    if found > len(migrations):
        raise SchemaTooNew(database, found, len(migrations))
    applied: list[int] = []
    for migration in migrations[found:]:
        log.info(
            "state database %s: applying migration %d (%s)",
            database,
            migration.version,
            migration.description,
        )
        migration.upgrade(conn)
        conn.execute(
            sa.insert(schema.schema_version).values(
                version=migration.version,
                description=migration.description,
                applied_at=datetime.now(UTC),
            )
        )
        applied.append(migration.version)
    return applied


def _check_numbering(migrations: Sequence[Migration]) -> None:
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"expected migrations numbered 1, 2, 3, ... in order, found {versions}")
