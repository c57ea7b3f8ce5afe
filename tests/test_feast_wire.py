"""The protobuf varint is read and written in one place (`monitor.feast.wire`), exactly as
protobuf does, and every Feast reader reports a malformed one with the same DecodeError."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from google.protobuf.wrappers_pb2 import UInt64Value
from hypothesis import given
from hypothesis import strategies as st

from monitor.feast.redis_layout import decode_timestamp
from monitor.feast.registry import RegistryError, parse_registry
from monitor.feast.wire import DecodeError, encode_varint, read_varint

FEAST = Path(__file__).resolve().parent.parent / "monitor" / "feast"
UINT64 = st.integers(0, (1 << 64) - 1)


def _is_constant(node: ast.AST, value: int) -> bool:
    return isinstance(node, ast.Constant) and node.value == value


def _shifts_seven_bits(node: ast.AST) -> bool:
    """`(byte & 0x7F) << shift`, the heart of a varint decoder, or `... | 0x80`, the heart of
    an encoder (inside a loop, both)."""
    if not isinstance(node, ast.BinOp):
        return False
    if isinstance(node.op, ast.BitOr) and _is_constant(node.right, 0x80):
        return True
    low_bits = (
        isinstance(node.left, ast.BinOp)
        and isinstance(node.left.op, ast.BitAnd)
        and _is_constant(node.left.right, 0x7F)
    )
    return low_bits and isinstance(node.op, ast.LShift) and isinstance(node.right, ast.Name)


def _protobuf(value: int) -> bytes:
    """What protobuf writes for a `google.protobuf.UInt64Value` (field 1, a varint)."""
    return UInt64Value(value=value).SerializeToString() if value else b"\x08\x00"


def _modules_with_varint_loops() -> set[str]:
    found = set()
    for path in sorted(FEAST.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for loop in ast.walk(tree):
            if isinstance(loop, ast.While | ast.For) and any(
                _shifts_seven_bits(node) for node in ast.walk(loop)
            ):
                found.add(path.name)
    return found


def test_only_the_wire_module_holds_a_varint_loop() -> None:
    """No Feast module but `wire.py` writes its own loop that reads or writes a varint."""
    assert _modules_with_varint_loops() == {"wire.py"}


@given(UINT64)
def test_encode_varint_writes_what_protobuf_writes(value: int) -> None:
    """`encode_varint` writes the bytes protobuf writes for any uint64 (after the field key)."""
    assert b"\x08" + encode_varint(value) == _protobuf(value)


@given(st.integers(-(1 << 63), -1))
def test_a_negative_number_is_written_as_its_ten_byte_twos_complement(value: int) -> None:
    """A negative int64 is written in 10 bytes, as protobuf writes a negative int64."""
    assert b"\x08" + encode_varint(value) == _protobuf(value + (1 << 64))
    assert len(encode_varint(value)) == 10


@given(UINT64, st.binary(max_size=4), st.binary(max_size=4))
def test_read_varint_reads_back_what_was_written(value: int, before: bytes, after: bytes) -> None:
    """A varint read in the middle of other bytes gives its value and the position after it."""
    data = before + encode_varint(value) + after
    assert read_varint(data, len(before), len(data)) == (value, len(data) - len(after))
    assert UInt64Value.FromString(b"\x08" + encode_varint(value)).value == value


@pytest.mark.parametrize(
    ("data", "pos", "end", "error"),
    [
        (b"", 0, 0, DecodeError("truncated varint", 0)),
        (b"\x00\xff\x01", 1, 2, DecodeError("truncated varint", 1)),  # `end` bounds it
        (b"\x00" + b"\xff" * 10 + b"\x01", 1, 12, DecodeError("varint longer than 10 bytes", 1)),
    ],
)
def test_read_varint_names_what_is_wrong_and_where(
    data: bytes, pos: int, end: int, error: DecodeError
) -> None:
    """A truncated or overlong varint raises DecodeError at the byte where it starts."""
    with pytest.raises(DecodeError) as raised:
        read_varint(data, pos, end)
    assert (raised.value.what, raised.value.offset) == (error.what, error.offset)


def test_an_event_time_with_an_overlong_varint_is_a_decode_error() -> None:
    """The Redis layout's Timestamp reader reports an overlong varint with the shared error."""
    with pytest.raises(DecodeError, match="varint longer than 10 bytes at byte 1"):
        decode_timestamp(b"\x08" + b"\xff" * 10 + b"\x01")


def test_a_registry_with_a_truncated_varint_names_it() -> None:
    """The registry reader reports a truncated varint as a RegistryError that names it."""
    with pytest.raises(RegistryError, match="truncated varint at byte 1"):
        parse_registry(b"\x28\xff", "registry.db")
