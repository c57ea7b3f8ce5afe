"""The pure parts of the Redis store: Feast's Redis byte layout (field hashes, Timestamps, keys
and their project tail) checked against known vectors and real protobuf, and the plain-hash
layout's key templates and text/JSON values."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from checks.model import FeatureView
from checks.observation import FeatureState
from monitor.abc import EntityKey
from monitor.feast.codec import decode_entity_key, encode_entity_key
from monitor.feast.redis_layout import (
    decode_timestamp,
    encode_timestamp,
    entity_key_length,
    entity_key_prefix,
    feature_field,
    field_label,
    glob_escape,
    redis_key,
    scan_pattern,
    split_key,
    timestamp_field,
)
from monitor.feast.wire import DecodeError
from monitor.stores.redis.hash_layout import KeyTemplate, ValueReader, key_value, parse_time
from monitor.stores.redis.layout import FeastLayout

UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
T1 = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)

# Datetimes protobuf's Timestamp and Python's datetime both hold (years 1 to 9999).
aware_times = st.datetimes(
    min_value=datetime(1, 1, 2),  # noqa: DTZ001 - hypothesis bounds are naive
    max_value=datetime(9999, 12, 30),  # noqa: DTZ001 - hypothesis takes naive bounds and applies `timezones` itself
    timezones=st.just(UTC),
)
names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)  # no surrogates
key_values = st.one_of(st.integers(-(1 << 63), (1 << 63) - 1), names)


# --- fields -------------------------------------------------------------------------------------


def test_feature_field_matches_feasts_vector() -> None:
    """user_stats:rolling_7d_revenue hashes to b9cd0269: murmur3 x86_32, seed 0, little-endian."""
    assert feature_field("user_stats", "rolling_7d_revenue").hex() == "b9cd0269"


def test_feature_field_is_four_bytes_of_the_view_and_feature_name() -> None:
    """The view is part of the hash: the same feature of two views has two fields."""
    field = feature_field("user_stats", "revenue")
    assert len(field) == 4
    assert field != feature_field("user_profile", "revenue")


def test_timestamp_field_is_the_literal_ts_prefix_and_view_name() -> None:
    """The event-time field is `_ts:{view}` in plain UTF-8."""
    assert timestamp_field("user_stats") == b"_ts:user_stats"


def test_field_label_shows_an_unknown_field_in_hex() -> None:
    """An undeclared field is reported as 0x and its bytes in hex."""
    assert field_label(bytes.fromhex("deadbeef")) == "0xdeadbeef"


# --- Timestamp ----------------------------------------------------------------------------------


def test_a_timestamp_with_seconds_and_nanos_decodes_to_microseconds() -> None:
    """Field 1 is seconds, field 2 nanos, truncated to microseconds."""
    blob = Timestamp(seconds=1_795_669_200, nanos=123_456_789).SerializeToString()
    assert decode_timestamp(blob) == T1 + timedelta(microseconds=123_456)


def test_a_timestamp_of_whole_seconds_omits_nanos() -> None:
    """Nanos of 0 are not written, and their absence reads as 0."""
    blob = encode_timestamp(T1)
    assert blob == b"\x08" + bytes.fromhex("d0f99ed806")
    assert decode_timestamp(blob) == T1


def test_the_empty_timestamp_is_the_epoch() -> None:
    """Seconds and nanos both omitted (both 0): 1970-01-01, as protobuf reads it."""
    assert encode_timestamp(datetime(1970, 1, 1, tzinfo=UTC)) == b""
    assert decode_timestamp(b"") == datetime(1970, 1, 1, tzinfo=UTC)


def test_a_negative_timestamp_decodes_before_the_epoch() -> None:
    """Seconds are a signed int64 (ten-byte varint when negative)."""
    when = datetime(1960, 1, 1, 0, 0, 0, 5, tzinfo=UTC)
    assert decode_timestamp(encode_timestamp(when)) == when


@pytest.mark.parametrize(
    ("blob", "what"),
    [
        (b"\x08", "truncated varint"),
        (b"\x08" + b"\xff" * 11, "longer than 10 bytes"),
        (b"\x18\x01", "unknown field number 3"),
        (b"\x09" + b"\x00" * 8, "wire type 1"),
        (Timestamp(nanos=-1).SerializeToString(), "nanos -1"),
        (b"\x10\x80\x94\xeb\xdc\x03", "nanos 1000000000"),
        (Timestamp(seconds=300_000_000_000).SerializeToString(), "out of range"),
    ],
)
def test_corrupt_timestamps_raise_decode_error(blob: bytes, what: str) -> None:
    """Truncation, unknown fields, wrong wire types and out-of-range values are DecodeError."""
    with pytest.raises(DecodeError, match=what):
        decode_timestamp(blob)


def test_encoding_a_naive_timestamp_is_refused() -> None:
    """Feast's event times are aware; a naive datetime has no place on the wire."""
    with pytest.raises(ValueError, match="naive"):
        encode_timestamp(datetime(2026, 1, 1))  # noqa: DTZ001 - the naive value under test


