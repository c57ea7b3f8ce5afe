"""The Feast codec reads and writes exactly Feast's bytes: known vectors, real protobuf as the
oracle for values (a `Value` descriptor built here from Feast's Value.proto), Feast's
version 3 entity key layout, and DecodeError (never another exception) for any other bytes."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from checks.observation import EntityValue, FeatureState
from monitor.feast.codec import (
    NULL_TIMESTAMP,
    decode_entity_key,
    decode_value,
    encode_entity_key,
    encode_value,
    infer_entity_dtype,
    int64_key_encoder,
    value_decoder,
)
from monitor.feast.wire import DecodeError

INT64 = st.integers(-(1 << 63), (1 << 63) - 1)
INT32 = st.integers(-(1 << 31), (1 << 31) - 1)
ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
WHOLE_SECONDS = st.datetimes(
    min_value=datetime(2, 1, 1),  # noqa: DTZ001 - hypothesis takes naive bounds
    max_value=datetime(9998, 12, 31),  # noqa: DTZ001 - and applies `timezones` itself
    timezones=ZONES,
).map(lambda moment: moment.replace(microsecond=0))

SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "int": INT64,
    "int64": INT64,
    "int32": INT32,
    "float": st.floats(),
    "float64": st.floats(),
    "double": st.floats(),
    "float32": st.floats(width=32),
    "string": st.text(),
    "bool": st.booleans(),
    "bytes": st.binary(),
    "timestamp": WHOLE_SECONDS,
}


def same(left: object, right: object) -> bool:
    """Equal, with NaN equal to NaN, elementwise for tuples."""
    if isinstance(left, tuple) and isinstance(right, tuple):
        return len(left) == len(right) and all(map(same, left, right))
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)
    return left == right


T = TypeVar("T")


def attempt(decode: Callable[[bytes], T], blob: bytes) -> T | DecodeError:
    """What decoding returned, or the DecodeError it raised (any other exception escapes)."""
    try:
        return decode(blob)
    except DecodeError as exc:
        return exc


# --- Feast's Value message, built with real protobuf -------------------------------------------

F = descriptor_pb2.FieldDescriptorProto
PB_TYPE = {
    "bytes": F.TYPE_BYTES,
    "string": F.TYPE_STRING,
    "int32": F.TYPE_INT32,
    "int64": F.TYPE_INT64,
    "double": F.TYPE_DOUBLE,
    "float": F.TYPE_FLOAT,
    "bool": F.TYPE_BOOL,
    "timestamp": F.TYPE_INT64,
}
CONTAINER = {
    "bytes": "Bytes",
    "string": "String",
    "int32": "Int32",
    "int64": "Int64",
    "double": "Double",
    "float": "Float",
    "bool": "Bool",
    "timestamp": "Int64",
}


@dataclass(frozen=True)
class Member:
    """One member of `oneof val` in Feast's Value.proto that featmon decodes."""

    number: int
    name: str
    kind: str
    container: str | None = None  # "List" or "Set" for repeated members


# Transcribed from protos/feast/types/Value.proto (Feast 0.62 to 0.67).
MEMBERS = (
    Member(1, "bytes_val", "bytes"),
    Member(2, "string_val", "string"),
    Member(3, "int32_val", "int32"),
    Member(4, "int64_val", "int64"),
    Member(5, "double_val", "double"),
    Member(6, "float_val", "float"),
    Member(7, "bool_val", "bool"),
    Member(8, "unix_timestamp_val", "timestamp"),
    Member(11, "bytes_list_val", "bytes", "List"),
    Member(12, "string_list_val", "string", "List"),
    Member(13, "int32_list_val", "int32", "List"),
    Member(14, "int64_list_val", "int64", "List"),
    Member(15, "double_list_val", "double", "List"),
    Member(16, "float_list_val", "float", "List"),
    Member(17, "bool_list_val", "bool", "List"),
    Member(18, "unix_timestamp_list_val", "timestamp", "List"),
    Member(22, "bytes_set_val", "bytes", "Set"),
    Member(23, "string_set_val", "string", "Set"),
    Member(24, "int32_set_val", "int32", "Set"),
    Member(25, "int64_set_val", "int64", "Set"),
    Member(26, "double_set_val", "double", "Set"),
    Member(27, "float_set_val", "float", "Set"),
    Member(28, "bool_set_val", "bool", "Set"),
    Member(29, "unix_timestamp_set_val", "timestamp", "Set"),
    Member(32, "json_val", "string"),
    Member(33, "json_list_val", "string", "List"),
    Member(36, "uuid_val", "string"),
    Member(37, "time_uuid_val", "string"),
    Member(38, "uuid_list_val", "string", "List"),
    Member(39, "time_uuid_list_val", "string", "List"),
    Member(40, "uuid_set_val", "string", "Set"),
    Member(41, "time_uuid_set_val", "string", "Set"),
    Member(44, "decimal_val", "string"),
    Member(45, "decimal_list_val", "string", "List"),
    Member(46, "decimal_set_val", "string", "Set"),
)


