"""FeastSqlOnlineStore reads Feast's SQLite online layout: real SQLite files written with Feast's
DDL and featmon's encoders, with planted facts whose readings and counts are asserted exactly."""

from __future__ import annotations

import hashlib
import logging
import random
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from checks.model import FeatureView
from checks.observation import FeatureReading, FeatureState
from monitor.abc import EntityKey
from monitor.config import FeastSqliteStoreConfig
from monitor.errors import QueryFailed, SourceNotFound
from monitor.feast.codec import encode_entity_key, encode_value
from monitor.stores.sql.feast_online import (
    DRAWS_PER_KEY,
    KEYS_PER_QUERY,
    SAMPLE_ROUNDS,
    FeastSqlOnlineStore,
    event_time,
)
from tests.feast_fixtures import Row, create_table, entity_rows, key, write_rows

PROJECT = "shop"
T1 = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
T1_EPOCH = int(T1.timestamp())
LOGGER = "monitor.stores.sql.feast_online"
T = TypeVar("T")


def view(name: str = "user_stats", **overrides: object) -> FeatureView:
    spec: dict[str, Any] = {
        "name": name,
        "entity": "user_id",
        "ttl": "1d",
        "features": {"revenue": "float", "orders": "int64", "segment": "string"},
        "online": {"store": "feast"},
    }
    spec.update(overrides)
    return FeatureView.model_validate(spec)


USERS = view()
PAIRS = view(
    "user_merchant",
    entity=["user_id", "merchant_id"],
    entity_types={"user_id": "int64", "merchant_id": "string"},
    features={"spend": "double"},
)


def user(revenue: object, orders: object, segment: object, ts: object, uid: int) -> list[Row]:
    return entity_rows(
        key(uid),
        {
            "revenue": (revenue, "float"),
            "orders": (orders, "int64"),
            "segment": (segment, "string"),
        },
        ts,
    )


def plant_users(path: Path) -> None:
    """The user_stats facts the read tests assert."""
    table = f"{PROJECT}_user_stats"
    create_table(path, table)
    rows = [
        *user(12.5, 3, "gold", T1_EPOCH, uid=1),  # complete, integer event_ts
        *user(None, 4, "", "2026-11-26 04:00:00", uid=2),  # null revenue, ISO text event_ts
        Row(key(3), "revenue", encode_value(1.0, "float"), T1_EPOCH),  # orders, segment absent
        Row(key(3), "legacy_score", encode_value(0.5, "double"), T1_EPOCH),  # undeclared
        Row(key(4), "revenue", b"\x48\x01", T1_EPOCH),  # corrupt value: unknown field 9
        Row(key(4), "orders", encode_value(9, "int64"), "2026-11-26T06:00:00+01:00"),
        Row(key(5), "revenue", encode_value(2.0, "float"), "yesterday"),  # bad event_ts
        Row(key(5), "orders", encode_value((1, 2), "int64"), T1_EPOCH),  # a list value
        *user(7.0, 7, "silver", T1_EPOCH, uid=6),  # present but never asked
    ]
    write_rows(path, table, rows)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "online_store.db"
    plant_users(path)
    return path


def open_store(
    path: Path, timezone: str = "UTC", rng: random.Random | None = None
) -> FeastSqlOnlineStore:
    config = FeastSqliteStoreConfig(
        type="feast-sqlite", path=str(path), project=PROJECT, timezone=timezone
    )
    return FeastSqlOnlineStore("feast_local", config, rng=rng)


@pytest.fixture
def store(db: Path) -> Iterator[FeastSqlOnlineStore]:
    opened = open_store(db)
    try:
        yield opened
    finally:
        opened.close()


ASKED: list[EntityKey] = [(1,), (2,), (3,), (4,), (5,), (99,)]


# --- read: planted facts -----------------------------------------------------------------------


def test_an_empty_value_blob_is_null_and_an_empty_string_is_a_value(
    store: FeastSqlOnlineStore,
) -> None:
    """b"" reads NULL; "" is a present value; ISO-text event times are read as UTC."""
    entity = store.read(USERS, [(2,)], "offline").entities[0]
    at_four = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
    assert entity.reading("revenue") == FeatureReading(FeatureState.NULL, None, at_four)
    assert entity.reading("segment") == FeatureReading(FeatureState.VALUE, "", at_four)


