"""The Parquet offline store against real Parquet files written by DuckDB in the test.

The files hold planted facts (see `FACTS`): 1000 rows, one a minute, whose exact counts every
layout (one file, a directory of several files with different columns, a glob, TIMESTAMPTZ)
must measure. Naive timestamps are wall times in Europe/Berlin (UTC+2 in July), the store's zone.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from checks.model import FeatureView
from checks.observation import MaxTimestamp, NullCount, OfflineMetric, RowCount
from monitor.config import ParquetStoreConfig
from monitor.errors import QueryFailed, SourceNotFound
from monitor.stores.sql.parquet import ParquetOfflineStore

ZONE = "Europe/Berlin"
SCHEDULED = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)  # 14:00 in Berlin
SIX_HOURS = timedelta(hours=6)
ONE_HOUR = timedelta(hours=1)
NEWEST = SCHEDULED + timedelta(minutes=5)

# Row i, for i = -5 .. 994: event time SCHEDULED - i minutes; user i // 4; value null for 37
# rows in the last six hours (i = 0, 9, ..., 324), 13 older ones and 2 after the scheduled time.
FACTS = """
SELECT i AS id,
       floor(i / 4)::BIGINT AS user_id,
       CASE WHEN floor(i / 4)::BIGINT % 2 = 0 THEN 'eu' ELSE 'us' END AS region,
       {event_time} AS event_timestamp,
       CASE WHEN (i BETWEEN 0 AND 324 AND i % 9 = 0) OR i BETWEEN 400 AND 412 OR i IN (-1, -2)
            THEN NULL ELSE i / 10 END AS value,
       i % 7 AS clicks,
       'row ' || i AS note
FROM range(-5, 995) AS r(i)
"""
NAIVE = "TIMESTAMP '2024-07-01 14:00:00' - to_minutes(i)"
AWARE = "TIMESTAMPTZ '2024-07-01 12:00:00+00:00' - to_minutes(i)"
NANOSECONDS = f"({NAIVE})::TIMESTAMP_NS"  # as pandas writes them
TEXT = "strftime(TIMESTAMP '2024-07-01 14:00:00' - to_minutes(i), '%Y-%m-%d %H:%M:%S')"

ALL_METRICS: frozenset[OfflineMetric] = frozenset(
    {
        RowCount(SIX_HOURS),
        RowCount(ONE_HOUR),
        RowCount(None),
        NullCount("value", SIX_HOURS),
        NullCount("value", ONE_HOUR),
        NullCount("value", None),
        NullCount("clicks", SIX_HOURS),
        MaxTimestamp("event_timestamp"),
    }
)
EXPECTED = {
    RowCount(SIX_HOURS): 360,  # i = 0 (at scheduled) .. 359; i = 360 sits on the open bound
    RowCount(ONE_HOUR): 60,
    RowCount(None): 1000,
    NullCount("value", SIX_HOURS): 37,
    NullCount("value", ONE_HOUR): 7,  # i = 0, 9, ..., 54
    NullCount("value", None): 52,
    NullCount("clicks", SIX_HOURS): 0,
    MaxTimestamp("event_timestamp"): NEWEST,
}
COLUMNS = [
    ("id", "int", "BIGINT"),
    ("user_id", "int", "BIGINT"),
    ("region", "string", "VARCHAR"),
    ("event_timestamp", "timestamp", "TIMESTAMP"),
    ("value", "float", "DOUBLE"),
    ("clicks", "int", "BIGINT"),
    ("note", "string", "VARCHAR"),
]


def write(conn: sa.Connection, query: str, path: Path) -> None:
    """COPY the rows of `query` to a Parquet file at `path` (the path bound, not spliced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn.exec_driver_sql(f"CREATE OR REPLACE TEMP TABLE rows AS {query}")
    conn.exec_driver_sql(f"COPY rows TO '{path}' (FORMAT parquet)")  # a test-made path


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store's root:

    user_stats.parquet       the facts, naive times      user_stats_tz.parquet  TIMESTAMPTZ
                                                         user_stats_ns.parquet  TIMESTAMP_NS
    parts/                   the facts in three files; the newest also has a column `extra`
    no_value.parquet         the facts without `value`   text_time.parquet      time as text
    empty.parquet            no rows                     empty_dir/             no Parquet file
    """
    base = tmp_path_factory.mktemp("parquet")
    facts = FACTS.format(event_time=NAIVE)
    engine = sa.create_engine("duckdb:///:memory:")
    with engine.connect() as conn:
        write(conn, facts, base / "user_stats.parquet")
        write(conn, FACTS.format(event_time=AWARE), base / "user_stats_tz.parquet")
        write(conn, FACTS.format(event_time=NANOSECONDS), base / "user_stats_ns.parquet")
        write(conn, f"SELECT * FROM ({facts}) WHERE id >= 500", base / "parts" / "a.parquet")
        write(
            conn,
            f"SELECT * FROM ({facts}) WHERE id BETWEEN 100 AND 499",
            base / "parts/2024/b.parquet",
        )
        write(
            conn,
            f"SELECT *, 'new' AS extra FROM ({facts}) WHERE id < 100",
            base / "parts/2024/07/c.parquet",
        )
        write(conn, f"SELECT * EXCLUDE (value) FROM ({facts})", base / "no_value.parquet")
        write(conn, FACTS.format(event_time=TEXT), base / "text_time.parquet")
        write(conn, f"SELECT * FROM ({facts}) WHERE false", base / "empty.parquet")
    engine.dispose()
    (base / "parts" / "_SUCCESS").write_text("")
    (base / "empty_dir").mkdir()
    (base / "empty_dir" / "notes.txt").write_text("not parquet")
    return base


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


@contextlib.contextmanager
def statements(store: ParquetOfflineStore) -> Iterator[list[str]]:
    """Every statement the store's engine sends while the block runs."""
    sent: list[str] = []

    def record(*args: object) -> None:  # conn, cursor, statement, parameters, context, many
        sent.append(str(args[2]))

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)


