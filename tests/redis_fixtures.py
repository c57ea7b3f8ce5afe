"""Test-only helpers for the Redis store: writers of Feast's and the plain-hash layouts (with
featmon's encoders and plain redis-py commands, as Feast's `online_write_batch` writes), and
throwaway redis-server processes (plain, TLS, cluster) on free loopback ports.

The shared server is FEATMON_TEST_REDIS_URL (default 127.0.0.1:6379, db 0); every test writes
under its own project or key prefix and `Planter` deletes what it wrote.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import redis
from redis.cluster import RedisCluster
from redis.typing import EncodableT

from checks.model import FeatureView
from checks.observation import EntityValue
from monitor.config import RedisStoreConfig
from monitor.feast.codec import encode_entity_key, encode_value, infer_entity_dtype
from monitor.feast.redis_layout import (
    encode_timestamp,
    feature_field,
    redis_key,
    timestamp_field,
)
from monitor.stores.redis import RedisOnlineStore

REDIS_URL = os.environ.get("FEATMON_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
START_TIMEOUT = 20.0  # seconds a server (or a cluster) has to come up
CLUSTER_NODES = 3


def unique(prefix: str) -> str:
    """A name no other test run uses."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def feast_key(
    project: str,
    values: Sequence[EntityValue],
    names: Sequence[str] = ("user_id",),
    dtypes: Sequence[str] | None = None,
) -> bytes:
    """The Redis key Feast writes for an entity (types inferred as Feast does unless given)."""
    types = list(dtypes) if dtypes is not None else [infer_entity_dtype(v) for v in values]
    return redis_key(encode_entity_key(names, values, types), project)


def feast_hash(
    view: str, features: Mapping[str, tuple[object, str]], event_time: datetime | None
) -> dict[bytes, bytes]:
    """The fields one view writes into an entity's hash: name -> (value, dtype), and the
    event time (left out when None)."""
    fields = {
        feature_field(view, name): encode_value(value, dtype)
        for name, (value, dtype) in features.items()
    }
    if event_time is not None:
        fields[timestamp_field(view)] = encode_timestamp(event_time)
    return fields


@dataclass
class Planter:
    """Writes keys through an admin client and remembers them, so that `clean` deletes
    exactly what the test wrote."""

    client: redis.Redis | RedisCluster
    written: set[bytes] = field(default_factory=set)

    def hset(self, key: bytes, fields: Mapping[bytes, bytes]) -> None:
        self.written.add(key)
        write_hash(self.client, key, fields)

    def set(self, key: bytes, value: bytes) -> None:
        self.written.add(key)
        self.client.set(key, value)

    def clean(self) -> None:
        for key in self.written:
            self.client.delete(key)
        self.written.clear()


def write_hash(
    client: redis.Redis | RedisCluster, key: bytes, fields: Mapping[bytes, bytes]
) -> None:
    """HSET of `fields` under `key` (what Feast's online_write_batch does per entity)."""
    mapping: dict[EncodableT, EncodableT] = dict(fields.items())
    client.hset(key, mapping=mapping)


def admin_client(url: str = REDIS_URL) -> redis.Redis:
    """A client of the shared test server; fails the test with what to do when it is down."""
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        client.close()
        pytest.fail(f"Redis is not reachable at {url} ({exc}); start redis-server first")
    return client


def require_binary(name: str, package: str) -> str:
    """The path of `name`, or a failed test naming the Debian package that provides it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is missing: install the Debian package {package} (apt-get install {package})"
        )
    return path


def with_credentials(url: str, user: str, password: str) -> str:
    """`url` with this user and password in place of any it had."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{quote(user)}:{quote(password)}@{host}"))


def free_port() -> int:
    """A loopback TCP port that nothing listens on right now."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A redis-server process of a test."""

    process: subprocess.Popen[bytes]
    port: int
    workdir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=START_TIMEOUT)