def test_a_sql_null_value_is_null_and_no_decode_error(tmp_path: Path) -> None:
    """A row whose value column is SQL NULL reads NULL, like Feast's empty blob."""
    path = tmp_path / "online_store.db"
    create_table(path, f"{PROJECT}_user_stats")
    write_rows(path, f"{PROJECT}_user_stats", [Row(key(1), "revenue", None, T1_EPOCH)])
    opened = open_store(path)
    try:
        observation = opened.read(USERS, [(1,)], "offline")
    finally:
        opened.close()
    assert observation.entities[0].reading("revenue") == FeatureReading(FeatureState.NULL, None, T1)
    assert observation.decode_errors == 0


def test_undeclared_feature_names_are_reported_not_read(store: FeastSqlOnlineStore) -> None:
    """A stored feature the view does not declare lands in undeclared_fields only."""
    observation = store.read(USERS, ASKED, "offline")
    assert observation.undeclared_fields == frozenset({"legacy_score"})
    assert "legacy_score" not in observation.entities[2].features


def test_corrupt_values_and_times_are_counted_not_raised(store: FeastSqlOnlineStore) -> None:
    """A corrupt value blob is UNDECODABLE, a bad event_ts has no time; each counts once."""
    observation = store.read(USERS, ASKED, "offline")
    four, five = observation.entities[3], observation.entities[4]
    assert four.reading("revenue") == FeatureReading(FeatureState.UNDECODABLE, None, T1)
    assert five.reading("revenue") == FeatureReading(FeatureState.VALUE, 2.0, None)
    assert observation.decode_errors == 2


def test_iso_times_with_an_offset_are_converted_to_utc(store: FeastSqlOnlineStore) -> None:
    """An ISO event_ts carrying +01:00 is the same instant in UTC."""
    entity = store.read(USERS, [(4,)], "offline").entities[0]
    assert entity.reading("orders").event_time == datetime(2026, 11, 26, 5, 0, tzinfo=UTC)


def test_list_values_read_as_tuples(store: FeastSqlOnlineStore) -> None:
    """A Feast list value is a tuple."""
    entity = store.read(USERS, [(5,)], "offline").entities[0]
    assert entity.reading("orders").value == (1, 2)


def test_mappings_of_a_reading_are_read_only(store: FeastSqlOnlineStore) -> None:
    """The features mapping of an entity cannot be changed by a consumer."""
    features: Any = store.read(USERS, [(1,)], "offline").entities[0].features
    with pytest.raises(TypeError):
        features["revenue"] = None


def test_repeated_keys_each_get_their_reading(store: FeastSqlOnlineStore) -> None:
    """A key asked twice is read once and reported twice, in place."""
    observation = store.read(USERS, [(2,), (1,), (2,)], "online")
    assert [e.key for e in observation.entities] == [(2,), (1,), (2,)]
    assert observation.entities[0] == observation.entities[2]


def test_naive_iso_times_are_in_the_stores_zone(db: Path) -> None:
    """With timezone Europe/Berlin, a naive ISO time of 04:00 in November is 03:00 UTC;
    integer epoch seconds are absolute and unaffected."""
    berlin = open_store(db, timezone="Europe/Berlin")
    try:
        one, two = berlin.read(USERS, [(1,), (2,)], "offline").entities
    finally:
        berlin.close()
    assert two.reading("orders").event_time == datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    assert one.reading("orders").event_time == T1


def test_compound_keys_are_read_by_their_sorted_serialization(tmp_path: Path) -> None:
    """A two-column key is found whatever the order of its join keys in the view."""
    path = tmp_path / "online_store.db"
    create_table(path, f"{PROJECT}_user_merchant")
    stored = encode_entity_key(("merchant_id", "user_id"), ("m1", 7), ("string", "int64"))
    write_rows(
        path,
        f"{PROJECT}_user_merchant",
        [Row(stored, "spend", encode_value(3.25, "double"), T1_EPOCH)],
    )
    opened = open_store(path)
    try:
        observation = opened.read(PAIRS, [(7, "m1"), (7, "m2")], "offline")
    finally:
        opened.close()
    assert [e.present for e in observation.entities] == [True, False]
    assert observation.entities[0].reading("spend").value == 3.25


def test_declared_entity_types_choose_the_key_encoding(tmp_path: Path) -> None:
    """Keys written as INT32 are found when the view declares int32, not when inferred int64."""
    path = tmp_path / "online_store.db"
    table = f"{PROJECT}_user_stats"
    create_table(path, table)
    int32_key = encode_entity_key(["user_id"], [5], ["int32"])
    write_rows(path, table, [Row(int32_key, "orders", encode_value(1, "int64"), T1_EPOCH)])
    opened = open_store(path)
    try:
        declared = opened.read(view(entity_types={"user_id": "int32"}), [(5,)], "offline")
        inferred = opened.read(USERS, [(5,)], "offline")
    finally:
        opened.close()
    assert (declared.found, inferred.found) == (1, 0)


