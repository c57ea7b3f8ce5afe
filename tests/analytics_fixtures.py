"""A small feature store for the analytical checks, built in a test's directory: Feast's SQLite
online layout (written with featmon's encoders) and an offline table in a SQLite file, a Parquet
file or a PostgreSQL schema, with the values each test plants."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from tests.feast_fixtures import create_table, entity_rows, key, write_rows

ONLINE_TABLE = "demo_user_stats"  # Feast's `<project>_<view>`
OfflineRowSpec = tuple[int, datetime, float | None, str | None]  # user, event time, x, colour


def write_online(
    path: Path, users: Sequence[tuple[int, datetime, float | None, str | None]]
) -> None:
    """One entity per user, its features `x` (double) and `colour` (string) at its event time."""
    create_table(path, ONLINE_TABLE)
    rows = []
    for user, at, x, colour in users:
        rows += entity_rows(
            key(user), {"x": (x, "double"), "colour": (colour, "string")}, int(at.timestamp())
        )
    write_rows(path, ONLINE_TABLE, rows)


def write_offline(
    engine: sa.Engine, rows: Sequence[OfflineRowSpec], schema: str | None = None
) -> None:
    """`user_stats(user_id, event_timestamp, x, colour)`; naive UTC times."""
    table = sa.Table(
        "user_stats",
        sa.MetaData(schema=schema),
        sa.Column("user_id", sa.BigInteger),
        sa.Column("event_timestamp", sa.DateTime),
        sa.Column("x", sa.Double),
        sa.Column("colour", sa.String),
    )
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(
            table.insert(),
            [
                {"user_id": u, "event_timestamp": t.replace(tzinfo=None), "x": x, "colour": c}
                for u, t, x, c in rows
            ],
        )


def write_parquet(path: Path, rows: Sequence[OfflineRowSpec]) -> None:
    """The same table as one Parquet file, written by DuckDB."""
    engine = sa.create_engine("duckdb:///:memory:")
    try:
        write_offline(engine, rows)
        with engine.begin() as conn:
            literal = str(path).replace("'", "''")
            conn.exec_driver_sql(f"COPY user_stats TO '{literal}' (FORMAT parquet)")
    finally:
        engine.dispose()


def config(root: Path, offline: str, location: str, checks: str, state: Path) -> Path:
    """config.yaml and checks/c.yaml under `root` for view `user_stats` with `checks`; the
    offline store is `offline` (YAML) and the view's source `location` (`table: user_stats`)."""
    (root / "checks").mkdir(exist_ok=True)
    text = CHECKS.format(checks=checks, location=location)
    (root / "checks" / "c.yaml").write_text(text, encoding="utf-8")
    path = root / "config.yaml"
    path.write_text(
        CONFIG.format(online=root / "online.db", offline=offline, state=state), encoding="utf-8"
    )
    return path


CONFIG = """\
stores:
  online: {{type: feast-sqlite, path: '{online}', project: demo}}
  warehouse: {offline}
state: {{url: 'sqlite:///{state}'}}
checks: checks/*.yaml
"""

CHECKS = """\
feature_views:
  - name: user_stats
    entity: user_id
    entity_types: {{user_id: int64}}
    ttl: 1d
    features: {{x: double, colour: string}}
    online: {{store: online, population: online, sample: 1000}}
    offline: {{store: warehouse, {location}}}
    checks:
{checks}
"""
