"""Feast's SQL online stores (SQLite and PostgreSQL), read with SQLAlchemy Core.

Feast keeps one table per feature view, named `{project}_{view}` (Feast's `compute_table_id`;
`_v{N}` is appended only when the registry enables feature view versioning, which a view's
`online.table` can name), with one row per entity and feature:

    entity_key BLOB | BYTEA      the serialized entity key (`monitor.feast.codec`, version 3)
    feature_name TEXT
    value BLOB | BYTEA           the serialized `feast.types.Value`; b"" for None
    value_text TEXT, vector_value
    event_ts, created_ts         SQLite: epoch seconds (older Feast: ISO text); PostgreSQL:
                                 TIMESTAMPTZ, read as aware datetimes
    PRIMARY KEY (entity_key, feature_name), plus an index on entity_key

On PostgreSQL the table lives in the schema Feast's `db_schema` names (default `public`); the
connection's search_path (`?options=-csearch_path%3D...` in the URL) selects it.

Reads select rows by `entity_key IN (...)` with bound parameters only, so the statements are the
same on every dialect. Random keys are drawn by dialect, each at a cost bounded by the sample
size: SQLite draws random rowids (`_RowidDraws`); PostgreSQL reads random pages with
`TABLESAMPLE SYSTEM (p)`, p sized from the catalog's row estimate, each round capped by a LIMIT
(`_PageDraws`).
"""

from __future__ import annotations

import logging
import math
import random
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from types import MappingProxyType
from typing import Protocol

import sqlalchemy as sa

from checks.model import FeatureView
from checks.observation import (
    EntityReading,
    FeatureReading,
    FeatureState,
    OnlineObservation,
)
from monitor.abc import EntityKey, OnlineStore
from monitor.config import FeastSqliteStoreConfig, FeastSqlStoreConfig
from monitor.errors import QueryFailed, SourceNotFound
from monitor.feast.codec import (
    KEY_DTYPES,
    decode_entity_key,
    decode_value,
    encode_entity_key,
    infer_entity_dtype,
)
from monitor.feast.wire import DecodeError
from monitor.stores.sql.engine import open_engine, read_only

log = logging.getLogger(__name__)

