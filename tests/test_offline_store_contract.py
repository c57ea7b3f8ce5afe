"""Every offline engine keeps the same contract: the same planted facts (tests/offline_fixtures.py),
in a SQLite file, a DuckDB file (naive tables, and TIMESTAMPTZ ones in a schema), Parquet files
(one file, a directory of several, TIMESTAMPTZ) and PostgreSQL (naive and TIMESTAMPTZ), measured
as the same exact numbers, reported with the same column families and sampled as the same keys,
in one statement per measure, and a model's serving log looked up as a view's source is. A new
offline engine joins by adding a case to `ENGINES`.

What only one engine has (SQLite's read-only file, Parquet layouts and bound paths, PostgreSQL's
password in the log, native type names) stays in that engine's own test module."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from checks.model import FeatureView
from checks.observation import MaxTimestamp, NullCount, RowCount
from monitor.config import ParquetStoreConfig, SqlStoreConfig
from monitor.errors import QueryFailed, SourceNotFound
from monitor.stores.sql.parquet import ParquetOfflineStore
from monitor.stores.sql.table import SqlOfflineStore
from tests.offline_fixtures import (
    ALL_METRICS,
    EXPECTED,
    FAMILIES,
    NEWEST,
    ONE_HOUR,
    SCHEDULED,
    SIX_HOURS,
    ZONE,
    duckdb_warehouse,
    parquet_root,
    pg_warehouse,
    sqlite_warehouse,
    statements,
)
from tests.serving_log_fixtures import served_model

Store = SqlOfflineStore | ParquetOfflineStore


@dataclass(frozen=True)
class Engine:
    """One engine holding the planted facts: how to open a store on it, the name a view gives
    each planted table, and how its messages call a source."""

    open: Callable[[str], Store]  # the store's zone -> the store, named `name`
    name: str
    source: Callable[[str], str]  # user_stats, no_value, text_time, empty -> the view's source
    kind: str  # "table" or "Parquet path", as messages say
    aware: bool  # the event times are TIMESTAMPTZ: no zone shifts them
    logger: str
    missing: str  # what its error says of a source that does not exist

    def view(self, table: str, entity: str | tuple[str, ...] = "user_id") -> FeatureView:
        key = "table" if self.kind == "table" else "path"
        return FeatureView.model_validate(
            {
                "name": "user_stats",
                "entity": entity,
                "ttl": "1d",
                "features": {"value": "float", "clicks": "int"},
                "offline": {"store": self.name, key: self.source(table)},
            }
        )


def sql(url: str, prefix: str, aware: bool = False) -> Engine:
    def opened(timezone: str) -> Store:
        config = SqlStoreConfig.model_validate({"type": "sql", "url": url, "timezone": timezone})
        return SqlOfflineStore("warehouse", config)

    return Engine(
        opened,
        "warehouse",
        lambda t: f"{prefix}{t}",
        "table",
        aware,
        "monitor.stores.sql.table",
        "does not exist",
    )


def parquet(root: Path, user_stats: str, aware: bool = False) -> Engine:
    def opened(timezone: str) -> Store:
        config = ParquetStoreConfig.model_validate(
            {"type": "parquet", "root": str(root), "timezone": timezone}
        )
        return ParquetOfflineStore("lake", config)

    def source(table: str) -> str:
        return user_stats if table == "user_stats" else f"{table}.parquet"

    return Engine(
        opened,
        "lake",
        source,
        "Parquet path",
        aware,
        "monitor.stores.sql.parquet",
        "no Parquet file matches",
    )


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return sqlite_warehouse(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(scope="module")
def duckdb_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return duckdb_warehouse(tmp_path_factory.mktemp("duckdb"))


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return parquet_root(tmp_path_factory.mktemp("parquet"))


@pytest.fixture(scope="module")
def pg_offline_schema(pg_url: str) -> Iterator[str]:
    with pg_warehouse(pg_url, f"offline_contract_{uuid.uuid4().hex[:8]}") as schema:
        yield schema


ENGINES: dict[str, Callable[[pytest.FixtureRequest], Engine]] = {
    "sqlite": lambda r: sql(r.getfixturevalue("sqlite_url"), ""),
    "duckdb": lambda r: sql(r.getfixturevalue("duckdb_url"), ""),
    "duckdb-aware": lambda r: sql(r.getfixturevalue("duckdb_url"), "features.", aware=True),
    "parquet-file": lambda r: parquet(r.getfixturevalue("lake"), "user_stats.parquet"),
    "parquet-directory": lambda r: parquet(r.getfixturevalue("lake"), "parts"),
    "parquet-aware": lambda r: parquet(r.getfixturevalue("lake"), "user_stats_tz.parquet", True),
    "postgres": lambda r: sql(
        r.getfixturevalue("pg_url"), f"{r.getfixturevalue('pg_offline_schema')}."
    ),
    "postgres-aware": lambda r: sql(
        r.getfixturevalue("pg_url"), f"{r.getfixturevalue('pg_offline_schema')}.tz_", aware=True
    ),
}


@pytest.fixture(
    params=[
        pytest.param(name, marks=pytest.mark.postgres) if name.startswith("postgres") else name
        for name in ENGINES
    ]
)
def engine(request: pytest.FixtureRequest) -> Engine:
    return ENGINES[request.param](request)


@pytest.fixture
def store(engine: Engine) -> Iterator[Store]:
    opened = engine.open(ZONE)
    try:
        yield opened
    finally:
        opened.close()


def reads_facts(statement: str) -> bool:
    """A SELECT from the planted facts (a table or read_parquet, not a catalog table)."""
    return bool(
        re.match(r"\s*SELECT\b", statement, re.IGNORECASE)
        and re.search(r"\bFROM\s+(read_parquet\(|[\w\".]*user_stats\b)", statement, re.IGNORECASE)
    )


# -- measure ------------------------------------------------------------------------------------


def test_every_metric_is_measured_exactly(store: Store, engine: Engine) -> None:
    """Row and null counts over the half-open window before the scheduled time, and the newest
    event time, are the planted numbers: counts as ints, the newest time in UTC."""
    observation = store.measure(engine.view("user_stats"), ALL_METRICS, SCHEDULED)

    assert dict(observation.values) == EXPECTED
    assert observation.unavailable == {}
    assert observation.source == engine.source("user_stats")
    values = dict(observation.values)
    newest = values.pop(MaxTimestamp("event_timestamp"))
    assert isinstance(newest, datetime)
    assert newest.utcoffset() == timedelta(0)
    assert {type(v) for v in values.values()} == {int}


def test_all_metrics_are_measured_by_one_aggregate_select(store: Store, engine: Engine) -> None:
    """Eight metrics send as many statements as one: the catalog lookup and one SELECT."""
    source = engine.view("user_stats")
    with statements(store.engine) as sent:
        store.measure(source, frozenset({RowCount(None)}), SCHEDULED)
        one_metric = list(sent)
        sent.clear()
        observation = store.measure(source, ALL_METRICS, SCHEDULED)

    assert dict(observation.values) == EXPECTED
    assert len([s for s in sent if reads_facts(s)]) == 1
    assert len(sent) == len(one_metric)


def test_columns_are_reported_with_their_families(store: Store, engine: Engine) -> None:
    """Measuring nothing still reports every column with its family, in the source's order."""
    observation = store.measure(engine.view("user_stats"), frozenset(), SCHEDULED)

    # a directory's newest file adds `extra` (test_parquet_store: the union of its columns)
    assert [(c.name, c.family) for c in observation.columns if c.name != "extra"] == FAMILIES
    assert observation.values == {}


