"""RedisOnlineStore against real Redis: planted Feast-layout and plain-hash facts whose readings
and counts are asserted exactly, on the shared server (own project names, cleaned up) and, where
a test needs a keyspace or command counters of its own, on a private redis-server; plus a
read-only ACL user, TLS and a three-node cluster on throwaway servers."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from checks.model import FeatureView
from checks.observation import FeatureReading, FeatureState, OnlineObservation
from checks.plan import plan_view
from checks.result import Status
from monitor.abc import EntityKey
from monitor.config import RedisStoreConfig
from monitor.errors import ProbeTimeout, QueryFailed, StoreUnavailable
from monitor.feast.redis_layout import feature_field, field_label, timestamp_field
from monitor.runs.probe import Stores, probe_view
from monitor.stores.redis import RedisOnlineStore
from monitor.stores.redis.store import SCAN_CALLS
from tests.redis_fixtures import (
    CORRUPT_TIME,
    CORRUPT_VALUE,
    ORPHAN,
    PAIRS,
    PLAIN,
    PROFILE,
    REDIS_URL,
    SAMPLED_USERS,
    SECRET,
    STALE,
    T1,
    USERS,
    Planter,
    Server,
    acl_user,
    admin_client,
    command_calls,
    config,
    feast_hash,
    feast_key,
    free_port,
    key_count,
    opened,
    plain_hash,
    plant_feast,
    redis_cluster,
    redis_server,
    self_signed_cert,
    unique,
    users,
    view,
    with_credentials,
    write_hash,
)

LOGGER = "monitor.stores.redis.store"
UNDECODABLE = FeatureReading(FeatureState.UNDECODABLE)


@pytest.fixture(scope="module")
def admin() -> Iterator[redis.Redis]:
    client = admin_client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def projects() -> tuple[str, str]:
    """A project and another whose name ends with it (the `faults2` / `s2` trap)."""
    project = unique("s2")
    return project, "fault" + project


@pytest.fixture(scope="module")
def shared(admin: redis.Redis, projects: tuple[str, str]) -> Iterator[str]:
    """The Feast facts planted on the shared server; yields the project."""
    planter = Planter(admin)
    try:
        plant_feast(planter, *projects)
        yield projects[0]
    finally:
        planter.clean()


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A redis-server of this module only: its keyspace and command counters are ours."""
    with redis_server(tmp_path_factory.mktemp("redis"), "--enable-debug-command", "yes") as server:
        yield server


@pytest.fixture
def private_admin(private: Server) -> Iterator[redis.Redis]:
    """An admin client of the private server, emptied before the test."""
    client = admin_client(private.url)
    client.flushall()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def store(shared: str) -> Iterator[RedisOnlineStore]:
    with opened(config(project=shared)) as opened_store:
        yield opened_store


def readings(
    store: RedisOnlineStore, key: EntityKey, target: FeatureView = USERS
) -> dict[str, FeatureReading]:
    return dict(store.read(target, [key], "offline").entities[0].features)


# --- read: Feast layout ----------------------------------------------------------------------------


def test_read_returns_one_reading_per_asked_key_in_order(store: RedisOnlineStore) -> None:
    """Entities come back in the asked order; missing keys and hashes without the view's fields
    (uid 5 holds only user_profile) are present=False."""
    asked: list[EntityKey] = [(1,), (2,), (3,), (4,), (5,), (6,), (7,), (99,)]
    observation = store.read(USERS, asked, "offline")
    assert [e.key for e in observation.entities] == asked
    assert [e.present for e in observation.entities] == [True] * 4 + [False, True, True, False]
    assert (observation.asked, observation.found) == (8, 6)
    assert (observation.store, observation.feature_view, observation.population) == (
        "online",
        "user_stats",
        "offline",
    )


def test_a_complete_entity_reads_every_declared_feature(store: RedisOnlineStore) -> None:
    """Values decode to Python values; the view's _ts is the entity's event time, which its
    readings leave to it (they carry none of their own)."""
    entity = store.read(USERS, [(1,)], "offline").entities[0]
    assert dict(entity.features) == {
        "revenue": FeatureReading(FeatureState.VALUE, 12.5),
        "orders": FeatureReading(FeatureState.VALUE, 3),
        "segment": FeatureReading(FeatureState.VALUE, "gold"),
    }
    assert entity.event_time == T1


def test_null_empty_and_absent_fields_are_told_apart(store: RedisOnlineStore) -> None:
    """b"" is NULL, an empty string is a value, and an unwritten field is not in the mapping."""
    second, third = store.read(USERS, [(2,), (3,)], "offline").entities
    assert second.features["revenue"] == FeatureReading(FeatureState.NULL, None)
    assert second.features["segment"] == FeatureReading(FeatureState.VALUE, "")
    assert set(third.features) == {"revenue"}
    assert third.reading("orders").state is FeatureState.ABSENT


