"""The exceptions of the monitor package. Third-party errors are translated into these at the
one module that imports the driver, and raised `from` the original.

    MonitorError
     └── StoreError             names the store; becomes an `error` result, never a crash
          ├── StoreUnavailable  cannot connect, or the connection broke
          ├── ProbeTimeout      a query or read ran past its timeout
          ├── SourceNotFound    the table, file or key space does not exist
          └── QueryFailed       the store refused or failed the query
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every error raised by the monitor package."""


class StoreError(MonitorError):
    """A store could not be read. The message names the store and never holds a secret."""

    def __init__(self, store: str, detail: str) -> None:
        self.store = store
        self.detail = detail
        super().__init__(f"store {store!r}: {detail}")


class StoreUnavailable(StoreError):
    """Cannot connect to the store, or the connection broke."""


class ProbeTimeout(StoreError):
    """A query or read ran past its timeout."""


class SourceNotFound(StoreError):
    """The table, file or key space does not exist."""


class QueryFailed(StoreError):
    """The store refused or failed a query."""
