"""The INSERT ... ON CONFLICT statements of every run, written once as SQL text.

SQLAlchemy 2.0 does not cache the compiled form of its dialect-specific INSERTs (`sqlite.insert`
and `postgresql.insert` set `inherit_cache = False`): each execution built and compiled its
statement again, three times per run, which was a fifth of what the daemon spent on a run beyond
its probe. SQLite (3.24+, RETURNING 3.35+) and PostgreSQL spell these upserts identically, so
each is one `text()` clause, built at import and cached like any other statement. The column
names come from `monitor.state.schema`, and every parameter is bound with its column's type, so
times are stored exactly as the Core statements stored them (UTC; naive in SQLite).
"""

from __future__ import annotations

import sqlalchemy as sa

from monitor.state.schema import latest_results, run_claims, runs


def _insert(table: sa.Table, columns: tuple[str, ...], values: tuple[str, ...] = ()) -> str:
    """`INSERT INTO table (columns) VALUES (:columns, values...)`: a bound parameter for each
    column, then literal SQL for the columns named in `values` as `name=sql`."""
    literal = dict(value.split("=", 1) for value in values)
    names = (*columns, *literal)
    placeholders = (*(f":{name}" for name in columns), *literal.values())
    return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(placeholders)})"


def _typed(table: sa.Table, columns: tuple[str, ...]) -> list[sa.BindParameter[object]]:
    return [sa.bindparam(name, type_=table.c[name].type) for name in columns]


_CLAIM_COLUMNS = ("feature_view", "scheduled_at", "holder", "claimed_at", "expires_at")
CLAIM = (
    sa.text(
        _insert(run_claims, _CLAIM_COLUMNS, ("attempt=1",))
        + " ON CONFLICT (feature_view, scheduled_at) DO UPDATE SET"
        " holder = excluded.holder, claimed_at = excluded.claimed_at,"
        " expires_at = excluded.expires_at, attempt = run_claims.attempt + 1"
        " WHERE run_claims.finished_at IS NULL AND run_claims.expires_at < excluded.claimed_at"
        " RETURNING attempt"
    )
    .bindparams(*_typed(run_claims, _CLAIM_COLUMNS))
    .columns(attempt=sa.Integer)
)
"""Claim a run (parameters: `_CLAIM_COLUMNS`), or take over a claim abandoned before
`claimed_at`; returns the claim's attempt (1: won, more: taken over), no row when it is held."""

_RUN_COLUMNS = tuple(column.name for column in runs.columns)
RUN = (
    sa.text(_insert(runs, _RUN_COLUMNS) + " ON CONFLICT (run_id) DO NOTHING RETURNING run_id")
    .bindparams(*_typed(runs, _RUN_COLUMNS))
    .columns(run_id=sa.Text)
)
"""Record a run (a row of `monitor.state.rows.run_row`); returns its id, no row when it was
recorded already."""

_LATEST_COLUMNS = tuple(column.name for column in latest_results.columns)
LATEST = sa.text(
    _insert(latest_results, _LATEST_COLUMNS) + " ON CONFLICT (check_id) DO UPDATE SET"
    " run_id = excluded.run_id, seq = excluded.seq, scheduled_at = excluded.scheduled_at"
    " WHERE latest_results.scheduled_at < excluded.scheduled_at"
    " OR (latest_results.scheduled_at = excluded.scheduled_at"
    " AND latest_results.run_id < excluded.run_id)"
).bindparams(*_typed(latest_results, _LATEST_COLUMNS))
"""Point each check's latest result at this run (rows of `monitor.state.rows.latest_rows`),
unless a newer run already holds it (runs may be recorded out of order)."""
