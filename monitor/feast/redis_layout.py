"""Feast's Redis online layout, as bytes: keys, hash fields and event times. Pure: no redis.

One HASH per entity and project, shared by every feature view on that entity:

    key                  serialized entity key (version 3, `codec.encode_entity_key`)
                         followed directly by the project name in UTF-8, no separator
    field of a feature   4 bytes: murmur3 x86_32 (seed 0) of "{feature_view}:{feature}" as a
                         little-endian u32; one-way, so a stored field can only be recognized
                         by recomputing the fields of the features one knows
    _ts:{feature_view}   a `google.protobuf.Timestamp`: the view's event time for the entity
    value                a serialized `feast.types.Value` (`codec.decode_value`); b"" is None

Feast sets no expiry unless `key_ttl_seconds` is configured, so stale values stay readable.
Decoders raise `wire.DecodeError` (a ValueError) and nothing else, whatever the input; the
encoders exist so that tests and the demo can write what Feast writes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import mmh3

from monitor.feast.wire import VARINT, DecodeError, encode_varint, read_varint

TIMESTAMP_PREFIX = b"_ts:"
"""Every field that starts with this holds the event time of one feature view."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MASK64 = (1 << 64) - 1
_STRING = 2  # Feast's ValueType.STRING: the tag of every join key name in an entity key
_GLOB_SPECIAL = frozenset(b"*?[]\\")
_NANOS = 1_000_000_000


def feature_field(feature_view: str, feature: str) -> bytes:
    """The hash field of `feature` of `feature_view`, as Feast writes it."""
    digest = mmh3.hash(f"{feature_view}:{feature}", seed=0, signed=False)
    return struct.pack("<I", digest)


def timestamp_field(feature_view: str) -> bytes:
    """The hash field holding the event time of `feature_view`."""
    return TIMESTAMP_PREFIX + feature_view.encode("utf-8")


def field_label(field: bytes) -> str:
    """A hash field that no known feature explains, as reports show it: `0x` and its hex."""
    return "0x" + field.hex()


def redis_key(entity_key: bytes, project: str) -> bytes:
    """The Redis key of a serialized entity key in `project`."""
    return entity_key + project.encode("utf-8")


def entity_key_prefix(join_keys: Sequence[str]) -> bytes:
    """The bytes every entity key of these join keys starts with: the count and the sorted,
    tagged names, before any value."""
    names = sorted(join_keys)
    out = [struct.pack("<I", len(names))]
    for name in names:
        encoded = name.encode("utf-8")
        out.append(struct.pack("<II", _STRING, len(encoded)) + encoded)
    return b"".join(out)


def glob_escape(data: bytes) -> bytes:
    """`data` as a literal inside a Redis MATCH pattern: glob characters backslash-escaped."""
    out = bytearray()
    for byte in data:
        if byte in _GLOB_SPECIAL:
            out.append(0x5C)
        out.append(byte)
    return bytes(out)


def scan_pattern(join_keys: Sequence[str], project: str) -> bytes:
    """The MATCH pattern of the keys of these join keys in `project`. It also matches keys of
    projects whose name ends with `project`: parse every match with `split_key`."""
    return glob_escape(entity_key_prefix(join_keys)) + b"*" + glob_escape(project.encode("utf-8"))


def entity_key_length(key: bytes) -> int:
    """How many bytes the version 3 entity key at the start of `key` takes, read from its
    counts and lengths (what follows is not looked at). Raises DecodeError."""
    end = len(key)
    if end < 4:
        raise DecodeError("join key count needs 4 bytes", 0)
    (count,) = struct.unpack_from("<I", key, 0)
    if count * 16 > end - 4:  # a name and a value, each with 8 bytes of header
        raise DecodeError(f"implausible join key count {count}", 0)
    pos = 4
    for _ in range(2 * count):  # the names, then the values
        if end - pos < 8:
            raise DecodeError("truncated type and length header", pos)
        (size,) = struct.unpack_from("<I", key, pos + 4)
        pos += 8
        if size > end - pos:
            raise DecodeError(f"length {size} runs past the end", pos)
        pos += size
    return pos


