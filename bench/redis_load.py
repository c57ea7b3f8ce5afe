"""A private redis-server for a benchmark, and a bulk writer of Feast's Redis layout into it.

The server listens on a free loopback port, keeps nothing on disk (`--save ""`, `--appendonly
no`) and is killed when its context ends, so a benchmark never touches a shared server.

`FeastLoader` writes what Feast 0.67's `online_write_batch` writes for one feature view (one
HSET per entity: mmh3 feature fields holding serialized `feast.types.Value`s, and
`_ts:{view}` holding a protobuf Timestamp), but as raw RESP over one socket, `BATCH` commands a
round trip, because redis-py's command packing would take most of the load time. Every value
and event time is encoded by featmon's own encoders: a feature given as a pool of values is
encoded once per pool entry, a feature given as a function of the entity id (a value distinct
per entity) once per entity. The fast key encoding is checked against
`encode_entity_key` before anything is written.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from monitor.feast.codec import encode_entity_key, encode_value
from monitor.feast.redis_layout import (
    encode_timestamp,
    entity_key_prefix,
    feature_field,
    redis_key,
    timestamp_field,
)

START_TIMEOUT = 20.0
"""Seconds the server has to start listening."""
BATCH = 10_000
"""HSET commands a round trip while loading."""
_INT64_HEADER = struct.pack("<II", 4, 8)  # Feast's ValueType.INT64, 8 bytes of value


class BenchError(RuntimeError):
    """Something the benchmark needs did not work: it cannot report numbers."""


@dataclass
class PrivateRedis:
    """A redis-server process this benchmark started, and the port it listens on."""

    process: subprocess.Popen[bytes]
    port: int
    workdir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def log_tail(self) -> str:
        log = self.workdir / "redis.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(server: PrivateRedis) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(
                f"redis-server exited with {server.process.returncode}: {server.log_tail()}"
            )
        try:
            with socket.create_connection(("127.0.0.1", server.port), 1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return
        except OSError:  # not listening yet (or still loading): poll again
            pass
        time.sleep(0.05)
    raise BenchError(f"redis-server did not answer on port {server.port} in {START_TIMEOUT:g}s")


@contextlib.contextmanager
def private_redis(workdir: Path) -> Iterator[PrivateRedis]:
    """A redis-server on a free loopback port that keeps nothing on disk; killed on exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise BenchError("redis-server is missing: apt-get install redis-server")
    port = _free_port()
    command = [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(workdir),
        "--logfile", str(workdir / "redis.log"),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603 - a fixed command line of our own
    server = PrivateRedis(process, port, workdir)
    try:
        _wait_listening(server)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=START_TIMEOUT)


def _bulk(data: bytes) -> bytes:
    """`data` as a RESP bulk string."""
    return b"$%d\r\n%s\r\n" % (len(data), data)


@dataclass(frozen=True)
class FeastView:
    """The one feature view loaded: Feast's name, project and features (name -> dtype)."""

    project: str
    name: str
    join_key: str
    features: dict[str, str]


Values = Sequence[object] | Callable[[int], object]
"""One feature's values: a pool (entity `i` gets entry `i` modulo its size), or the value of
entity `i` as a function of `i`."""


class FeastLoader:
    """Writes entities `user_id = 1..n` of one view, as Feast lays them out, over one socket,
    into database `db`.

    `values` maps each feature to its `Values`; `times` are a pool of event times, entity `i`
    getting entry `i` modulo its size. Closes its socket in `close`."""

    def __init__(
        self,
        port: int,
        view: FeastView,
        values: Mapping[str, Values],
        times: Sequence[datetime],
        db: int = 0,
    ) -> None:
        self.view = view
        self._prefix = entity_key_prefix([view.join_key]) + _INT64_HEADER
        self._suffix = view.project.encode("utf-8")
        self._check_key(12_345)
        self._header = b"*%d\r\n$4\r\nHSET\r\n" % (2 + 2 * (len(view.features) + 1))
        # Per feature: its field as a bulk string, and either the pool's fields and values
        # encoded once, or the function giving entity i's value and the dtype to encode it as.
        self._pools: list[list[bytes]] = []
        self._distinct: list[tuple[bytes, Callable[[int], object], str]] = []
        for name, dtype in view.features.items():
            field = _bulk(feature_field(view.name, name))
            given = values[name]
            if callable(given):
                self._distinct.append((field, given, dtype))
            else:
                self._pools.append([field + _bulk(encode_value(value, dtype)) for value in given])
        time_field = _bulk(timestamp_field(view.name))
        self._pools.append([time_field + _bulk(encode_timestamp(t)) for t in times])
        self._sock = socket.create_connection(("127.0.0.1", port), START_TIMEOUT)
        if db:
            self._sock.sendall(b"SELECT %d\r\n" % db)
            self._read_replies(1, b"+OK")

    def key(self, user_id: int) -> bytes:
        """The Redis key of one entity (the fast path of `redis_key(encode_entity_key(...))`)."""
        return self._prefix + struct.pack("<q", user_id) + self._suffix

    def _check_key(self, user_id: int) -> None:
        slow = redis_key(
            encode_entity_key([self.view.join_key], [user_id], ["int64"]), self.view.project
        )
        if self.key(user_id) != slow:
            raise BenchError(f"the fast key encoding differs: {self.key(user_id)!r} != {slow!r}")

    def _command(self, user_id: int) -> bytes:
        parts = [self._header, _bulk(self.key(user_id))]
        parts.extend(pool[user_id % len(pool)] for pool in self._pools)
        for field, value, dtype in self._distinct:
            parts.append(field + _bulk(encode_value(value(user_id), dtype)))
        return b"".join(parts)

    def load(self, first: int, last: int) -> None:
        """HSET the entities `first..last` (inclusive), `BATCH` a round trip."""
        for start in range(first, last + 1, BATCH):
            ids = range(start, min(start + BATCH, last + 1))
            try:
                self._sock.sendall(b"".join(self._command(user_id) for user_id in ids))
                self._read_replies(len(ids))
            except OSError as exc:
                raise BenchError(f"loading entities {start}..{ids[-1]} failed: {exc}") from exc

    def _read_replies(self, count: int, expected: bytes = b":") -> None:
        """Reads `count` replies of one line each (HSET's `:N`); raises BenchError for a reply
        that does not start with `expected`."""
        data = bytearray()
        while data.count(b"\r\n") < count:
            chunk = self._sock.recv(1 << 16)
            if not chunk:
                raise BenchError("redis-server closed the connection while loading")
            data += chunk
        for line in bytes(data).split(b"\r\n")[:count]:
            if not line.startswith(expected):
                raise BenchError(f"redis-server answered {line[:200]!r}")

    def close(self) -> None:
        self._sock.close()


def event_times(now: datetime, count: int) -> list[datetime]:
    """`count` event times one second apart, the newest `now`: all inside a one-day TTL."""
    return [now - timedelta(seconds=index) for index in range(count)]
