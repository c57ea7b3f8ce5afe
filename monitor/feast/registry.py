"""A Feast file registry (`registry.db`), read without Feast or protobuf (`read_registry`).

The registry file is one serialized `feast.core.Registry` message. Only what featmon needs is
read; every other field is skipped by its wire type, so registries of newer Feast releases still
read. Field numbers are those of Feast 0.67's protos (protos/feast/core/*.proto):

    Registry                 1 entities, 6 feature_views, 7 feature_services, 5 last_updated,
                             8 on_demand_feature_views, 14 stream_feature_views (counted only)
    Entity                   1 spec: EntitySpecV2 (1 name, 2 value_type, 4 join_key, 9 project)
    FeatureView              1 spec, 2 meta
    FeatureViewSpec          1 name, 2 project, 3 entities, 4 features, 5 tags, 6 ttl,
                             7 batch_source, 8 online, 12 entity_columns
    FeatureViewMeta          3 materialization_intervals (1 start_time, 2 end_time),
                             4 current_version_number
    FeatureSpecV2            1 name, 2 value_type
    DataSource               1 type, 2 field_mapping, 3 timestamp_field,
                             5 created_timestamp_column, 11 file_options (2 uri),
                             16 custom_options (1 configuration: JSON for PostgreSQLSource),
                             17 data_source_class_type, 20 name
    FeatureService           1 spec: FeatureServiceSpec (1 name, 2 project, 3 features,
                             4 tags, 5 description, 6 owner, 7 logging_config)
    FeatureViewProjection    1 feature_view_name, 2 feature_columns, 3 feature_view_name_alias,
                             4 join_key_map, 10 version_tag (optional)
    LoggingConfig            1 sample_rate (float); one destination of: 3 file (1 path,
                             2 s3_endpoint_override, 3 partition_by), 4 bigquery (1 table_ref),
                             5 redshift, 6 snowflake, 8 athena (1 table_name), 7 custom (1 kind,
                             2 config), 9 couchbase_columnar (1 database, 2 scope, 3 collection)
    Duration, Timestamp      1 seconds, 2 nanos

Parsing is pure (`parse_registry(data, source)`); `read_registry(path)` is the edge. Anything that
is not a registry raises `RegistryError` naming the file and the byte where reading stopped.
"""

from __future__ import annotations

import itertools
import json
import struct
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

from monitor.errors import MonitorError
from monitor.feast.wire import I32, I64, LEN, VARINT, DecodeError, read_varint

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# feast.types.ValueType.Enum
VALUE_TYPES = {
    0: "INVALID", 1: "BYTES", 2: "STRING", 3: "INT32", 4: "INT64", 5: "DOUBLE", 6: "FLOAT",
    7: "BOOL", 8: "UNIX_TIMESTAMP", 11: "BYTES_LIST", 12: "STRING_LIST", 13: "INT32_LIST",
    14: "INT64_LIST", 15: "DOUBLE_LIST", 16: "FLOAT_LIST", 17: "BOOL_LIST",
    18: "UNIX_TIMESTAMP_LIST", 19: "NULL", 20: "MAP", 21: "MAP_LIST", 22: "BYTES_SET",
    23: "STRING_SET", 24: "INT32_SET", 25: "INT64_SET", 26: "DOUBLE_SET", 27: "FLOAT_SET",
    28: "BOOL_SET", 29: "UNIX_TIMESTAMP_SET", 32: "JSON", 33: "JSON_LIST", 34: "STRUCT",
    35: "STRUCT_LIST", 36: "UUID", 37: "TIME_UUID", 38: "UUID_LIST", 39: "TIME_UUID_LIST",
    40: "UUID_SET", 41: "TIME_UUID_SET", 42: "VALUE_LIST", 43: "VALUE_SET", 44: "DECIMAL",
    45: "DECIMAL_LIST", 46: "DECIMAL_SET", 47: "SCALAR_MAP", 48: "ZONED_TIMESTAMP",
}  # fmt: skip
# feast.core.DataSource.SourceType
SOURCE_TYPES = {
    0: "INVALID", 1: "BATCH_FILE", 2: "BATCH_BIGQUERY", 3: "STREAM_KAFKA", 4: "STREAM_KINESIS",
    5: "BATCH_REDSHIFT", 6: "CUSTOM_SOURCE", 7: "REQUEST_SOURCE", 8: "BATCH_SNOWFLAKE",
    9: "PUSH_SOURCE", 10: "BATCH_TRINO", 11: "BATCH_SPARK", 12: "BATCH_ATHENA",
    13: "BATCH_ICEBERG",
}  # fmt: skip
POSTGRES_SOURCE_CLASS = "PostgreSQLSource"

