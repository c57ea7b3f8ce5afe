"""The state database: run history, results, schema baselines (and, in later migrations, alert
state, the outbox, silences and leases). featmon writes here, unlike the stores it watches.

One SQLAlchemy Core database: a SQLite file by default, PostgreSQL for teams and HA replicas.
This package is the only importer of sqlalchemy outside `monitor.stores.sql` (see pyproject's
contracts); what leaves it are the frozen values of `monitor.state.values` and `StateError`.

    store = StateStore(config.state.url)   # owns its engine; store.close() disposes of it
    store.migrate()                        # once at start-up; safe from several processes
    store.record_run(run)
    with store.alert_transaction(scope, now, run.run_id) as step:  # a part of alert state
        step.write(change)                                         # and the outbox, at once
    store.claim_outbox(now, lease, token)        # the delivery worker's side
    store.claim_run(view, scheduled_at, holder, now, lease)  # one replica runs each run
    store.add_silence(silence_id, document, starts_at, ends_at, now)  # API silences
"""

from monitor.state.errors import SchemaTooNew, StateError
from monitor.state.migrations import MIGRATIONS, Migration
from monitor.state.rows import stored_results
from monitor.state.store import StateStore
from monitor.state.values import (
    AlertChange,
    AlertDocuments,
    Baseline,
    ClaimEnd,
    ClaimOutcome,
    HistoryPoint,
    NewNotification,
    OutboxRow,
    OutboxState,
    RunClaim,
    RunCounts,
    StoredGroup,
    StoredRecord,
    StoredResult,
    StoredRun,
    StoredSilence,
)

__all__ = [
    "MIGRATIONS",
    "AlertChange",
    "AlertDocuments",
    "Baseline",
    "ClaimEnd",
    "ClaimOutcome",
    "HistoryPoint",
    "Migration",
    "NewNotification",
    "OutboxRow",
    "OutboxState",
    "RunClaim",
    "RunCounts",
    "SchemaTooNew",
    "StateError",
    "StateStore",
    "StoredGroup",
    "StoredRecord",
    "StoredResult",
    "StoredRun",
    "StoredSilence",
    "stored_results",
]
