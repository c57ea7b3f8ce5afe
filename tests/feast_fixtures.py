"""A test-only writer of Feast's SQLite online layout, with plain sqlite3 and featmon's encoders.

The table is created as Feast's `SqliteOnlineStore.update` creates it (declared column types
included), so that the store under test reads what Feast leaves on disk.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from checks.observation import EntityValue
from monitor.feast.codec import encode_entity_key, encode_value, infer_entity_dtype


@dataclass(frozen=True)
class Row:
    """One row of a Feast online table: one feature of one entity."""

    entity_key: bytes | str | None
    feature_name: str | None
    value: bytes | str | None
    event_ts: object = None  # int epoch seconds (Feast today), ISO text (older Feast), None
    created_ts: object = None


def key(*values: EntityValue, names: tuple[str, ...] = ("user_id",)) -> bytes:
    """The serialized key of `values` for join keys `names`, types inferred as Feast does."""
    return encode_entity_key(names, values, [infer_entity_dtype(v) for v in values])


def entity_rows(
    entity_key: bytes, features: Mapping[str, tuple[object, str]], event_ts: object
) -> list[Row]:
    """One row per feature: name -> (value, dtype), all with the same event time."""
    return [
        Row(entity_key, name, encode_value(value, dtype), event_ts)
        for name, (value, dtype) in features.items()
    ]


def create_table(path: Path, table: str) -> None:
    """An empty online table named `table`, with Feast's DDL and index."""
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        quoted = '"' + table.replace('"', '""') + '"'
        index = '"' + (table + "_ek").replace('"', '""') + '"'
        conn.execute(
            f"CREATE TABLE {quoted} (entity_key BLOB, feature_name TEXT, value BLOB, "
            "value_text TEXT, vector_value BLOB, event_ts timestamp, created_ts timestamp, "
            "PRIMARY KEY(entity_key, feature_name))"
        )
        conn.execute(f"CREATE INDEX {index} ON {quoted} (entity_key)")


def write_rows(path: Path, table: str, rows: Iterable[Row]) -> None:
    """Insert `rows` into `table` (created beforehand with `create_table`)."""
    quoted = '"' + table.replace('"', '""') + '"'
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.executemany(
            f"INSERT INTO {quoted} (entity_key, feature_name, value, event_ts, created_ts) "
            "VALUES (?, ?, ?, ?, ?)",
            [(r.entity_key, r.feature_name, r.value, r.event_ts, r.created_ts) for r in rows],
        )
