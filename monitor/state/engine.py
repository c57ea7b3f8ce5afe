"""The SQLAlchemy boundary of the state database: opening its engine (SQLite or PostgreSQL),
starting write transactions, and translating driver errors into `StateError`.

SQLite: the file's directory is created; every connection turns foreign keys on, waits up to
`BUSY_TIMEOUT` for a lock, and the file is put in WAL mode (readers never block the writer) with
`synchronous=NORMAL`: a commit is not synced to disk, the WAL is at each checkpoint. The database
stays consistent whatever happens; a power cut (not a crash of the process) may lose the last
commits. The daemon commits a few times per run, hundreds of runs a minute: a sync per commit
held a worker for milliseconds each time and cost most of a run's own CPU in the kernel.
pysqlite's own transaction handling is switched off so that SQLAlchemy emits `BEGIN` itself:
`BEGIN IMMEDIATE` for writes (take the write lock first, so two writers queue on the busy timeout
instead of failing on a lock upgrade, and DDL is transactional), a deferred `BEGIN` for reads.
Within one process, write transactions on a SQLite file also take turns on a lock of their own:
SQLite's busy handler waits for a lock by sleeping (1, 2, 5, ... up to 100 ms) and polling,
so the daemon's workers, writing a few times per run each, slept far longer than the writes
took; a thread waiting on the lock is woken as soon as the writer before it commits. Other
processes still queue on the busy timeout. A file found corrupt (malformed, or not a database)
drops every pooled connection, whose page caches may hold what was read: the next operation
opens the file afresh, so that a file repaired or restored in place is used at once.

PostgreSQL: psycopg 3 (a bare `postgresql://` URL means psycopg, not psycopg2), a connect
timeout, `application_name=featmon`, connections checked before use.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc

from checks.secrets import Secrets
from monitor.state.errors import StateError

log = logging.getLogger(__name__)

BUSY_TIMEOUT = timedelta(seconds=30)
CONNECT_TIMEOUT = timedelta(seconds=10)
WRITE = "featmon_write"  # execution option: this connection's transactions write

_json_dumps = functools.partial(json.dumps, allow_nan=False, separators=(",", ":"))


class Database:
    """An engine and the masked name to put in messages. The creator calls `dispose()`."""

    def __init__(self, url: str) -> None:
        try:
            parsed = sa.make_url(url)
        except sa_exc.ArgumentError as exc:
            raise StateError("<invalid URL>", "expected a SQLAlchemy URL") from exc
        # No query string: it may hold a password (`?password=`) or paths to TLS keys.
        self.name = parsed.set(query={}).render_as_string(hide_password=True)
        self._secrets = Secrets.of([url])
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            self.engine = self._sqlite(parsed)
        elif backend == "postgresql":
            self.engine = self._postgresql(parsed)
        else:
            raise StateError(self.name, f"expected a sqlite or postgresql URL, found {backend!r}")
        self.dialect: str = backend
        # SQLite: one writer at a time in this process (see the module's docstring).
        self._writer = threading.Lock() if backend == "sqlite" else contextlib.nullcontext()

    def dispose(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def write(self, operation: str) -> Iterator[sa.Connection]:
        """A connection inside a write transaction, committed at the end of the block."""
        with self._writer, self.translated(operation), self.engine.connect() as conn:
            conn.execution_options(**{WRITE: True})
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def read(self, operation: str) -> Iterator[sa.Connection]:
        """A connection for reading; its transaction is rolled back at the end."""
        with self.translated(operation), self.engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def translated(self, operation: str) -> Iterator[None]:
        """Turn any SQLAlchemy or driver error raised inside into a `StateError`."""
        try:
            yield
        except sa_exc.SQLAlchemyError as exc:
            if _corrupt(exc):
                log.error("state database %s is corrupt: its connections are dropped", self.name)
                self.engine.dispose()
            raise StateError(self.name, f"{operation} failed: {self._first_line(exc)}") from exc

    def _first_line(self, exc: sa_exc.SQLAlchemyError) -> str:
        """The driver's own message, first line only: never the SQL, its parameters or a
        password (masked here too, in case a driver ever echoes its connection string)."""
        original = getattr(exc, "orig", None) or exc
        text = (str(original).strip().splitlines() or [type(original).__name__])[0]
        return self._secrets.scrub(text)

    def _sqlite(self, url: sa.URL) -> sa.Engine:
        path = url.database or ""
        if path in ("", ":memory:") or url.query.get("mode") == "memory":
            raise StateError(
                self.name,
                "expected a file (sqlite:///path/to/state.db), found an in-memory database, "
                "which would be lost at exit and not shared between threads",
            )
        if not url.query.get("uri"):
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StateError(
                    self.name, f"cannot create the directory of the file: {exc.strerror}"
                ) from exc
        engine = sa.create_engine(url, json_serializer=_json_dumps, json_deserializer=json.loads)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine

    def _postgresql(self, url: sa.URL) -> sa.Engine:
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        connect_args: dict[str, Any] = {"connect_timeout": int(CONNECT_TIMEOUT.total_seconds())}
        if "application_name" not in url.query:
            connect_args["application_name"] = "featmon"
        try:
            return sa.create_engine(
                url,
                connect_args=connect_args,
                pool_pre_ping=True,
                json_serializer=_json_dumps,
                json_deserializer=json.loads,
            )
        except (sa_exc.ArgumentError, ImportError) as exc:
            raise StateError(self.name, f"cannot load the driver {url.drivername!r}") from exc


def _corrupt(exc: sa_exc.SQLAlchemyError) -> bool:
    """SQLite's SQLITE_CORRUPT and SQLITE_NOTADB (a DatabaseError that is not operational:
    not a lock, a full disk or a closed file)."""
    original = getattr(exc, "orig", None)
    return isinstance(original, sqlite3.DatabaseError) and not isinstance(
        original, sqlite3.OperationalError
    )


def _sqlite_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN: see _sqlite_begin
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT.total_seconds() * 1000)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        _use_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")  # per connection; safe in WAL mode
    finally:
        cursor.close()


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Put the file in WAL mode (a property of the file, so this is a no-op once done).

    Switching needs an exclusive lock, and SQLite answers a connection that asks for one while
    another is committing with "database is locked" at once (its deadlock rule), bypassing the
    busy timeout: so several processes opening a new file together retry here, within the
    busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT.total_seconds()
    while True:
        try:
            (mode,) = cursor.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        if mode != "wal":  # e.g. a file system without shared memory
            log.warning("the state database's file cannot use WAL mode; it stays in %s", mode)
        return


def _sqlite_begin(conn: sa.Connection) -> None:
    writes = conn.get_execution_options().get(WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")