def value_message_class() -> type[Message]:
    """feast.types.Value (with its list, set and Null types), as protoc would build it."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="featmon_tests/feast/types/Value.proto", package="feast.types", syntax="proto3"
    )
    for kind in ("bytes", "string", "int32", "int64", "double", "float", "bool"):
        for container in ("List", "Set"):
            message = proto.message_type.add(name=CONTAINER[kind] + container)
            message.field.add(name="val", number=1, type=PB_TYPE[kind], label=F.LABEL_REPEATED)
    proto.enum_type.add(name="Null").value.add(name="NULL", number=0)
    value = proto.message_type.add(name="Value")
    value.oneof_decl.add(name="val")
    for member in MEMBERS:
        field = value.field.add(
            name=member.name, number=member.number, label=F.LABEL_OPTIONAL, oneof_index=0
        )
        if member.container is None:
            field.type = PB_TYPE[member.kind]
        else:
            field.type = F.TYPE_MESSAGE
            field.type_name = f".feast.types.{CONTAINER[member.kind]}{member.container}"
    null = value.field.add(name="null_val", number=19, label=F.LABEL_OPTIONAL, oneof_index=0)
    null.type, null.type_name = F.TYPE_ENUM, ".feast.types.Null"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("feast.types.Value"))


Value = value_message_class()


def value_with(member: str, value: object) -> Message:
    """A Value message with one member set (the class is built at run time, so its fields are
    unknown to the type checker: set by name rather than by keyword)."""
    message = Value()
    setattr(message, member, value)
    return message


def element_strategy(kind: str) -> st.SearchStrategy[Any]:
    """Values of one protobuf element kind; timestamps as epoch seconds within datetime's range,
    never Feast's null sentinel."""
    return {
        "bytes": st.binary(),
        "string": st.text(),
        "int32": INT32,
        "int64": INT64,
        "double": st.floats(),
        "float": st.floats(width=32),
        "bool": st.booleans(),
        "timestamp": st.integers(-62_000_000_000, 253_000_000_000),
    }[kind]


def member_value(member: Member) -> st.SearchStrategy[Any]:
    element = element_strategy(member.kind)
    return element if member.container is None else st.lists(element, max_size=8)


MEMBER_VALUES = st.sampled_from(MEMBERS).flatmap(
    lambda member: st.tuples(st.just(member), member_value(member))
)


def real_message(member: Member, value: object) -> Message:
    message = Value()
    if member.container is None:
        setattr(message, member.name, value)
    else:
        container = getattr(message, member.name)
        container.SetInParent()  # an empty list is still the chosen member
        container.val.extend(value)
    return message


