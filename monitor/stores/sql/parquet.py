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
from dataclasses import replace
from pathlib import Path

import sqlalchemy as sa

from checks.model import FeatureView, OfflineSource
from checks.served import ServedModel, ServingLog
from monitor.config import ParquetStoreConfig
from monitor.errors import QueryFailed, SourceNotFound
from monitor.stores.sql.columns import Source, column_of, duckdb_type
from monitor.stores.sql.engine import open_engine
from monitor.stores.sql.offline import AggregateStore

log = logging.getLogger(__name__)

_MEMORY = "duckdb:///:memory:"
_GLOB_CHARACTERS = frozenset("*?[")
_UNION_BY_NAME = "union_by_name = true"
_HIVE_TYPES = {"day": "DATE", "month": "VARCHAR"}


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
        offline = view.offline
        label = (offline.path if offline else None) or ""
        partition = offline.partition if offline is not None else None
        if partition is not None and not _partitioned(pattern, partition.column):
            raise QueryFailed(
                self.name,
                f"Parquet path {label!r} of feature view {view.name!r} has no partition column "
                f"{partition.column!r} (expected directories named {partition.column}=<value>)",
            )
        source = self._read(conn, pattern, label, _options(offline))
        return source if partition is None else replace(source, partition=partition)

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

    def _read(
        self, conn: sa.Connection, pattern: str, label: str, options: str = _UNION_BY_NAME
    ) -> Source:
        """The files of `pattern` read with `options` as one selectable, with the columns
        DESCRIBE finds (it reads only the files' metadata)."""
        describe = sa.text(f"DESCRIBE SELECT * FROM read_parquet(:parquet_path, {options})")
        described = conn.execute(describe, {"parquet_path": pattern}).all()
        found = [(str(row[0]), duckdb_type(str(row[1])), str(row[1])) for row in described]
        files = sa.func.read_parquet(
            sa.bindparam("parquet_path", pattern), sa.literal_column(options)
        )
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


def _options(offline: OfflineSource | None) -> str:
    """`read_parquet`'s options for a view: files unioned by column name and, with a partition
    column, Hive partitioning with that column typed (a date, or a month's text), so that
    filters on it are pushed into the scan. Constant SQL but for the column's name, which the
    check-file model restricts to an identifier."""
    partition = offline.partition if offline is not None else None
    if partition is None:
        return _UNION_BY_NAME
    typed = f"{{'{partition.column}': {_HIVE_TYPES[partition.by]}}}"
    return f"{_UNION_BY_NAME}, hive_partitioning = true, hive_types = {typed}"


def _partitioned(pattern: str, column: str) -> bool:
    """Whether the first file `pattern` matches lies below a `<column>=<value>` directory (Hive
    partitioning): DuckDB itself only says that a typed column "does not appear to be a
    partition"."""
    anchor = Path(Path(pattern).anchor)
    matched = anchor.glob(str(Path(pattern).relative_to(anchor)))
    first = next((p for p in matched if p.is_file()), None)
    return first is not None and any(part.startswith(f"{column}=") for part in first.parts)