KEYS_PER_QUERY = 500
"""Entity keys (or rowids) in one IN list: well below every driver's limit on parameters."""
SAMPLE_ROUNDS = 6
"""Rounds of random draws before `sample_keys` settles for fewer keys than asked."""
DRAWS_PER_KEY = 16
"""The most rows one round of `sample_keys` draws per key asked (rowids on SQLite; rows read
from sampled pages on PostgreSQL)."""
ROWS_PER_PAGE_GUESS = 50.0
"""PostgreSQL: rows per 8 KiB page assumed for a table the catalog has no statistics of yet
(Feast's rows are about 100-160 bytes); the first round's yield corrects it."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?")

_Row = tuple[object, object, object]  # feature_name, value, event_ts as the driver returned them


def feast_table(name: str) -> sa.TableClause:
    """Feast's online table `name`. Columns are left untyped so that whatever a driver returns
    (bytes, memoryview, text, numbers) reaches the decoders, which judge it."""
    return sa.table(
        name,
        sa.column("entity_key"),
        sa.column("feature_name"),
        sa.column("value"),
        sa.column("event_ts"),
        sa.column("rowid"),  # SQLite only: used by `_draw_rows`, never by reads
    )


def select_rows(table: sa.TableClause, keys: Sequence[bytes]) -> sa.Select[tuple[object, ...]]:
    """Every feature row of these serialized entity keys."""
    return sa.select(
        table.c.entity_key, table.c.feature_name, table.c.value, table.c.event_ts
    ).where(table.c.entity_key.in_(keys))


def event_time(raw: object, zone: tzinfo) -> datetime | None:
    """An `event_ts` as an aware UTC datetime: epoch seconds (int, float or digits), ISO text or
    a datetime; naive times are in `zone`. None for SQL NULL; TypeError or ValueError for
    anything else."""
    if raw is None:
        return None
    if isinstance(raw, str) and _NUMBER.fullmatch(raw.strip()):
        raw = float(raw) if "." in raw else int(raw)
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        try:
            return _EPOCH + timedelta(seconds=raw)
        except (OverflowError, ValueError) as exc:
            raise ValueError(f"epoch seconds {raw!r} are out of range") from exc
    if isinstance(raw, str):
        raw = datetime.fromisoformat(raw.strip())  # ValueError when it is not ISO 8601
    if not isinstance(raw, datetime):
        raise TypeError(
            f"expected epoch seconds, ISO text or a datetime, found {type(raw).__name__}"
        )
    if raw.tzinfo is None or raw.utcoffset() is None:
        raw = raw.replace(tzinfo=zone)
    try:
        return raw.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"time {raw} is out of range") from exc


def _as_bytes(raw: object) -> bytes | None:
    """A BLOB as bytes (drivers return bytes or memoryview); None for anything else."""
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, memoryview | bytearray):
        return bytes(raw)
    return None


def encode_key(view: FeatureView, key: EntityKey) -> bytes:
    """The serialized entity key of `key` (values in the order of `view.join_keys`), each value
    encoded as its declared entity type, or as the type Feast infers for it.
    Raises ValueError or TypeError when the key does not fit the view."""
    join_keys = view.join_keys
    if len(key) != len(join_keys):
        raise ValueError(f"expected {len(join_keys)} values for {join_keys}, found {len(key)}")
    dtypes = [
        view.entity_types.get(name) or infer_entity_dtype(value)
        for name, value in zip(join_keys, key, strict=True)
    ]
    return encode_entity_key(join_keys, key, dtypes)


def decode_key(view: FeatureView, blob: bytes) -> EntityKey:
    """The values of a serialized entity key in the order of `view.join_keys`.
    Raises DecodeError when the bytes do not decode or name other join keys."""
    names, values = decode_entity_key(blob)
    by_name = dict(zip(names, values, strict=True))
    if len(by_name) != len(names) or set(by_name) != set(view.join_keys):
        raise DecodeError(f"join keys {list(names)} are not the view's {list(view.join_keys)}", 0)
    return tuple(by_name[name] for name in view.join_keys)


@dataclass
class _Readings:
    """Turns the rows of one read into readings, counting what did not decode."""

    view: FeatureView
    zone: tzinfo
    errors: int = 0
    undeclared: set[str] = field(default_factory=set)

    def entity(self, key: EntityKey, rows: Sequence[_Row]) -> EntityReading:
        if not rows:
            return EntityReading(key=key, present=False)
        features: dict[str, FeatureReading] = {}
        for name, blob, ts in rows:
            if not isinstance(name, str):
                self.errors += 1
                continue
            if name not in self.view.features:
                self.undeclared.add(name)
                continue
            features[name] = self.feature(name, blob, ts)
        return EntityReading(key=key, present=True, features=MappingProxyType(features))

    def feature(self, name: str, blob: object, ts: object) -> FeatureReading:
        when: datetime | None = None
        try:
            when = event_time(ts, self.zone)
        except (TypeError, ValueError) as exc:
            self.errors += 1
            log.debug("view %s feature %s: event_ts did not decode: %s", self.view.name, name, exc)
        if blob is None:  # Feast writes b"" for None; a SQL NULL means the same
            return FeatureReading(FeatureState.NULL, None, when)
        data = _as_bytes(blob)
        if data is None:
            self.errors += 1
            return FeatureReading(FeatureState.UNDECODABLE, None, when)
        try:
            state, value = decode_value(data)
        except DecodeError as exc:
            self.errors += 1
            log.debug("view %s feature %s: value did not decode: %s", self.view.name, name, exc)
            return FeatureReading(FeatureState.UNDECODABLE, None, when)
        return FeatureReading(state, value, when)


class _Draws(Protocol):
    """One way of drawing random rows of a table within one read-only transaction."""

    def draw(self, count: int) -> tuple[list[bytes], bool]:
        """The entity keys of about `count` random rows (repeats possible), and whether every
        row of the table has now been seen. Values that are not BLOBs are returned as b""."""
        ...  # pragma: no cover


@dataclass
class _RowidDraws:
    """SQLite: `count` distinct random rowids in [1, top]; deleted rows leave gaps that read as
    nothing."""

    conn: sa.Connection
    table: sa.TableClause
    rng: random.Random
    top: int

    def draw(self, count: int) -> tuple[list[bytes], bool]:
        count = min(count, self.top)
        rowids = self.rng.sample(range(1, self.top + 1), count)
        blobs: list[bytes] = []
        for start in range(0, len(rowids), KEYS_PER_QUERY):
            batch = rowids[start : start + KEYS_PER_QUERY]
            query = sa.select(self.table.c.entity_key).where(self.table.c.rowid.in_(batch))
            for (raw,) in self.conn.execute(query):
                blobs.append(_as_bytes(raw) or b"")
        return blobs, count == self.top


@dataclass
class _PageDraws:
    """PostgreSQL: the rows of random pages, `TABLESAMPLE SYSTEM (p) REPEATABLE (seed)` with
    p = 100 x count / estimated rows, grouped to distinct keys by the server. Each draw reads at
    most `limit` rows, whatever the estimate; the estimate is corrected by what each draw saw."""

    conn: sa.Connection
    table: sa.TableClause
    rng: random.Random
    estimate: float
    limit: int

    def draw(self, count: int) -> tuple[list[bytes], bool]:
        percent = min(100.0, 100.0 * count / max(self.estimate, 1.0))
        sampled = sa.tablesample(
            self.table,
            sa.func.system(sa.cast(sa.literal(percent), sa.REAL)),
            seed=sa.literal(self.rng.randrange(1 << 31)),
        )
        rows = sa.select(sampled.c.entity_key).limit(self.limit).subquery()
        query = sa.select(rows.c.entity_key, sa.func.count()).group_by(rows.c.entity_key)
        blobs: list[bytes] = []
        read = 0
        for raw, times in self.conn.execute(query):
            blobs.append(_as_bytes(raw) or b"")
            read += int(times)
        if read >= self.limit:
            return blobs, False  # capped: the estimate was low, and stays as it is
        if percent < 100.0:
            self.estimate = read * 100.0 / percent if read else self.estimate / 4
        return blobs, percent >= 100.0


def estimated_rows(conn: sa.Connection, table_name: str) -> float | None:
    """PostgreSQL's estimate of the rows in `table_name` (resolved on the search_path) without
    reading it: the catalog's rows per page (or ROWS_PER_PAGE_GUESS before the first ANALYZE)
    times the pages the table has now, as the planner estimates. None if there is no such table."""
    quoted = conn.dialect.identifier_preparer.quote(table_name)
    pg_class = sa.table("pg_class", sa.column("oid"), sa.column("reltuples"), sa.column("relpages"))
    query = sa.select(
        pg_class.c.reltuples,
        pg_class.c.relpages,
        sa.func.pg_relation_size(pg_class.c.oid),
        sa.func.current_setting("block_size"),
    ).where(pg_class.c.oid == sa.func.to_regclass(sa.cast(sa.literal(quoted), sa.Text)))
    row = conn.execute(query).one_or_none()
    if row is None:
        return None
    reltuples, relpages, size, block = float(row[0]), int(row[1]), int(row[2]), int(row[3])
    pages = size / block
    density = reltuples / relpages if reltuples > 0 and relpages > 0 else ROWS_PER_PAGE_GUESS
    return density * pages


class FeastSqlOnlineStore(OnlineStore):
    """Feast's SQLite (`feast-sqlite`) or PostgreSQL (`feast-sql`) online store. Creates its
    engine (read-only) and disposes of it in `close`; every query runs in `engine.read_only`,
    which translates driver errors."""

    def __init__(
        self,
        name: str,
        config: FeastSqliteStoreConfig | FeastSqlStoreConfig,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self._project = config.project
        self._zone = config.zone
        self._timeout = config.timeout
        self._rng = rng if rng is not None else random.SystemRandom()
        if isinstance(config, FeastSqliteStoreConfig):
            url = "sqlite:///" + config.path
        else:
            url = config.url.get_secret_value()
        self._engine = open_engine(url, name, config.timeout)

    def table_name(self, view: FeatureView) -> str:
        """The view's `online.table` if set, else Feast's `{project}_{view}`."""
        if view.online is not None and view.online.table:
            return view.online.table
        return f"{self._project}_{view.name}"

    def read(
        self,
        view: FeatureView,
        keys: Sequence[EntityKey],
        population: str,
        *,
        undeclared: bool = True,  # noqa: ARG002 - the rows of an entity say it at no extra cost
    ) -> OnlineObservation:
        started = time.monotonic()
        self._check_entity_types(view)
        table_name = self.table_name(view)
        encoded, bad_keys = self._encode_all(view, keys)
        with read_only(self._engine, self.name, self._timeout) as conn:
            rows = self._fetch(conn, feast_table(table_name), encoded)
        readings = _Readings(view, self._zone)
        entities = tuple(
            readings.entity(key, rows.get(blob, ()) if blob is not None else ())
            for key, blob in zip(keys, encoded, strict=True)
        )
        observation = OnlineObservation(
            store=self.name,
            feature_view=view.name,
            population=population,
            entities=entities,
            decode_errors=readings.errors + bad_keys,
            undeclared_fields=frozenset(readings.undeclared),
        )
        log.info(
            "store %s: read view %s from %s: %d keys asked, %d found, %d decode errors in %.1f ms",
            self.name,
            view.name,
            table_name,
            observation.asked,
            observation.found,
            observation.decode_errors,
            (time.monotonic() - started) * 1000,
        )
        return observation

    def _check_entity_types(self, view: FeatureView) -> None:
        for name, dtype in view.entity_types.items():
            if dtype not in KEY_DTYPES:
                raise QueryFailed(
                    self.name,
                    f"view {view.name!r}: join key {name!r} is declared {dtype}, but Feast "
                    f"entity keys hold only {', '.join(sorted(KEY_DTYPES))}",
                )

    def _encode_all(
        self, view: FeatureView, keys: Sequence[EntityKey]
    ) -> tuple[list[bytes | None], int]:
        """Each key serialized, or None (counted) when it does not fit the view."""
        encoded: list[bytes | None] = []
        bad = 0
        for key in keys:
            try:
                encoded.append(encode_key(view, key))
            except (TypeError, ValueError) as exc:
                encoded.append(None)
                bad += 1
                log.debug("view %s: key %r cannot be encoded: %s", view.name, key, exc)
        if bad:
            log.warning(
                "store %s view %s: %d keys do not fit the join keys", self.name, view.name, bad
            )
        return encoded, bad

    @staticmethod
    def _fetch(
        conn: sa.Connection, table: sa.TableClause, encoded: Sequence[bytes | None]
    ) -> dict[bytes, list[_Row]]:
        """The rows of these keys, grouped by serialized key, KEYS_PER_QUERY keys a query."""
        unique = list(dict.fromkeys(blob for blob in encoded if blob is not None))
        if not unique:  # the table must exist even when no key is asked
            conn.execute(sa.select(table.c.entity_key).limit(0)).all()
        grouped: defaultdict[bytes, list[_Row]] = defaultdict(list)
        for start in range(0, len(unique), KEYS_PER_QUERY):
            batch = unique[start : start + KEYS_PER_QUERY]
            for key, name, value, ts in conn.execute(select_rows(table, batch)):
                blob = _as_bytes(key)
                if blob is not None:
                    grouped[blob].append((name, value, ts))
        return grouped

    def sample_keys(self, view: FeatureView, size: int) -> list[EntityKey]:
        started = time.monotonic()
        if size < 1:
            return []
        table_name = self.table_name(view)
        with read_only(self._engine, self.name, self._timeout) as conn:
            draws = self._draws(conn, table_name, size)
            keys, skipped = self._sample(draws, view, size) if draws else ([], 0)
        if skipped:
            log.warning(
                "store %s view %s: %d sampled keys did not decode and were skipped",
                self.name,
                view.name,
                skipped,
            )
        log.info(
            "store %s: sampled view %s from %s: %d keys asked, %d found in %.1f ms",
            self.name,
            view.name,
            table_name,
            size,
            len(keys),
            (time.monotonic() - started) * 1000,
        )
        return keys

    def _draws(self, conn: sa.Connection, table_name: str, size: int) -> _Draws | None:
        """How random rows of the table are drawn on this dialect; None for an empty table."""
        table = feast_table(table_name)
        dialect = conn.dialect.name
        if dialect == "sqlite":
            top = conn.execute(sa.select(sa.func.max(table.c.rowid))).scalar()
            if not isinstance(top, int) or top < 1:
                return None
            return _RowidDraws(conn, table, self._rng, top)
        if dialect == "postgresql":
            estimate = estimated_rows(conn, table_name)
            if estimate is None:
                raise SourceNotFound(self.name, f'relation "{table_name}" does not exist')
            if estimate <= 0:
                return None
            return _PageDraws(conn, table, self._rng, estimate, max(DRAWS_PER_KEY * size, 32))
        raise QueryFailed(self.name, f"random keys cannot be drawn on {dialect}")

    def _sample(self, draws: _Draws, view: FeatureView, size: int) -> tuple[list[EntityKey], int]:
        """Up to `size` distinct decodable keys from random rows, and how many did not decode.

        The first round draws max(4 x size, 32) rows; later rounds scale the draw by the yield
        of the one before (gaps, pages of few entities), never above DRAWS_PER_KEY x size rows a
        round: the cost is bounded by `size`, never by the table."""
        ceiling = max(DRAWS_PER_KEY * size, 32)
        draw = max(4 * size, 32)
        keys: dict[EntityKey, None] = {}
        seen: set[bytes] = set()
        skipped = 0
        for _ in range(SAMPLE_ROUNDS):
            before = len(keys)
            blobs, exhausted = draws.draw(draw)
            self._rng.shuffle(blobs)
            for blob in blobs:
                if len(keys) >= size or blob in seen:
                    continue
                seen.add(blob)
                try:
                    keys[decode_key(view, blob)] = None
                except DecodeError as exc:
                    skipped += 1
                    log.debug("view %s: sampled key did not decode: %s", view.name, exc)
            missing = size - len(keys)
            if missing <= 0 or exhausted:  # done, or every row was seen
                break
            found_per_row = (len(keys) - before) / draw
            wanted = math.ceil(1.25 * missing / found_per_row) if found_per_row else ceiling
            draw = min(ceiling, max(wanted, 32))
        return list(keys), skipped

    def close(self) -> None:
        """Dispose of the engine this store created."""
        self._engine.dispose()