def as_time(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def member(name: str) -> Member:
    return next(m for m in MEMBERS if m.name == name)


def python_value(member: Member, message: Message) -> object:
    """What featmon should read from a real message: protobuf's own value, timestamps as aware
    UTC datetimes, lists and sets as tuples."""
    raw = getattr(message, member.name)
    if member.container is not None:
        items = list(raw.val)
        return tuple(as_time(i) for i in items) if member.kind == "timestamp" else tuple(items)
    if member.kind == "timestamp":
        return None if raw == NULL_TIMESTAMP else as_time(raw)
    return raw


# --- values: known vectors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "dtype", "wire_hex"),
    [
        (-1, "int64", "20ffffffffffffffffff01"),
        (-7, "int32", "18f9ffffffffffffffff01"),
        (0, "int", "2000"),
        (1.5, "double", "29000000000000f83f"),
        (1.5, "float32", "350000c03f"),
        ("", "string", "1200"),
        ("é", "string", "1202c3a9"),
        (False, "bool", "3800"),
        (b"\x00\xff", "bytes", "0a0200ff"),
        (datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC), "timestamp", "4080e2cfaa06"),
        ((1, -2, 3), "int64", "720e0a0c01feffffffffffffffff0103"),
        (("a", ""), "string", "62050a01610a00"),
        ((), "float32", "8201" + "00"),
        (None, "double", ""),
    ],
)
def test_known_vectors_encode_and_decode_exactly(value: object, dtype: str, wire_hex: str) -> None:
    """Each value encodes to Feast's exact bytes and those bytes decode back to it."""
    blob = bytes.fromhex(wire_hex)
    assert encode_value(value, dtype) == blob
    expected = FeatureState.NULL if value is None else FeatureState.VALUE
    assert decode_value(blob) == (expected, value)


def test_empty_string_is_a_value_but_an_empty_blob_is_null() -> None:
    """An empty string is a present value; zero bytes are Feast's None."""
    assert decode_value(b"\x12\x00") == (FeatureState.VALUE, "")
    assert decode_value(b"") == (FeatureState.NULL, None)


def test_null_val_reads_as_null() -> None:
    """`null_val` (field 19) is an explicit null."""
    assert decode_value(b"\x98\x01\x00") == (FeatureState.NULL, None)


def test_feast_null_timestamp_reads_as_null() -> None:
    """A unix_timestamp_val holding numpy's NaT (int64 min) is Feast's null timestamp."""
    blob = bytes.fromhex("40" + "80808080808080808001")
    assert value_with("unix_timestamp_val", NULL_TIMESTAMP).SerializeToString() == blob
    assert decode_value(blob) == (FeatureState.NULL, None)


def test_timestamps_decode_as_aware_utc() -> None:
    """Epoch seconds become a timezone-aware datetime in UTC."""
    _, value = decode_value(bytes.fromhex("4080e2cfaa06"))
    assert isinstance(value, datetime)
    assert value.utcoffset() == timedelta(0)


def test_timestamp_encoding_truncates_toward_zero_as_feast_does() -> None:
    """Sub-second parts are dropped toward zero, as Feast's int(dt.timestamp()) does."""
    before_epoch = datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC)
    after_epoch = datetime(1970, 1, 1, 0, 0, 1, 500_000, tzinfo=UTC)
    assert decode_value(encode_value(before_epoch, "timestamp"))[1] == datetime(
        1970, 1, 1, tzinfo=UTC
    )
    assert decode_value(encode_value(after_epoch, "timestamp"))[1] == datetime(
        1970, 1, 1, 0, 0, 1, tzinfo=UTC
    )


def test_unpacked_numeric_lists_decode_like_packed_ones() -> None:
    """Numeric list elements written one tag each (legal protobuf) read the same as packed."""
    unpacked = bytes.fromhex("7204" + "0801" + "0802")
    assert decode_value(unpacked) == (FeatureState.VALUE, (1, 2))
    assert same(
        decode_value(unpacked)[1], python_value(member("int64_list_val"), parse_real(unpacked))
    )


def test_last_oneof_member_on_the_wire_wins() -> None:
    """As in protobuf, a later member of the oneof replaces an earlier one."""
    blob = bytes.fromhex("2001" + "120161")
    assert decode_value(blob) == (FeatureState.VALUE, "a")
    assert parse_real(blob).WhichOneof("val") == "string_val"