def test_a_window_without_rows_counts_zero(store: Store, engine: Engine) -> None:
    """Every windowed count of a window before any row is 0."""
    before_any_row = SCHEDULED - timedelta(days=30)

    observation = store.measure(engine.view("user_stats"), ALL_METRICS, before_any_row)

    windowed = {m for m in ALL_METRICS if getattr(m, "window", None) is not None}
    assert {m: observation.values[m] for m in windowed} == dict.fromkeys(windowed, 0)


def test_an_empty_source_has_no_newest_timestamp_and_zero_counts(
    store: Store, engine: Engine
) -> None:
    """A source without rows counts 0 everywhere and has no newest event time."""
    observation = store.measure(engine.view("empty"), ALL_METRICS, SCHEDULED)

    assert observation.values[MaxTimestamp("event_timestamp")] is None
    assert {v for m, v in observation.values.items() if not isinstance(m, MaxTimestamp)} == {0}


def test_a_missing_column_makes_its_metric_unavailable_and_the_others_measured(
    store: Store, engine: Engine
) -> None:
    """A metric over a column the source lacks is unavailable, naming the column and the
    source; the other metrics are measured."""
    observation = store.measure(engine.view("no_value"), ALL_METRICS, SCHEDULED)

    lost = {m for m in ALL_METRICS if isinstance(m, NullCount) and m.column == "value"}
    assert set(observation.unavailable) == lost
    assert set(observation.unavailable.values()) == {
        f"column 'value' is not in {engine.kind} '{engine.source('no_value')}'"
    }
    assert dict(observation.values) == {m: v for m, v in EXPECTED.items() if m not in lost}


