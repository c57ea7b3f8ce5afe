"""Feast's bytes, decoded and encoded without Feast or protobuf.

A feature value is a serialized `feast.types.Value` (protos/feast/types/Value.proto): a proto3
message whose one `oneof val` member holds the value. A zero-length blob is a Value with no
member set, which Feast reads as None; so is `null_val`. List and set members are messages with
one repeated field 1 (packed for numeric types).

An entity key is Feast's own serialization (version 3, little-endian), not protobuf:

    u32 n                                       number of join keys
    n x (u32 2, u32 len, utf-8 name)            names, sorted, each tagged STRING
    n x (u32 type, u32 len, bytes)              values in the same order

with INT64 (4) and UNIX_TIMESTAMP (8) as 8-byte signed, INT32 (3) as 4-byte signed, STRING (2)
as UTF-8 and BYTES (1) raw.

Decoders raise `DecodeError` (a ValueError) naming what was wrong and at which byte, and nothing
else, whatever the input. Encoders exist so that tests and the demo can write what Feast writes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from checks.observation import EntityValue, FeatureState, FeatureValue, Scalar
from monitor.feast.wire import (
    I32,
    I64,
    LEN,
    VARINT,
    WIRE_NAMES,
    DecodeError,
    encode_varint,
    read_varint,
)

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1
NULL_TIMESTAMP = _INT64_MIN
"""Feast's null timestamp (numpy NaT as int64): a `unix_timestamp_val` holding it reads as None."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class _Field:
    """One member of `Value.val`: its name, the kind of its element(s), and whether it is a
    *List/*Set message of repeated elements rather than a single scalar."""

    name: str
    kind: str
    repeated: bool = False


# Kinds: how one element is carried on the wire and what Python type it becomes.
_KIND_WIRE = {
    "bytes": LEN,
    "string": LEN,
    "int32": VARINT,
    "int64": VARINT,
    "double": I64,
    "float": I32,
    "bool": VARINT,
    "timestamp": VARINT,
}
# The scalar members are fields 1-8 in this order; their *List members 11-18, *Set 22-29.
_SCALARS = (
    ("bytes", "bytes"),
    ("string", "string"),
    ("int32", "int32"),
    ("int64", "int64"),
    ("double", "double"),
    ("float", "float"),
    ("bool", "bool"),
    ("timestamp", "unix_timestamp"),
)
_SCALAR_KINDS = tuple(kind for kind, _ in _SCALARS)

_FIELDS: dict[int, _Field] = {
    **{n: _Field(f"{stem}_val", kind) for n, (kind, stem) in enumerate(_SCALARS, 1)},
    **{n: _Field(f"{stem}_list_val", kind, True) for n, (kind, stem) in enumerate(_SCALARS, 11)},
    **{n: _Field(f"{stem}_set_val", kind, True) for n, (kind, stem) in enumerate(_SCALARS, 22)},
    # String-shaped types of Feast >= 0.62 (JSON, UUID, decimal) read as their text.
    32: _Field("json_val", "string"),
    33: _Field("json_list_val", "string", True),
    36: _Field("uuid_val", "string"),
    37: _Field("time_uuid_val", "string"),
    38: _Field("uuid_list_val", "string", True),
    39: _Field("time_uuid_list_val", "string", True),
    40: _Field("uuid_set_val", "string", True),
    41: _Field("time_uuid_set_val", "string", True),
    44: _Field("decimal_val", "string"),
    45: _Field("decimal_list_val", "string", True),
    46: _Field("decimal_set_val", "string", True),
}
_NULL_FIELD = 19  # null_val: an enum (varint) whose only value means None
# Known members whose values nest other Values: no FeatureValue can hold them.
_UNSUPPORTED = {
    20: "map_val",
    21: "map_list_val",
    34: "struct_val",
    35: "struct_list_val",
    42: "list_val",
    43: "set_val",
    47: "scalar_map_val",
    48: "zoned_timestamp_val",
}

