"""`RedisOnlineStore`: reads sampled entities from Redis hashes, in Feast's layout or plain.

A read sends one command per asked key, pipelined `batch_size` keys a round trip. When the
caller wants the stored fields that no known feature explains (an online schema drift check),
that command is HGETALL: it gives both the view's values and every field name (Feast's hash
holds every view on the entity, so HGETALL also returns other views' values; measured, that
still costs less than HMGET of the view's fields plus HKEYS, see bench/README.md). Otherwise it
is HMGET of the view's fields and its event time alone, whatever else the hash holds: a hash
shared by hundreds of views costs what the view's own fields cost. Nothing else is read.
`sample_keys` walks the keyspace with SCAN from a random cursor, a bounded number of calls, and
never with KEYS.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable, Sequence

from checks.model import FeatureView
from checks.observation import OnlineObservation
from monitor.abc import EntityKey, OnlineStore
from monitor.config import RedisStoreConfig
from monitor.errors import QueryFailed
from monitor.stores.redis.client import Client, Connection, HashReads, ScanWalk
from monitor.stores.redis.hash_layout import KeyTemplate, ValueReader
from monitor.stores.redis.layout import (
    DECODE_ERRORS,
    FeastLayout,
    HashLayout,
    Layout,
    Readings,
    online_name,
)

log = logging.getLogger(__name__)

SCAN_CALLS = 64
"""The most SCAN calls one `sample_keys` makes, over all nodes of a cluster."""
SCAN_COUNT_PER_KEY = 4
"""The COUNT hint of a SCAN call, per key asked (so each call visits about 4 x size slots)..."""
SCAN_COUNT_MIN, SCAN_COUNT_MAX = 64, 10_000
"""...and its bounds: the server's work per call stays below a few milliseconds."""