def test_an_event_time_kept_as_text_makes_windowed_metrics_unavailable(
    store: Store, engine: Engine
) -> None:
    """With the event time kept as text, only the unwindowed counts are measured; the newest
    event time is unavailable, saying what the column is."""
    observation = store.measure(engine.view("text_time"), ALL_METRICS, SCHEDULED)

    measured = {RowCount(None), NullCount("value", None)}
    assert dict(observation.values) == {m: EXPECTED[m] for m in measured}
    assert set(observation.unavailable) == ALL_METRICS - measured
    assert observation.unavailable[MaxTimestamp("event_timestamp")] == (
        f"column 'event_timestamp' of {engine.kind} '{engine.source('text_time')}' is not a "
        "timestamp (found string)"
    )


def test_a_naive_scheduled_time_is_refused(store: Store, engine: Engine) -> None:
    """A scheduled time without a zone is a programming error, refused before any query."""
    with pytest.raises(ValueError, match="timezone-aware"):
        store.measure(engine.view("user_stats"), ALL_METRICS, SCHEDULED.replace(tzinfo=None))


def test_naive_times_are_read_in_the_store_zone(engine: Engine) -> None:
    """The same rows read by a store that believes they are UTC shift by Berlin's two hours
    when they are naive, and not at all when they carry their zone."""
    utc_store = engine.open("UTC")

    observation = utc_store.measure(engine.view("user_stats"), ALL_METRICS, SCHEDULED)
    utc_store.close()

    shift = timedelta(0) if engine.aware else timedelta(hours=2)
    assert observation.values[MaxTimestamp("event_timestamp")] == NEWEST + shift
    # naive: 23 planted nulls and 13 older ones fall in the shifted six hours
    nulls = EXPECTED[NullCount("value", SIX_HOURS)] if engine.aware else 36
    assert observation.values[NullCount("value", SIX_HOURS)] == nulls


def test_measure_logs_one_line_with_store_source_metric_count_and_time(
    store: Store, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Each measure logs one INFO line: the store, the source, how many metrics, how long."""
    with caplog.at_level(logging.INFO, logger="monitor.stores.sql"):
        store.measure(engine.view("user_stats"), ALL_METRICS, SCHEDULED)

    assert len(caplog.records) == 1
    assert (caplog.records[0].levelno, caplog.records[0].name) == (logging.INFO, engine.logger)
    source = re.escape(engine.source("user_stats"))
    assert re.fullmatch(
        rf"store {engine.name}: measured 8 of 8 metrics of {source} in [\d.]+ ms",
        caplog.records[0].getMessage(),
    )


# -- sample_entities ----------------------------------------------------------------------------


def test_sample_entities_returns_every_distinct_key_of_the_closed_window(
    store: Store, engine: Engine
) -> None:
    """Both bounds of the window are included: user 90 by row 360 (rows 360..363), user 0 by
    row 3 (rows 0..3); rows 0..2 and users -2, -1 are after `until`."""
    since = SCHEDULED - timedelta(minutes=360)
    until = SCHEDULED - timedelta(minutes=3)

    keys = store.sample_entities(engine.view("user_stats"), 1000, since, until)

    assert sorted(keys) == [(user,) for user in range(91)]


def test_sample_entities_returns_at_most_size_distinct_keys_drawn_by_the_engine(
    store: Store, engine: Engine
) -> None:
    """Each draw is `size` distinct keys of the window, chosen by the engine's random() (three
    draws of 10 among 90 are equal about once in 10^25)."""
    since = SCHEDULED - timedelta(minutes=359)
    source = engine.view("user_stats")
    with statements(store.engine) as sent:
        draws = [store.sample_entities(source, 10, since, SCHEDULED) for _ in range(3)]

    assert all(len(keys) == len(set(keys)) == 10 for keys in draws)
    assert {user for keys in draws for (user,) in keys} <= set(range(90))
    assert len({frozenset(keys) for keys in draws}) > 1
    sampling = [s for s in sent if re.search(r"ORDER BY random\(\)\s+LIMIT", s)]
    assert len(sampling) == 3


def test_sample_entities_orders_keys_as_the_view_joins_them(store: Store, engine: Engine) -> None:
    """A key of several columns comes in the order of the view's entity."""
    source = engine.view("user_stats", entity=("region", "user_id"))

    keys = store.sample_entities(source, 1000, SCHEDULED - timedelta(minutes=7), SCHEDULED)

    assert sorted(keys) == [("eu", 0), ("us", 1)]