_DTYPE_KIND = {
    "int": "int64",
    "int64": "int64",
    "int32": "int32",
    "float": "double",
    "float64": "double",
    "double": "double",
    "float32": "float",
    "string": "string",
    "bool": "bool",
    "bytes": "bytes",
    "timestamp": "timestamp",
}
_SCALAR_FIELD = {kind: number for number, kind in enumerate(_SCALAR_KINDS, 1)}
_LIST_FIELD = {kind: number for number, kind in enumerate(_SCALAR_KINDS, 11)}


class _Reader:
    """A cursor over `data[pos:end]`; offsets in errors are offsets into the whole blob."""

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def at_end(self) -> bool:
        return self.pos >= self.end

    def varint(self) -> int:
        value, self.pos = read_varint(self.data, self.pos, self.end)
        return value

    def take(self, size: int, what: str) -> bytes:
        if size > self.end - self.pos:
            raise DecodeError(f"{what} needs {size} bytes, {self.end - self.pos} left", self.pos)
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def length_delimited(self) -> _Reader:
        """The payload of a length-delimited field, as a reader over the same blob."""
        size = self.varint()
        if size > self.end - self.pos:
            raise DecodeError(f"length {size} runs past the end", self.pos)
        inner = _Reader(self.data, self.pos, self.pos + size)
        self.pos += size
        return inner

    def tag(self) -> tuple[int, int]:
        start = self.pos
        key = self.varint()
        number, wire = key >> 3, key & 7
        if number == 0 or number >= 1 << 29:
            raise DecodeError(f"invalid field number {number}", start)
        return number, wire

    def rest(self) -> bytes:
        return self.data[self.pos : self.end]


def _signed64(raw: int) -> int:
    return raw - (1 << 64) if raw > _INT64_MAX else raw


def _signed32(raw: int) -> int:
    raw &= 0xFFFFFFFF
    return raw - (1 << 32) if raw > _INT32_MAX else raw


def _element(reader: _Reader, kind: str) -> Scalar | None:
    """One element of `kind` at the reader's position (its tag already read).
    None only for Feast's null timestamp."""
    start = reader.pos
    if kind == "bytes":
        return reader.length_delimited().rest()
    if kind == "string":
        payload = reader.length_delimited()
        try:
            return payload.rest().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError("string is not valid UTF-8", payload.pos + exc.start) from exc
    if kind == "double":
        return float(struct.unpack("<d", reader.take(8, "double"))[0])
    if kind == "float":
        return float(struct.unpack("<f", reader.take(4, "float"))[0])
    raw = reader.varint()
    if kind == "bool":
        return raw != 0
    if kind == "int32":
        return _signed32(raw)
    if kind == "int64":
        return _signed64(raw)
    return _timestamp(_signed64(raw), start)


def _timestamp(seconds: int, offset: int) -> datetime | None:
    if seconds == NULL_TIMESTAMP:
        return None
    try:
        return _EPOCH + timedelta(seconds=seconds)
    except OverflowError as exc:
        raise DecodeError(f"timestamp {seconds} is out of range", offset) from exc


def _expect_wire(number: int, field: _Field, wire: int, expected: int, offset: int) -> None:
    if wire != expected:
        raise DecodeError(
            f"field {number} ({field.name}) has wire type {WIRE_NAMES.get(wire, wire)}, "
            f"expected {WIRE_NAMES[expected]}",
            offset,
        )


def _elements(payload: _Reader, field: _Field) -> list[Scalar]:
    """The elements of a *List/*Set message: repeated field 1, packed or not."""
    items: list[Scalar] = []
    element_wire = _KIND_WIRE[field.kind]
    while not payload.at_end():
        start = payload.pos
        number, wire = payload.tag()
        if number != 1:
            raise DecodeError(f"unknown field number {number} in {field.name}", start)
        if wire == LEN and element_wire != LEN:  # packed numeric elements
            packed = payload.length_delimited()
            while not packed.at_end():
                items.append(_list_item(packed, field))
        else:
            _expect_wire(number, field, wire, element_wire, start)
            items.append(_list_item(payload, field))
    return items


