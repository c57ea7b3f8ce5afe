"""How the Redis store names keys and fields and decodes what they hold, for each layout; and
how one hash becomes an `EntityReading`. Pure: what comes from Redis is passed in.

A view's name in Redis (`online_name`) is its `online.table` when set (Feast's versioned view
names, say), else its name: it is what `{feature_view}` fields and key templates hold.
"""

from __future__ import annotations

import functools
import logging
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from checks.model import FeatureView
from checks.observation import (
    ABSENT,
    UNDECODABLE,
    EntityReading,
    EntityValue,
    FeatureIndex,
    FeatureReading,
    FeatureState,
    FeatureValue,
    reading_of,
)
from monitor.abc import EntityKey
from monitor.feast.codec import (
    INT64_KEY_DTYPES,
    KEY_DTYPES,
    decode_entity_key,
    decode_value,
    encode_entity_key,
    infer_entity_dtype,
    int64_key_encoder,
)
from monitor.feast.codec import (
    value_decoder as feast_value_decoder,
)
from monitor.feast.redis_layout import (
    TIMESTAMP_PREFIX,
    decode_timestamp,
    feature_field,
    field_label,
    redis_key,
    scan_pattern,
    split_key,
    timestamp_field,
)
from monitor.feast.wire import DecodeError
from monitor.stores.redis.client import HashReads
from monitor.stores.redis.hash_layout import (
    KeyTemplate,
    ValueReader,
    decode_time,
    key_value,
)

log = logging.getLogger(__name__)

DECODE_ERRORS = (ValueError, TypeError, RecursionError)
"""What a layout's decoders raise for bytes they cannot read (DecodeError is a ValueError;
deeply nested JSON raises RecursionError)."""

ValueDecoder = Callable[[bytes], tuple[FeatureState, FeatureValue]]
"""A layout's value decoder for one dtype."""


def online_name(view: FeatureView) -> str:
    """The view's name in Redis: `online.table` if set, else the view's name."""
    if view.online is not None and view.online.table:
        return view.online.table
    return view.name


class Layout(ABC):
    """One way of laying features out in Redis hashes."""

    @abstractmethod
    def check(self, view: FeatureView) -> None:
        """Raises ValueError when the view cannot be read with this layout."""

    @abstractmethod
    def key(self, view: FeatureView, key: EntityKey) -> bytes:
        """The Redis key of one entity; ValueError or TypeError when the key does not fit."""

    @abstractmethod
    def feature_fields(self, view: FeatureView) -> tuple[bytes, ...]:
        """The hash fields of the view's declared features, in declaration order."""

    @abstractmethod
    def time_field(self, view: FeatureView) -> bytes:
        """The hash field holding the view's event time."""

    @abstractmethod
    def decode_value(self, raw: bytes, dtype: str) -> tuple[FeatureState, FeatureValue]:
        """A stored value; raises one of DECODE_ERRORS."""

    def value_decoder(self, dtype: str) -> ValueDecoder:
        """`decode_value` for one dtype, looked up once per view rather than once per value."""
        return functools.partial(self.decode_value, dtype=dtype)

    @abstractmethod
    def decode_time(self, raw: bytes) -> datetime:
        """A stored event time as aware UTC; raises one of DECODE_ERRORS."""

    def time_decoder(self) -> Callable[[bytes], datetime]:
        """`decode_time`, looked up once per read rather than once per entity."""
        return self.decode_time

    def key_encoder(self, view: FeatureView) -> Callable[[EntityKey], bytes]:
        """`key` for one view, worked out once per read rather than once per key."""
        return functools.partial(self.key, view)

    @abstractmethod
    def undeclared(self, view: FeatureView, stored: bytes) -> str | None:
        """How a stored field that no known feature explains is reported; None when it is
        explained (a declared feature, an event time)."""

    @abstractmethod
    def match(self, view: FeatureView) -> bytes:
        """The SCAN MATCH pattern of the view's keys (it may match more: parse each)."""

    @abstractmethod
    def parse_key(self, view: FeatureView, raw: bytes) -> EntityKey:
        """The entity key of a scanned Redis key; raises one of DECODE_ERRORS."""

    @abstractmethod
    def sample_field(self, view: FeatureView) -> bytes | None:
        """A field a sampled hash must hold to belong to the view, when keys are shared."""