LAYOUTS = [
    pytest.param("user_stats.parquet", id="file"),
    pytest.param("parts", id="directory"),
    pytest.param("parts/**/*.parquet", id="glob"),
    pytest.param("user_stats_tz.parquet", id="timestamptz"),
    pytest.param("user_stats_ns.parquet", id="timestamp-ns"),
]


@pytest.mark.parametrize("path", LAYOUTS)
def test_every_metric_is_measured_exactly(store: ParquetOfflineStore, path: str) -> None:
    observation = store.measure(view(path), ALL_METRICS, SCHEDULED)

    assert dict(observation.values) == EXPECTED
    assert observation.unavailable == {}
    assert observation.source == path


def test_counts_are_ints_and_the_newest_time_is_utc(store: ParquetOfflineStore) -> None:
    observation = store.measure(view("user_stats.parquet"), ALL_METRICS, SCHEDULED)

    values = dict(observation.values)
    newest = values.pop(MaxTimestamp("event_timestamp"))
    assert isinstance(newest, datetime)
    assert newest.utcoffset() == timedelta(0)
    assert {type(v) for v in values.values()} == {int}


def test_all_metrics_are_measured_by_one_aggregate_select(store: ParquetOfflineStore) -> None:
    source = view("parts")

    with statements(store) as sent:
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


def test_an_empty_file_has_no_newest_timestamp_and_zero_counts(
    store: ParquetOfflineStore,
) -> None:
    observation = store.measure(view("empty.parquet"), ALL_METRICS, SCHEDULED)

    assert observation.values[MaxTimestamp("event_timestamp")] is None
    assert {v for m, v in observation.values.items() if not isinstance(m, MaxTimestamp)} == {0}


