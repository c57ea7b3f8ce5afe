"""The state database: run history, results, schema baselines (and, in later migrations, alert
state, the outbox, silences and leases). featmon writes here, unlike the stores it watches.

One SQLAlchemy Core database: a SQLite file by default, PostgreSQL for teams and HA replicas.
This package is the only importer of sqlalchemy outside `monitor.stores.sql` (see pyproject's
contracts); what leaves it are the frozen values of `monitor.state.values` and `StateError`.

    store = StateStore(config.state.url)   # owns its engine; store.close() disposes of it
    store.migrate()                        # once at start-up; safe from several processes
    store.record_run(run)
"""

from monitor.state.errors import SchemaTooNew, StateError
from monitor.state.migrations import MIGRATIONS, Migration
from monitor.state.store import StateStore
from monitor.state.values import Baseline, HistoryPoint, RunCounts, StoredResult, StoredRun

__all__ = [
    "MIGRATIONS",
    "Baseline",
    "HistoryPoint",
    "Migration",
    "RunCounts",
    "SchemaTooNew",
    "StateError",
    "StateStore",
    "StoredResult",
    "StoredRun",
]