def test_stale_values_stay_readable_with_their_old_event_time(store: RedisOnlineStore) -> None:
    """Feast never expires keys: a three-day-old row reads with its three-day-old time."""
    assert store.read(USERS, [(2,)], "offline").entities[0].event_time == STALE


def test_undecodable_values_and_times_are_counted_not_raised(store: RedisOnlineStore) -> None:
    """A corrupt value is UNDECODABLE, a corrupt _ts leaves the time unknown; both counted."""
    observation = store.read(USERS, [(4,)], "offline")
    assert dict(observation.entities[0].features) == {
        "revenue": FeatureReading(FeatureState.UNDECODABLE, None, None),
        "orders": FeatureReading(FeatureState.VALUE, 9, None),
    }
    assert observation.decode_errors == 2


def test_equal_corrupt_bytes_count_an_error_each_time_they_are_read(
    private: Server, private_admin: redis.Redis
) -> None:
    """Equal stored bytes are decoded once a read, but the same corrupt value and _ts under
    three entities are six decode errors, not two; the good value beside them reads in each."""
    planter = Planter(private_admin)
    corrupt = {
        feature_field("user_stats", "revenue"): CORRUPT_VALUE,
        feature_field("user_stats", "orders"): feast_hash("user_stats", users(orders=7), None)[
            feature_field("user_stats", "orders")
        ],
        timestamp_field("user_stats"): CORRUPT_TIME,
    }
    for uid in (1, 2, 3):
        planter.hset(feast_key("p", [uid]), corrupt)
    with opened(config(private.url, project="p")) as store:
        observation = store.read(USERS, [(1,), (2,), (3,)], "offline")
    assert observation.decode_errors == 6
    assert [(e.reading("revenue").state, e.reading("orders").value, e.event_time)
            for e in observation.entities] == [(FeatureState.UNDECODABLE, 7, None)] * 3  # fmt: skip


def test_a_key_that_is_not_a_hash_is_present_and_undecodable(store: RedisOnlineStore) -> None:
    """A string under the entity's key (WRONGTYPE) is one decode error, not a failed read."""
    observation = store.read(USERS, [(6,)], "offline")
    entity = observation.entities[0]
    assert entity.present
    assert dict(entity.features) == dict.fromkeys(USERS.features, UNDECODABLE)
    assert observation.decode_errors == 1


def test_the_event_time_alone_makes_an_entity_present_without_features(
    store: RedisOnlineStore,
) -> None:
    """_ts:user_stats with no feature field: present, every feature absent (so no feature
    carries the event time)."""
    entity = store.read(USERS, [(7,)], "offline").entities[0]
    assert (entity.present, dict(entity.features), entity.event_time) == (True, {}, None)


def test_orphan_fields_are_reported_in_hex(store: RedisOnlineStore) -> None:
    """Fields that no declared feature hashes to (an unknown and a removed feature) are named
    by their bytes; _ts fields and declared features are not."""
    observation = store.read(USERS, [(1,), (3,)], "offline")
    assert observation.undeclared_fields == {
        field_label(ORPHAN),
        field_label(feature_field("user_stats", "legacy_score")),
    }


def test_features_of_views_the_store_does_not_know_count_as_undeclared(shared: str) -> None:
    """A sibling view's field cannot be told from an orphan unless the store knows the view."""
    age = field_label(feature_field("user_profile", "age"))
    with opened(config(project=shared)) as unaware:
        assert unaware.read(USERS, [(8,)], "offline").undeclared_fields == {age}
    with opened(config(project=shared), known_views=[USERS, PROFILE]) as aware:
        assert aware.read(USERS, [(8,)], "offline").undeclared_fields == frozenset()


def test_another_project_sharing_the_suffix_is_not_read(store: RedisOnlineStore) -> None:
    """Project `fault<p>` also has uid 1 (revenue 999) and 100-102: none of it is `<p>`'s."""
    first, hundredth = store.read(USERS, [(1,), (100,)], "offline").entities
    assert first.features["revenue"].value == 12.5
    assert not hundredth.present


def test_compound_keys_read_in_the_views_join_key_order(store: RedisOnlineStore) -> None:
    """Feast sorts join keys by name; the store takes and returns them in the view's order."""
    observation = store.read(PAIRS, [(1, "m1"), (2, "m2"), (1, "m2")], "offline")
    assert [dict(e.features) for e in observation.entities] == [
        {"spend": FeatureReading(FeatureState.VALUE, 2.5)},
        {"spend": FeatureReading(FeatureState.NULL, None)},
        {},
    ]
    assert [e.event_time for e in observation.entities] == [T1, T1, None]
    assert observation.found == 2


