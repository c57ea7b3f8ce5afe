"""The SQLAlchemy boundary shared by the SQL stores: engines, read-only transactions with a
statement timeout, and the translation of driver errors into featmon's own.

Every store that reads through SQLAlchemy opens its engine with `open_engine` (and disposes of
it in its `close`), runs every query inside `read_only`, and lets `read_only` translate errors.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from checks.secrets import NO_SECRETS, Secrets
from monitor.errors import ProbeTimeout, QueryFailed, SourceNotFound, StoreError, StoreUnavailable

log = logging.getLogger(__name__)

_NOT_FOUND = (
    "no such table",
    "unable to open database file",
    "does not exist",
    "not found",
    "no files found",
    "no such file",
)
_TIMEOUT = ("statement timeout", "canceling statement", "interrupted", "interrupt")


STATEMENT_CACHE = 64
"""Compiled statements an engine keeps (SQLAlchemy's default is 500). featmon's are large (a
view's aggregate SELECT of dozens of columns: about 110 kB an entry), a view uses about two,
and the cache only hits when it holds every statement of every view: 500 entries never hit at
500 views and held 110 MB of the daemon's memory. 64 keeps the hits of a few dozen views."""


def open_engine(url: str, store: str, timeout: timedelta, read_only_file: bool = True) -> sa.Engine:
    """An engine for `url`; the caller owns it and disposes of it.

    SQLite and DuckDB files are opened read-only (featmon never writes to a watched store);
    PostgreSQL gets a connect timeout. A malformed URL raises `StoreUnavailable`.
    """
    try:
        parsed = sa.make_url(url)
    except sa_exc.ArgumentError as exc:
        raise StoreUnavailable(store, "the URL is not a valid SQLAlchemy URL") from exc
    connect_args: dict[str, Any] = {}
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        connect_args["connect_timeout"] = max(1, int(timeout.total_seconds()))
    elif backend == "sqlite" and parsed.database not in (None, "", ":memory:") and read_only_file:
        parsed = parsed.set(database=f"file:{parsed.database}?mode=ro", query={"uri": "true"})
    elif backend == "duckdb" and parsed.database not in (None, "", ":memory:") and read_only_file:
        connect_args["read_only"] = True
    options: dict[str, Any] = {"pool_pre_ping": True}
    if backend == "duckdb":
        # A DuckDB connection refuses a second caller instead of waiting, and duckdb-engine's
        # default pool hands one connection per thread: probes on a thread pool then meet
        # connections that a finished thread's pool closed. A queue pool gives each checkout a
        # connection of its own, whatever the thread, and keeps a few (opening one costs ~40 ms).
        options = {"poolclass": sa.pool.QueuePool, "pool_size": 2, "max_overflow": 8}
    try:
        return sa.create_engine(
            parsed, connect_args=connect_args, query_cache_size=STATEMENT_CACHE, **options
        )
    except (sa_exc.ArgumentError, ImportError) as exc:
        raise StoreUnavailable(store, f"cannot create an engine for {backend}: {exc}") from exc


def safe_url(url: str) -> str:
    """The URL with its user info and query credentials masked, for logs and messages."""
    return Secrets.of([url]).scrub(url)


@contextlib.contextmanager
def read_only(engine: sa.Engine, store: str, timeout: timedelta) -> Iterator[sa.Connection]:
    """A connection in a read-only transaction whose statements stop after `timeout`.

    Any SQLAlchemy or driver error raised inside is translated into a `StoreError` that names
    the store; the transaction is always rolled back (nothing is ever written).
    """
    started = time.monotonic()
    try:
        with engine.connect() as conn:
            cancel = _limit(conn, timeout)
            try:
                yield conn
            finally:
                cancel()
                conn.rollback()
    except StoreError:
        raise
    except sa_exc.SQLAlchemyError as exc:
        elapsed = time.monotonic() - started
        raise translate(exc, store, elapsed, timeout, _secrets(engine)) from exc


def _secrets(engine: sa.Engine) -> Secrets:
    """The engine's password (and query credentials), for scrubbing a driver's message."""
    return Secrets.of([engine.url.render_as_string(hide_password=False)])


def _limit(conn: sa.Connection, timeout: timedelta) -> Callable[[], None]:
    """Start the read-only transaction and arm the timeout; returns what disarms it."""
    dialect = conn.dialect.name
    millis = max(1, int(timeout.total_seconds() * 1000))
    if dialect == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {millis}")
        return lambda: None
    raw = conn.connection.driver_connection
    if dialect == "sqlite":
        conn.exec_driver_sql("PRAGMA query_only = ON")
        deadline = time.monotonic() + timeout.total_seconds()
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)  # type: ignore[union-attr]  # the driver connection of the sqlite dialect is sqlite3's
        return lambda: raw.set_progress_handler(None, 0)  # type: ignore[union-attr]  # (the same)
    interrupt = getattr(raw, "interrupt", None)
    if callable(interrupt):  # DuckDB: no statement timeout, so a timer interrupts the query
        timer = threading.Timer(timeout.total_seconds(), interrupt)
        timer.daemon = True
        timer.start()
        return timer.cancel
    return lambda: None


def translate(
    exc: sa_exc.SQLAlchemyError,
    store: str,
    elapsed: float,
    timeout: timedelta,
    secrets: Secrets = NO_SECRETS,
) -> StoreError:
    """The featmon error for a SQLAlchemy error: the first line of the driver's message, never
    the SQL parameters or the URL, with `secrets` scrubbed from it."""
    original = getattr(exc, "orig", None) or exc
    first = secrets.scrub((str(original).strip().splitlines() or [type(original).__name__])[0])
    text = first.lower()
    if any(word in text for word in _TIMEOUT) or elapsed >= timeout.total_seconds():
        return ProbeTimeout(store, f"query stopped after {timeout.total_seconds():g}s: {first}")
    if isinstance(exc, sa_exc.NoSuchTableError):
        return SourceNotFound(store, f"table {exc} does not exist")
    if any(word in text for word in _NOT_FOUND):
        return SourceNotFound(store, first)
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.DisconnectionError):
        return StoreUnavailable(store, first)
    return QueryFailed(store, first)
