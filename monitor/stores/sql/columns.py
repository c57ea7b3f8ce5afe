"""What a SQL store found for one view, and the types of its columns as featmon sees them.

A `Source` is a table or a set of files as a selectable whose columns carry their SQL types,
with the same columns as `checks.observation.Column` (name, family, native type) for schema
drift and for deciding which metrics can be measured. `bound` turns an aware time into a value
comparable with a timestamp column, whatever its zone. Pure: no connection.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa

from checks.model import Partition
from checks.observation import Column

TIMESTAMP = "timestamp"
NUMERIC = frozenset({"int", "float"})


@dataclass(frozen=True)
class Source:
    """What a store found for one view: a selectable whose columns carry their SQL types, the
    same columns as featmon sees them, and a label (table name or path) for the report."""

    label: str
    selectable: sa.FromClause
    columns: tuple[Column, ...]
    noun: str = "table"  # what the label names, in messages: "table", "Parquet path"
    # The Hive partition column holding the event date, when the source declares one.
    partition: Partition | None = None
    # Columns that lead a b-tree index: the engine finds their newest value, or the rows after
    # a bound, without a scan.
    indexed: frozenset[str] = frozenset()

    @property
    def named(self) -> str:
        return f"{self.noun} {self.label!r}"

    def family(self, name: str) -> str | None:
        return next((c.family for c in self.columns if c.name == name), None)

    def missing(self, names: Iterable[str]) -> list[str]:
        present = {c.name for c in self.columns}
        return [name for name in names if name not in present]


def family_of(type_: sa.types.TypeEngine[Any], native: str) -> str:
    """The family of a SQLAlchemy type: int, float, string, bool, bytes, timestamp, or else the
    lowercased native type name (`date`, `json`, `integer[]`, ...)."""
    if isinstance(type_, sa.Boolean):
        return "bool"
    if isinstance(type_, sa.Integer):
        return "int"
    if isinstance(type_, sa.Numeric):
        scale = getattr(type_, "scale", None)
        return "int" if scale == 0 and not isinstance(type_, sa.Float) else "float"
    if isinstance(type_, sa.String):
        return "string"
    if isinstance(type_, sa.LargeBinary | sa.BINARY | sa.VARBINARY):
        return "bytes"
    if isinstance(type_, sa.DateTime):
        return TIMESTAMP
    return native.lower()


_DUCKDB_INT = re.compile(r"^U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|INT\d*)$")
_DUCKDB_DECIMAL = re.compile(r"^(?:DECIMAL|NUMERIC)\((\d+),\s*(\d+)\)$")
_DUCKDB_TYPES: Mapping[str, sa.types.TypeEngine[Any]] = MappingProxyType(
    {
        "BOOLEAN": sa.Boolean(),
        "FLOAT": sa.Float(),
        "REAL": sa.Float(),
        "DOUBLE": sa.Float(),
        "VARCHAR": sa.String(),
        "TEXT": sa.String(),
        "BLOB": sa.LargeBinary(),
        "TIMESTAMP": sa.DateTime(),
        "DATETIME": sa.DateTime(),
        "TIMESTAMP_S": sa.DateTime(),
        "TIMESTAMP_MS": sa.DateTime(),
        "TIMESTAMP_NS": sa.DateTime(),
        "TIMESTAMP WITH TIME ZONE": sa.DateTime(timezone=True),
        "TIMESTAMPTZ": sa.DateTime(timezone=True),
        "TIMESTAMPTZ_NS": sa.DateTime(timezone=True),  # pandas' default for aware times
    }
)


def duckdb_type(native: str) -> sa.types.TypeEngine[Any]:
    """The SQLAlchemy type of a DuckDB type name as DESCRIBE and information_schema spell it
    (duckdb-engine's reflection drops the zone of TIMESTAMPTZ, so DuckDB is read by name)."""
    name = native.strip().upper()
    if _DUCKDB_INT.match(name):
        return sa.BigInteger()
    decimal = _DUCKDB_DECIMAL.match(name)
    if decimal:
        return sa.Numeric(int(decimal[1]), int(decimal[2]))
    return _DUCKDB_TYPES.get(name, sa.types.NullType())


def column_of(name: str, type_: sa.types.TypeEngine[Any], native: str) -> Column:
    return Column(name=name, family=family_of(type_, native), native_type=native)


def bound(moment: datetime, type_: sa.types.TypeEngine[Any], zone: tzinfo) -> datetime:
    """`moment` as a value comparable with a column of `type_`: aware UTC for a column with a
    zone, naive wall time in the store's zone for one without."""
    require_aware(moment)
    if getattr(type_, "timezone", False):
        return moment.astimezone(UTC)
    return moment.astimezone(zone).replace(tzinfo=None)


def require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware time, found naive {moment.isoformat()}")