def test_keys_that_do_not_fit_the_view_count_as_decode_errors(store: FeastSqlOnlineStore) -> None:
    """A str for an int64 join key, or a key of the wrong arity, is absent and counted."""
    typed = view(entity_types={"user_id": "int64"})
    observation = store.read(typed, [("1",), (1, 2), (1,)], "offline")
    assert [e.present for e in observation.entities] == [False, False, True]
    assert observation.decode_errors == 2


def test_a_join_key_declared_with_a_type_feast_keys_cannot_hold_fails_the_read(
    store: FeastSqlOnlineStore,
) -> None:
    """entity_types float is a configuration error reported as QueryFailed, naming the key."""
    with pytest.raises(QueryFailed, match="'user_id' is declared float"):
        store.read(view(entity_types={"user_id": "float"}), [(1,)], "offline")


def test_the_views_online_table_overrides_the_default_name(db: Path) -> None:
    """`online.table` names the table to read instead of {project}_{view}."""
    with sqlite3.connect(db) as conn:
        conn.execute(f'ALTER TABLE "{PROJECT}_user_stats" RENAME TO "custom users"')
    conn.close()
    custom = view(online={"store": "feast", "table": "custom users"})
    opened = open_store(db)
    try:
        assert opened.read(custom, [(1,), (99,)], "offline").found == 1
    finally:
        opened.close()


def test_more_keys_than_one_in_list_are_all_read(tmp_path: Path) -> None:
    """Keys are batched KEYS_PER_QUERY at a time and every batch is read."""
    path = tmp_path / "online_store.db"
    table = f"{PROJECT}_user_stats"
    create_table(path, table)
    stored = range(1, 2 * KEYS_PER_QUERY + 101)
    write_rows(
        path, table, [Row(key(u), "orders", encode_value(u, "int64"), T1_EPOCH) for u in stored]
    )
    asked: list[EntityKey] = [(u,) for u in range(1, 2 * KEYS_PER_QUERY + 201)]
    opened = open_store(path)
    try:
        observation = opened.read(USERS, asked, "offline")
    finally:
        opened.close()
    assert (observation.asked, observation.found) == (len(asked), len(stored))
    assert all(e.reading("orders").value == e.key[0] for e in observation.entities if e.present)


def test_each_read_logs_one_info_line_with_its_outcome(
    store: FeastSqlOnlineStore, caplog: pytest.LogCaptureFixture
) -> None:
    """One INFO line names the store, the view, keys asked and found, and the time taken."""
    with caplog.at_level(logging.INFO, logger=LOGGER):
        store.read(USERS, ASKED, "offline")
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(lines) == 1
    assert "store feast_local: read view user_stats from shop_user_stats" in lines[0]
    assert "6 keys asked, 5 found, 2 decode errors in" in lines[0]
    assert lines[0].endswith(" ms")


# --- errors and read-only ----------------------------------------------------------------------


def test_a_missing_table_is_source_not_found_naming_it(store: FeastSqlOnlineStore) -> None:
    """Reading or sampling a view whose table does not exist raises SourceNotFound."""
    ghost = view("ghost_view")
    with pytest.raises(SourceNotFound, match="shop_ghost_view") as info:
        store.read(ghost, [(1,)], "offline")
    assert info.value.store == "feast_local"
    with pytest.raises(SourceNotFound, match="shop_ghost_view"):
        store.sample_keys(ghost, 10)


def test_a_missing_table_is_reported_even_when_no_key_is_asked(
    store: FeastSqlOnlineStore,
) -> None:
    """An empty sample still checks that the table exists."""
    with pytest.raises(SourceNotFound, match="shop_ghost_view"):
        store.read(view("ghost_view"), [], "offline")
    assert store.read(USERS, [], "offline").entities == ()


def test_a_missing_database_file_is_source_not_found(tmp_path: Path) -> None:
    """A path where no SQLite file exists is SourceNotFound, and no file is created."""
    missing = tmp_path / "nowhere.db"
    opened = open_store(missing)
    try:
        with pytest.raises(SourceNotFound):
            opened.read(USERS, [(1,)], "offline")
    finally:
        opened.close()
    assert not missing.exists()