def test_a_list_member_repeated_back_to_back_is_merged() -> None:
    """As in protobuf, two chunks of the same list member concatenate."""
    blob = bytes.fromhex("7203" + "0a0101") + bytes.fromhex("7203" + "0a0102")
    assert decode_value(blob) == (FeatureState.VALUE, (1, 2))
    assert python_value(member("int64_list_val"), parse_real(blob)) == (1, 2)


def test_nan_survives_a_round_trip() -> None:
    """NaN is a value (the checks count it as null), in both float widths."""
    for dtype in ("double", "float32"):
        state, value = decode_value(encode_value(math.nan, dtype))
        assert state is FeatureState.VALUE
        assert isinstance(value, float)
        assert math.isnan(value)


# --- values: corrupt bytes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire_hex", "message", "offset"),
    [
        ("4801", "unknown field number 9", 0),
        ("2001" + "4801", "unknown field number 9", 2),
        ("20ff", "truncated varint", 1),
        ("20" + "ff" * 10 + "01", "varint longer than 10 bytes", 1),
        ("1202c328", "string is not valid UTF-8", 2),
        ("2200", "field 4 (int64_val) has wire type length-delimited, expected varint", 0),
        ("0b", "field 1 (bytes_val) has wire type start-group, expected length-delimited", 0),
        ("0a05" + "6162", "length 5 runs past the end", 2),
        ("290000", "double needs 8 bytes, 2 left", 1),
        ("00", "invalid field number 0", 0),
        ("a20100", "field 20 (map_val) is not supported", 0),
        ("820300", "field 48 (zoned_timestamp_val) is not supported", 0),
        ("7202" + "1001", "unknown field number 2 in int64_list_val", 2),
        ("920103" + "0a01" + "ff", "truncated varint", 5),
        ("920101" + "08", "truncated varint", 4),
        (
            "920105" + "0d00000000",
            "field 1 (unix_timestamp_list_val) has wire type fixed32, expected varint",
            3,
        ),
        ("40ffffffffffffffff7f", "timestamp 9223372036854775807 is out of range", 1),
    ],
)
def test_corrupt_values_raise_decode_error_with_what_and_where(
    wire_hex: str, message: str, offset: int
) -> None:
    """Each kind of corruption is a DecodeError naming the problem and its byte offset."""
    with pytest.raises(DecodeError) as info:
        decode_value(bytes.fromhex(wire_hex))
    assert (info.value.what, info.value.offset) == (message, offset)
    assert str(info.value) == f"{message} at byte {offset}"


def test_a_null_timestamp_inside_a_list_is_a_decode_error() -> None:
    """Feast's NaT inside a timestamp list has no place in a tuple of datetimes."""
    message = real_message(member("unix_timestamp_list_val"), [0, NULL_TIMESTAMP])
    with pytest.raises(DecodeError, match="null timestamp inside unix_timestamp_list_val"):
        decode_value(message.SerializeToString())


# --- values: properties ------------------------------------------------------------------------


@st.composite
def damaged(draw: st.DrawFn, valid: st.SearchStrategy[bytes]) -> bytes:
    """A valid encoding with a few bytes flipped, cut or inserted: corruption deep inside."""
    blob = bytearray(draw(valid))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, len(blob)))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "cut":
            del blob[where:]
        elif action == "insert" or where == len(blob):
            blob[where:where] = draw(st.binary(min_size=1, max_size=3))
        else:
            blob[where] ^= draw(st.integers(1, 255))
    return bytes(blob)


VALID_VALUES = MEMBER_VALUES.map(lambda pair: real_message(*pair).SerializeToString())


@given(st.one_of(st.binary(max_size=64), damaged(VALID_VALUES)))
def test_any_bytes_decode_to_a_reading_or_raise_decode_error(blob: bytes) -> None:
    """Whatever the bytes, decode_value returns a state and value or raises DecodeError."""
    result = attempt(decode_value, blob)
    if isinstance(result, DecodeError):
        assert 0 <= result.offset <= len(blob)
        return
    state, value = result
    assert state in (FeatureState.VALUE, FeatureState.NULL)
    assert (value is None) == (state is FeatureState.NULL)