def test_sample_entities_of_a_missing_key_column_fails_naming_it(
    store: Store, engine: Engine
) -> None:
    """Sampling by a key column the source lacks is a failed query naming the column."""
    source = engine.view("user_stats", entity="account_id")

    with pytest.raises(QueryFailed, match="account_id"):
        store.sample_entities(source, 10, SCHEDULED - ONE_HOUR, SCHEDULED)


# -- a missing source ---------------------------------------------------------------------------


def test_a_missing_source_raises_source_not_found_naming_it(store: Store, engine: Engine) -> None:
    """Measuring a table or path that does not exist is `SourceNotFound`, naming it and the
    store."""
    with pytest.raises(SourceNotFound, match=re.escape(engine.source("no_such_table"))) as raised:
        store.measure(engine.view("no_such_table"), ALL_METRICS, SCHEDULED)

    assert raised.value.store == engine.name
    assert engine.missing in raised.value.detail


def test_a_failed_measure_logs_one_line_naming_the_source_and_the_reason(
    store: Store, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A measure that fails logs one line: the store, the source, how long, and why (for a
    table, that it does not exist; for a path, that no Parquet file matches it)."""
    source = engine.source("no_such_table")

    with (
        caplog.at_level(logging.INFO, logger="monitor.stores.sql"),
        pytest.raises(SourceNotFound) as raised,
    ):
        store.measure(engine.view("no_such_table"), ALL_METRICS, SCHEDULED)

    assert len(caplog.records) == 1
    line = caplog.records[0].getMessage()
    assert line.startswith(f"store {engine.name}: measuring {source} failed after ")
    assert line.endswith(f": {raised.value.detail}")


# -- a model's serving log ----------------------------------------------------------------------


def test_a_serving_log_is_looked_up_as_a_views_source_is(store: Store, engine: Engine) -> None:
    """A model's serving log is found where a view's source would be: a table or path that is
    not there is `SourceNotFound` naming it; one that is there but holds no log names the
    columns it lacks. SQLite, which cannot judge a log, refuses before looking."""
    key = "table" if engine.kind == "table" else "path"
    missing = served_model({"store": engine.name, key: engine.source("no_such_table")})
    facts = served_model({"store": engine.name, key: engine.source("user_stats")})
    assert missing.model.serving_log is not None
    assert facts.model.serving_log is not None
    window = (SCHEDULED - ONE_HOUR, SCHEDULED)

    if store.engine.dialect.name == "sqlite":
        with pytest.raises(QueryFailed, match="serving logs need PostgreSQL or DuckDB"):
            store.measure_serving_log(missing, missing.model.serving_log, *window)
        return
    with pytest.raises(SourceNotFound, match=re.escape(engine.source("no_such_table"))):
        store.measure_serving_log(missing, missing.model.serving_log, *window)
    with pytest.raises(SourceNotFound, match="has no column 'user_stats__revenue'"):
        store.measure_serving_log(facts, facts.model.serving_log, *window)