def _list_item(reader: _Reader, field: _Field) -> Scalar:
    start = reader.pos
    item = _element(reader, field.kind)
    if item is None:
        raise DecodeError(f"a null timestamp inside {field.name} cannot be represented", start)
    return item


# The fast path of decode_value: a blob holding exactly one scalar member whose tag is the
# first byte (every value Feast writes for a scalar feature). Each reader returns None for any
# other shape (trailing fields, a long length, bad UTF-8, ...), which the general decoder then
# reads, with its errors, exactly as it would have without the fast path.
_VALUE, _NULL = FeatureState.VALUE, FeatureState.NULL
_NULL_READING: tuple[FeatureState, FeatureValue] = (_NULL, None)
_DOUBLE = struct.Struct("<d").unpack_from
_FLOAT = struct.Struct("<f").unpack_from


def _varint_to_end(blob: bytes) -> int | None:
    """The varint from byte 1 when it ends exactly at the end of `blob` within 10 bytes."""
    try:
        raw, end = read_varint(blob, 1, len(blob))
    except DecodeError:
        return None
    return raw if end == len(blob) else None


def _fast_double(blob: bytes) -> tuple[FeatureState, FeatureValue] | None:
    return (_VALUE, _DOUBLE(blob, 1)[0]) if len(blob) == 9 else None


def _fast_float(blob: bytes) -> tuple[FeatureState, FeatureValue] | None:
    return (_VALUE, _FLOAT(blob, 1)[0]) if len(blob) == 5 else None


def _fast_int64(blob: bytes) -> tuple[FeatureState, FeatureValue] | None:
    size = len(blob)
    if size == 2 and blob[1] < 0x80:  # 0 to 127
        return _VALUE, blob[1]
    if size == 3 and blob[1] & 0x80 and blob[2] < 0x80:  # 128 to 16383
        return _VALUE, (blob[1] & 0x7F) | blob[2] << 7
    raw = _varint_to_end(blob)
    return None if raw is None else (_VALUE, _signed64(raw))


def _fast_bool(blob: bytes) -> tuple[FeatureState, FeatureValue] | None:
    if len(blob) == 2 and blob[1] < 0x80:
        return _VALUE, blob[1] != 0
    raw = _varint_to_end(blob)
    return None if raw is None else (_VALUE, raw != 0)


def _fast_string(blob: bytes) -> tuple[FeatureState, FeatureValue] | None:
    size = len(blob) - 2
    if not 0 <= size < 0x80 or blob[1] != size:  # a length of one byte, reaching the end
        return None
    try:
        return _VALUE, blob[2:].decode("utf-8")
    except UnicodeDecodeError:
        return None


_FAST_READERS = {
    _SCALAR_FIELD["double"] << 3 | I64: _fast_double,
    _SCALAR_FIELD["float"] << 3 | I32: _fast_float,
    _SCALAR_FIELD["int64"] << 3 | VARINT: _fast_int64,
    _SCALAR_FIELD["bool"] << 3 | VARINT: _fast_bool,
    _SCALAR_FIELD["string"] << 3 | LEN: _fast_string,
}


def decode_value(blob: bytes) -> tuple[FeatureState, FeatureValue]:
    """The state and Python value of a serialized Feast `Value`.

    b"" and `null_val` are NULL; lists and sets become tuples; timestamps become aware UTC
    datetimes. As protobuf does, the last oneof member on the wire wins, and a list member
    repeated back to back is merged. Raises `DecodeError` for anything else.
    """
    if type(blob) is bytes:
        if not blob:
            return _NULL_READING
        fast = _FAST_READERS.get(blob[0])
        if fast is not None:
            reading = fast(blob)
            if reading is not None:
                return reading
    return _decode_any(blob)