class FeastLayout(Layout):
    """Feast's layout (`monitor.feast.redis_layout`). Feature fields are one-way hashes of
    "{view}:{feature}", and one hash holds every view on an entity: a field is explained when
    it is a `_ts:` field or the hash of a feature of the view read or of a `known` view (view
    name in Redis -> its features). Fields of views the store does not know are reported as
    undeclared, since nothing can tell them from removed features."""

    def __init__(self, project: str, known: Mapping[str, Iterable[str]]) -> None:
        self.project = project
        self._known = frozenset(
            feature_field(name, feature) for name, features in known.items() for feature in features
        )

    def check(self, view: FeatureView) -> None:
        for name, dtype in view.entity_types.items():
            if dtype not in KEY_DTYPES:
                raise ValueError(
                    f"view {view.name!r}: join key {name!r} is declared {dtype}, but Feast "
                    f"entity keys hold only {', '.join(sorted(KEY_DTYPES))}"
                )

    def key(self, view: FeatureView, key: EntityKey) -> bytes:
        join_keys = view.join_keys
        if len(key) != len(join_keys):
            raise ValueError(f"expected {len(join_keys)} values for {join_keys}, found {len(key)}")
        dtypes = [
            view.entity_types.get(name) or infer_entity_dtype(value)
            for name, value in zip(join_keys, key, strict=True)
        ]
        return redis_key(encode_entity_key(join_keys, key, dtypes), self.project)

    def feature_fields(self, view: FeatureView) -> tuple[bytes, ...]:
        name = online_name(view)
        return tuple(feature_field(name, feature) for feature in view.features)

    def time_field(self, view: FeatureView) -> bytes:
        return timestamp_field(online_name(view))

    def decode_value(
        self,
        raw: bytes,
        dtype: str,  # noqa: ARG002 - Feast values name their own type
    ) -> tuple[FeatureState, FeatureValue]:
        return decode_value(raw)

    def value_decoder(self, dtype: str) -> ValueDecoder:
        """`decode_value`, reading the usual double or float in place for those dtypes."""
        return feast_value_decoder(dtype)

    def decode_time(self, raw: bytes) -> datetime:
        return decode_timestamp(raw)

    def time_decoder(self) -> Callable[[bytes], datetime]:
        return decode_timestamp

    def key_encoder(self, view: FeatureView) -> Callable[[EntityKey], bytes]:
        """For one join key declared (or given as) an int64, most keys are constant bytes
        around the packed value; any other key goes through `key`, which says what is wrong."""
        join_keys = view.join_keys
        declared = view.entity_types.get(join_keys[0]) if len(join_keys) == 1 else "compound"
        if declared is not None and declared not in INT64_KEY_DTYPES:
            return super().key_encoder(view)
        encode_int64 = int64_key_encoder(join_keys[0])
        tail = self.project.encode("utf-8")
        general = self.key

        def encode(key: EntityKey) -> bytes:
            if len(key) == 1:
                entity_key = encode_int64(key[0])
                if entity_key is not None:
                    return entity_key + tail
            return general(view, key)

        return encode

    def undeclared(
        self,
        view: FeatureView,  # noqa: ARG002 - the view's own fields are never asked about
        stored: bytes,
    ) -> str | None:
        if stored.startswith(TIMESTAMP_PREFIX) or stored in self._known:
            return None
        return field_label(stored)

    def match(self, view: FeatureView) -> bytes:
        return scan_pattern(view.join_keys, self.project)

    def parse_key(self, view: FeatureView, raw: bytes) -> EntityKey:
        names, values = decode_entity_key(split_key(raw, self.project))
        by_name = dict(zip(names, values, strict=True))
        if len(by_name) != len(names) or set(by_name) != set(view.join_keys):
            raise DecodeError(
                f"join keys {list(names)} are not the view's {list(view.join_keys)}", 0
            )
        return tuple(by_name[name] for name in view.join_keys)

    def sample_field(self, view: FeatureView) -> bytes | None:
        return self.time_field(view)