def test_keys_that_do_not_fit_the_view_are_counted_and_absent(store: RedisOnlineStore) -> None:
    """A key of the wrong arity reads as absent and counts as a decode error."""
    observation = store.read(USERS, [(1,), ("a", "b")], "offline")
    assert [e.present for e in observation.entities] == [True, False]
    assert observation.decode_errors == 1


def test_a_join_key_type_feast_cannot_hold_is_refused(store: RedisOnlineStore) -> None:
    """Feast entity keys hold no floats: declaring one is a QueryFailed naming the store."""
    floating = view(entity_types={"user_id": "float"})
    with pytest.raises(QueryFailed, match=r"store 'online'.*declared float"):
        store.read(floating, [(1,)], "offline")


def test_online_table_names_the_view_in_redis(shared: str) -> None:
    """`online.table` replaces the view's name in field hashes (Feast's versioned names)."""
    renamed = view("stats_v2", online={"store": "redis", "table": "user_stats"})
    with opened(config(project=shared)) as store:
        assert store.read(renamed, [(1,)], "offline").entities[0].features["orders"].value == 3


def test_one_info_line_per_read_names_store_view_and_counts(
    store: RedisOnlineStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The log says what was asked, found and undecodable, without secrets."""
    with caplog.at_level(logging.INFO, logger=LOGGER):
        store.read(USERS, [(1,), (4,), (99,)], "offline")
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(lines) == 1
    assert "store online: read view user_stats: 3 keys asked, 2 found, 2 decode errors" in lines[0]


# --- read: batching, on the private server -----------------------------------------------------


def test_reads_are_batched_and_each_key_is_read_once(
    private: Server, private_admin: redis.Redis
) -> None:
    """Five asked keys (one twice) at batch_size 2: readings in order, one HGETALL for each of
    the four distinct keys, and no other read command (no HMGET, HKEYS, KEYS or SCAN)."""
    planter = Planter(private_admin)
    for uid in (1, 2, 3):
        planter.hset(feast_key("p", [uid]), feast_hash("user_stats", users(orders=uid), T1))
    commands = ("hgetall", "hmget", "hkeys", "hget", "keys", "scan")
    before = {c: command_calls(private_admin, c) for c in commands}
    with opened(config(private.url, project="p", batch_size=2)) as store:
        observation = store.read(USERS, [(1,), (2,), (1,), (99,), (3,)], "offline")
    orders = [e.features["orders"].value if e.present else None for e in observation.entities]
    assert orders == [1, 2, 1, None, 3]
    after = {c: command_calls(private_admin, c) for c in commands}
    assert {c: after[c] - before[c] for c in after} == {
        "hgetall": 4, "hmget": 0, "hkeys": 0, "hget": 0, "keys": 0, "scan": 0
    }  # fmt: skip


def test_a_hash_shared_with_other_views_reads_only_the_views_fields(
    private: Server, private_admin: redis.Redis
) -> None:
    """HGETALL returns a sibling view's fields and values too: they are neither readings nor
    undeclared when the store knows that view, and they are not decoded (the sibling's bytes
    here are corrupt, and no decode error is counted)."""
    planter = Planter(private_admin)
    planter.hset(
        feast_key("p", [1]),
        {**feast_hash("user_stats", users(orders=4), T1),
         feature_field("user_profile", "age"): b"\xff\xff",
         timestamp_field("user_profile"): b"\xff"},
    )  # fmt: skip
    with opened(config(private.url, project="p"), known_views=[USERS, PROFILE]) as store:
        observation = store.read(USERS, [(1,)], "offline")
    assert dict(observation.entities[0].features) == {
        "orders": FeatureReading(FeatureState.VALUE, 4)
    }
    assert (observation.decode_errors, observation.undeclared_fields) == (0, frozenset())


def test_close_releases_the_connections_the_store_opened(
    private: Server, private_admin: redis.Redis
) -> None:
    """After close the server counts as many clients as before the store existed."""
    baseline = private_admin.info("clients")["connected_clients"]
    store = RedisOnlineStore("online", config(private.url, project="p"))
    store.read(USERS, [(1,)], "offline")
    assert private_admin.info("clients")["connected_clients"] == baseline + 1
    store.close()
    deadline = time.monotonic() + 5
    while private_admin.info("clients")["connected_clients"] != baseline:
        assert time.monotonic() < deadline, "the store's connection is still open"
        time.sleep(0.05)


def test_an_injected_client_is_left_open(private: Server) -> None:
    """The store closes only what it created."""
    client = redis.Redis.from_url(private.url)
    try:
        with opened(config(private.url, project="p"), client=client) as store:
            store.read(USERS, [(1,)], "offline")
        assert client.ping()
    finally:
        client.close()


ASKED: list[EntityKey] = [(1,), (3,), (6,), (4,), (2,), (99,)]
"""Keys of the planted project with a WRONGTYPE key (6) amid hashes and a missing key."""


def test_replies_after_a_wrongtype_key_in_a_batch_stay_in_step(
    private: Server, planted_private: str
) -> None:
    """One batch holding a key that is not a hash reads every other key as reading it alone
    does: each reply is matched to its own key."""
    with opened(config(private.url, project=planted_private)) as store:
        together = store.read(USERS, ASKED, "offline")
        alone = [store.read(USERS, [key], "offline").entities[0] for key in ASKED]
    assert list(together.entities) == alone
    assert [e.present for e in alone] == [True, True, True, True, True, False]
    assert alone[2].reading("orders").state is FeatureState.UNDECODABLE


# --- read without looking for undeclared fields: HMGET of the view's fields ----------------------

EVERY_KEY: list[EntityKey] = [*((uid,) for uid in range(1, 9)), (99,)]


def without_undeclared(observation: OnlineObservation) -> OnlineObservation:
    return dataclasses.replace(observation, undeclared_fields=frozenset())


def test_without_undeclared_fields_each_key_is_one_hmget_reading_the_same(
    private: Server, private_admin: redis.Redis, planted_private: str
) -> None:
    """Every planted fact (nulls, stale, an orphan and a removed feature, corrupt bytes, a hash
    of another view only, a key that is not a hash, the event time alone, a hash shared with a
    sibling view, a missing key) reads the same with HMGET of the view's fields and its time as
    with HGETALL; only the undeclared fields, which HMGET cannot see, are not reported. One
    HMGET per distinct key, no HGETALL."""
    with opened(config(private.url, project=planted_private, batch_size=4)) as store:
        whole = store.read(USERS, EVERY_KEY, "offline")
        commands = ("hgetall", "hmget")
        before = {c: command_calls(private_admin, c) for c in commands}
        fields = store.read(USERS, EVERY_KEY, "offline", undeclared=False)
        after = {c: command_calls(private_admin, c) for c in commands}
    assert whole.undeclared_fields  # the orphan and the removed feature of uid 3
    assert fields == without_undeclared(whole)
    assert fields.decode_errors == whole.decode_errors == 3  # corrupt value, time; not a hash
    assert {c: after[c] - before[c] for c in commands} == {"hgetall": 0, "hmget": len(EVERY_KEY)}


@pytest.mark.parametrize(
    "client_options",
    [{"decode_responses": True}, {"protocol": 3}],
    ids=["decode_responses", "resp3"],
)
def test_an_injected_client_of_another_reply_shape_reads_the_same_with_hmget(
    private: Server, planted_private: str, client_options: dict[str, object]
) -> None:
    cfg = config(private.url, project=planted_private)
    with opened(cfg) as store:
        expected = store.read(USERS, EVERY_KEY, "offline", undeclared=False)
    client = redis.Redis.from_url(private.url, **client_options)
    try:
        with opened(cfg, client=client) as store:
            assert store.read(USERS, EVERY_KEY, "offline", undeclared=False) == expected
    finally:
        client.close()


def test_a_plain_hash_reads_the_same_with_hmget(planter: Planter) -> None:
    """A plain hash holding the view's feature, its timestamp and a field nothing declares."""
    prefix = unique("hm")
    planter.hset(
        f"{prefix}:plain_stats:1".encode(), {b"orders": b"3", b"_ts": b"1795669200", b"x": b"1"}
    )
    planter.hset(f"{prefix}:plain_stats:2".encode(), {b"_ts": b"1795669200"})
    with opened(plain_config(prefix)) as store:
        whole = store.read(PLAIN, [(1,), (2,), (3,)], "online")
        fields = store.read(PLAIN, [(1,), (2,), (3,)], "online", undeclared=False)
    assert whole.undeclared_fields == frozenset({"x"})
    assert fields == without_undeclared(whole)
    assert [e.present for e in fields.entities] == [True, True, False]


@pytest.mark.parametrize(
    "client_options",
    [{"decode_responses": True}, {"protocol": 3}],
    ids=["decode_responses", "resp3"],
)
def test_an_injected_client_of_another_reply_shape_reads_the_same(
    private: Server, planted_private: str, client_options: dict[str, object]
) -> None:
    """A client that decodes replies to str, or speaks RESP3 (HGETALL a map), reads the same
    observation as the store's own client."""
    cfg = config(private.url, project=planted_private)
    with opened(cfg) as store:
        expected = store.read(USERS, ASKED, "offline")
    client = redis.Redis.from_url(private.url, **client_options)
    try:
        with opened(cfg, client=client) as store:
            assert store.read(USERS, ASKED, "offline") == expected
    finally:
        client.close()


def test_a_connection_the_server_dropped_between_reads_is_reopened(
    private: Server, private_admin: redis.Redis, planted_private: str
) -> None:
    """The server closes the store's pooled connection between two reads: the second read
    reconnects and reads the same, and the store holds one connection again."""
    with opened(config(private.url, project=planted_private)) as store:
        first = store.read(USERS, ASKED, "offline")
        killed = private_admin.client_kill_filter(_type="normal", skipme=True)
        second = store.read(USERS, ASKED, "offline")
        clients = private_admin.info("clients")["connected_clients"]
    assert (killed, second, clients) == (1, first, 2)


# --- sample_keys, on the private server ---------------------------------------------------------


@pytest.fixture
def planted_private(private_admin: redis.Redis, projects: tuple[str, str]) -> str:
    plant_feast(Planter(private_admin), *projects)
    return projects[0]


def test_sample_keys_are_distinct_keys_of_the_view_up_to_size(
    private: Server, planted_private: str
) -> None:
    """Three keys asked: three distinct keys whose hash holds _ts:user_stats."""
    with opened(config(private.url, project=planted_private)) as store:
        keys = store.sample_keys(USERS, 3)
    assert len(keys) == len(set(keys)) == 3
    assert set(keys) <= SAMPLED_USERS


def test_sample_keys_of_a_small_keyspace_finds_exactly_the_views_keys(
    private: Server, planted_private: str
) -> None:
    """Other projects (even `fault<p>`), other views, other join keys and non-hashes are left
    out; nothing of the view is missed."""
    with opened(config(private.url, project=planted_private)) as store:
        assert set(store.sample_keys(USERS, 100)) == SAMPLED_USERS
        assert set(store.sample_keys(PAIRS, 100)) == {(1, "m1"), (2, "m2")}


def test_sample_keys_on_an_empty_db_returns_nothing_after_one_pass(
    private: Server, private_admin: redis.Redis
) -> None:
    """An empty keyspace ends the walk at once: no keys, at most two SCAN calls."""
    before = command_calls(private_admin, "scan")
    with opened(config(private.url, project="p")) as store:
        assert store.sample_keys(USERS, 10) == []
    assert 1 <= command_calls(private_admin, "scan") - before <= 2


def test_sample_keys_makes_a_bounded_number_of_scan_calls_and_no_keys(
    private: Server, private_admin: redis.Redis
) -> None:
    """A large keyspace without the view's keys: SCAN_CALLS calls, then it settles for none."""
    private_admin.execute_command("DEBUG", "POPULATE", "50000", "junk")  # type: ignore[no-untyped-call]  # no typed DEBUG in redis-py
    before = {c: command_calls(private_admin, c) for c in ("scan", "keys")}
    with opened(config(private.url, project="p")) as store:
        assert store.sample_keys(USERS, 20) == []
    after = {c: command_calls(private_admin, c) for c in ("scan", "keys")}
    assert {c: after[c] - before[c] for c in after} == {"scan": SCAN_CALLS, "keys": 0}


def test_sample_keys_of_a_dense_keyspace_needs_few_scan_calls(
    private: Server, private_admin: redis.Redis
) -> None:
    """When every key is the view's, ten keys take a call or three, not a walk of 2000 keys."""
    with private_admin.pipeline(transaction=False) as pipe:
        for uid in range(2000):
            write_hash(pipe, feast_key("p", [uid]), feast_hash("user_stats", {}, T1))
        pipe.execute()
    before = command_calls(private_admin, "scan")
    with opened(config(private.url, project="p")) as store:
        keys = store.sample_keys(USERS, 10)
    assert len(set(keys)) == 10
    assert command_calls(private_admin, "scan") - before <= 3


def test_glob_characters_in_a_project_name_are_matched_literally(
    private: Server, private_admin: redis.Redis
) -> None:
    """Project `p[ab]*` finds its own keys (an unescaped pattern would match none of them)."""
    planter = Planter(private_admin)
    planter.hset(feast_key("p[ab]*", [1]), feast_hash("user_stats", {}, T1))
    planter.hset(feast_key("pa", [2]), feast_hash("user_stats", {}, T1))
    with opened(config(private.url, project="p[ab]*")) as store:
        assert store.sample_keys(USERS, 10) == [(1,)]


# --- the plain-hash layout -----------------------------------------------------------------------


@pytest.fixture
def planter(admin: redis.Redis) -> Iterator[Planter]:
    planted = Planter(admin)
    try:
        yield planted
    finally:
        planted.clean()


def plain_config(prefix: str, **fields: object) -> RedisStoreConfig:
    return config(
        REDIS_URL, layout="hash", key_template=prefix + ":{feature_view}:{user_id}", **fields
    )


@pytest.mark.parametrize(
    ("time_format", "written", "zone"),
    [
        ("epoch_s", b"1795669200", "UTC"),
        ("epoch_ms", b"1795669200000", "UTC"),
        ("iso8601", b"2026-11-26T05:00:00+00:00", "UTC"),
        ("iso8601", b"2026-11-26 06:00:00", "Europe/Berlin"),  # naive: the store's zone
    ],
)
def test_plain_hashes_read_the_event_time_in_each_format(
    planter: Planter, time_format: str, written: bytes, zone: str
) -> None:
    """The timestamp field reads as T1 whichever way it was written."""
    prefix = unique("ft")
    planter.hset(f"{prefix}:plain_stats:1".encode(), {b"orders": b"3", b"_ts": written})
    cfg = plain_config(prefix, timestamp_format=time_format, timezone=zone)
    with opened(cfg) as store:
        entity = store.read(PLAIN, [(1,)], "online").entities[0]
    assert dict(entity.features) == {"orders": FeatureReading(FeatureState.VALUE, 3)}
    assert entity.event_time == T1


def test_plain_text_values_are_parsed_by_dtype(planter: Planter) -> None:
    """Text values become the declared types; empty is NULL, unparseable UNDECODABLE, an
    unwritten field absent, an unknown field undeclared by name."""
    prefix = unique("ft")
    planter.hset(
        f"{prefix}:plain_stats:1".encode(),
        plain_hash({"revenue": "12.5", "orders": "3", "active": "true", "segment": "gold",
                    "blob": b"\xff\x00", "seen": "1795669200", "updated_at": "1795669200"}),
    )  # fmt: skip
    planter.hset(
        f"{prefix}:plain_stats:2".encode(),
        plain_hash({"revenue": "", "orders": "many", "legacy": "x", "updated_at": "1795669200"}),
    )
    with opened(plain_config(prefix, timestamp_field="updated_at")) as store:
        observation = store.read(PLAIN, [(1,), (2,), (3,)], "online")
    first, second, third = (dict(e.features) for e in observation.entities)
    assert first == {
        "revenue": FeatureReading(FeatureState.VALUE, 12.5),
        "orders": FeatureReading(FeatureState.VALUE, 3),
        "active": FeatureReading(FeatureState.VALUE, True),
        "segment": FeatureReading(FeatureState.VALUE, "gold"),
        "blob": FeatureReading(FeatureState.VALUE, b"\xff\x00"),
        "seen": FeatureReading(FeatureState.VALUE, T1),
    }
    assert second == {
        "revenue": FeatureReading(FeatureState.NULL, None),
        "orders": FeatureReading(FeatureState.UNDECODABLE, None),
    }
    assert [e.event_time for e in observation.entities] == [T1, T1, None]
    assert (third, observation.entities[2].present) == ({}, False)
    assert observation.decode_errors == 1
    assert observation.undeclared_fields == {"legacy"}


def test_plain_json_values_are_checked_against_dtype(planter: Planter) -> None:
    """JSON null is NULL, a JSON string where an int is declared is UNDECODABLE, and a bad
    event time is one more decode error."""
    prefix = unique("ft")
    planter.hset(
        f"{prefix}:plain_stats:1".encode(),
        {b"revenue": b"12.5", b"orders": b'"3"', b"segment": b"null", b"active": b"false",
         b"_ts": b'"yesterday"'},
    )  # fmt: skip
    with opened(plain_config(prefix, value_format="json", timestamp_format="iso8601")) as store:
        observation = store.read(PLAIN, [(1,)], "online")
    assert dict(observation.entities[0].features) == {
        "revenue": FeatureReading(FeatureState.VALUE, 12.5, None),
        "orders": FeatureReading(FeatureState.UNDECODABLE, None, None),
        "segment": FeatureReading(FeatureState.NULL, None, None),
        "active": FeatureReading(FeatureState.VALUE, False, None),
    }
    assert observation.decode_errors == 2


def test_plain_compound_keys_read_and_sample(private: Server, private_admin: redis.Redis) -> None:
    """A template with two join keys fills and parses both, typed by entity_types; keys of
    another view or of another shape are not sampled."""
    planter = Planter(private_admin)
    planter.hset(b"f:user_merchant:7:m:1", {b"spend": b"2.5", b"_ts": b"1795669200"})
    planter.hset(b"f:user_merchant:8:m2", {b"spend": b"", b"_ts": b"1795669200"})
    planter.hset(b"f:user_merchant:x:m3", {b"spend": b"1", b"_ts": b"1795669200"})  # not an int
    planter.hset(b"f:other_view:9:m9", {b"spend": b"1", b"_ts": b"1795669200"})
    cfg = config(
        private.url, layout="hash", key_template="f:{feature_view}:{user_id}:{merchant_id}"
    )
    with opened(cfg) as store:
        spend = store.read(PAIRS, [(7, "m:1"), (8, "m2")], "offline")
        assert [e.features["spend"].value for e in spend.entities] == [2.5, None]
        assert set(store.sample_keys(PAIRS, 10)) == {(7, "m:1"), (8, "m2")}


def test_a_shared_plain_hash_explains_the_features_of_known_views(planter: Planter) -> None:
    """Without {feature_view} views share a hash: known views' features are not undeclared."""
    prefix = unique("ft")
    planter.hset(f"{prefix}:1".encode(), {b"orders": b"1", b"age": b"41", b"_ts": b"1795669200"})
    cfg = config(layout="hash", key_template=prefix + ":{user_id}")
    with opened(cfg) as unaware:
        assert unaware.read(USERS, [(1,)], "offline").undeclared_fields == {"age"}
    with opened(cfg, known_views=[PROFILE]) as aware:
        assert aware.read(USERS, [(1,)], "offline").undeclared_fields == frozenset()


@pytest.mark.parametrize(
    ("template", "what"),
    [("f:{user}", r"missing \['user_id'\]"), ("f:{user_id!r}", "placeholders like")],
)
def test_a_template_that_cannot_key_the_view_fails_the_probe(template: str, what: str) -> None:
    """A bad template is a QueryFailed on read and sample, not a crash at start (config.yaml
    refuses a conversion at load; a config built in code skips that, hence model_copy)."""
    cfg = config(layout="hash", key_template="f:{user_id}").model_copy(
        update={"key_template": template}
    )
    with opened(cfg) as store:
        with pytest.raises(QueryFailed, match=what):
            store.read(USERS, [(1,)], "offline")
        with pytest.raises(QueryFailed, match=what):
            store.sample_keys(USERS, 5)


# --- errors ------------------------------------------------------------------------------------


def test_a_wrong_password_is_unavailable_without_the_password(shared: str) -> None:
    """WRONGPASS becomes StoreUnavailable naming the store; the password appears nowhere."""
    url = with_credentials(REDIS_URL, unique("featmon_nobody_"), SECRET)
    with (
        opened(config(url, project=shared)) as store,
        pytest.raises(StoreUnavailable, match="store 'online': authentication") as caught,
    ):
        store.read(USERS, [(1,)], "offline")
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)