def test_a_missing_column_makes_its_metric_unavailable_and_the_others_measured(
    store: ParquetOfflineStore,
) -> None:
    observation = store.measure(view("no_value.parquet"), ALL_METRICS, SCHEDULED)

    lost = {m for m in ALL_METRICS if isinstance(m, NullCount) and m.column == "value"}
    assert set(observation.unavailable) == lost
    assert set(observation.unavailable.values()) == {
        "column 'value' is not in Parquet path 'no_value.parquet'"
    }
    assert dict(observation.values) == {m: v for m, v in EXPECTED.items() if m not in lost}


def test_an_event_time_kept_as_text_makes_windowed_metrics_unavailable(
    store: ParquetOfflineStore,
) -> None:
    observation = store.measure(view("text_time.parquet"), ALL_METRICS, SCHEDULED)

    measured = {RowCount(None), NullCount("value", None)}
    assert dict(observation.values) == {m: EXPECTED[m] for m in measured}
    assert set(observation.unavailable) == ALL_METRICS - measured
    assert observation.unavailable[MaxTimestamp("event_timestamp")] == (
        "column 'event_timestamp' of Parquet path 'text_time.parquet' is not a timestamp "
        "(found string)"
    )


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


def test_sample_entities_returns_every_distinct_key_of_the_closed_window(
    store: ParquetOfflineStore,
) -> None:
    # Both bounds hold a key's only row in the window: user 90 by row 360 (rows 360..363),
    # user 0 by row 3 (rows 0..3); rows 0..2 and users -2, -1 are after `until`. The rows
    # lie in two files of the directory.
    since = SCHEDULED - timedelta(minutes=360)
    until = SCHEDULED - timedelta(minutes=3)

    keys = store.sample_entities(view("parts"), 1000, since, until)

    assert sorted(keys) == [(user,) for user in range(91)]


def test_sample_entities_returns_at_most_size_distinct_keys_drawn_by_the_engine(
    store: ParquetOfflineStore,
) -> None:
    since = SCHEDULED - timedelta(minutes=359)

    with statements(store) as sent:
        draws = [store.sample_entities(view("parts"), 10, since, SCHEDULED) for _ in range(3)]

    assert all(len(keys) == len(set(keys)) == 10 for keys in draws)
    assert {user for keys in draws for (user,) in keys} <= set(range(90))
    assert len({frozenset(keys) for keys in draws}) > 1  # equal thrice: about 1 in 10^25
    assert re.search(r"ORDER BY random\(\)\s+LIMIT", sent[-1])


def test_sample_entities_orders_keys_as_the_view_joins_them(store: ParquetOfflineStore) -> None:
    source = view("user_stats.parquet", entity=("region", "user_id"))

    keys = store.sample_entities(source, 1000, SCHEDULED - timedelta(minutes=7), SCHEDULED)

    assert sorted(keys) == [("eu", 0), ("us", 1)]


def test_sample_entities_needs_an_event_time_that_is_a_timestamp(
    store: ParquetOfflineStore,
) -> None:
    with pytest.raises(QueryFailed, match="not a timestamp"):
        store.sample_entities(view("text_time.parquet"), 10, SCHEDULED - ONE_HOUR, SCHEDULED)


def test_naive_times_are_read_in_the_store_zone(root: Path) -> None:
    """The same file read by a store that believes its times are UTC shifts by two hours."""
    utc_store = open_store(root, timezone="UTC")

    observation = utc_store.measure(view("user_stats.parquet"), ALL_METRICS, SCHEDULED)
    utc_store.close()

    assert observation.values[MaxTimestamp("event_timestamp")] == NEWEST + timedelta(hours=2)
    assert observation.values[NullCount("value", SIX_HOURS)] == 36  # 23 planted + 13 older


def test_measure_logs_one_line_with_store_path_metric_count_and_time(
    store: ParquetOfflineStore, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="monitor.stores.sql"):
        store.measure(view("parts"), ALL_METRICS, SCHEDULED)

    assert len(caplog.records) == 1
    assert caplog.records[0].levelno == logging.INFO
    assert caplog.records[0].name == "monitor.stores.sql.parquet"
    assert re.fullmatch(
        r"store lake: measured 8 of 8 metrics of parts in [\d.]+ ms", caplog.records[0].getMessage()
    )


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