def value_decoder(dtype: str) -> Callable[[bytes], tuple[FeatureState, FeatureValue]]:
    """`decode_value` for the values of a feature declared `dtype`. For a double (float32)
    the usual value, its tag byte and 8 (4) little-endian bytes, is read in place, one call
    in all: such values rarely repeat, so each is decoded. Anything else goes through
    `decode_value`, errors and all."""
    kind = _DTYPE_KIND.get(dtype)
    if kind not in ("double", "float"):
        return decode_value
    if kind == "double":
        size, tag, unpack = 9, _SCALAR_FIELD["double"] << 3 | I64, _DOUBLE
    else:
        size, tag, unpack = 5, _SCALAR_FIELD["float"] << 3 | I32, _FLOAT

    def decode(blob: bytes) -> tuple[FeatureState, FeatureValue]:
        if len(blob) == size and blob[0] == tag:
            return _VALUE, unpack(blob, 1)[0]
        return decode_value(blob)

    return decode


def _decode_any(blob: bytes) -> tuple[FeatureState, FeatureValue]:
    """`decode_value` of any blob, one field at a time."""
    reader = _Reader(bytes(blob))
    chosen: int | None = None
    value: FeatureValue = None
    items: list[Scalar] = []
    while not reader.at_end():
        start = reader.pos
        number, wire = reader.tag()
        if number == _NULL_FIELD:
            _expect_wire(number, _Field("null_val", "int32"), wire, VARINT, start)
            reader.varint()
            chosen, value = number, None
            continue
        field = _FIELDS.get(number)
        if field is None:
            if number in _UNSUPPORTED:
                raise DecodeError(
                    f"field {number} ({_UNSUPPORTED[number]}) is not supported", start
                )
            raise DecodeError(f"unknown field number {number}", start)
        if field.repeated:
            _expect_wire(number, field, wire, LEN, start)
            more = _elements(reader.length_delimited(), field)
            items = [*items, *more] if chosen == number else more
            chosen, value = number, None
            continue
        _expect_wire(number, field, wire, _KIND_WIRE[field.kind], start)
        chosen, value = number, _element(reader, field.kind)
    if chosen is None or chosen == _NULL_FIELD:
        return FeatureState.NULL, None
    if _FIELDS[chosen].repeated:
        return FeatureState.VALUE, tuple(items)
    if value is None:  # Feast's null timestamp
        return FeatureState.NULL, None
    return FeatureState.VALUE, value


def _tag(number: int, wire: int) -> bytes:
    return encode_varint(number << 3 | wire)


def _epoch_seconds(value: datetime) -> int:
    """Whole seconds since the epoch, truncated toward zero as Feast's `int(dt.timestamp())`."""
    delta = value - _EPOCH
    seconds = delta.days * 86_400 + delta.seconds
    return seconds + 1 if seconds < 0 and delta.microseconds else seconds