def test_a_closed_port_is_unavailable_without_the_password() -> None:
    """Connection refused becomes StoreUnavailable; the URL's password is not in the message."""
    url = f"redis://default:{SECRET}@127.0.0.1:{free_port()}/0"
    with opened(config(url, project="p")) as store:
        with pytest.raises(StoreUnavailable, match="cannot reach the server") as caught:
            store.sample_keys(USERS, 5)
        with pytest.raises(StoreUnavailable):
            store.read(USERS, [], "offline")  # even with nothing to read
    assert SECRET not in str(caught.value)


def test_a_server_that_never_answers_is_a_probe_timeout() -> None:
    """A listener that accepts and stays silent: ProbeTimeout after about the timeout."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        with opened(config(f"redis://127.0.0.1:{port}/0", project="p", timeout="300ms")) as store:
            started = time.monotonic()
            with pytest.raises(ProbeTimeout, match=r"0\.3s timeout"):
                store.read(USERS, [(1,)], "offline")
    assert time.monotonic() - started < 3


def test_a_url_of_another_scheme_is_refused_at_construction() -> None:
    """An http:// URL is not a Redis URL: StoreUnavailable before any connection."""
    with pytest.raises(StoreUnavailable, match="found http://"):
        RedisOnlineStore("online", config("http://127.0.0.1:6379", project="p"))