def _wait_listening(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log = (server.workdir / "redis.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"redis-server exited with {server.process.returncode}: {log}")
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", server.port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"redis-server did not listen on port {server.port} within {START_TIMEOUT:g}s")


@contextlib.contextmanager
def redis_server(workdir: Path, *args: str, tls: bool = False) -> Iterator[Server]:
    """A redis-server on a free loopback port that keeps nothing on disk, killed on exit.
    With `tls` the port speaks TLS only (certificates given in `args`)."""
    binary = require_binary("redis-server", "redis-server")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    listen = ["--port", "0", "--tls-port", str(port)] if tls else ["--port", str(port)]
    command = [
        binary,
        *listen,
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(workdir),
        "--logfile", str(workdir / "redis.log"),
        *args,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Server(process, port, workdir)
    try:
        _wait_listening(server)
        yield server
    finally:
        server.stop()


def self_signed_cert(workdir: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 and its key, made by openssl."""
    openssl = require_binary("openssl", "openssl")
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=START_TIMEOUT,
    )
    return cert, key


@contextlib.contextmanager
def redis_cluster(workdir: Path) -> Iterator[list[Server]]:
    """CLUSTER_NODES cluster-enabled primaries joined by `redis-cli --cluster create`, up and
    covering every slot; killed on exit."""
    cli = require_binary("redis-cli", "redis-tools")
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(
                redis_server(
                    workdir / f"node{index}",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(workdir / f"node{index}" / "nodes.conf"),
                    "--cluster-port",
                    str(free_port()),
                    "--cluster-node-timeout",
                    "2000",
                )
            )
            for index in range(CLUSTER_NODES)
        ]
        addresses = [f"127.0.0.1:{server.port}" for server in servers]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT * 3,
        )
        _wait_cluster_ok(servers)
        yield servers


def _wait_cluster_ok(servers: Sequence[Server]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    pending = list(servers)
    while pending and time.monotonic() < deadline:
        client = redis.Redis(port=pending[0].port, socket_timeout=2)
        try:
            state = client.execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        finally:
            client.close()
        text = state.decode() if isinstance(state, bytes) else str(state)
        if "cluster_state:ok" in text:
            pending.pop(0)
        else:
            time.sleep(0.1)
    if pending:
        pytest.fail(f"the test cluster did not reach cluster_state:ok within {START_TIMEOUT:g}s")


def command_calls(client: redis.Redis, command: str) -> int:
    """How many times the server ran `command` since its start (INFO commandstats)."""
    stats = client.info("commandstats")
    entry = stats.get(f"cmdstat_{command.lower()}", {})
    return int(entry.get("calls", 0)) if isinstance(entry, dict) else 0


# --- stores and users ---------------------------------------------------------------------------

SECRET = "s3cr3t-Pa55w0rd"
"""The password of test users, which no error message may contain."""


def config(url: str = REDIS_URL, **fields: object) -> RedisStoreConfig:
    """A Redis store config for `url`; fields as config.yaml spells them."""
    return RedisStoreConfig.model_validate({"type": "redis", "url": url, **fields})


@contextlib.contextmanager
def opened(
    cfg: RedisStoreConfig,
    known_views: Iterable[FeatureView] = (),
    client: redis.Redis | None = None,
) -> Iterator[RedisOnlineStore]:
    """A store named `online` with a seeded rng, closed on exit."""
    store = RedisOnlineStore(
        "online", cfg, known_views=known_views, client=client, rng=random.Random(7)
    )
    try:
        yield store
    finally:
        store.close()


@contextlib.contextmanager
def acl_user(clients: Sequence[redis.Redis], rules: Sequence[str]) -> Iterator[str]:
    """A throwaway ACL user on each server (a cluster's nodes keep their own ACLs) with
    password SECRET, every key, and `rules` (+@category, +command, -command); deleted after."""
    name = unique("featmon_ro_")
    for client in clients:
        client.acl_setuser(
            name,
            enabled=True,
            passwords=[f"+{SECRET}"],
            keys=["*"],
            categories=[rule for rule in rules if "@" in rule],
            commands=[rule for rule in rules if "@" not in rule],
            reset=True,
        )
    try:
        yield name
    finally:
        for client in clients:
            client.acl_deluser(name)


def key_count(server: Server) -> int:
    """How many keys a server holds."""
    client = admin_client(server.url)
    try:
        return int(client.dbsize())
    finally:
        client.close()


def plain_hash(fields: Mapping[str, str | bytes]) -> dict[bytes, bytes]:
    """A hash of the plain layout: field names and text values (bytes kept as they are)."""
    return {
        name.encode("utf-8"): value if isinstance(value, bytes) else value.encode("utf-8")
        for name, value in fields.items()
    }


# --- planted facts ------------------------------------------------------------------------------

T1 = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
STALE = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
ORPHAN = bytes.fromhex("deadbeef")
CORRUPT_VALUE = b"\x48\x01"  # field 9 of feast.types.Value does not exist
CORRUPT_TIME = b"\xff"  # a truncated varint
USER_FEATURES = {"revenue": "float", "orders": "int64", "segment": "string"}


def users(**values: object) -> dict[str, tuple[object, str]]:
    """user_stats features by name -> (value, dtype); features not given are not written."""
    return {name: (value, USER_FEATURES[name]) for name, value in values.items()}


def view(name: str = "user_stats", **overrides: object) -> FeatureView:
    """A feature view on user_id (user_stats's features unless overridden)."""
    spec: dict[str, object] = {
        "name": name,
        "entity": "user_id",
        "ttl": "1d",
        "features": {"revenue": "float", "orders": "int64", "segment": "string"},
        "online": {"store": "redis"},
    }
    spec.update(overrides)
    return FeatureView.model_validate(spec)


USERS = view()
PROFILE = view("user_profile", features={"age": "int64"})
PAIRS = view(
    "user_merchant",
    entity=["user_id", "merchant_id"],
    entity_types={"user_id": "int64", "merchant_id": "string"},
    features={"spend": "double"},
)
SAMPLED_USERS = {(1,), (2,), (3,), (4,), (7,), (8,)}
"""The users `plant_feast` gives a hash holding _ts:user_stats: what sampling must find."""
PLAIN = view(
    "plain_stats",
    features={"revenue": "float", "orders": "int64", "active": "bool", "segment": "string",
              "blob": "bytes", "seen": "timestamp"},
)  # fmt: skip


def plant_feast(planter: Planter, project: str, other_project: str) -> None:
    """The Feast-layout facts the store tests assert, in `project`; `other_project` ends with
    `project` and holds keys that must never be read or sampled as `project`'s."""

    def key(uid: int) -> bytes:
        return feast_key(project, [uid])

    def pair(uid: int, merchant: str) -> bytes:
        names, dtypes = ["user_id", "merchant_id"], ["int64", "string"]
        return feast_key(project, [uid, merchant], names, dtypes)

    planter.hset(
        key(1), feast_hash("user_stats", users(revenue=12.5, orders=3, segment="gold"), T1)
    )
    planter.hset(key(2), feast_hash("user_stats", users(revenue=None, orders=4, segment=""), STALE))
    planter.hset(
        key(3),
        {
            **feast_hash("user_stats", users(revenue=1.0), T1),
            ORPHAN: b"x",  # a field nothing declares
            feature_field("user_stats", "legacy_score"): encode_value(0.5, "double"),  # removed
        },
    )
    planter.hset(
        key(4),
        {
            **feast_hash("user_stats", users(orders=9), None),
            feature_field("user_stats", "revenue"): CORRUPT_VALUE,
            timestamp_field("user_stats"): CORRUPT_TIME,
        },
    )
    planter.hset(key(5), feast_hash("user_profile", {"age": (41, "int64")}, T1))
    planter.set(key(6), b"not a hash")
    planter.hset(key(7), feast_hash("user_stats", {}, T1))
    planter.hset(
        key(8),
        {
            **feast_hash("user_stats", users(revenue=2.0, orders=1, segment="silver"), T1),
            **feast_hash("user_profile", {"age": (30, "int64")}, T1),
        },
    )
    for uid in (1, 100, 101, 102):
        other = feast_hash("user_stats", users(revenue=999.0, orders=0, segment="x"), T1)
        planter.hset(feast_key(other_project, [uid]), other)
    planter.hset(pair(1, "m1"), feast_hash("user_merchant", {"spend": (2.5, "double")}, T1))
    planter.hset(pair(2, "m2"), feast_hash("user_merchant", {"spend": (None, "double")}, T1))