class HashLayout(Layout):
    """Plain hashes (`hash_layout`): fields named as features, one timestamp field. When the
    key template has no `{feature_view}` the views on an entity share a hash, and the features
    of `known` views (view name -> its features) are not undeclared."""

    def __init__(
        self,
        template: KeyTemplate,
        reader: ValueReader,
        time_field: str,
        known: Mapping[str, Iterable[str]],
    ) -> None:
        self.template = template
        self.reader = reader
        self._time_field = time_field.encode("utf-8")
        self._shared = (
            frozenset(feature for features in known.values() for feature in features)
            if not template.names_view
            else frozenset()
        )

    def check(self, view: FeatureView) -> None:
        self.template.check(view)

    def key(self, view: FeatureView, key: EntityKey) -> bytes:
        join_keys = view.join_keys
        if len(key) != len(join_keys):
            raise ValueError(f"expected {len(join_keys)} values for {join_keys}, found {len(key)}")
        return self.template.key(online_name(view), dict(zip(join_keys, key, strict=True)))

    def feature_fields(self, view: FeatureView) -> tuple[bytes, ...]:
        return tuple(feature.encode("utf-8") for feature in view.features)

    def time_field(self, view: FeatureView) -> bytes:  # noqa: ARG002 - one field for every view
        return self._time_field

    def decode_value(self, raw: bytes, dtype: str) -> tuple[FeatureState, FeatureValue]:
        return self.reader.decode(raw, dtype)

    def decode_time(self, raw: bytes) -> datetime:
        reader = self.reader
        return decode_time(raw, reader.time_format, reader.zone, reader.value_format)

    def undeclared(self, view: FeatureView, stored: bytes) -> str | None:
        if stored == self._time_field:
            return None
        name = stored.decode("utf-8", "backslashreplace")
        if name in view.features or name in self._shared:
            return None
        return name

    def match(self, view: FeatureView) -> bytes:
        return self.template.pattern(online_name(view))

    def parse_key(self, view: FeatureView, raw: bytes) -> EntityKey:
        parts = self.template.split(online_name(view), raw)
        values: list[EntityValue] = [
            key_value(parts[name], view.entity_types.get(name)) for name in view.join_keys
        ]
        return tuple(values)

    def sample_field(self, view: FeatureView) -> bytes | None:  # noqa: ARG002 - see below
        # With {feature_view} in the template a key is the view's own; without it the views
        # on an entity share the hash and its timestamp field, so no field tells them apart.
        return None


class _Decoded(dict[bytes | None, FeatureReading]):
    """The readings of one feature's stored bytes, memoized for one read: equal bytes (a bool,
    a small int, a category) are decoded once and share one reading, and None (a field that is
    not stored) is ABSENT. Bytes that do not decode are not kept, so that every occurrence is
    counted as an error."""

    __slots__ = ("decode", "errors", "feature", "view")

    def __init__(self, decode: ValueDecoder, view: str, feature: str) -> None:
        super().__init__({None: ABSENT})
        self.decode = decode
        self.view = view
        self.feature = feature
        self.errors = 0

    def __missing__(self, raw: bytes | None) -> FeatureReading:
        assert raw is not None  # noqa: S101 - None is in the mapping from the start
        try:
            state, value = self.decode(raw)
        except DECODE_ERRORS as exc:
            self.errors += 1
            log.debug("view %s feature %s: value did not decode: %s", self.view, self.feature, exc)
            return UNDECODABLE
        reading = reading_of(state, value)
        self[raw] = reading
        return reading


class _Times(dict[bytes | None, datetime | None]):
    """Event times of stored bytes, memoized for one read like `_Decoded`; None (no event-time
    field) is None. Bytes that do not decode read as None and count an error each time."""

    __slots__ = ("decode", "errors", "view")

    def __init__(self, decode: Callable[[bytes], datetime], view: str) -> None:
        super().__init__({None: None})
        self.decode = decode
        self.view = view
        self.errors = 0

    def __missing__(self, raw: bytes | None) -> datetime | None:
        assert raw is not None  # noqa: S101 - None is in the mapping from the start
        try:
            when = self.decode(raw)
        except DECODE_ERRORS as exc:
            self.errors += 1
            log.debug("view %s: event time did not decode: %s", self.view, exc)
            return None
        self[raw] = when
        return when