class RedisOnlineStore(OnlineStore):
    """A Redis (or Redis Cluster) online store, in Feast's layout or plain hashes.

    Creates its client from `config.url` (a cluster client on first use) and closes it in
    `close`; an injected `client` is used as is and left open. `known_views` are the feature
    views declared on this store: in Feast's layout their features' fields, and in a shared
    plain hash their feature names, are not reported as undeclared when another view is read.
    """

    def __init__(
        self,
        name: str,
        config: RedisStoreConfig,
        *,
        known_views: Iterable[FeatureView] = (),
        client: Client | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self._batch_size = config.batch_size
        self._timeout = config.timeout.total_seconds()
        self._rng = rng if rng is not None else random.SystemRandom()
        known = {online_name(view): tuple(view.features) for view in known_views}
        self._layout: Layout | None = None
        self._layout_problem: str | None = None
        if config.layout == "feast":
            self._layout = FeastLayout(config.project or "", known)
        else:
            try:
                template = KeyTemplate.parse(config.key_template or "")
            except ValueError as exc:
                self._layout_problem = str(exc)
            else:
                reader = ValueReader(config.value_format, config.timestamp_format, config.zone)
                self._layout = HashLayout(template, reader, config.timestamp_field, known)
        self._conn = Connection(
            name,
            config.url.get_secret_value(),
            cluster=config.cluster,
            timeout=config.timeout,
            client=client,
        )

    def _layout_for(self, view: FeatureView) -> Layout:
        if self._layout is None:
            raise QueryFailed(self.name, self._layout_problem or "no layout")
        try:
            self._layout.check(view)
        except ValueError as exc:
            raise QueryFailed(self.name, f"view {view.name!r}: {exc}") from exc
        return self._layout

    def read(
        self,
        view: FeatureView,
        keys: Sequence[EntityKey],
        population: str,
        *,
        undeclared: bool = True,
    ) -> OnlineObservation:
        started = time.monotonic()
        layout = self._layout_for(view)
        encoded, bad_keys = self._encode_all(layout, view, keys)
        unique = list(dict.fromkeys(blob for blob in encoded if blob is not None))
        fields = None if undeclared else (*layout.feature_fields(view), layout.time_field(view))
        if unique:
            deadline = started + self._timeout
            hashes = self._conn.read_hashes(unique, self._batch_size, deadline, fields)
        else:  # nothing to read, but an unreachable server must still be an error
            hashes = HashReads({}, frozenset())
            self._conn.ping()
        readings = Readings(layout, view)
        entities = readings.entities(keys, encoded, hashes)
        if readings.other_views:
            log.debug(
                "store %s view %s: the sampled hashes also hold views %s",
                self.name,
                view.name,
                sorted(readings.other_views),
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
            "store %s: read view %s: %d keys asked, %d found, %d decode errors in %.1f ms",
            self.name,
            view.name,
            observation.asked,
            observation.found,
            observation.decode_errors,
            (time.monotonic() - started) * 1000,
        )
        return observation

    def _encode_all(
        self, layout: Layout, view: FeatureView, keys: Sequence[EntityKey]
    ) -> tuple[list[bytes | None], int]:
        """Each key's Redis key, or None (counted) when it does not fit the view."""
        encoded: list[bytes | None] = []
        bad = 0
        encode = layout.key_encoder(view)
        for key in keys:
            try:
                encoded.append(encode(key))
            except (TypeError, ValueError) as exc:
                encoded.append(None)
                bad += 1
                log.debug("view %s: key %r cannot be encoded: %s", view.name, key, exc)
        if bad:
            log.warning(
                "store %s view %s: %d keys do not fit the join keys", self.name, view.name, bad
            )
        return encoded, bad

    def sample_keys(self, view: FeatureView, size: int) -> list[EntityKey]:
        started = time.monotonic()
        if size < 1:
            return []
        layout = self._layout_for(view)
        deadline = started + self._timeout
        count = min(max(SCAN_COUNT_PER_KEY * size, SCAN_COUNT_MIN), SCAN_COUNT_MAX)
        match = layout.match(view)
        walks = [ScanWalk(node, self._rng.getrandbits(64)) for node in self._conn.scan_nodes()]
        keys: dict[EntityKey, None] = {}
        seen: set[bytes] = set()
        calls = skipped = 0
        while len(keys) < size and calls < SCAN_CALLS:
            active = [walk for walk in walks if not walk.done]
            if not active:
                break
            for walk in active[: SCAN_CALLS - calls]:
                fresh = [
                    raw for raw in self._conn.scan(walk, match, count, deadline) if raw not in seen
                ]
                calls += 1
                seen.update(fresh)
                parsed, bad = self._parse(layout, view, fresh)
                skipped += bad
                for key in self._belonging(layout, view, parsed, deadline):
                    if len(keys) < size:
                        keys[key] = None
        log.info(
            "store %s: sampled view %s: %d keys asked, %d found, %d scanned keys not the "
            "view's, with %d SCAN calls in %.1f ms",
            self.name,
            view.name,
            size,
            len(keys),
            skipped,
            calls,
            (time.monotonic() - started) * 1000,
        )
        return list(keys)

    @staticmethod
    def _parse(
        layout: Layout, view: FeatureView, raws: Sequence[bytes]
    ) -> tuple[list[tuple[bytes, EntityKey]], int]:
        """The scanned keys that are keys of the view, parsed; and how many were not."""
        parsed: list[tuple[bytes, EntityKey]] = []
        bad = 0
        for raw in raws:
            try:
                parsed.append((raw, layout.parse_key(view, raw)))
            except DECODE_ERRORS as exc:
                bad += 1
                log.debug("view %s: scanned key %r is not the view's: %s", view.name, raw, exc)
        return parsed, bad

    def _belonging(
        self,
        layout: Layout,
        view: FeatureView,
        parsed: Sequence[tuple[bytes, EntityKey]],
        deadline: float,
    ) -> list[EntityKey]:
        """The parsed keys whose hash holds the view (its event-time field, in Feast's layout,
        where every view on an entity shares the hash)."""
        required = layout.sample_field(view)
        if required is None:
            return [key for _, key in parsed]
        raws = [raw for raw, _ in parsed]
        held = self._conn.hold_field(raws, required, self._batch_size, deadline)
        return [key for (_, key), holds in zip(parsed, held, strict=True) if holds]

    def close(self) -> None:
        """Close the client this store created (an injected one is left open)."""
        self._conn.close()