# --- a read-only ACL user ----------------------------------------------------------------------


def test_a_read_only_acl_user_can_read_and_sample(
    private: Server, private_admin: redis.Redis, planted_private: str
) -> None:
    """+@read +@connection is enough: the same readings and keys as the admin gets."""
    with opened(config(private.url, project=planted_private)) as store:
        expected = store.read(USERS, [(1,), (3,), (4,), (99,)], "offline")
    with acl_user([private_admin], ["+@read", "+@connection"]) as user:
        url = with_credentials(private.url, user, SECRET)
        with opened(config(url, project=planted_private)) as store:
            assert store.read(USERS, [(1,), (3,), (4,), (99,)], "offline") == expected
            assert set(store.sample_keys(USERS, 100)) == SAMPLED_USERS


def test_a_user_without_a_read_command_gets_query_failed_naming_it(
    private: Server, private_admin: redis.Redis, planted_private: str
) -> None:
    """NOPERM is QueryFailed naming the refused command, not an unavailable store."""
    with acl_user([private_admin], ["+@read", "+@connection", "-hgetall"]) as user:
        url = with_credentials(private.url, user, SECRET)
        with (
            opened(config(url, project=planted_private)) as store,
            pytest.raises(QueryFailed, match="may not run HGETALL") as caught,
        ):
            store.read(USERS, [(1,)], "offline")
    assert SECRET not in str(caught.value)