def fingerprint(directory: Path) -> dict[str, tuple[int, str]]:
    return {
        p.name: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(directory.iterdir())
    }


def test_the_store_never_writes(db: Path) -> None:
    """Reads, samples and close leave the directory byte-for-byte and mtime unchanged."""
    before = fingerprint(db.parent)
    opened = open_store(db)
    opened.read(USERS, ASKED, "offline")
    opened.sample_keys(USERS, 3)
    opened.close()
    assert fingerprint(db.parent) == before


# --- sample_keys -------------------------------------------------------------------------------


def plant_many(path: Path, users: Sequence[int], features: int = 3) -> None:
    table = f"{PROJECT}_user_stats"
    create_table(path, table)
    names = ["revenue", "orders", "segment"][:features]
    write_rows(
        path,
        table,
        [Row(key(u), n, encode_value(u, "int64"), T1_EPOCH) for u in users for n in names],
    )


def test_sample_keys_returns_distinct_stored_keys_at_most_size(tmp_path: Path) -> None:
    """Sampled keys are distinct, held by the store, one value per join key, and no more
    than asked."""
    path = tmp_path / "online_store.db"
    plant_many(path, range(1, 51))
    opened = open_store(path)
    try:
        keys = opened.sample_keys(USERS, 10)
    finally:
        opened.close()
    assert len(keys) == 10
    assert len(set(keys)) == 10
    assert set(keys) <= {(u,) for u in range(1, 51)}


def test_sample_keys_of_an_empty_table_is_empty(tmp_path: Path) -> None:
    """An empty table samples to no keys, without error."""
    path = tmp_path / "online_store.db"
    create_table(path, f"{PROJECT}_user_stats")
    opened = open_store(path)
    try:
        assert opened.sample_keys(USERS, 10) == []
        assert opened.sample_keys(USERS, 0) == []
    finally:
        opened.close()


def test_sample_keys_orders_compound_keys_as_the_view_declares(tmp_path: Path) -> None:
    """Keys stored sorted by name (merchant_id, user_id) come back as (user_id, merchant_id)."""
    path = tmp_path / "online_store.db"
    table = f"{PROJECT}_user_merchant"
    create_table(path, table)
    stored = {(u, f"m{u % 3}") for u in range(1, 21)}
    rows = [
        Row(
            encode_entity_key(("user_id", "merchant_id"), k, ("int64", "string")),
            "spend",
            encode_value(1.0, "double"),
            T1_EPOCH,
        )
        for k in stored
    ]
    write_rows(path, table, rows)
    opened = open_store(path)
    try:
        keys = opened.sample_keys(PAIRS, 100)
    finally:
        opened.close()
    assert set(keys) == stored


def test_sample_keys_skips_and_logs_keys_that_do_not_decode(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Garbage, text and other entities' keys are skipped and counted in one warning."""
    path = tmp_path / "online_store.db"
    plant_many(path, range(1, 6), features=1)
    other_entity = encode_entity_key(["driver_id"], [1], ["int64"])
    write_rows(
        path,
        f"{PROJECT}_user_stats",
        [
            Row(b"garbage", "orders", b"", T1_EPOCH),
            Row("text key", "orders", b"", T1_EPOCH),
            Row(other_entity, "orders", b"", T1_EPOCH),
        ],
    )
    opened = open_store(path)
    try:
        with caplog.at_level(logging.INFO, logger=LOGGER):
            keys = opened.sample_keys(USERS, 100)
    finally:
        opened.close()
    assert sorted(keys) == [(u,) for u in range(1, 6)]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "store feast_local view user_stats: 3 sampled keys did not decode and were skipped"
    ]


def test_sample_keys_finds_keys_across_rowid_gaps(tmp_path: Path) -> None:
    """Rows deleted from the middle leave gaps that further rounds of draws get past."""
    path = tmp_path / "online_store.db"
    plant_many(path, range(1, 401), features=1)
    with sqlite3.connect(path) as conn:
        conn.execute(f'DELETE FROM "{PROJECT}_user_stats" WHERE rowid BETWEEN 11 AND 390')
    conn.close()
    opened = open_store(path, rng=random.Random(7))
    try:
        keys = opened.sample_keys(USERS, 15)
    finally:
        opened.close()
    assert len(set(keys)) == len(keys) == 15
    assert set(keys) <= {(u,) for u in [*range(1, 11), *range(391, 401)]}


