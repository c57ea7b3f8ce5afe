"""What only the SQL offline store has, beyond the contract every offline engine keeps
(tests/test_offline_store_contract.py): a SQLite file it never writes to, SQLite's native type
names, and a PostgreSQL password that never reaches the log."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from checks.model import FeatureView
from checks.observation import Column
from monitor.config import SqlStoreConfig
from monitor.errors import SourceNotFound
from monitor.stores.sql.table import SqlOfflineStore
from tests.offline_fixtures import (
    ALL_METRICS,
    ONE_HOUR,
    SCHEDULED,
    ZONE,
    pg_warehouse,
    sqlite_warehouse,
)


@pytest.fixture(scope="module")
def pg_schema(pg_url: str) -> Iterator[str]:
    """A schema of this module in the session's database, holding the planted tables."""
    with pg_warehouse(pg_url, f"offline_{uuid.uuid4().hex[:8]}") as schema:
        yield schema


def open_store(url: str) -> SqlOfflineStore:
    config = SqlStoreConfig.model_validate({"type": "sql", "url": url, "timezone": ZONE})
    return SqlOfflineStore("warehouse", config)


def view(table_name: str) -> FeatureView:
    return FeatureView.model_validate(
        {
            "name": "user_stats",
            "entity": "user_id",
            "ttl": "1d",
            "features": {"value": "float", "clicks": "int"},
            "offline": {"store": "warehouse", "table": table_name},
        }
    )


def file_state(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def test_the_store_never_writes_to_a_sqlite_file(tmp_path: Path) -> None:
    """Measuring and sampling leave the SQLite file byte for byte as it was, and no journal."""
    url = sqlite_warehouse(tmp_path)
    path = tmp_path / "warehouse.db"
    before = file_state(path)
    store = open_store(url)

    store.measure(view("user_stats"), ALL_METRICS, SCHEDULED)
    store.sample_entities(view("user_stats"), 10, SCHEDULED - ONE_HOUR, SCHEDULED)
    store.close()

    assert file_state(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["warehouse.db"]  # no journal left


@pytest.mark.postgres
def test_the_password_of_the_url_never_reaches_the_log(
    pg_url: str, pg_schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The engine's URL is logged masked, and neither the log nor an error holds the password."""
    secret = "s3cret-" + uuid.uuid4().hex[:6]  # trust auth: PostgreSQL ignores the password
    url = sa.make_url(pg_url).set(password=secret).render_as_string(hide_password=False)

    with caplog.at_level(logging.DEBUG, logger="monitor.stores.sql"):
        store = open_store(url)
        store.measure(view(f"{pg_schema}.user_stats"), ALL_METRICS, SCHEDULED)
        with pytest.raises(SourceNotFound) as raised:
            store.measure(view(f"{pg_schema}.absent"), ALL_METRICS, SCHEDULED)
        store.close()

    assert len(caplog.records) == 3  # the engine (URL masked), the measure, the failure
    assert "***" in caplog.records[0].getMessage()
    assert secret not in caplog.text
    assert secret not in str(raised.value)


def test_columns_carry_the_native_type(tmp_path: Path) -> None:
    """A column reports the type SQLite declares for it beside its family."""
    store = open_store(sqlite_warehouse(tmp_path))

    observation = store.measure(view("user_stats"), frozenset(), SCHEDULED)
    store.close()

    assert observation.columns[3] == Column("event_timestamp", "timestamp", "DATETIME")