@pytest.mark.parametrize("dtype", sorted(SCALARS))
@given(data=st.data())
def test_every_dtype_round_trips_scalars_and_lists(dtype: str, data: st.DataObject) -> None:
    """decode_value(encode_value(v, dtype)) is v, for scalars and for lists (as tuples)."""
    scalar = data.draw(SCALARS[dtype], label="scalar")
    assert same(decode_value(encode_value(scalar, dtype)), (FeatureState.VALUE, scalar))
    items = tuple(data.draw(st.lists(SCALARS[dtype], max_size=6), label="list"))
    assert same(decode_value(encode_value(items, dtype)), (FeatureState.VALUE, items))


@pytest.mark.parametrize(
    ("value", "dtype", "error"),
    [
        ("1", "int64", TypeError),
        (True, "int64", TypeError),
        (1 << 63, "int64", ValueError),
        (1 << 31, "int32", ValueError),
        (1e39, "float32", ValueError),
        (1, "bool", TypeError),
        (b"x", "string", TypeError),
        ("x", "bytes", TypeError),
        (datetime(2026, 1, 1), "timestamp", ValueError),  # noqa: DTZ001 - naive on purpose
        (1_700_000_000, "timestamp", TypeError),
        (1, "decimal", ValueError),
        ((1, "2"), "int64", TypeError),
    ],
)
def test_encoding_refuses_values_that_do_not_fit_the_dtype(
    value: object, dtype: str, error: type[Exception]
) -> None:
    """A value of the wrong type or range is an error, not silently different bytes."""
    with pytest.raises(error):
        encode_value(value, dtype)


# --- values: real protobuf as the oracle -------------------------------------------------------


def parse_real(blob: bytes) -> Message:
    message = Value()
    message.ParseFromString(blob)
    return message


@given(MEMBER_VALUES)
def test_messages_serialized_by_protobuf_decode_to_protobufs_values(
    pair: tuple[Member, Any],
) -> None:
    """Every supported member, written by real protobuf, reads as protobuf itself reads it."""
    member, value = pair
    message = real_message(member, value)
    assert same(
        decode_value(message.SerializeToString()),
        (FeatureState.VALUE, python_value(member, message)),
    )


@given(st.one_of(st.binary(max_size=40), damaged(VALID_VALUES)))
def test_whatever_featmon_accepts_protobuf_reads_the_same(blob: bytes) -> None:
    """Where decode_value accepts bytes (valid or damaged), protobuf parses them to the same
    member and value: featmon is never more lenient than protobuf, nor different."""
    result = attempt(decode_value, blob)
    if isinstance(result, DecodeError):
        return
    message = parse_real(blob)  # raises google.protobuf's DecodeError if protobuf refuses
    which = message.WhichOneof("val")
    if which in (None, "null_val") or (
        which == "unix_timestamp_val" and python_value(member(which), message) is None
    ):
        assert result == (FeatureState.NULL, None)
        return
    assert which is not None
    assert same(result, (FeatureState.VALUE, python_value(member(which), message)))


# The first bytes of a Value holding one double, float, int64, bool or string member: the
# shapes decode_value reads without walking the message (see codec.decode_value).
SCALAR_TAGS = st.sampled_from([0x29, 0x35, 0x20, 0x38, 0x12])


@given(SCALAR_TAGS, st.binary(max_size=12))
def test_blobs_opening_with_a_scalar_tag_read_as_protobuf_reads_them(tag: int, rest: bytes) -> None:
    """A scalar tag followed by anything (truncated, too long, trailing fields, bad UTF-8):
    where decode_value accepts the bytes, protobuf reads the same member and value."""
    blob = bytes([tag]) + rest
    result = attempt(decode_value, blob)
    if isinstance(result, DecodeError):
        assert 0 <= result.offset <= len(blob)
        return
    message = parse_real(blob)
    which = message.WhichOneof("val")
    if which in (None, "null_val"):
        assert result == (FeatureState.NULL, None)
        return
    assert same(result, (FeatureState.VALUE, python_value(member(which), message)))


