"""The protobuf wire format's small parts, shared by every Feast reader and writer here.

A varint is an unsigned 64-bit number in groups of 7 bits, least significant first, the high bit
of each byte set when another follows (at most 10 bytes). A field's key is the varint
`number << 3 | wire type`. Negative int64 and int32 values are written as their 64-bit two's
complement (10 bytes).

`DecodeError` is the one error of malformed bytes: `codec` (values and entity keys),
`redis_layout` (event times) and `registry` (the registry file) all raise it.
"""

from __future__ import annotations

VARINT, I64, LEN, I32 = 0, 1, 2, 5
"""The wire types featmon reads (3 and 4, groups, are deprecated and never written by Feast)."""

WIRE_NAMES = {
    0: "varint",
    1: "fixed64",
    2: "length-delimited",
    3: "start-group",
    4: "end-group",
    5: "fixed32",
}

MASK64 = (1 << 64) - 1


class DecodeError(ValueError):
    """Bytes that are not what they should be; says what was wrong and at which byte."""

    def __init__(self, what: str, offset: int) -> None:
        self.what = what
        self.offset = offset
        super().__init__(f"{what} at byte {offset}")


def read_varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at `pos` of `data[:end]` (as an unsigned 64-bit value) and the position after
    it. Raises DecodeError at `pos` when it is truncated or longer than 10 bytes."""
    start, result, shift = pos, 0, 0
    while True:
        if pos >= end:
            raise DecodeError("truncated varint", start)
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & MASK64, pos
        shift += 7
        if shift >= 70:
            raise DecodeError("varint longer than 10 bytes", start)


def encode_varint(value: int) -> bytes:
    """The varint of `value` taken modulo 2**64 (so a negative int64 takes 10 bytes)."""
    value &= MASK64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