@given(st.binary(max_size=40))
def test_any_bytes_decode_to_a_time_or_a_decode_error(blob: bytes) -> None:
    """No input makes the Timestamp decoder raise anything but DecodeError."""
    try:
        result = decode_timestamp(blob)
    except DecodeError:
        return
    assert result.tzinfo is UTC


@given(aware_times)
def test_encode_timestamp_writes_what_protobuf_writes(when: datetime) -> None:
    """Our encoder's bytes are protobuf's Timestamp.FromDatetime bytes."""
    reference = Timestamp()
    reference.FromDatetime(when)
    assert encode_timestamp(when) == reference.SerializeToString()


@given(st.integers(-62_135_596_800, 253_402_300_799), st.integers(0, 999_999_999))
def test_protobuf_timestamps_round_trip(seconds: int, nanos: int) -> None:
    """Whatever protobuf serializes, we read as its seconds and (truncated) nanos."""
    blob = Timestamp(seconds=seconds, nanos=nanos).SerializeToString()
    expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
        seconds=seconds, microseconds=nanos // 1000
    )
    assert decode_timestamp(blob) == expected


@st.composite
def damaged_timestamps(draw: st.DrawFn) -> bytes:
    """A Timestamp as protobuf writes it for the years Feast writes (seconds in five bytes,
    nanos in up to five), with one byte flipped, cut or appended: shapes close to the common
    one that are not quite it."""
    seconds = draw(st.integers(1 << 28, (1 << 35) - 1))
    nanos = draw(st.integers(0, 999_999_999))
    blob = bytearray(Timestamp(seconds=seconds, nanos=nanos).SerializeToString())
    where = draw(st.integers(0, len(blob) - 1))
    action = draw(st.sampled_from(["keep", "flip", "cut", "append"]))
    if action == "flip":
        blob[where] ^= draw(st.integers(1, 255))
    elif action == "cut":
        del blob[where:]
    elif action == "append":
        blob += draw(st.binary(min_size=1, max_size=3))
    return bytes(blob)


@given(damaged_timestamps())
def test_whatever_decodes_as_a_timestamp_protobuf_reads_the_same(blob: bytes) -> None:
    """Where decode_timestamp accepts bytes near the usual shape, protobuf parses the same
    seconds and nanos (truncated to microseconds): never more lenient, nor different."""
    try:
        result = decode_timestamp(blob)
    except DecodeError:
        return
    reference = Timestamp()
    reference.ParseFromString(blob)
    assert result == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
        seconds=reference.seconds, microseconds=reference.nanos // 1000
    )
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("blob", "what"),
    [
        (bytes.fromhex("08d0f99ed806") + b"\x10", "truncated varint"),
        (bytes.fromhex("08d0f99ed806") + bytes.fromhex("1080a8d6b907"), "nanos 2000000000"),
        (bytes.fromhex("08d0f99ed806") + b"\x18\x01", "unknown field number 3"),
        (bytes.fromhex("08d0f99ed886"), "truncated varint"),
    ],
)
def test_near_misses_of_the_usual_timestamp_shape_raise_decode_error(
    blob: bytes, what: str
) -> None:
    """Seconds as Feast writes them followed by a cut, out-of-range or unknown field, or cut
    themselves: the same DecodeError as any other corrupt Timestamp."""
    with pytest.raises(DecodeError, match=what):
        decode_timestamp(blob)


# --- keys ---------------------------------------------------------------------------------------


def test_a_key_is_the_entity_key_followed_by_the_project() -> None:
    """No separator: the project's UTF-8 bytes follow the serialized entity key."""
    entity = encode_entity_key(["user_id"], [7], ["int64"])
    assert redis_key(entity, "shop") == entity + b"shop"
    assert split_key(entity + b"shop", "shop") == entity


def test_a_key_of_a_project_sharing_the_suffix_is_not_the_projects() -> None:
    """`faults2` ends with `s2`, but its keys are not keys of project s2."""
    entity = encode_entity_key(["user_id"], [7], ["int64"])
    with pytest.raises(DecodeError, match="not with project 's2'"):
        split_key(entity + b"faults2", "s2")
    assert split_key(entity + b"faults2", "faults2") == entity


