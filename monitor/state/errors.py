"""The errors of the state database. Driver errors are translated into these by
`monitor.state.engine`, raised `from` the original.

    MonitorError
     └── StateError        the state database failed or refused an operation (also an
          │                `alerts.errors.AlertStoreError`: the alert pipeline's store failed)
          └── SchemaTooNew the database was migrated by a newer featmon than this one

Messages name the database by its URL with the password masked, never the password itself.
"""

from __future__ import annotations

from alerts.errors import AlertStoreError
from monitor.errors import MonitorError


class StateError(MonitorError, AlertStoreError):
    """The state database failed or refused an operation."""

    def __init__(self, database: str, detail: str) -> None:
        self.database = database  # the URL with its password masked
        self.detail = detail
        super().__init__(f"state database {database}: {detail}")


class SchemaTooNew(StateError):
    """The database holds a schema version above every migration this featmon knows."""

    def __init__(self, database: str, found: int, known: int) -> None:
        self.found = found
        self.known = known
        super().__init__(
            database,
            f"expected schema version {known} or lower, found {found}: the database was "
            "migrated by a newer featmon; upgrade this one (downgrading a schema is not supported)",
        )