@pytest.mark.parametrize("dtype", ["double", "float64", "float", "float32", "int64", "string"])
@given(
    st.one_of(
        st.binary(max_size=12),
        damaged(VALID_VALUES),
        st.builds(lambda tag, rest: bytes([tag]) + rest, SCALAR_TAGS, st.binary(max_size=9)),
        st.floats().map(lambda x: b"\x29" + struct.pack("<d", x)),
        st.floats(width=32).map(lambda x: b"\x35" + struct.pack("<f", x)),
    )
)
def test_a_dtypes_value_decoder_reads_every_blob_as_decode_value_does(
    dtype: str, blob: bytes
) -> None:
    """The decoder for a declared dtype (a double's or float's usual value read in place)
    returns what decode_value returns, or raises the same DecodeError, for any blob."""
    expected, result = attempt(decode_value, blob), attempt(value_decoder(dtype), blob)
    if isinstance(expected, DecodeError):
        assert isinstance(result, DecodeError)
        assert (result.what, result.offset) == (expected.what, expected.offset)
    else:
        assert not isinstance(result, DecodeError)
        assert result[0] is expected[0]
        assert same(result[1], expected[1])


@pytest.mark.parametrize(
    ("wire_hex", "expected"),
    [
        ("2001" + "2002", 2),  # a second int64 member after the first: the last wins
        ("2001" + "29" + "0000000000000040", 2.0),  # an int64, then a double: the double wins
        ("20" + "ff" * 9 + "01", -1),  # a ten-byte varint: a negative int64
        ("3802", True),  # any non-zero varint is true
        ("38" + "80" * 9 + "01", True),  # even one that only sets bit 63
        ("1280" + "01" + "61" * 128, "a" * 128),  # a string of 128 bytes: a two-byte length
        ("1201c3", DecodeError("string is not valid UTF-8", 2)),
        ("20" + "ff" * 10 + "01", DecodeError("varint longer than 10 bytes", 1)),
        ("2901" + "00" * 6, DecodeError("double needs 8 bytes, 7 left", 1)),
        ("29" + "00" * 8 + "20", DecodeError("truncated varint", 10)),
        ("1203" + "6162", DecodeError("length 3 runs past the end", 2)),
    ],
)
def test_scalar_shapes_at_the_edges_of_the_fast_path_read_as_before(
    wire_hex: str, expected: object
) -> None:
    """Blobs that open like a single scalar but are not exactly one read member by member,
    with the same value or the same DecodeError (message and offset) as ever."""
    result = attempt(decode_value, bytes.fromhex(wire_hex))
    if isinstance(expected, DecodeError):
        assert isinstance(result, DecodeError)
        assert (result.what, result.offset) == (expected.what, expected.offset)
    else:
        assert result == (FeatureState.VALUE, expected)


DTYPE_MEMBER = {
    "int": "int64_val",
    "int64": "int64_val",
    "int32": "int32_val",
    "float": "double_val",
    "float64": "double_val",
    "double": "double_val",
    "float32": "float_val",
    "string": "string_val",
    "bool": "bool_val",
    "bytes": "bytes_val",
    "timestamp": "unix_timestamp_val",
}


@pytest.mark.parametrize("dtype", sorted(SCALARS))
@given(data=st.data())
def test_encoded_bytes_parse_with_protobuf_and_match_its_own_bytes(
    dtype: str, data: st.DataObject
) -> None:
    """encode_value writes the member protobuf would, byte for byte, for scalars and lists."""
    scalar_member = member(DTYPE_MEMBER[dtype])
    list_member = next(m for m in MEMBERS if m.number == scalar_member.number + 10)
    scalar = data.draw(SCALARS[dtype], label="scalar")
    items = data.draw(st.lists(SCALARS[dtype], max_size=6), label="list")
    for chosen, value in ((scalar_member, scalar), (list_member, items)):
        blob = encode_value(value, dtype)
        parsed = parse_real(blob)
        assert parsed.WhichOneof("val") == chosen.name
        wire_value = _to_wire(value)
        assert same(python_value(chosen, parsed), _to_wire_python(chosen, wire_value))
        assert real_message(chosen, wire_value).SerializeToString(deterministic=True) == blob