# ValueType -> featmon dtype. JSON, UUID and decimal values read as their text.
SCALAR_DTYPES = {
    1: "bytes", 2: "string", 3: "int32", 4: "int64", 5: "double", 6: "float32", 7: "bool",
    8: "timestamp", 32: "string", 36: "string", 37: "string", 44: "string",
}  # fmt: skip
COLLECTION_DTYPES = {
    11: "bytes", 12: "string", 13: "int32", 14: "int64", 15: "double", 16: "float32",
    17: "bool", 18: "timestamp", 22: "bytes", 23: "string", 24: "int32", 25: "int64",
    26: "double", 27: "float32", 28: "bool", 29: "timestamp", 33: "string", 38: "string",
    39: "string", 40: "string", 41: "string", 45: "string", 46: "string",
}  # fmt: skip
"""List and set types, by their element's dtype (featmon reads their values as tuples)."""
KEY_DTYPES = {1: "bytes", 2: "string", 3: "int32", 4: "int64", 8: "timestamp"}
"""The ValueTypes an entity key may hold, as featmon's join key dtypes."""


class RegistryError(MonitorError):
    """A registry file that cannot be read or is not a Feast registry."""

    def __init__(self, source: str, detail: str) -> None:
        self.source = source
        self.detail = detail
        super().__init__(f"{source}: {detail}")


# --- the wire format ---------------------------------------------------------------------------

_Value = int | slice  # varints and fixed numbers; a length-delimited payload's place in the file


