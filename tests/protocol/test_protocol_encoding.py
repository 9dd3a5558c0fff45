"""lib0 primitives: varuint limits, length checks, UTF-8 strictness."""

from __future__ import annotations

import pycrdt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_strategies import varuints

from crdtedge.protocol import MAX_VARUINT, ProtocolError
from crdtedge.protocol.encoding import Reader, write_varbytes, write_varstring, write_varuint


@given(varuints)
def test_varuint_round_trip_is_minimal(value: int) -> None:
    encoded = write_varuint(value)
    assert len(encoded) == max(1, (value.bit_length() + 6) // 7)
    reader = Reader(encoded + b"tail")
    assert reader.read_varuint("v") == value
    assert reader.pos == len(encoded)


@given(st.integers(0, 2**53))
def test_varuint_matches_pycrdt(value: int) -> None:
    assert write_varuint(value) == pycrdt.write_var_uint(value)


@pytest.mark.parametrize("value", [-1, MAX_VARUINT + 1])
def test_write_varuint_rejects_out_of_range(value: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        write_varuint(value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "cut off"),
        (b"\x80", "cut off"),
        (b"\xff\xff\xff", "cut off"),
        (b"\x80\x00", "overlong"),
        (b"\xff\x80\x00", "overlong"),
        (b"\xff" * 9 + b"\x02", "exceeds 64 bits"),  # 2**64
        (b"\xff" * 10 + b"\x01", "longer than 10 bytes"),
    ],
)
def test_read_varuint_rejects(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message) as info:
        Reader(data).read_varuint("field")
    assert info.value.offset == 0
    assert "field" in str(info.value)


def test_read_varuint_accepts_max() -> None:
    assert Reader(b"\xff" * 9 + b"\x01").read_varuint("v") == MAX_VARUINT


def test_length_checked_against_remaining_bytes() -> None:
    reader = Reader(b"\x05abc")
    with pytest.raises(ProtocolError, match="needs 5 bytes, only 3 left") as info:
        reader.read_varbytes("blob")
    assert info.value.offset == 1


def test_sub_range_reader_stops_at_its_end() -> None:
    data = b"\x00\x02abcdef"
    assert Reader(data, 1, 4).read_varbytes("x") == b"ab"
    with pytest.raises(ProtocolError, match="only 1 left") as info:
        Reader(data, 1, 3).read_varbytes("x")
    assert info.value.offset == 2  # absolute offset in the whole frame


def test_varstring_round_trip_counts_utf8_bytes() -> None:
    encoded = write_varstring("hé€😀")
    assert encoded[0] == len("hé€😀".encode())
    assert Reader(encoded).read_varstring("s") == "hé€😀"
    assert write_varbytes(b"\x00\x01") == b"\x02\x00\x01"


def test_varstring_rejects_invalid_utf8_with_offset() -> None:
    with pytest.raises(ProtocolError, match="name is not valid UTF-8") as info:
        Reader(b"\x00\x03a\xc3(", 1).read_varstring("name")
    assert info.value.offset == 3