@dataclass
class Readings:
    """Turns the hashes of one read into readings, counting what did not decode and collecting
    the fields that nothing explains. What depends only on the view (its fields and decoders)
    is worked out once, not once per entity; each distinct stored value and event time is
    decoded once per read (`_Decoded`, `_Times`), and an entity is one `EntityReading` over a
    tuple of shared readings, in the order of one index."""

    layout: Layout
    view: FeatureView
    undeclared: set[str] = field(default_factory=set)
    other_views: set[str] = field(default_factory=set)  # `_ts:` fields of other views seen
    _wrong_type: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        layout, view = self.layout, self.view
        self._fields = layout.feature_fields(view)
        self._index: FeatureIndex = MappingProxyType(
            {name: position for position, name in enumerate(view.features)}
        )
        self._values = tuple(
            _Decoded(layout.value_decoder(dtype), view.name, name)
            for name, dtype in view.features.items()
        )
        self._time_field = layout.time_field(view)
        self._times = _Times(layout.time_decoder(), view.name)
        # The raw value of every feature, then the event time: a tuple, or KeyError when the
        # hash lacks one of them.
        self._every_field = operator.itemgetter(*self._fields, self._time_field)
        # The fields already accounted for: the view's own, and every other field once it has
        # been classified (a set of labels does not change when one is added again).
        self._classified = {*self._fields, self._time_field}
        self._own = len(self._classified)

    @property
    def errors(self) -> int:
        """Values, event times and keys of the wrong type that did not decode so far."""
        return self._wrong_type + self._times.errors + sum(d.errors for d in self._values)

    def entities(
        self, keys: Sequence[EntityKey], blobs: Sequence[bytes | None], hashes: HashReads
    ) -> tuple[EntityReading, ...]:
        """The reading of each key, whose Redis key is the blob beside it (None: it has none).
        The loop runs once per sampled entity: a hash holding every field of the view takes
        one C call for its raw values and one for their readings."""
        stored_of, wrong_type = hashes.hashes.get, hashes.wrong_type
        values, times, index = self._values, self._times, self._index
        every_field, classified, own = self._every_field, self._classified, self._own
        of_row, getitem = EntityReading.of_row, operator.getitem
        readings: list[EntityReading] = []
        for key, blob in zip(keys, blobs, strict=True):
            stored = None if blob is None else stored_of(blob)
            if not stored:  # no Redis key, no hash, an empty one, or not a hash
                wrong = blob is not None and blob in wrong_type
                readings.append(self.wrong_type(key) if wrong else EntityReading(key, False))
                continue
            try:
                raws = every_field(stored)
            except KeyError:  # a feature never written, or no event time
                readings.append(self.sparse(key, stored))
                continue
            # Holding the view's fields and as many fields as the view has, it holds no other.
            if len(stored) != own and not classified.issuperset(stored):
                self._classify(stored.keys() - classified)
            cells = tuple(map(getitem, values, raws))  # stops before the time, the last raw
            readings.append(of_row(key, index, cells, times[raws[-1]]))
        return tuple(readings)

    def sparse(self, key: EntityKey, stored: Mapping[bytes, bytes]) -> EntityReading:
        """The reading of a hash lacking a feature of the view or its event time: absent when
        it holds none of the view's fields; present without features when it holds only the
        event time (so no feature carries it)."""
        if not self._classified.issuperset(stored):
            self._classify(stored.keys() - self._classified)
        raws = tuple(map(stored.get, self._fields))
        raw_time = stored.get(self._time_field)
        when = self._times[raw_time]  # None without the field; a bad one counts an error
        if all(raw is None for raw in raws):
            return EntityReading(key, raw_time is not None)
        cells = tuple(map(operator.getitem, self._values, raws))
        return EntityReading.of_row(key, self._index, cells, when)

    def wrong_type(self, key: EntityKey) -> EntityReading:
        """The reading of a key holding something other than a hash: one decode error."""
        self._wrong_type += 1
        return EntityReading.of_row(key, self._index, (UNDECODABLE,) * len(self._fields), None)

    def _classify(self, fields: Iterable[bytes]) -> None:
        for stored in fields:
            self._classified.add(stored)
            label = self.layout.undeclared(self.view, stored)
            if label is not None:
                self.undeclared.add(label)
            elif stored.startswith(TIMESTAMP_PREFIX):
                self.other_views.add(stored[len(TIMESTAMP_PREFIX) :].decode("utf-8", "replace"))