def test_a_key_without_the_project_is_refused() -> None:
    """The bare entity key (an empty tail) is not a key of a named project."""
    entity = encode_entity_key(["user_id"], ["u1"], ["string"])
    with pytest.raises(DecodeError, match="not with project"):
        split_key(entity, "shop")


@pytest.mark.parametrize(
    ("blob", "what"),
    [
        (b"\x01\x00", "count needs 4 bytes"),
        (b"\xff\xff\xff\xff" + b"\x00" * 8, "implausible"),
        (struct.pack("<III", 1, 2, 7) + b"user_id" + struct.pack("<I", 4), "truncated"),
        (struct.pack("<III", 1, 2, 70) + b"user_id" + b"\x00" * 8, "runs past the end"),
    ],
)
def test_malformed_entity_keys_raise_decode_error(blob: bytes, what: str) -> None:
    """Counts and lengths that do not fit the bytes are DecodeError."""
    with pytest.raises(DecodeError, match=what):
        entity_key_length(blob)


@given(st.binary(max_size=64), names)
def test_any_key_splits_or_raises_decode_error(blob: bytes, project: str) -> None:
    """No scanned key makes the parser raise anything but DecodeError."""
    try:
        entity = split_key(blob, project)
    except DecodeError:
        return
    assert blob == entity + project.encode("utf-8")


@given(
    st.lists(st.tuples(names, key_values), min_size=1, max_size=3, unique_by=lambda p: p[0]),
    names,
    names,
)
def test_keys_round_trip_and_other_projects_never_split(
    pairs: list[tuple[str, int | str]], project: str, other: str
) -> None:
    """A key splits back into its entity key under its own project and under no other."""
    join_keys = [name for name, _ in pairs]
    values = [value for _, value in pairs]
    dtypes = ["int64" if isinstance(value, int) else "string" for value in values]
    entity = encode_entity_key(join_keys, values, dtypes)
    key = redis_key(entity, project)
    assert decode_entity_key(split_key(key, project)) == decode_entity_key(entity)
    assert key.startswith(entity_key_prefix(join_keys))
    if other != project:
        with pytest.raises(DecodeError):
            split_key(key, other)


def key_or_error(encode: Callable[[], bytes]) -> bytes | tuple[type[Exception], str]:
    try:
        return encode()
    except (TypeError, ValueError) as exc:
        return type(exc), str(exc)


@pytest.mark.parametrize("declared", [{"user_id": "int64"}, {"user_id": "int"}, {}])
@given(
    st.one_of(
        st.tuples(st.integers()),
        st.tuples(st.booleans()),
        st.tuples(names),
        st.tuples(st.integers(), st.integers()),
    )
)
def test_a_views_key_encoder_writes_what_key_writes(
    declared: dict[str, str], key: tuple[object, ...]
) -> None:
    """The encoder worked out once per view gives `key`'s bytes, or its very error, for any
    key: ints in and out of the int64 range, bools, strings and the wrong arity."""
    layout = FeastLayout("shop", {})
    target = FeatureView.model_validate(
        {"name": "user_stats", "entity": "user_id", "entity_types": declared, "ttl": "1d",
         "features": {"orders": "int64"}, "online": {"store": "redis"}}
    )  # fmt: skip
    entity_key = cast(EntityKey, key)
    fast = key_or_error(lambda: layout.key_encoder(target)(entity_key))
    assert fast == key_or_error(lambda: layout.key(target, entity_key))


def test_glob_characters_are_escaped_in_scan_patterns() -> None:
    """`*?[]\\` inside a literal are backslash-escaped, everything else is kept."""
    assert glob_escape(b"a*b?c[d]e\\f\x00") == b"a\\*b\\?c\\[d\\]e\\\\f\x00"


def test_the_scan_pattern_is_the_escaped_key_prefix_any_values_and_the_project() -> None:
    """The names of the join keys are known, so the pattern starts with them."""
    prefix = struct.pack("<III", 1, 2, 42) + b"k" * 42  # a length of 42 is the byte `*`
    assert entity_key_prefix(["k" * 42]) == prefix
    assert scan_pattern(["k" * 42], "p?") == glob_escape(prefix) + b"*p\\?"


# --- the plain-hash layout: templates ------------------------------------------------------------