@dataclass(frozen=True)
class _Message:
    """The fields of one message of `data`: number -> values in wire order. Length-delimited
    payloads are slices of `data`, so offsets in errors are offsets in the file."""

    data: bytes
    fields: Mapping[int, tuple[_Value, ...]]
    offset: int

    def numbers(self, number: int) -> tuple[int, ...]:
        return tuple(v for v in self._typed(number, int) if isinstance(v, int))

    def number(self, number: int) -> int:
        found = self.numbers(number)
        return found[-1] if found else 0  # proto3: the last one wins; absent is zero

    def messages(self, number: int) -> list[_Message]:
        return [_parse(self.data, place) for place in self._places(number)]

    def message(self, number: int) -> _Message | None:
        found = self._places(number)
        return _parse(self.data, found[-1]) if found else None

    def texts(self, number: int) -> tuple[str, ...]:
        out = []
        for place in self._places(number):
            try:
                out.append(self.data[place].decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise DecodeError(f"field {number} is not UTF-8 text", place.start) from exc
        return tuple(out)

    def text(self, number: int) -> str:
        found = self.texts(number)
        return found[-1] if found else ""

    def raw(self, number: int) -> bytes:
        found = self._places(number)
        return self.data[found[-1]] if found else b""

    def oneof(self, numbers: tuple[int, ...]) -> tuple[int, _Message] | None:
        """Of the message fields `numbers` (a oneof), the one written last, which protobuf
        keeps, with its number; None when none is set."""
        written = [(self._places(n)[-1], n) for n in numbers if self._places(n)]
        if not written:
            return None
        place, number = max(written, key=lambda found: found[0].start)
        return number, _parse(self.data, place)

    def count(self, number: int) -> int:
        return len(self.fields.get(number, ()))

    def _places(self, number: int) -> list[slice]:
        return [v for v in self._typed(number, slice) if isinstance(v, slice)]

    def _typed(self, number: int, kind: type[int] | type[slice]) -> tuple[_Value, ...]:
        values = self.fields.get(number, ())
        for value in values:
            if not isinstance(value, kind):
                raise DecodeError(f"field {number} has an unexpected wire type", self.offset)
        return values


def _parse(data: bytes, place: slice | None = None) -> _Message:
    """Every field of the message in `data[place]` (all of `data` by default)."""
    pos, end = (0, len(data)) if place is None else (place.start, place.stop)
    offset = pos
    fields: defaultdict[int, list[_Value]] = defaultdict(list)
    while pos < end:
        start = pos
        key, pos = read_varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise DecodeError("invalid field number 0", start)
        if wire == VARINT:
            value, pos = read_varint(data, pos, end)
            fields[number].append(value)
            continue
        size = {I64: 8, I32: 4}.get(wire)
        if wire == LEN:
            size, pos = read_varint(data, pos, end)
        if size is None:
            raise DecodeError(f"unsupported wire type {wire}", start)
        if size > end - pos:
            raise DecodeError(f"field {number} runs past the end of its message", start)
        if wire == LEN:
            fields[number].append(slice(pos, pos + size))
        else:
            fields[number].append(int.from_bytes(data[pos : pos + size], "little"))
        pos += size
    return _Message(data, MappingProxyType({n: tuple(v) for n, v in fields.items()}), offset)


def _signed(raw: int) -> int:
    return raw - (1 << 64) if raw >= 1 << 63 else raw


def _duration(message: _Message | None) -> timedelta:
    if message is None:
        return timedelta(0)
    return timedelta(seconds=_signed(message.number(1)), microseconds=message.number(2) // 1000)


def _timestamp(message: _Message | None) -> datetime | None:
    if message is None:
        return None
    try:
        return _EPOCH + _duration(message)
    except OverflowError as exc:
        raise DecodeError("timestamp out of range", message.offset) from exc


# --- what featmon reads ------------------------------------------------------------------------


@dataclass(frozen=True)
class Entity:
    """A Feast entity: its name, join key and ValueType code (0 when unset)."""

    name: str
    join_key: str
    value_type: int


@dataclass(frozen=True)
class Feature:
    """A feature or an entity column of a view, with its ValueType code."""

    name: str
    value_type: int

    @property
    def type_name(self) -> str:
        return VALUE_TYPES.get(self.value_type, f"value type {self.value_type}")


@dataclass(frozen=True)
class BatchSource:
    """Where a view's rows come from offline: a file (`path`) or a PostgreSQL `table`/`query`."""

    name: str
    kind: str  # a SOURCE_TYPES name, or "POSTGRES" for Feast's PostgreSQLSource
    timestamp_field: str
    created_timestamp_column: str
    path: str | None = None
    table: str | None = None
    query: str | None = None
    field_mapping: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class FeatureView:
    """A Feast feature view as registered by `feast apply`, with its materialization history."""

    name: str
    project: str
    entities: tuple[str, ...]
    features: tuple[Feature, ...]
    entity_columns: tuple[Feature, ...]
    ttl: timedelta  # zero: values never expire
    online: bool
    batch_source: BatchSource | None
    materialized: tuple[tuple[datetime | None, datetime | None], ...]
    tags: Mapping[str, str]
    version: int = 0

    @property
    def materialization_period(self) -> timedelta | None:
        """The median time between the ends of successive materializations; None with fewer
        than two distinct ends."""
        ends = sorted({end for _, end in self.materialized if end is not None})
        gaps = sorted(b - a for a, b in itertools.pairwise(ends))
        return gaps[len(gaps) // 2] if gaps else None


@dataclass(frozen=True)
class Projection:
    """One view of a feature service as Feast projects it: the features it takes, and how it
    renames the view (`with_name`, `alias`), its join keys (`with_join_key_map`) or pins a
    version (`@v2`, `version_tag`)."""

    view: str
    features: tuple[Feature, ...]
    alias: str = ""
    join_key_map: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    version_tag: int | None = None

    @property
    def log_name(self) -> str:
        """What the service's serving-log columns call the view (Feast's `name_to_use`): the
        alias or the view's name, `@v{tag}` after it when a version is pinned."""
        base = self.alias or self.view
        return base if self.version_tag is None else f"{base}@v{self.version_tag}"


@dataclass(frozen=True)
class LoggingDestination:
    """Where a feature service's serving log is written: a file destination's directory of
    Parquet files (`path`: relative paths are relative to the feature repository, remote ones a
    URL), or a table of a warehouse (`table`), by `kind` (the LoggingConfig field without
    `_destination`, or a custom destination's own kind)."""

    kind: str
    sample_rate: float
    path: str | None = None
    table: str | None = None
    s3_endpoint_override: str = ""
    partition_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeatureService:
    """A Feast feature service: what a model is served (featmon's model), and where Feast logs
    its requests (None: no logging config)."""

    name: str
    project: str
    projections: tuple[Projection, ...]
    tags: Mapping[str, str]
    owner: str = ""
    description: str = ""
    logging: LoggingDestination | None = None


@dataclass(frozen=True)
class Registry:
    """The parts of a Feast registry featmon uses, for every project it holds."""

    entities: tuple[tuple[str, Entity], ...]  # (project, entity)
    feature_views: tuple[FeatureView, ...]
    skipped: Mapping[str, int]  # kind of view featmon does not monitor -> how many
    last_updated: datetime | None
    feature_services: tuple[FeatureService, ...] = ()

    def projects(self) -> set[str]:
        return {view.project for view in self.feature_views} | {p for p, _ in self.entities}

    def entities_of(self, project: str) -> dict[str, Entity]:
        return {entity.name: entity for p, entity in self.entities if p == project}

    def views_of(self, project: str) -> list[FeatureView]:
        return [view for view in self.feature_views if view.project == project]

    def services_of(self, project: str) -> list[FeatureService]:
        return [service for service in self.feature_services if service.project == project]


def _entity(message: _Message) -> tuple[str, Entity]:
    spec = message.message(1)
    if spec is None:
        raise DecodeError("an entity without a spec", message.offset)
    return spec.text(9), Entity(spec.text(1), spec.text(4), spec.number(2))


def _features(spec: _Message, number: int) -> tuple[Feature, ...]:
    return tuple(Feature(f.text(1), f.number(2)) for f in spec.messages(number))


def _string_map(spec: _Message, number: int) -> Mapping[str, str]:
    return MappingProxyType({entry.text(1): entry.text(2) for entry in spec.messages(number)})


def _source(message: _Message) -> BatchSource:
    kind = SOURCE_TYPES.get(message.number(1), f"source type {message.number(1)}")
    table = query = path = None
    if kind == "BATCH_FILE":
        options = message.message(11)
        path = options.text(2) if options is not None else None
    elif kind == "CUSTOM_SOURCE" and message.text(17).endswith(POSTGRES_SOURCE_CLASS):
        kind = "POSTGRES"
        options = message.message(16)
        table, query = _postgres_options(options.raw(1) if options else b"", message.offset)
    return BatchSource(
        name=message.text(20),
        kind=kind,
        timestamp_field=message.text(3),
        created_timestamp_column=message.text(5),
        path=path or None,
        table=table,
        query=query,
        field_mapping=_string_map(message, 2),
    )


def _postgres_options(configuration: bytes, offset: int) -> tuple[str | None, str | None]:
    """PostgreSQLSource keeps {"name", "query", "table"} as JSON in custom_options."""
    try:
        options = json.loads(configuration.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError("PostgreSQL source options are not JSON", offset) from exc
    if not isinstance(options, dict):
        raise DecodeError("PostgreSQL source options are not a JSON object", offset)
    table, query = options.get("table"), options.get("query")
    return (table if isinstance(table, str) and table else None), (
        query if isinstance(query, str) and query else None
    )


def _view(message: _Message) -> FeatureView:
    spec = message.message(1)
    if spec is None:
        raise DecodeError("a feature view without a spec", message.offset)
    meta = message.message(2)
    intervals = meta.messages(3) if meta is not None else []
    source = spec.message(7)
    return FeatureView(
        name=spec.text(1),
        project=spec.text(2),
        entities=spec.texts(3),
        features=_features(spec, 4),
        entity_columns=_features(spec, 12),
        ttl=_duration(spec.message(6)),
        online=bool(spec.number(8)),
        batch_source=_source(source) if source is not None else None,
        materialized=tuple((_timestamp(i.message(1)), _timestamp(i.message(2))) for i in intervals),
        tags=_string_map(spec, 5),
        version=meta.number(4) if meta is not None else 0,
    )


def _projection(message: _Message) -> Projection:
    tags = message.numbers(10)
    return Projection(
        view=message.text(1),
        features=_features(message, 2),
        alias=message.text(3),
        join_key_map=_string_map(message, 4),
        version_tag=_signed(tags[-1]) if tags else None,  # optional: present or not
    )


# LoggingConfig's destinations: field number -> kind, and the field of the table's name.
_TABLE_DESTINATIONS = {
    4: ("bigquery", 1),
    5: ("redshift", 1),
    6: ("snowflake", 1),
    8: ("athena", 1),
}
_FILE_DESTINATION, _CUSTOM_DESTINATION, _COUCHBASE_DESTINATION = 3, 7, 9


def _logging(config: _Message) -> LoggingDestination | None:
    """The destination of a LoggingConfig; None when it has none."""
    numbers = (_FILE_DESTINATION, _CUSTOM_DESTINATION, _COUCHBASE_DESTINATION, *_TABLE_DESTINATIONS)
    found = config.oneof(numbers)
    if found is None:
        return None
    number, destination = found
    rate = struct.unpack("<f", config.number(1).to_bytes(4, "little"))[0]
    if number == _FILE_DESTINATION:
        return LoggingDestination(
            "file",
            rate,
            path=destination.text(1),
            s3_endpoint_override=destination.text(2),
            partition_by=destination.texts(3),
        )
    if number == _CUSTOM_DESTINATION:
        return LoggingDestination(destination.text(1) or "custom", rate)
    if number == _COUCHBASE_DESTINATION:
        table = ".".join(destination.text(n) for n in (1, 2, 3))
        return LoggingDestination("couchbase_columnar", rate, table=table)
    kind, name_field = _TABLE_DESTINATIONS[number]
    return LoggingDestination(kind, rate, table=destination.text(name_field))


def _service(message: _Message) -> FeatureService:
    spec = message.message(1)
    if spec is None:
        raise DecodeError("a feature service without a spec", message.offset)
    config = spec.message(7)
    return FeatureService(
        name=spec.text(1),
        project=spec.text(2),
        projections=tuple(_projection(p) for p in spec.messages(3)),
        tags=_string_map(spec, 4),
        owner=spec.text(6),
        description=spec.text(5),
        logging=_logging(config) if config is not None else None,
    )


def parse_registry(data: bytes, source: str) -> Registry:
    """The registry serialized in `data`; `source` names it in errors. Raises RegistryError."""
    try:
        root = _parse(data)
        entities = tuple(_entity(m) for m in root.messages(1))
        views = tuple(_view(m) for m in root.messages(6))
        services = tuple(_service(m) for m in root.messages(7))
        updated = _timestamp(root.message(5))
        skipped = {"on-demand feature views": root.count(8), "stream feature views": root.count(14)}
    except (DecodeError, OverflowError) as exc:
        raise RegistryError(
            source, f"is not a Feast registry (a serialized feast.core.Registry): {exc}"
        ) from exc
    if not data or (not views and not entities and not services and updated is None):
        raise RegistryError(
            source, "is empty: no entities, feature views, feature services or update time"
        )
    return Registry(entities, views, MappingProxyType(skipped), updated, services)


def read_registry(path: Path) -> Registry:
    """Read and parse a registry file. Raises RegistryError naming the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RegistryError(str(path), f"cannot read the registry: {exc.strerror or exc}") from exc
    return parse_registry(data, str(path))