# --- TLS and Cluster, on throwaway servers --------------------------------------------------------


def test_a_rediss_url_reads_through_tls(tmp_path: Path) -> None:
    """A TLS-only server with a self-signed certificate, verified through the URL's CA file."""
    cert, key = self_signed_cert(tmp_path)
    tls = ("--tls-cert-file", str(cert), "--tls-key-file", str(key),
           "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no")  # fmt: skip
    with redis_server(tmp_path / "tls", *tls, tls=True) as server:
        url = f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={cert}"
        admin = redis.Redis.from_url(url)
        try:
            write_hash(admin, feast_key("p", [1]), feast_hash("user_stats", users(orders=5), T1))
        finally:
            admin.close()
        with opened(config(url, project="p")) as store:
            assert readings(store, (1,)) == {"orders": FeatureReading(FeatureState.VALUE, 5)}
            assert store.sample_keys(USERS, 5) == [(1,)]
        plain = config(f"redis://127.0.0.1:{server.port}/0", project="p", timeout="2s")
        with opened(plain) as store, pytest.raises(StoreUnavailable):
            store.read(USERS, [(1,)], "offline")  # the TLS port refuses plain text


def test_a_cluster_is_read_and_sampled_across_its_nodes(tmp_path: Path) -> None:
    """Three primaries: keys spread over slots are read through one pipeline per batch and
    sampled from every node."""
    with redis_cluster(tmp_path) as servers:
        admin = RedisCluster(host="127.0.0.1", port=servers[0].port)
        try:
            for uid in range(30):
                write_hash(
                    admin, feast_key("p", [uid]), feast_hash("user_stats", users(orders=uid), T1)
                )
        finally:
            admin.close()
        holders = [server.port for server in servers if key_count(server)]
        assert len(holders) == 3  # the keys really are spread over the nodes
        cfg = config(
            f"redis://127.0.0.1:{servers[1].port}/0", project="p", cluster=True, batch_size=7
        )
        with opened(cfg) as store:
            observation = store.read(USERS, [(uid,) for uid in range(32)], "offline")
            orders = [
                e.features["orders"].value if e.present else None for e in observation.entities
            ]
            assert orders == [*range(30), None, None]
            assert set(store.sample_keys(USERS, 100)) == {(uid,) for uid in range(30)}