def plain_view(**overrides: object) -> FeatureView:
    spec: dict[str, object] = {
        "name": "user_stats",
        "entity": ["user_id", "merchant_id"],
        "ttl": "1d",
        "features": {"revenue": "float"},
    }
    spec.update(overrides)
    return FeatureView.model_validate(spec)


def test_a_template_fills_the_view_name_and_join_keys() -> None:
    """Placeholders become the view's name in Redis and the key's values as text."""
    template = KeyTemplate.parse("features:{feature_view}:{user_id}:{merchant_id}")
    assert template.key("user_stats", {"user_id": 7, "merchant_id": "m:1"}) == (
        b"features:user_stats:7:m:1"
    )
    assert template.pattern("user_stats") == b"features:user_stats:*:*"
    assert template.names_view


def test_a_template_splits_a_key_back_into_raw_values() -> None:
    """The last value takes what is left; a key of another shape does not fit."""
    template = KeyTemplate.parse("f:{feature_view}:{user_id}:{merchant_id}")
    assert template.split("v", b"f:v:7:m:1") == {"user_id": b"7", "merchant_id": b"m:1"}
    with pytest.raises(ValueError, match="does not fit"):
        template.split("v", b"f:other:7:m1")


@pytest.mark.parametrize(
    ("text", "what"),
    [("f:{user_id!r}", "placeholders like"), ("f:{user_id:>5}", "placeholders like"),
     ("f:{}", "placeholders like"), ("f:{user_id", "malformed")],
)  # fmt: skip
def test_templates_that_format_could_not_fill_are_refused(text: str, what: str) -> None:
    """Conversions, format specs, empty and unclosed placeholders are ValueError."""
    with pytest.raises(ValueError, match=what):
        KeyTemplate.parse(text)


def test_a_template_must_name_every_join_key_and_nothing_else() -> None:
    """Missing join keys and unknown placeholders are reported together."""
    template = KeyTemplate.parse("f:{user_id}:{shop}")
    with pytest.raises(ValueError, match=r"unknown \['shop'\] and missing \['merchant_id'\]"):
        template.check(plain_view())


@given(st.integers(-(1 << 63), (1 << 63) - 1), names)
def test_template_keys_round_trip(user_id: int, merchant_id: str) -> None:
    """An int and a text value formatted into a key read back as the same values."""
    template = KeyTemplate.parse("t:{feature_view}:{user_id}|{merchant_id}")
    key = template.key("v", {"user_id": user_id, "merchant_id": merchant_id})
    parts = template.split("v", key)
    assert key_value(parts["user_id"], "int64") == user_id
    assert key_value(parts["merchant_id"], "string") == merchant_id


@pytest.mark.parametrize(
    ("raw", "dtype", "expected"),
    [(b"42", None, 42), (b"007", None, "007"), (b"-3", None, -3), (b"u1", None, "u1"),
     (b"42", "string", "42"), (b"\xff", "bytes", b"\xff"), (b"42", "int32", 42)],
)  # fmt: skip
def test_key_values_read_by_dtype_or_canonical_form(
    raw: bytes, dtype: str | None, expected: object
) -> None:
    """Undeclared, only a canonical decimal is an int, so that it formats back to the key."""
    assert key_value(raw, dtype) == expected


def test_a_non_integer_key_value_of_an_int_join_key_is_refused() -> None:
    """A declared int join key holding text is a ValueError."""
    with pytest.raises(ValueError, match="decimal integer"):
        key_value(b"u1", "int64")


# --- the plain-hash layout: values and times ------------------------------------------------------

TEXT = ValueReader("text", "epoch_s", UTC_ZONE)
JSON = ValueReader("json", "iso8601", UTC_ZONE)


@pytest.mark.parametrize(
    ("raw", "dtype", "expected"),
    [
        (b"3", "int64", 3), (b" -3 ", "int", -3), (b"12.5", "float", 12.5), (b"1e3", "double", 1000.0),
        (b"true", "bool", True), (b"FALSE", "bool", False), (b"1", "bool", True), (b"0", "bool", False),
        (b"gold", "string", "gold"), (b"\xff\x00", "bytes", b"\xff\x00"),
        (b"1795669200", "timestamp", T1),
    ],
)  # fmt: skip
def test_text_values_are_parsed_by_their_declared_dtype(
    raw: bytes, dtype: str, expected: object
) -> None:
    """Text is read as the declared dtype: ints, floats, true/false/1/0, text, raw bytes, times."""
    assert TEXT.decode(raw, dtype) == (FeatureState.VALUE, expected)