def split_key(key: bytes, project: str) -> bytes:
    """The serialized entity key inside the Redis key `key` of `project`. Raises DecodeError
    when the entity key is malformed or what follows it is not exactly the project name (a
    key of project `faults2` is not a key of project `s2`)."""
    end = entity_key_length(key)
    tail = key[end:]
    if tail != project.encode("utf-8"):
        raise DecodeError(f"key ends with {tail!r}, not with project {project!r}", end)
    return key[:end]


def decode_timestamp(blob: bytes) -> datetime:
    """The aware UTC datetime of a serialized `google.protobuf.Timestamp` (field 1 `seconds`,
    int64; field 2 `nanos`, int32 in [0, 1e9); each omitted when 0, so b"" is the epoch).
    Nanoseconds are truncated to microseconds. As protobuf does, the last occurrence of a
    field wins. Any other field, wire type or range raises DecodeError.

    The shapes protobuf and Feast write for the years 1978 to 3058 are read first, in place:
    `seconds` as a five-byte varint, then `nanos` (from 2 ms up) as a four- or five-byte one,
    or none; any other shape or range is read field by field (`_decode_fields`)."""
    size = len(blob)
    if 6 <= size <= 12 and blob[0] == 0x08 and blob[1] & blob[2] & blob[3] & blob[4] & 0x80:
        high = blob[5]
        if size == 6 and high < 0x80:
            return _EPOCH + timedelta(0, _seconds(blob, high))
        if size == 12 and blob[6] == 0x10 and blob[7] & blob[8] & blob[9] & blob[10] & 0x80:
            nanos = (
                (blob[7] & 0x7F)
                | (blob[8] & 0x7F) << 7
                | (blob[9] & 0x7F) << 14
                | (blob[10] & 0x7F) << 21
                | blob[11] << 28
            )
            if high < 0x80 and nanos < _NANOS:  # (so byte 11 ends the varint too)
                return _EPOCH + timedelta(0, _seconds(blob, high), nanos // 1000)
        elif size == 11 and blob[6] == 0x10 and blob[7] & blob[8] & blob[9] & 0x80:
            last = blob[10]
            if high < 0x80 and last < 0x80:
                nanos = (blob[7] & 0x7F) | (blob[8] & 0x7F) << 7 | (blob[9] & 0x7F) << 14
                return _EPOCH + timedelta(0, _seconds(blob, high), (nanos | last << 21) // 1000)
    return _decode_fields(blob)


def _seconds(blob: bytes, high: int) -> int:
    """The five-byte varint at byte 1 whose last byte is `high`."""
    return (
        (blob[1] & 0x7F)
        | (blob[2] & 0x7F) << 7
        | (blob[3] & 0x7F) << 14
        | (blob[4] & 0x7F) << 21
        | high << 28
    )


def _decode_fields(blob: bytes) -> datetime:
    """`decode_timestamp` of any blob, one field at a time."""
    data = bytes(blob)
    seconds = nanos = 0
    pos = 0
    while pos < len(data):
        start = pos
        tag, pos = read_varint(data, pos, len(data))
        number, wire = tag >> 3, tag & 7
        if number not in (1, 2):
            raise DecodeError(f"unknown field number {number} in a Timestamp", start)
        if wire != VARINT:
            raise DecodeError(f"field {number} has wire type {wire}, expected varint", start)
        raw, pos = read_varint(data, pos, len(data))
        if number == 1:
            seconds = raw - (1 << 64) if raw >> 63 else raw
        else:
            raw &= 0xFFFFFFFF  # int32 on the wire: sign-extended to 64 bits, read as 32
            nanos = raw - (1 << 32) if raw >> 31 else raw
            if not 0 <= nanos < _NANOS:
                raise DecodeError(f"nanos {nanos} outside [0, 999999999]", start)
    try:
        return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)
    except OverflowError as exc:
        raise DecodeError(f"timestamp of {seconds} seconds is out of range", 0) from exc


def encode_timestamp(when: datetime) -> bytes:
    """The serialized `google.protobuf.Timestamp` of an aware datetime, as Feast writes
    `_ts:{feature_view}` (whole seconds toward minus infinity, microseconds as nanos)."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, found naive {when}")
    delta = when - _EPOCH
    seconds = delta.days * 86_400 + delta.seconds
    nanos = delta.microseconds * 1000
    out = bytearray()
    if seconds:
        out += b"\x08" + encode_varint(seconds)
    if nanos:
        out += b"\x10" + encode_varint(nanos)
    return bytes(out)