def test_a_read_only_cluster_user_needs_only_the_slot_map_beyond_read(tmp_path: Path) -> None:
    """+@read +@connection +cluster|slots on every node is enough to read and sample."""
    with redis_cluster(tmp_path) as servers, contextlib.ExitStack() as stack:
        admin = RedisCluster(host="127.0.0.1", port=servers[0].port)
        try:
            write_hash(admin, feast_key("p", [1]), feast_hash("user_stats", users(orders=1), T1))
        finally:
            admin.close()
        nodes = [stack.enter_context(contextlib.closing(admin_client(s.url))) for s in servers]
        with acl_user(nodes, ["+@read", "+@connection", "+cluster|slots"]) as user:
            url = with_credentials(servers[0].url, user, SECRET)
            with opened(config(url, project="p", cluster=True)) as store:
                assert store.read(USERS, [(1,)], "offline").found == 1
                assert store.sample_keys(USERS, 10) == [(1,)]


def test_an_unreachable_cluster_is_unavailable_on_use_not_at_construction() -> None:
    """Creating a cluster client talks to the cluster, so it happens on first use."""
    store = RedisOnlineStore(
        "online", config(f"redis://127.0.0.1:{free_port()}/0", project="p", cluster=True)
    )
    try:
        with pytest.raises(StoreUnavailable, match="store 'online'"):
            store.sample_keys(USERS, 5)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("checks", "command"),
    [
        ([{"kind": "coverage", "min": 0.5}, {"kind": "freshness", "max": "1d"}], "hmget"),
        (
            [{"kind": "coverage", "min": 0.5}, {"kind": "schema_drift", "target": "online"}],
            "hgetall",
        ),
    ],
    ids=["no-online-schema-drift", "online-schema-drift"],
)
def test_a_probe_reads_whole_hashes_only_for_an_online_schema_drift_check(
    private: Server,
    private_admin: redis.Redis,
    planted_private: str,
    checks: list[dict[str, object]],
    command: str,
) -> None:
    """Only online schema drift needs the fields nothing declares: without it the probe reads
    the view's fields alone (HMGET), with it whole hashes (HGETALL)."""
    probed = view(online={"store": "redis", "population": "online", "sample": 100}, checks=checks)
    with opened(config(private.url, project=planted_private)) as store:
        before = {c: command_calls(private_admin, c) for c in ("hgetall", "hmget")}
        results = probe_view(probed, tuple(plan_view(probed)), Stores({"redis": store}, {}), T1)
        after = {c: command_calls(private_admin, c) for c in ("hgetall", "hmget")}
    assert all(r.status is not Status.ERROR for r in results), results
    used = {c for c in after if after[c] > before[c]}
    assert used == {command}
