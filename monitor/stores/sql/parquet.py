"""Parquet files as an offline store, read by an in-memory DuckDB through SQLAlchemy.

A view's `offline.path` (and a model's `serving_log.path`, found the same way) is resolved
against the store's `root`: a file, a directory (every `*.parquet` below it, recursively) or a
glob. The files are the selectable
`read_parquet(<bound path>, union_by_name = true)`, so that files written before and after a
column was added read as one table, and the metrics are measured by the same aggregate query as
SQL tables (`monitor.stores.sql.offline`). DuckDB is reached only through SQLAlchemy
(duckdb-engine); this module imports no driver.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from checks.model import FeatureView
from checks.served import ServedModel, ServingLog
from monitor.config import ParquetStoreConfig
from monitor.errors import SourceNotFound
from monitor.stores.sql.columns import Source, column_of, duckdb_type
from monitor.stores.sql.engine import open_engine
from monitor.stores.sql.offline import AggregateStore

log = logging.getLogger(__name__)

_MEMORY = "duckdb:///:memory:"
_GLOB_CHARACTERS = frozenset("*?[")
# Constant SQL around a bound path; DESCRIBE reads only the files' metadata.
_DESCRIBE = sa.text("DESCRIBE SELECT * FROM read_parquet(:parquet_path, union_by_name = true)")
_UNION_BY_NAME: sa.ColumnClause[Any] = sa.literal_column("union_by_name = true")


class ParquetOfflineStore(AggregateStore):
    """Parquet files below `config.root`.

    Creates an in-memory DuckDB engine (nothing is stored in it) and disposes of it in `close`.
    """

    _log = log

    def __init__(self, name: str, config: ParquetStoreConfig) -> None:
        super().__init__(
            name, open_engine(_MEMORY, name, config.timeout), config.zone, config.timeout
        )
        self._root = Path(config.root)

    def files(self, view: FeatureView) -> str:
        """What `read_parquet` reads for the view's path (a file or a glob). Raises
        `SourceNotFound` when the view names no path or no file matches it."""
        return self._files(
            view.offline.path if view.offline is not None else None, f"feature view {view.name!r}"
        )

    def _source(self, conn: sa.Connection, view: FeatureView) -> Source:
        pattern = self.files(view)
        return self._read(conn, pattern, (view.offline.path if view.offline else None) or "")

    def _log_source(self, conn: sa.Connection, served: ServedModel, log: ServingLog) -> Source:
        """The model's serving log: a directory of Parquet files (Feast's file destination),
        a file or a glob, found as a view's path is."""
        pattern = self._files(log.path, f"the serving log of model {served.name}")
        return self._read(conn, pattern, log.path or "")

    def _files(self, path: str | None, owner: str) -> str:
        """What `read_parquet` reads for `owner`'s path; `SourceNotFound` without one."""
        if not path:
            raise SourceNotFound(self.name, f"{owner} names no Parquet path")
        return self._pattern(path)

    def _read(self, conn: sa.Connection, pattern: str, label: str) -> Source:
        """The files of `pattern` as one selectable, with the columns DESCRIBE finds."""
        described = conn.execute(_DESCRIBE, {"parquet_path": pattern}).all()
        found = [(str(row[0]), duckdb_type(str(row[1])), str(row[1])) for row in described]
        files = sa.func.read_parquet(sa.bindparam("parquet_path", pattern), _UNION_BY_NAME)
        selectable = files.table_valued(*(sa.column(n, type_) for n, type_, _ in found))
        columns = tuple(column_of(n, type_, native) for n, type_, native in found)
        return Source(label, selectable.alias("source"), columns, noun="Parquet path")

    def _pattern(self, path: str) -> str:
        """What `read_parquet` reads for `path`: the file, a recursive glob of a directory, or
        the glob itself. Raises `SourceNotFound` when no file matches."""
        target = self._root / path
        if _GLOB_CHARACTERS.intersection(path):
            pattern = str(target)
            anchor = Path(target.anchor)
            matched = any(p.is_file() for p in anchor.glob(str(target.relative_to(anchor))))
        elif target.is_dir():
            pattern = str(target / "**" / "*.parquet")
            matched = any(p.is_file() for p in target.rglob("*.parquet"))
        else:
            pattern = str(target)
            matched = target.is_file()
        if not matched:
            raise SourceNotFound(
                self.name, f"no Parquet file matches path {path!r} under root {str(self._root)!r}"
            )
        return pattern
