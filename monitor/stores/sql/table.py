"""SQL tables as an offline store: a table reached through a SQLAlchemy URL (PostgreSQL,
SQLite, DuckDB files, ...), looked up in the engine's catalog.

The metrics are measured by the aggregate query every SQLAlchemy-reachable source shares
(`monitor.stores.sql.offline`); this module owns only how a table is found: its columns with
their SQL and native types (from DuckDB's own catalog on DuckDB, by reflection elsewhere) and
the columns that lead a b-tree index (`monitor.stores.sql.pruning` reads newest times from
them).
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from checks.model import FeatureView
from checks.served import ServedModel, ServingLog
from monitor.config import SqlStoreConfig
from monitor.errors import SourceNotFound
from monitor.stores.sql.columns import Source, column_of, duckdb_type
from monitor.stores.sql.engine import open_engine, safe_url
from monitor.stores.sql.offline import AggregateStore

log = logging.getLogger(__name__)


class SqlOfflineStore(AggregateStore):
    """Tables reached through a SQLAlchemy URL (PostgreSQL, SQLite, DuckDB files, ...).

    Creates its engine from `config.url` (SQLite and DuckDB files are opened read-only) and
    disposes of it in `close`.
    """

    _log = log

    def __init__(self, name: str, config: SqlStoreConfig) -> None:
        url = config.url.get_secret_value()
        super().__init__(name, open_engine(url, name, config.timeout), config.zone, config.timeout)
        log.debug("store %s: engine for %s", name, safe_url(url))

    def _source(self, conn: sa.Connection, view: FeatureView) -> Source:
        label = view.offline.table if view.offline is not None else None
        if not label:
            raise SourceNotFound(self.name, f"feature view {view.name!r} names no offline table")
        return self._table(conn, label)

    def _log_source(self, conn: sa.Connection, served: ServedModel, log: ServingLog) -> Source:
        if not log.table:
            raise SourceNotFound(
                self.name, f"the serving log of model {served.name} names no table"
            )
        return self._table(conn, log.table)

    def _table(self, conn: sa.Connection, label: str) -> Source:
        """The table `label` (`name` or `schema.name`) with its columns, from the catalog."""
        schema, _, name = label.rpartition(".")
        indexed: frozenset[str] = frozenset()
        if conn.dialect.name == "duckdb":
            found = _duckdb_columns(conn, schema or None, name)
        else:
            found = _reflected_columns(conn, schema or None, name)
            indexed = _leading_indexed(conn, schema or None, name) if found else indexed
        if not found:
            raise SourceNotFound(self.name, f"table {label!r} does not exist")
        table = sa.table(
            name, *(sa.column(n, type_) for n, type_, _ in found), schema=schema or None
        )
        columns = tuple(column_of(n, type_, native) for n, type_, native in found)
        return Source(label=label, selectable=table, columns=columns, indexed=indexed)


_Found = list[tuple[str, sa.types.TypeEngine[Any], str]]  # name, SQL type, native type name


def _reflected_columns(conn: sa.Connection, schema: str | None, name: str) -> _Found:
    try:
        reflected = sa.inspect(conn).get_columns(name, schema=schema)
    except sa_exc.NoSuchTableError:
        return []
    return [(c["name"], c["type"], _native(c["type"], conn.dialect)) for c in reflected]


def _leading_indexed(conn: sa.Connection, schema: str | None, name: str) -> frozenset[str]:
    """The columns that lead a b-tree index of the whole table (not a partial, expression,
    BRIN or hash index): the engine reads their newest value from the index. DuckDB's indexes
    only find keys, so it is never asked."""
    leading: set[str] = set()
    for index in sa.inspect(conn).get_indexes(name, schema=schema):
        options = index.get("dialect_options", {})
        partial = any(key.endswith("_where") for key in options)
        using = str(options.get("postgresql_using", "btree")).lower()
        first = index["column_names"][0] if index["column_names"] else None
        if first is not None and not partial and using == "btree":
            leading.add(first)
    return frozenset(leading)


def _native(type_: sa.types.TypeEngine[Any], dialect: sa.Dialect) -> str:
    if isinstance(type_, sa.types.NullType):
        return "unknown"  # a type SQLAlchemy did not recognise (it warned when reflecting)
    try:
        return type_.compile(dialect=dialect)
    except sa_exc.CompileError:
        return type(type_).__name__


_INFORMATION_COLUMNS = sa.table(
    "columns",
    sa.column("table_catalog"),
    sa.column("table_schema"),
    sa.column("table_name"),
    sa.column("column_name"),
    sa.column("data_type"),
    sa.column("ordinal_position"),
    schema="information_schema",
)


def _duckdb_columns(conn: sa.Connection, schema: str | None, name: str) -> _Found:
    """DuckDB's own catalog: its type names keep TIMESTAMP WITH TIME ZONE and lists, which
    duckdb-engine's reflection turns into naive TIMESTAMP and NullType."""
    info = _INFORMATION_COLUMNS.c
    query = (
        sa.select(info.column_name, info.data_type)
        .where(
            info.table_catalog == sa.func.current_database(),
            info.table_schema == (schema if schema is not None else sa.func.current_schema()),
            info.table_name == name,
        )
        .order_by(info.ordinal_position)
    )
    return [(str(n), duckdb_type(str(t)), str(t)) for n, t in conn.execute(query).all()]