class RecordingRandom(random.Random):
    """A seeded Random that records how many rowids each draw asks for."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.draws: list[int] = []

    def sample(
        self, population: Sequence[T], k: int, *, counts: Iterable[int] | None = None
    ) -> list[T]:
        self.draws.append(k)
        return super().sample(population, k, counts=counts)


def test_sample_cost_is_bounded_by_size_not_by_the_table(tmp_path: Path) -> None:
    """On 20,000 rows, sampling 5 keys draws at most max(DRAWS_PER_KEY x 5, 32) rowids a
    round, whatever the table holds."""
    path = tmp_path / "online_store.db"
    plant_many(path, range(1, 10_001), features=2)
    rng = RecordingRandom(11)
    opened = open_store(path, rng=rng)
    try:
        keys = opened.sample_keys(USERS, 5)
    finally:
        opened.close()
    assert len(set(keys)) == 5
    assert 1 <= len(rng.draws) <= SAMPLE_ROUNDS
    assert max(rng.draws) <= max(DRAWS_PER_KEY * 5, 32)


def test_sample_cost_stays_bounded_on_a_sparse_table(tmp_path: Path) -> None:
    """When few drawn rowids hit a row, later draws grow, but never past the per-round bound."""
    path = tmp_path / "online_store.db"
    plant_many(path, range(1, 20_001), features=1)
    with sqlite3.connect(path) as conn:
        conn.execute(f'DELETE FROM "{PROJECT}_user_stats" WHERE rowid % 100 != 0')
    conn.close()
    bound = max(DRAWS_PER_KEY * 4, 32)
    for seed in range(10):
        rng = RecordingRandom(seed)
        opened = open_store(path, rng=rng)
        try:
            keys = opened.sample_keys(USERS, 4)
        finally:
            opened.close()
        assert set(keys) <= {(u,) for u in range(100, 20_001, 100)}
        assert rng.draws[0] == 32
        assert len(rng.draws) <= SAMPLE_ROUNDS
        assert max(rng.draws) <= bound


def test_every_key_of_a_tiny_table_can_be_sampled(tmp_path: Path) -> None:
    """Sampling one key of three, with twenty seeds, draws each key at least once: rows that
    come back in rowid order are shuffled before keys are taken."""
    path = tmp_path / "online_store.db"
    plant_many(path, range(1, 4), features=1)
    seen: set[EntityKey] = set()
    for seed in range(20):
        opened = open_store(path, rng=random.Random(seed))
        try:
            seen.update(opened.sample_keys(USERS, 1))
        finally:
            opened.close()
    assert seen == {(1,), (2,), (3,)}


def test_sampling_is_random(tmp_path: Path) -> None:
    """Two differently seeded samples of 10 among 1,000 entities differ."""
    path = tmp_path / "online_store.db"
    plant_many(path, range(1, 1001), features=1)
    samples = []
    for seed in (1, 2):
        opened = open_store(path, rng=random.Random(seed))
        try:
            samples.append(set(opened.sample_keys(USERS, 10)))
        finally:
            opened.close()
    assert samples[0] != samples[1]


# --- event_ts forms ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (T1_EPOCH, T1),
        (float(T1_EPOCH) + 0.5, T1 + timedelta(milliseconds=500)),
        (str(T1_EPOCH), T1),
        ("2026-11-26 05:00:00", T1),
        ("2026-11-26T05:00:00.250000", T1 + timedelta(milliseconds=250)),
        ("2026-11-26T05:00:00Z", T1),
        ("2026-11-26T07:00:00+02:00", T1),
        (datetime(2026, 11, 26, 5, 0), T1),  # noqa: DTZ001 - naive on purpose: store's zone
        (datetime(2026, 11, 26, 6, 0, tzinfo=UTC) - timedelta(hours=1), T1),
        (None, None),
    ],
)
def test_event_ts_in_every_form_feast_wrote_reads_as_utc(raw: object, expected: object) -> None:
    """Integer, float and digit epochs, ISO text and datetimes all read as aware UTC."""
    result = event_time(raw, UTC)
    assert result == expected
    if result is not None:
        assert result.utcoffset() == timedelta(0)


@pytest.mark.parametrize("raw", ["yesterday", b"\x00", True, 10**20, "2026-13-01"])
def test_event_ts_that_is_no_time_is_an_error(raw: object) -> None:
    """Text that is no time, bytes, booleans and epochs beyond datetime's range are refused."""
    with pytest.raises((TypeError, ValueError)):
        event_time(raw, UTC)