def _to_wire(value: object) -> object:
    """The protobuf field value of a Python value: datetimes as epoch seconds."""
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, list):
        return [_to_wire(item) for item in value]
    return value


def _to_wire_python(member: Member, wire_value: object) -> object:
    return python_value(member, real_message(member, wire_value))


def test_protobufs_null_and_empty_messages_read_as_null() -> None:
    """A message with null_val set, and a message with no member, are both null."""
    assert decode_value(value_with("null_val", 0).SerializeToString()) == (FeatureState.NULL, None)
    assert decode_value(Value().SerializeToString()) == (FeatureState.NULL, None)


# --- entity keys -------------------------------------------------------------------------------


@given(
    st.text(min_size=1, max_size=12),
    st.one_of(INT64, st.integers(), st.booleans(), st.text(max_size=3)),
)
def test_the_int64_key_encoder_writes_encode_entity_keys_bytes(
    join_key: str, value: object
) -> None:
    """For an int64 the fast encoder's bytes are encode_entity_key's; for anything else
    (a bool, a str, an int out of range) it declines with None."""
    encoded = int64_key_encoder(join_key)(value)
    if type(value) is int and -(1 << 63) <= value < 1 << 63:
        assert encoded == encode_entity_key([join_key], [value], ["int64"])
    else:
        assert encoded is None


def test_single_int64_key_has_feasts_exact_version_3_bytes() -> None:
    """user_id=1001: count, STRING-tagged name with its length, then INT64 with 8 LE bytes."""
    expected = (
        struct.pack("<I", 1)
        + struct.pack("<II", 2, 7)
        + b"user_id"
        + struct.pack("<II", 4, 8)
        + struct.pack("<q", 1001)
    )
    assert encode_entity_key(["user_id"], [1001], ["int64"]) == expected
    assert decode_entity_key(expected) == (("user_id",), (1001,))


def test_compound_key_is_sorted_by_join_key_name() -> None:
    """Names and values are written in name order, whatever order they are given in."""
    expected = (
        struct.pack("<I", 2)
        + struct.pack("<II", 2, 3)
        + b"day"
        + struct.pack("<II", 2, 11)
        + b"merchant_id"
        + struct.pack("<II", 3, 4)
        + struct.pack("<i", -5)
        + struct.pack("<II", 2, 3)
        + b"m\xc3\xa9"
    )
    assert encode_entity_key(["merchant_id", "day"], ["mé", -5], ["string", "int32"]) == expected
    assert encode_entity_key(["day", "merchant_id"], [-5, "mé"], ["int32", "string"]) == expected
    assert decode_entity_key(expected) == (("day", "merchant_id"), (-5, "mé"))


def test_bytes_and_timestamp_keys_use_their_type_codes() -> None:
    """BYTES is type 1 with raw bytes; UNIX_TIMESTAMP is type 8 with 8 LE bytes of seconds."""
    blob = encode_entity_key(["a", "b"], [b"\x00\x01", 1_700_000_000], ["bytes", "timestamp"])
    assert blob.endswith(
        struct.pack("<II", 1, 2) + b"\x00\x01" + struct.pack("<II", 8, 8)
        + struct.pack("<q", 1_700_000_000)
    )  # fmt: skip
    assert decode_entity_key(blob) == (("a", "b"), (b"\x00\x01", 1_700_000_000))


KEY_VALUES: dict[str, st.SearchStrategy[EntityValue]] = {
    "int64": INT64,
    "int": INT64,
    "int32": INT32,
    "string": st.text(),
    "bytes": st.binary(),
    "timestamp": INT64,
}


@st.composite
def entity_keys(draw: st.DrawFn) -> tuple[list[str], list[EntityValue], list[str]]:
    names = draw(st.lists(st.text(min_size=1), min_size=1, max_size=3, unique=True))
    dtypes = [draw(st.sampled_from(sorted(KEY_VALUES))) for _ in names]
    values = [draw(KEY_VALUES[dtype]) for dtype in dtypes]
    return names, values, dtypes


