"""The redis-py boundary of the Redis store: the client, pipelined hash reads, SCAN walks, and
the translation of redis-py errors into featmon's own (most specific first).

Only commands of ACL categories `@read` (HGETALL, HEXISTS, SCAN) and `@connection` (AUTH,
PING, CLIENT SETINFO, whose refusal redis-py ignores) are sent to a standalone server, so a
user created with `+@read +@connection` is enough. A cluster client also asks a node for its
slot map at start (CLUSTER SLOTS, in no category but @slow): grant `+cluster|slots` there too.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlparse

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    ClusterError,
    NoPermissionError,
    RedisClusterException,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from checks.secrets import Secrets
from monitor.errors import ProbeTimeout, QueryFailed, StoreError, StoreUnavailable

Client = redis.Redis | RedisCluster
_BYTES_ONLY = frozenset({bytes})


@dataclass(frozen=True)
class HashReads:
    """What the HGETALLs of one read found: every field and value of each key's hash (an
    empty mapping when the key does not exist), and the keys that hold something other than
    a hash, which have no entry in `hashes`."""

    hashes: Mapping[bytes, Mapping[bytes, bytes]]
    wrong_type: frozenset[bytes]


@dataclass
class ScanWalk:
    """A walk of one node's keyspace by SCAN from a random cursor: it follows the cursors the
    server returns and starts over at 0 when one comes back as 0; a pass from 0 back to 0 has
    visited every key (only a small keyspace gets that far), and ends the walk."""

    node: redis.Redis
    cursor: int
    from_zero: bool = False
    done: bool = False

    def __post_init__(self) -> None:
        self.from_zero = self.cursor == 0

    def advance(self, returned: int) -> None:
        self.cursor = returned
        if returned == 0:
            self.done = self.from_zero
            self.from_zero = True


class Connection:
    """A store's client and the commands the store sends through it. Creates the client from
    the URL unless one is injected, and closes only a client it created. A cluster client is
    created on first use, because creating one already talks to the cluster."""

    def __init__(
        self,
        store: str,
        url: str,
        *,
        cluster: bool,
        timeout: timedelta,
        client: Client | None = None,
    ) -> None:
        self.store = store
        self.timeout = timeout
        self._url = url
        self._secrets = Secrets.of([url])
        self._owned = client is None
        if client is None:
            self._check_url()
        self._client: Client | None = client
        if client is None and not cluster:
            with self.translated("client setup"):
                self._client = redis.Redis.from_url(url, **self._options())

    def _check_url(self) -> None:
        try:
            scheme = urlparse(self._url).scheme
        except ValueError as exc:
            raise StoreUnavailable(self.store, "the URL is not a valid URL") from exc
        if scheme not in ("redis", "rediss", "unix"):
            raise StoreUnavailable(
                self.store, f"expected a redis://, rediss:// or unix:// URL, found {scheme}://"
            )

    def _options(self) -> dict[str, object]:
        seconds = self.timeout.total_seconds()
        return {
            # RESP2 unless the URL asks (`?protocol=3`): every server speaks it, and it needs
            # no HELLO, which servers before Redis 6 and some proxies refuse.
            "protocol": 2,
            "socket_timeout": seconds,
            "socket_connect_timeout": seconds,
            # One immediate reconnect for a pooled connection the server has dropped; a
            # timeout is not retried, so no call runs much past `timeout`.
            "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        }

    def client(self) -> Client:
        if self._client is None:
            with self.translated("cluster discovery"):
                self._client = RedisCluster.from_url(self._url, **self._options())
        return self._client

    @contextlib.contextmanager
    def translated(self, action: str) -> Iterator[None]:
        """Runs redis-py calls, translating their errors into a `StoreError` that names the
        store and `action`, raised from the original."""
        try:
            yield
        except StoreError:
            raise
        except (RedisError, RedisClusterException, ValueError, OSError) as exc:
            raise self.translate(exc, action) from exc

    def translate(self, exc: Exception, action: str) -> StoreError:
        """The featmon error for a redis-py error: its first line, never the password."""
        text = self._secrets.scrub((str(exc).strip().splitlines() or [type(exc).__name__])[0])
        if isinstance(exc, RedisTimeoutError | TimeoutError):
            seconds = self.timeout.total_seconds()
            return ProbeTimeout(self.store, f"{action} ran past the {seconds:g}s timeout: {text}")
        if isinstance(exc, AuthenticationError | AuthorizationError):
            return StoreUnavailable(self.store, f"authentication failed: {text}")
        if isinstance(exc, NoPermissionError):
            return QueryFailed(self.store, f"the user may not run {action}: {text}")
        if isinstance(exc, RedisConnectionError | OSError):
            return StoreUnavailable(self.store, f"{action}: cannot reach the server: {text}")
        if isinstance(exc, ClusterError | RedisClusterException):
            return StoreUnavailable(self.store, f"{action}: the cluster is unavailable: {text}")
        if isinstance(exc, ValueError) and not isinstance(exc, RedisError):
            return StoreUnavailable(self.store, f"{action}: invalid connection settings: {text}")
        return QueryFailed(self.store, f"{action} failed: {text}")

    def check_deadline(self, deadline: float, action: str) -> None:
        """Raises ProbeTimeout when the whole read or sample has run past the timeout."""
        if time.monotonic() > deadline:
            seconds = self.timeout.total_seconds()
            raise ProbeTimeout(
                self.store, f"stopped before {action}: past the {seconds:g}s timeout"
            )

    def read_hashes(
        self,
        keys: Sequence[bytes],
        batch_size: int,
        deadline: float,
        fields: Sequence[bytes] | None = None,
    ) -> HashReads:
        """One HGETALL of each key (or, given `fields`, one HMGET of those fields, the hash
        then holding the ones present), pipelined `batch_size` keys a round trip: on a
        standalone server packed by hand and sent on one of the client's pooled connections
        (`_batch`), on a cluster through the cluster client's pipeline, which routes each key
        to its node."""
        hashes: dict[bytes, dict[bytes, bytes]] = {}
        wrong_type: set[bytes] = set()
        client = self.client()
        command = "HGETALL" if fields is None else "HMGET"
        for start in range(0, len(keys), batch_size):
            batch = keys[start : start + batch_size]
            self.check_deadline(deadline, command)
            with self.translated(command):
                if isinstance(client, RedisCluster):
                    replies = self._pipelined(client, batch, fields)
                else:
                    replies = _batch(client, batch, fields)
            for key, reply in zip(batch, replies, strict=True):
                if type(reply) is dict:  # of bytes, both ways
                    hashes[key] = reply
                elif isinstance(reply, ResponseError) and str(reply).startswith("WRONGTYPE"):
                    wrong_type.add(key)
                else:
                    hashes[key] = self._as_hash(reply)
        return HashReads(hashes, frozenset(wrong_type))

    def _pipelined(
        self, client: RedisCluster, keys: Sequence[bytes], fields: Sequence[bytes] | None
    ) -> list[object]:
        """The cluster pipeline's replies to one HGETALL (or HMGET of `fields`) of each key;
        a mapping holding anything but bytes (a client made with `decode_responses=True`) made
        one of bytes."""
        pipe = client.pipeline(transaction=False)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        for key in keys:
            if fields is None:
                pipe.hgetall(key)
            else:
                pipe.hmget(key, list(fields))
        replies: list[object] = pipe.execute(raise_on_error=False)
        if fields is not None:
            replies = [_present(fields, reply) for reply in replies]
        # The usual reply, a dict of bytes, is taken as it is: checking its types in C costs a
        # fraction of converting it item by item.
        return [
            reply
            if type(reply) is not dict
            or (
                _BYTES_ONLY.issuperset(map(type, reply))
                and _BYTES_ONLY.issuperset(map(type, reply.values()))
            )
            else self._as_hash(reply)
            for reply in replies
        ]

    def _as_hash(self, result: object) -> dict[bytes, bytes]:
        """A reply other than a dict of bytes: a redis-py error translated, or the fields and
        values of a client made with `decode_responses=True` encoded back to bytes."""
        if isinstance(result, Exception):
            raise self.translate(result, "HGETALL") from result
        if not isinstance(result, dict):
            raise QueryFailed(self.store, "HGETALL returned something other than a mapping")
        converted: dict[bytes, bytes] = {}
        for name, value in result.items():
            field, data = _as_bytes(name), _as_bytes(value)
            if field is not None and data is not None:
                converted[field] = data
        return converted

    def hold_field(
        self, keys: Sequence[bytes], field: bytes, batch_size: int, deadline: float
    ) -> list[bool]:
        """Whether each key is a hash holding `field`: pipelined HEXISTS, `batch_size` keys a
        round trip."""
        held: list[bool] = []
        for start in range(0, len(keys), batch_size):
            self.check_deadline(deadline, "HEXISTS")
            with self.translated("HEXISTS"):
                pipe = self.client().pipeline(transaction=False)
                for key in keys[start : start + batch_size]:
                    pipe.hexists(key, field)
                results = pipe.execute(raise_on_error=False)
            for result in results:
                if isinstance(result, ResponseError) and str(result).startswith("WRONGTYPE"):
                    held.append(False)
                elif isinstance(result, Exception):
                    raise self.translate(result, "HEXISTS") from result
                else:
                    held.append(bool(result))
        return held

    def ping(self) -> None:
        """One PING: raises the translated error when the server cannot be reached."""
        with self.translated("PING"):
            self.client().ping()

    def scan_nodes(self) -> list[redis.Redis]:
        """The servers whose keyspaces together hold every key: the primaries of a cluster."""
        client = self.client()
        if isinstance(client, RedisCluster):
            with self.translated("cluster discovery"):
                primaries = client.get_primaries()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                return [client.get_redis_connection(node) for node in primaries]
        return [client]

    def scan(self, walk: ScanWalk, match: bytes, count: int, deadline: float) -> list[bytes]:
        """One SCAN call of `walk`, which it advances; the keys it returned."""
        self.check_deadline(deadline, "SCAN")
        with self.translated("SCAN"):
            cursor, keys = walk.node.scan(cursor=walk.cursor, match=match, count=count)
        walk.advance(int(cursor))
        return [key for key in (_as_bytes(k) for k in keys) if key is not None]

    def close(self) -> None:
        """Close the client if this connection created it."""
        if self._owned and self._client is not None:
            self._client.close()
        self._client = None


_HGETALL = b"*2\r\n$7\r\nHGETALL\r\n$%d\r\n%s\r\n"
"""One HGETALL in RESP, the key left to fill in."""


def _hmget(key: bytes, fields: bytes, count: int) -> bytes:
    """One HMGET of `count` fields (already packed as RESP bulk strings) in RESP."""
    return b"*%d\r\n$5\r\nHMGET\r\n$%d\r\n%s\r\n%s" % (count + 2, len(key), key, fields)


def _present(fields: Sequence[bytes], reply: object) -> object:
    """An HMGET reply (a value or None per field) as the hash of the fields present; an
    error or anything unexpected is left as it is."""
    if type(reply) is not list:
        return reply
    return {field: value for field, value in zip(fields, reply, strict=False) if value is not None}


def _batch(
    client: redis.Redis, keys: Sequence[bytes], fields: Sequence[bytes] | None
) -> list[object]:
    """The replies to one HGETALL (or HMGET of `fields`) of each key, sent in one write on a
    connection of the client's pool and read back in order: a dict of bytes each (read
    undecoded, whatever the client's `decode_responses`; of the fields present, for HMGET), or
    the `ResponseError` of a key. The same commands and round trips as the client's pipeline,
    without its per-command Python layers (queueing, packing, response callbacks), which took
    most of a read's time (bench/README.md). A dropped connection is retried as the client's
    `retry` says, with the whole batch; a timeout or any other error leaves the connection
    closed, never with replies unread."""
    pool = client.connection_pool
    try:
        connection = pool.get_connection()
    except TypeError:  # older redis-py wants the name of a command
        connection = pool.get_connection("HGETALL")  # type: ignore[call-arg, unused-ignore]  # redis-py before 5.3 requires a command name
    if fields is None:
        packed = b"".join([_HGETALL % (len(key), key) for key in keys])
    else:
        bulk = b"".join(b"$%d\r\n%s\r\n" % (len(field), field) for field in fields)
        packed = b"".join([_hmget(key, bulk, len(fields)) for key in keys])

    def exchange() -> list[object]:
        connection.send_packed_command([packed])  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        read = connection.read_response
        replies: list[object] = []
        for _ in keys:
            try:
                reply = read(disable_decoding=True)
            except ResponseError as exc:  # read whole; the next reply follows
                replies.append(exc)
                continue
            if fields is not None:  # HMGET: a value or None per field
                replies.append(_present(fields, reply))
                continue
            if type(reply) is list:  # RESP2: field, value, field, value, ...
                pairs = iter(reply)
                reply = dict(zip(pairs, pairs, strict=False))
            replies.append(reply)  # RESP3: already a mapping
        return replies

    def failed(error: Exception) -> None:  # noqa: ARG001 - the signature redis-py calls
        connection.disconnect()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped

    try:
        result: list[object] = connection.retry.call_with_retry(exchange, failed)
    finally:
        pool.release(connection)
    return result


def _as_bytes(raw: object) -> bytes | None:
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, str):  # a client made with decode_responses=True
        return raw.encode("utf-8")
    return None
