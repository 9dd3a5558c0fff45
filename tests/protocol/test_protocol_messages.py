"""The frame codec: round trips, trailing bytes, and hostile input."""

from __future__ import annotations

from typing import Any

import pycrdt
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from protocol_strategies import messages

from crdtedge.protocol import (
    AuthDenied,
    AwarenessEntry,
    AwarenessUpdate,
    Message,
    ProtocolError,
    QueryAwareness,
    StoredHello,
    StoredUpTo,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    UnknownMessage,
    decode,
    decode_prefix,
    decode_state_vector,
    encode,
)
from crdtedge.protocol.encoding import write_varbytes, write_varuint


def awareness_frame(*entries: tuple[int, int, bytes]) -> bytes:
    """Build an awareness frame from raw (client, clock, state-bytes) triples."""
    payload = write_varuint(len(entries)) + b"".join(
        write_varuint(c) + write_varuint(k) + write_varbytes(s) for c, k, s in entries
    )
    return b"\x01" + write_varbytes(payload)


@given(messages)
def test_round_trip(message: Message) -> None:
    frame = encode(message)
    assert decode(frame) == message
    assert decode_prefix(frame) == (message, len(frame))


@given(messages.filter(lambda m: not isinstance(m, UnknownMessage)), st.binary(max_size=8))
def test_trailing_bytes_are_ignored_and_measured(message: Message, junk: bytes) -> None:
    frame = encode(message)
    assert decode_prefix(frame + junk) == (message, len(frame))


@given(messages.filter(lambda m: not isinstance(m, QueryAwareness | UnknownMessage)))
def test_every_truncation_is_a_protocol_error(message: Message) -> None:
    frame = encode(message)
    for end in range(len(frame)):
        with pytest.raises(ProtocolError):
            decode(frame[:end])


@settings(max_examples=1000)
@given(st.binary(max_size=48))
@example(b"d\x00\x00")  # crdtedge's own extension message (found by this fuzz)
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    try:
        message = decode(data)
    except ProtocolError:
        return
    assert isinstance(
        message,
        SyncStep1
        | SyncStep2
        | SyncUpdate
        | AwarenessUpdate
        | AuthDenied
        | QueryAwareness
        | StoredHello
        | StoredUpTo
        | UnknownMessage,
    )