def _check_int(value: object, low: int, high: int, kind: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an int for {kind}, found {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"expected {kind} in [{low}, {high}], found {value}")
    return value


def _encode_element(value: object, kind: str) -> bytes:
    """One element of `kind`, without its tag (length-prefixed for bytes and strings)."""
    if kind == "int64":
        return encode_varint(_check_int(value, _INT64_MIN, _INT64_MAX, kind))
    if kind == "int32":
        return encode_varint(_check_int(value, _INT32_MIN, _INT32_MAX, kind))
    if kind == "timestamp":
        return encode_varint(_epoch_seconds(_check_aware(value)))
    if kind == "bool":
        if not isinstance(value, bool):
            raise TypeError(f"expected a bool, found {type(value).__name__}")
        return b"\x01" if value else b"\x00"
    if kind in ("double", "float"):
        return _encode_real(value, kind)
    if kind == "string" and isinstance(value, str):
        data = value.encode("utf-8")
    elif kind == "bytes" and isinstance(value, bytes):
        data = value
    else:
        raise TypeError(f"expected {kind}, found {type(value).__name__}")
    return encode_varint(len(data)) + data


def _check_aware(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime for timestamp, found {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, found naive {value}")
    return value


def _encode_real(value: object, kind: str) -> bytes:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"expected a float for {kind}, found {type(value).__name__}")
    try:
        return struct.pack("<d" if kind == "double" else "<f", value)
    except OverflowError as exc:
        raise ValueError(f"expected a value that fits a {kind}, found {value}") from exc


def encode_value(value: object, dtype: str) -> bytes:
    """The serialized Feast `Value` of `value` declared as `dtype` (a `checks.model.Dtype`):
    what Feast writes to its online store. None is b""; a tuple or list becomes the list type
    of `dtype` (a packed numeric list, or repeated strings or bytes). Raises TypeError for a
    value of another type, ValueError for an unknown dtype or a number out of range."""
    kind = _DTYPE_KIND.get(dtype)
    if kind is None:
        raise ValueError(f"expected a dtype among {sorted(_DTYPE_KIND)}, found {dtype!r}")
    if value is None:
        return b""
    if isinstance(value, tuple | list):
        if _KIND_WIRE[kind] == LEN:
            body = b"".join(_tag(1, LEN) + _encode_element(item, kind) for item in value)
        else:
            packed = b"".join(_encode_element(item, kind) for item in value)
            body = _tag(1, LEN) + encode_varint(len(packed)) + packed if packed else b""
        return _tag(_LIST_FIELD[kind], LEN) + encode_varint(len(body)) + body
    return _tag(_SCALAR_FIELD[kind], _KIND_WIRE[kind]) + _encode_element(value, kind)


# Entity keys: Feast's ValueType codes of the values a join key may hold.
_BYTES, _STRING, _INT32, _INT64, _UNIX_TIMESTAMP = 1, 2, 3, 4, 8
_KEY_TYPE = {
    "int": _INT64,
    "int64": _INT64,
    "int32": _INT32,
    "string": _STRING,
    "bytes": _BYTES,
    "timestamp": _UNIX_TIMESTAMP,
}
KEY_DTYPES = frozenset(_KEY_TYPE)
"""The dtypes a join key may be declared with."""


def infer_entity_dtype(value: object) -> str:
    """The dtype Feast gives an undeclared join key value: int64, string or bytes."""
    if isinstance(value, bool):
        raise TypeError("expected an int, str or bytes join key value, found bool")
    if isinstance(value, int):
        return "int64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    raise TypeError(f"expected an int, str or bytes join key value, found {type(value).__name__}")


def _key_value(value: EntityValue, dtype: str) -> tuple[int, bytes]:
    code = _KEY_TYPE.get(dtype)
    if code is None:
        raise ValueError(f"expected a join key dtype among {sorted(_KEY_TYPE)}, found {dtype!r}")
    if code in (_INT64, _UNIX_TIMESTAMP):
        return code, struct.pack("<q", _check_int(value, _INT64_MIN, _INT64_MAX, dtype))
    if code == _INT32:
        return code, struct.pack("<i", _check_int(value, _INT32_MIN, _INT32_MAX, dtype))
    if code == _STRING and isinstance(value, str):
        return code, value.encode("utf-8")
    if code == _BYTES and isinstance(value, bytes):
        return code, value
    raise TypeError(f"expected a {dtype} join key value, found {type(value).__name__}")


def encode_entity_key(
    join_keys: Sequence[str], values: Sequence[EntityValue], dtypes: Sequence[str]
) -> bytes:
    """Feast's serialized entity key (version 3): join keys sorted by name, each value encoded
    as its declared dtype (int/int64, int32, string, bytes, or timestamp as epoch seconds)."""
    if not len(join_keys) == len(values) == len(dtypes):
        raise ValueError(
            f"expected as many values and dtypes as join keys ({len(join_keys)}), "
            f"found {len(values)} values and {len(dtypes)} dtypes"
        )
    if len(set(join_keys)) != len(join_keys):
        raise ValueError(f"expected distinct join keys, found {list(join_keys)}")
    ordered = sorted(zip(join_keys, values, dtypes, strict=True), key=lambda item: item[0])
    out = [struct.pack("<I", len(ordered))]
    for name, _, _ in ordered:
        encoded = name.encode("utf-8")
        out.append(struct.pack("<II", _STRING, len(encoded)) + encoded)
    for _, value, dtype in ordered:
        code, data = _key_value(value, dtype)
        out.append(struct.pack("<II", code, len(data)) + data)
    return b"".join(out)


INT64_KEY_DTYPES = frozenset(dtype for dtype, code in _KEY_TYPE.items() if code == _INT64)
"""The dtypes of a join key whose values are stored as INT64."""


def int64_key_encoder(join_key: str) -> Callable[[object], bytes | None]:
    """`encode_entity_key([join_key], [value], ["int64"])` with the constant bytes worked out
    once: the encoder returns None for a value that is not an int in the int64 range, which
    `encode_entity_key` then refuses with its own error."""
    head = encode_entity_key([join_key], [0], ["int64"])[:-8]
    pack = struct.Struct("<q").pack

    def encode(value: object) -> bytes | None:
        if type(value) is int and _INT64_MIN <= value <= _INT64_MAX:
            return head + pack(value)
        return None

    return encode


def _u32(reader: _Reader, what: str) -> int:
    return int(struct.unpack("<I", reader.take(4, what))[0])


def _text(data: bytes, offset: int, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"{what} is not valid UTF-8", offset + exc.start) from exc


def _decode_key_value(code: int, data: bytes, offset: int) -> EntityValue:
    sizes = {_INT64: 8, _UNIX_TIMESTAMP: 8, _INT32: 4}
    if code in sizes and len(data) != sizes[code]:
        raise DecodeError(f"value type {code} needs {sizes[code]} bytes, found {len(data)}", offset)
    if code in (_INT64, _UNIX_TIMESTAMP):
        return int(struct.unpack("<q", data)[0])
    if code == _INT32:
        return int(struct.unpack("<i", data)[0])
    if code == _STRING:
        return _text(data, offset, "string key value")
    if code == _BYTES:
        return data
    raise DecodeError(f"unsupported entity key value type {code}", offset)


def decode_entity_key(blob: bytes) -> tuple[tuple[str, ...], tuple[EntityValue, ...]]:
    """The join key names (sorted, as stored) and their values from a version 3 entity key.
    Integers and timestamps (epoch seconds) come back as int. Raises `DecodeError`."""
    reader = _Reader(bytes(blob))
    count = _u32(reader, "join key count")
    if count * 16 > reader.end - reader.pos:  # each key needs two headers of 8 bytes
        raise DecodeError(f"implausible join key count {count}", 0)
    names: list[str] = []
    for _ in range(count):
        start = reader.pos
        code = _u32(reader, "join key type")
        if code != _STRING:
            raise DecodeError(f"join key name tagged with type {code}, expected {_STRING}", start)
        size = _u32(reader, "join key name length")
        names.append(_text(reader.take(size, "join key name"), reader.pos - size, "join key name"))
    values: list[EntityValue] = []
    for _ in range(count):
        start = reader.pos
        code = _u32(reader, "value type")
        size = _u32(reader, "value length")
        values.append(_decode_key_value(code, reader.take(size, "value"), start))
    if not reader.at_end():
        raise DecodeError(
            f"{reader.end - reader.pos} trailing bytes after the last value", reader.pos
        )
    return tuple(names), tuple(values)
