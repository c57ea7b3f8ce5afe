"""A Feast repository, read without Feast or protobuf: its feature_store.yaml (`read_repo`) and
its file registry (`registry.db`, `read_registry`).

feature_store.yaml is read for what featmon needs (project, registry, online and offline store);
Feast's other keys are ignored, and a mistake in what is read is reported at its file, line and
key (`ConfigError`). The registry file is one serialized `feast.core.Registry` message. Only what featmon needs is read; every
other field is skipped by its wire type, so registries of newer Feast releases still read. Field
numbers are those of Feast 0.67's protos (protos/feast/core/*.proto):

    Registry                 1 entities, 6 feature_views, 5 last_updated,
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
    Duration, Timestamp      1 seconds, 2 nanos

Parsing is pure (`parse_registry(data, source)`); `read_registry(path)` is the edge. Anything that
is not a registry raises `RegistryError` naming the file and the byte where reading stopped.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from checks.errors import ConfigError
from checks.source import Document, load_yaml, validate
from monitor.errors import MonitorError
from monitor.feast.wire import I32, I64, LEN, VARINT, DecodeError, read_varint
from monitor.loader import read_text

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
class Registry:
    """The parts of a Feast registry featmon uses, for every project it holds."""

    entities: tuple[tuple[str, Entity], ...]  # (project, entity)
    feature_views: tuple[FeatureView, ...]
    skipped: Mapping[str, int]  # kind of view featmon does not monitor -> how many
    last_updated: datetime | None

    def projects(self) -> set[str]:
        return {view.project for view in self.feature_views} | {p for p, _ in self.entities}

    def entities_of(self, project: str) -> dict[str, Entity]:
        return {entity.name: entity for p, entity in self.entities if p == project}

    def views_of(self, project: str) -> list[FeatureView]:
        return [view for view in self.feature_views if view.project == project]


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


def parse_registry(data: bytes, source: str) -> Registry:
    """The registry serialized in `data`; `source` names it in errors. Raises RegistryError."""
    try:
        root = _parse(data)
        entities = tuple(_entity(m) for m in root.messages(1))
        views = tuple(_view(m) for m in root.messages(6))
        updated = _timestamp(root.message(5))
        skipped = {"on-demand feature views": root.count(8), "stream feature views": root.count(14)}
    except (DecodeError, OverflowError) as exc:
        raise RegistryError(
            source, f"is not a Feast registry (a serialized feast.core.Registry): {exc}"
        ) from exc
    if not data or (not views and not entities and updated is None):
        raise RegistryError(source, "is empty: no entities, feature views or update time")
    return Registry(entities, views, MappingProxyType(skipped), updated)


def read_registry(path: Path) -> Registry:
    """Read and parse a registry file. Raises RegistryError naming the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RegistryError(str(path), f"cannot read the registry: {exc.strerror or exc}") from exc
    return parse_registry(data, str(path))


# --- feature_store.yaml: only what featmon reads; Feast's other keys are ignored ---------------


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class RegistrySection(_Section):
    registry_type: str = "file"
    path: str = Field(min_length=1)
    enable_online_feature_view_versioning: bool = False


class SqliteStore(_Section):
    type: Literal["sqlite"]
    path: str = "data/online.db"


class RedisStore(_Section):
    type: Literal["redis"]
    redis_type: Literal["redis", "redis_cluster"] = "redis"
    connection_string: str = "localhost:6379"


class PostgresStore(_Section):
    type: Literal["postgres"]
    host: str
    port: int | str = 5432
    database: str
    db_schema: str = "public"
    user: str
    password: str = ""
    sslmode: str | None = "require"
    sslkey_path: str | None = None
    sslcert_path: str | None = None
    sslrootcert_path: str | None = None


class FileStore(_Section):
    type: Literal["file", "dask", "duckdb"] = "file"


class OtherStore(_Section):
    """An offline store featmon does not read (BigQuery, Snowflake, Spark, ...)."""

    type: str


class _PostgresOffline(_Section):
    offline_store: PostgresStore


class FeatureStoreYaml(_Section):
    project: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    registry: str | RegistrySection = "data/registry.db"
    online_store: SqliteStore | RedisStore | PostgresStore = Field(
        default_factory=lambda: SqliteStore(type="sqlite"), discriminator="type"
    )
    offline_store: dict[str, Any] | None = None
    entity_key_serialization_version: Literal[3] = 3


@dataclass(frozen=True)
class FeastRepo:
    """A Feast repository: where it is, its feature_store.yaml, and its registry."""

    root: Path
    yaml_path: Path
    settings: FeatureStoreYaml
    offline: FileStore | PostgresStore | OtherStore
    registry_path: Path
    registry: Registry

    @property
    def project(self) -> str:
        return self.settings.project


def read_repo(path: Path) -> FeastRepo:
    """Read feature_store.yaml (in the directory `path`, or `path` itself) and its registry."""
    yaml_path = path / "feature_store.yaml" if path.is_dir() else path
    doc = load_yaml(read_text(yaml_path), str(yaml_path))  # within the YAML input limits
    settings = validate(FeatureStoreYaml, _with_store_types(doc))
    root = yaml_path.resolve().parent
    section = settings.registry
    if isinstance(section, RegistrySection) and section.registry_type != "file":
        raise ConfigError(
            [
                doc.problem(
                    ("registry", "registry_type"),
                    f"expected a file registry, found registry_type {section.registry_type!r} "
                    "(featmon init reads registry.db files only)",
                )
            ]
        )
    location = section if isinstance(section, str) else section.path
    if "://" in location:
        raise ConfigError(
            [doc.problem(("registry",), f"expected a local registry file, found {location!r}")]
        )
    registry_path = beside(root, location)
    offline = _offline_store(settings, doc)
    return FeastRepo(
        root, yaml_path, settings, offline, registry_path, read_registry(registry_path)
    )


def _offline_store(
    settings: FeatureStoreYaml, doc: Document
) -> FileStore | PostgresStore | OtherStore:
    """Feast's default (`file`, or dask and duckdb over the same files), PostgreSQL (checked
    where it stands in the file), or another type, which featmon does not read."""
    section = settings.offline_store or {}
    kind = str(section.get("type", "file"))
    if kind in ("file", "dask", "duckdb"):
        return FileStore.model_validate({"type": kind})
    if kind == "postgres":
        return validate(_PostgresOffline, doc).offline_store
    return OtherStore(type=kind)


def _with_store_types(doc: Document) -> Document:
    """Feast accepts `online_store: sqlite` for `{type: sqlite}`: read it as that mapping."""
    if not isinstance(doc.data, dict):
        return doc
    data = dict(doc.data)
    for key in ("online_store", "offline_store"):
        if isinstance(data.get(key), str):
            data[key] = {"type": data[key]}
    return Document(doc.source, data, doc.lines)


def beside(root: Path, location: str) -> Path:
    path = Path(location).expanduser()
    return path if path.is_absolute() else root / path