def test_nan_text_is_a_float_value() -> None:
    """NaN is a value (the null rate counts it through `is_null`), not a decode error."""
    state, value = TEXT.decode(b"nan", "float")
    assert state is FeatureState.VALUE
    assert isinstance(value, float)
    assert math.isnan(value)


@pytest.mark.parametrize("dtype", ["int64", "float", "string", "bytes", "bool", "timestamp"])
def test_the_empty_string_is_null_for_every_dtype(dtype: str) -> None:
    """An empty field is NULL whatever the dtype."""
    assert TEXT.decode(b"", dtype) == (FeatureState.NULL, None)
    assert JSON.decode(b"", dtype) == (FeatureState.NULL, None)


@pytest.mark.parametrize(
    ("raw", "dtype"),
    [(b"abc", "int64"), (b"1.5", "int64"), (b"1_000", "int64"), (b"9223372036854775808", "int64"),
     (b"2147483648", "int32"), (b"abc", "float"), (b"1_0", "float"), (b"yes", "bool"),
     (b"\xff", "string"), (b"soon", "timestamp")],
)  # fmt: skip
def test_unparseable_text_raises_value_error(raw: bytes, dtype: str) -> None:
    """What the declared dtype cannot read is a ValueError (counted as UNDECODABLE)."""
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        TEXT.decode(raw, dtype)


@pytest.mark.parametrize(
    ("raw", "dtype", "expected"),
    [(b"3", "int64", (FeatureState.VALUE, 3)), (b"3", "float", (FeatureState.VALUE, 3.0)),
     (b"true", "bool", (FeatureState.VALUE, True)), (b'"gold"', "string", (FeatureState.VALUE, "gold")),
     (b'"ab"', "bytes", (FeatureState.VALUE, b"ab")), (b"null", "float", (FeatureState.NULL, None)),
     (b'"2026-11-26T06:00:00+01:00"', "timestamp", (FeatureState.VALUE, T1))],
)  # fmt: skip
def test_json_values_are_checked_against_their_dtype(
    raw: bytes, dtype: str, expected: tuple[FeatureState, object]
) -> None:
    """JSON numbers, booleans, strings and null read as the declared dtype."""
    assert JSON.decode(raw, dtype) == expected


@pytest.mark.parametrize(
    ("raw", "dtype"),
    [(b'"3"', "int64"), (b"true", "int64"), (b"3.5", "int64"), (b"[1]", "float"), (b"{", "string"),
     (b"1", "bool"), (b"[" * 100_000, "string")],
)  # fmt: skip
def test_json_of_the_wrong_type_is_refused(raw: bytes, dtype: str) -> None:
    """A JSON value of another type, or no JSON at all, raises (ValueError or RecursionError)."""
    with pytest.raises((ValueError, RecursionError)):
        JSON.decode(raw, dtype)


@pytest.mark.parametrize(
    ("text", "time_format", "zone", "expected"),
    [
        ("1795669200", "epoch_s", UTC_ZONE, T1),
        ("1795669200.5", "epoch_s", UTC_ZONE, T1 + timedelta(milliseconds=500)),
        ("1795669200000", "epoch_ms", UTC_ZONE, T1),
        ("2026-11-26T05:00:00Z", "iso8601", BERLIN, T1),
        ("2026-11-26 06:00:00", "iso8601", BERLIN, T1),
        ("2026-11-26T07:00:00+02:00", "iso8601", UTC_ZONE, T1),
    ],
)
def test_times_are_read_in_each_format(
    text: str, time_format: str, zone: ZoneInfo, expected: datetime
) -> None:
    """Epoch seconds, milliseconds and ISO 8601; a naive ISO time is in the store's zone."""
    assert parse_time(text, time_format, zone) == expected  # type: ignore[arg-type]  # the format is parametrized as text, as config spells it


@pytest.mark.parametrize(
    ("text", "time_format"),
    [("1795669200", "iso8601"), ("2026-11-26", "epoch_s"), ("inf", "epoch_ms"),
     ("1" * 30, "epoch_s")],
)  # fmt: skip
def test_times_in_another_format_are_refused(text: str, time_format: str) -> None:
    """A time not in the configured format, infinite or out of range is a ValueError."""
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        parse_time(text, time_format, UTC_ZONE)  # type: ignore[arg-type]  # (the same)


def test_an_aware_offset_other_than_utc_is_converted() -> None:
    """Times come out in UTC whatever offset they were written with."""
    result = parse_time("2026-11-26T00:00:00-05:00", "iso8601", UTC_ZONE)
    assert result == T1
    assert result.tzinfo is UTC