mutations = st.lists(
    st.tuples(
        st.integers(0, 2**16), st.sampled_from(["flip", "insert", "delete"]), st.integers(0, 255)
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=400)
@given(messages, mutations)
def test_fuzz_mutated_frames(message: Message, edits: list[tuple[int, str, int]]) -> None:
    frame = bytearray(encode(message))
    for where, action, byte in edits:
        position = where % (len(frame) + 1)
        if action == "insert" or position == len(frame):
            frame.insert(position, byte)
        elif action == "flip":
            frame[position] ^= 1 << (byte % 8)
        else:
            del frame[position]
    try:
        decoded, length = decode_prefix(bytes(frame))
    except ProtocolError:
        return
    assert 0 < length <= len(frame)
    # Whatever was decoded must re-encode to the consumed bytes, except for awareness
    # (JSON is re-serialised) and unknown auth subtypes (bytes kept verbatim anyway).
    if not isinstance(decoded, AwarenessUpdate):
        assert encode(decoded) == bytes(frame[:length])


def test_sync_frames_byte_layout() -> None:
    assert encode(SyncStep1(b"\x01\x01\x02")) == bytes.fromhex("00 00 03 01 01 02")
    assert encode(SyncStep2(b"\x00\x00")) == bytes.fromhex("00 01 02 00 00")
    assert encode(SyncUpdate(b"")) == bytes.fromhex("00 02 00")
    assert encode(QueryAwareness()) == b"\x03"
    assert encode(AuthDenied("no")) == bytes.fromhex("02 00 02 6e 6f")


def test_awareness_frame_byte_layout() -> None:
    frame = encode(AwarenessUpdate((AwarenessEntry(1, 1, {"name": "é"}),)))
    assert frame == bytes.fromhex("01 11 01 01 01 0d") + '{"name":"é"}'.encode()
    removal = encode(AwarenessUpdate((AwarenessEntry(300, 2, None),)))
    assert removal == bytes.fromhex("01 09 01 ac 02 02 04") + b"null"


def test_json_null_means_removed() -> None:
    (entry,) = decode(awareness_frame((7, 3, b"null"))).entries  # type: ignore[union-attr]
    assert entry == AwarenessEntry(7, 3, None)
    (entry,) = decode(awareness_frame((7, 3, b' { "a" : [1, 2.5] } '))).entries  # type: ignore[union-attr]
    assert entry.state == {"a": [1, 2.5]}


def test_awareness_trailing_payload_bytes_are_ignored() -> None:
    # y-protocols reads `count` entries and never looks at the rest of the payload.
    payload = b"\x01\x05\x02\x02{}" + b"extra"
    message, length = decode_prefix(b"\x01" + write_varbytes(payload) + b"!")
    assert message == AwarenessUpdate((AwarenessEntry(5, 2, {}),))
    assert length == 2 + len(payload)


@pytest.mark.parametrize(
    ("state", "match"),
    [
        (b"\xff\xfe", "not valid UTF-8"),
        (b'{"a":"\xc3"}', "not valid UTF-8"),
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"{'a': 1}", "not valid JSON"),
        (b"NaN", "not valid JSON"),
        (b'{"a":1}x', "not valid JSON"),
        (b'"\\ud800"', "not valid JSON"),  # lone surrogate: rejected, see docs
        (b"[" * 5000 + b"]" * 5000, "not valid JSON"),  # depth limit, no RecursionError
        (b"[]", "must be a JSON object or null, not list"),
        (b"42", "must be a JSON object or null, not int"),
        (b'"hi"', "must be a JSON object or null, not str"),
        (b"true", "must be a JSON object or null, not bool"),
    ],
)
def test_bad_awareness_states(state: bytes, match: str) -> None:
    frame = awareness_frame((1, 1, b'{"pad": "enough bytes"}'), (2, 1, state))
    with pytest.raises(ProtocolError, match=match) as info:
        decode(frame)
    assert "entry 1" in str(info.value)
    assert info.value.offset is not None and 0 < info.value.offset < len(frame)


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (b"", "empty frame"),
        (b"\x80", "message type varuint is cut off"),
        (b"\x80\x00", "overlong"),
        (b"\x00", "sync subtype varuint is cut off"),
        (b"\x00\x03\x00", "unknown sync subtype 3"),
        (b"\x00\x00", "state vector length varuint is cut off"),
        (b"\x00\x01\x05ab", "update needs 5 bytes, only 2 left"),
        (b"\x00\x02\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80", "longer than 10 bytes"),
        (b"\x00\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", "exceeds 64 bits"),
        (b"\x01\x01\x7f", "count 127 cannot fit in the 0 bytes left"),
        (b"\x01\x07\x03\x01\x01\x02{}\x00", "count 3 cannot fit in the 6 bytes left"),
        (b"\x01\x06\xff\xff\xff\xff\x0f\x00", "count .* cannot fit"),
        (b"\x02", "auth subtype varuint is cut off"),
        (b"\x02\x00\x05no", "reason needs 5 bytes"),
    ],
)
def test_malformed_frames(frame: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        decode(frame)


def test_awareness_clock_over_64_bits_is_rejected() -> None:
    big = b"\xff" * 9 + b"\x02"
    payload = b"\x01\x01" + big + b"\x02{}"
    with pytest.raises(ProtocolError, match="entry 0 clock varuint exceeds 64 bits") as info:
        decode(b"\x01" + write_varbytes(payload))
    assert info.value.offset == 4


def test_unknown_types_decode_verbatim() -> None:
    frame = write_varuint(101) + b"\x01\x02\x03"
    assert decode(frame) == UnknownMessage(101, b"\x01\x02\x03")
    assert decode_prefix(frame)[1] == len(frame)
    assert encode(decode(frame)) == frame
    assert decode(b"\x04") == UnknownMessage(4, b"")


def test_unknown_auth_subtype_is_ignored_not_an_error() -> None:
    assert decode(b"\x02\x01whatever") == UnknownMessage(2, b"\x01whatever")


def test_accepts_bytearray_and_memoryview() -> None:
    frame = encode(SyncUpdate(b"\x00\x00"))
    assert decode(bytearray(frame)) == decode(memoryview(frame)) == SyncUpdate(b"\x00\x00")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "state",
    [{"a": {1, 2}}, {1: "int key"}, {"a": 2**70}, {"a": "\ud800"}, ["not", "a", "dict"]],
)
def test_encode_rejects_unencodable_states(state: Any) -> None:
    with pytest.raises(ValueError, match="awareness state") as info:
        encode(AwarenessUpdate((AwarenessEntry(1, 1, state),)))
    assert not isinstance(info.value, ProtocolError)


def test_encode_rejects_negative_ids() -> None:
    with pytest.raises(ValueError, match="out of range"):
        encode(AwarenessUpdate((AwarenessEntry(-1, 0, None),)))


def test_durable_ack_extension() -> None:
    assert encode(StoredHello()) == b"\x64\x00\x01"
    assert decode(b"\x64\x00\x01") == StoredHello(1)
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=7)
    doc.get("t", type=pycrdt.Text).insert(0, "abc")
    state = doc.get_state()
    assert decode(encode(StoredUpTo(state))) == StoredUpTo(state)
    assert decode_state_vector(state) == {7: 3}
    assert decode(b"\x64\x09zz") == UnknownMessage(100, b"\x09zz")  # a newer subtype
    with pytest.raises(ProtocolError):
        decode_state_vector(b"\x05\x01")
