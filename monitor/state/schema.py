"""The current shape of the state database's tables, as the queries of `monitor.state.store`
see it, and the column types they share.

The migrations in `monitor.state.migrations` create and change these tables; each migration
spells its own DDL, frozen at the time it was written, so that changing a table here never
changes what an old migration did. A test checks that a migrated database matches this module.

Times are `UtcDateTime`: `timestamptz` on PostgreSQL, fixed-width UTC text on SQLite (so that
text order is time order), aware UTC `datetime` in and out. JSON is JSONB on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware datetime, stored and returned in UTC; a naive one is refused."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"expected a timezone-aware datetime, found naive {value}")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(
        self,
        value: object,
        dialect: sa.Dialect,  # noqa: ARG002 - the signature TypeDecorator calls
    ) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - the dialects return datetimes
            raise TypeError(f"expected a datetime from the database, found {type(value).__name__}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_type() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


metadata = sa.MetaData(naming_convention=NAMING)

schema_version = sa.Table(
    "featmon_schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("applied_at", UtcDateTime, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("feature_view", sa.Text, nullable=True),
    sa.Column("scheduled_at", UtcDateTime, nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime, nullable=False),
    sa.Column("duration_seconds", sa.Double, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("n_pass", sa.Integer, nullable=False),
    sa.Column("n_warn", sa.Integer, nullable=False),
    sa.Column("n_fail", sa.Integer, nullable=False),
    sa.Column("n_error", sa.Integer, nullable=False),
    sa.Column("recorded_at", UtcDateTime, nullable=False),
    # version 6: the model a model's run is of (`feature_view` is then null)
    sa.Column("model", sa.Text, nullable=True),
    sa.Index(None, "scheduled_at"),
)

results = sa.Table(
    "results",
    metadata,
    sa.Column(
        "run_id",
        sa.Text,
        sa.ForeignKey(runs.c.run_id, ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("scheduled_at", UtcDateTime, nullable=False),
    sa.Column("check_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("feature_view", sa.Text, nullable=False),
    sa.Column("feature", sa.Text, nullable=True),
    sa.Column("store", sa.Text, nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("threshold", json_type(), nullable=False),
    sa.Column("sample_size", sa.Integer, nullable=True),
    sa.Column("details", json_type(), nullable=False),
    sa.Column("labels", json_type(), nullable=False),
    # version 6: a model's result names its model here, and has feature_view '' (no view is
    # named so); a view's result has model null
    sa.Column("model", sa.Text, nullable=True),
    sa.Index(None, "check_id", "scheduled_at"),
    sa.Index(None, "feature_view", "scheduled_at"),
    sa.Index(None, "status", "scheduled_at"),
    sa.Index(None, "scheduled_at"),
    sa.Index(None, "model", "scheduled_at"),
)

latest_results = sa.Table(
    "latest_results",
    metadata,
    sa.Column("check_id", sa.Text, primary_key=True),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("scheduled_at", UtcDateTime, nullable=False),
    sa.ForeignKeyConstraint(
        ["run_id", "seq"], [results.c.run_id, results.c.seq], ondelete="CASCADE"
    ),
    sa.Index(None, "run_id", "seq"),
)

schema_baselines = sa.Table(
    "schema_baselines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("feature_view", sa.Text, nullable=False),
    sa.Column("store", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("columns", json_type(), nullable=False),
    sa.Column("captured_at", UtcDateTime, nullable=False),
    sa.Column("accepted_by", sa.Text, nullable=True),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Index(None, "feature_view", "store", "captured_at"),
)

# -- version 2: alert state and the notification outbox ----------------------------------------

alert_records = sa.Table(
    "alert_records",
    metadata,
    sa.Column("fingerprint", sa.Text, primary_key=True),
    sa.Column("record", json_type(), nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # version 5: the record's subject, so a step reads only its subject's records: its feature
    # view label, or `model:<name>` for a model's alert (`alerts.model.subject_of`)
    sa.Column("feature_view", sa.Text, nullable=False, server_default=""),
    sa.Index(None, "feature_view"),
)

alert_groups = sa.Table(
    "alert_groups",
    metadata,
    sa.Column("receiver", sa.Text, primary_key=True),
    sa.Column("group_key", sa.Text, primary_key=True),
    sa.Column("state", json_type(), nullable=False),
    sa.Column("flush_at", UtcDateTime, nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Index(None, "flush_at"),
)

alert_runs = sa.Table(
    "alert_runs",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("processed_at", UtcDateTime, nullable=False),
    sa.Index(None, "processed_at"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("receiver", sa.Text, nullable=False),
    sa.Column("group_key", sa.Text, nullable=False),
    sa.Column("dedup_key", sa.Text, nullable=False),
    sa.Column("notification", json_type(), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("delivered_at", UtcDateTime, nullable=True),
    sa.Column("claim", sa.Text, nullable=True),
    sa.Index(None, "state", "next_attempt_at"),
    sa.Index(None, "dedup_key", unique=True),
    sa.Index(None, "created_at"),
)

# -- version 3: claims of scheduled runs (replicas) ---------------------------------------------

run_claims = sa.Table(
    "run_claims",
    metadata,
    # the subject of the run: a view's name, or `model:<name>` (a view's name holds no colon)
    sa.Column("feature_view", sa.Text, primary_key=True),
    sa.Column("scheduled_at", UtcDateTime, primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("claimed_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("finished_at", UtcDateTime, nullable=True),
    sa.Column("end", sa.Text, nullable=True),
    sa.Index(None, "finished_at", "expires_at"),
    sa.Index(None, "scheduled_at"),
)

# -- version 4: silences created through the API ------------------------------------------------

silences = sa.Table(
    "silences",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("silence", json_type(), nullable=False),
    sa.Column("starts_at", UtcDateTime, nullable=False),
    sa.Column("ends_at", UtcDateTime, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expired_at", UtcDateTime, nullable=True),
    sa.Index(None, "ends_at"),
)