@given(entity_keys())
def test_entity_keys_of_one_to_three_join_keys_round_trip(
    key: tuple[list[str], list[EntityValue], list[str]],
) -> None:
    """decode_entity_key(encode_entity_key(k)) gives every join key its value, names sorted."""
    names, values, dtypes = key
    decoded_names, decoded_values = decode_entity_key(encode_entity_key(names, values, dtypes))
    assert list(decoded_names) == sorted(names)
    assert dict(zip(decoded_names, decoded_values, strict=True)) == dict(
        zip(names, values, strict=True)
    )


VALID_KEYS = entity_keys().map(lambda key: encode_entity_key(*key))


@given(st.one_of(st.binary(max_size=64), damaged(VALID_KEYS)))
def test_any_bytes_decode_to_a_key_or_raise_decode_error(blob: bytes) -> None:
    """Whatever the bytes, decode_entity_key returns names and values or raises DecodeError."""
    result = attempt(decode_entity_key, blob)
    if isinstance(result, DecodeError):
        assert 0 <= result.offset <= len(blob)
        return
    names, values = result
    assert len(names) == len(values)


GOOD_KEY = encode_entity_key(["user_id"], [1001], ["int64"])


@pytest.mark.parametrize(
    ("blob", "message", "offset"),
    [
        (b"", "join key count needs 4 bytes, 0 left", 0),
        (b"\xff\xff\xff\xff", "implausible join key count 4294967295", 0),
        (GOOD_KEY[:-1], "value needs 8 bytes, 7 left", 27),
        (GOOD_KEY + b"\x00", "1 trailing bytes after the last value", 35),
        (GOOD_KEY[:4] + struct.pack("<I", 4) + GOOD_KEY[8:], "join key name tagged with type 4, expected 2", 4),
        (GOOD_KEY[:19] + struct.pack("<I", 5) + GOOD_KEY[23:], "unsupported entity key value type 5", 19),
        (GOOD_KEY[:23] + struct.pack("<I", 4) + GOOD_KEY[27:31] + b"x" * 4, "value type 4 needs 8 bytes, found 4", 19),
        (GOOD_KEY[:12] + b"user\xff" + GOOD_KEY[17:], "join key name is not valid UTF-8", 16),
    ],
)  # fmt: skip
def test_corrupt_keys_raise_decode_error_with_what_and_where(
    blob: bytes, message: str, offset: int
) -> None:
    """Each kind of corrupt key is a DecodeError naming the problem and its byte offset."""
    with pytest.raises(DecodeError) as info:
        decode_entity_key(blob)
    assert info.value.what == message
    assert info.value.offset == offset


@pytest.mark.parametrize(
    ("names", "values", "dtypes"),
    [
        (["a", "b"], [1], ["int64", "int64"]),
        (["a", "a"], [1, 2], ["int64", "int64"]),
        (["a"], [1.5], ["float"]),
        (["a"], ["1"], ["int64"]),
        (["a"], [1 << 31], ["int32"]),
    ],
)
def test_keys_that_feast_cannot_serialize_are_refused(
    names: list[str], values: list[Any], dtypes: list[str]
) -> None:
    """Mismatched lengths, duplicate names, unsupported dtypes and wrong values are errors."""
    with pytest.raises((TypeError, ValueError)):
        encode_entity_key(names, values, dtypes)


@pytest.mark.parametrize(("value", "dtype"), [(7, "int64"), ("u7", "string"), (b"\x07", "bytes")])
def test_entity_dtype_is_inferred_as_feast_infers_it(value: EntityValue, dtype: str) -> None:
    """Python ints are INT64, str STRING and bytes BYTES, as Feast's type map does."""
    assert infer_entity_dtype(value) == dtype


@pytest.mark.parametrize("value", [True, 1.5, None])
def test_entity_dtype_cannot_be_inferred_for_other_values(value: object) -> None:
    """bool, float and None are no join key values."""
    with pytest.raises(TypeError):
        infer_entity_dtype(value)
