"""What only the Parquet offline store has, beyond the contract every offline engine keeps
(tests/test_offline_store_contract.py), against real Parquet files written by DuckDB: globs
and nanosecond times, the statements it sends, the columns of the Parquet metadata and of a
directory's files, paths without files, paths bound into the SQL, and a root it never writes to.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.model import FeatureView
from checks.observation import NullCount, RowCount
from monitor.config import ParquetStoreConfig
from monitor.errors import QueryFailed, SourceNotFound
from monitor.stores.sql.parquet import ParquetOfflineStore
from tests.offline_fixtures import (
    ALL_METRICS,
    EXPECTED,
    ONE_HOUR,
    SCHEDULED,
    ZONE,
    parquet_root,
    statements,
)

COLUMNS = [
    ("id", "int", "BIGINT"),
    ("user_id", "int", "BIGINT"),
    ("region", "string", "VARCHAR"),
    ("event_timestamp", "timestamp", "TIMESTAMP"),
    ("value", "float", "DOUBLE"),
    ("clicks", "int", "BIGINT"),
    ("note", "string", "VARCHAR"),
]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store's root, the layouts of `tests.offline_fixtures.parquet_root`."""
    return parquet_root(tmp_path_factory.mktemp("parquet"))


def open_store(root: Path, timezone: str = ZONE) -> ParquetOfflineStore:
    config = ParquetStoreConfig.model_validate(
        {"type": "parquet", "root": str(root), "timezone": timezone}
    )
    return ParquetOfflineStore("lake", config)


@pytest.fixture
def store(root: Path) -> Iterator[ParquetOfflineStore]:
    opened = open_store(root)
    try:
        yield opened
    finally:
        opened.close()


def view(path: str, entity: str | tuple[str, ...] = "user_id") -> FeatureView:
    return FeatureView.model_validate(
        {
            "name": "user_stats",
            "entity": entity,
            "ttl": "1d",
            "features": {"value": "float", "clicks": "int"},
            "offline": {"store": "lake", "path": path},
        }
    )


LAYOUTS = [  # one file, a directory and TIMESTAMPTZ: tests/test_offline_store_contract.py
    pytest.param("parts/**/*.parquet", id="glob"),
    pytest.param("user_stats_ns.parquet", id="timestamp-ns"),
]


@pytest.mark.parametrize("path", LAYOUTS)
def test_every_metric_is_measured_exactly(store: ParquetOfflineStore, path: str) -> None:
    observation = store.measure(view(path), ALL_METRICS, SCHEDULED)

    assert dict(observation.values) == EXPECTED
    assert observation.unavailable == {}
    assert observation.source == path


def test_all_metrics_are_measured_by_one_aggregate_select(store: ParquetOfflineStore) -> None:
    source = view("parts")

    with statements(store.engine) as sent:
        store.measure(source, frozenset({RowCount(None)}), SCHEDULED)
        one_metric = list(sent)
        sent.clear()
        store.measure(source, ALL_METRICS, SCHEDULED)

    assert len(sent) == len(one_metric) == 2
    assert sent[0].startswith("DESCRIBE")
    assert re.match(r"SELECT\b.*\bFROM read_parquet\(", sent[1], re.DOTALL)


def test_columns_come_from_the_parquet_metadata(store: ParquetOfflineStore) -> None:
    observation = store.measure(view("user_stats.parquet"), frozenset(), SCHEDULED)

    assert [(c.name, c.family, c.native_type) for c in observation.columns] == COLUMNS


def test_a_directory_reads_the_union_of_its_files_columns(store: ParquetOfflineStore) -> None:
    observation = store.measure(view("parts"), frozenset({NullCount("extra", None)}), SCHEDULED)

    assert [c.name for c in observation.columns] == [*(c[0] for c in COLUMNS), "extra"]
    assert observation.values == {NullCount("extra", None): 895}  # rows 100..994: a and b


def test_an_aware_timestamp_column_is_a_timestamp_with_its_zone(
    store: ParquetOfflineStore,
) -> None:
    observation = store.measure(view("user_stats_tz.parquet"), frozenset(), SCHEDULED)

    assert observation.columns[3].family == "timestamp"
    assert observation.columns[3].native_type == "TIMESTAMP WITH TIME ZONE"


@pytest.mark.parametrize(
    "path", ["absent.parquet", "empty_dir", "parts/**/*.csv", "nowhere/*.parquet"]
)
def test_a_path_without_parquet_files_raises_source_not_found_naming_it(
    store: ParquetOfflineStore, path: str
) -> None:
    with pytest.raises(SourceNotFound, match=re.escape(repr(path))) as raised:
        store.measure(view(path), ALL_METRICS, SCHEDULED)

    assert raised.value.store == "lake"


def test_a_path_is_bound_not_spliced_into_the_sql(tmp_path: Path, root: Path) -> None:
    odd = tmp_path / 'it\'s a "test"; DROP.parquet'
    odd.write_bytes((root / "user_stats.parquet").read_bytes())
    store = open_store(tmp_path)

    observation = store.measure(view(odd.name), ALL_METRICS, SCHEDULED)
    store.close()

    assert dict(observation.values) == EXPECTED


def test_sample_entities_needs_an_event_time_that_is_a_timestamp(
    store: ParquetOfflineStore,
) -> None:
    with pytest.raises(QueryFailed, match="not a timestamp"):
        store.sample_entities(view("text_time.parquet"), 10, SCHEDULED - ONE_HOUR, SCHEDULED)


def snapshot(base: Path) -> dict[str, str]:
    return {
        str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(base.rglob("*"))
        if p.is_file()
    }


def test_the_store_never_writes_below_its_root(root: Path) -> None:
    before = snapshot(root)
    store = open_store(root)

    store.measure(view("parts"), ALL_METRICS, SCHEDULED)
    store.sample_entities(view("parts"), 10, SCHEDULED - ONE_HOUR, SCHEDULED)
    store.close()

    assert snapshot(root) == before
