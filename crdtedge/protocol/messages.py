"""y-websocket messages as frozen dataclasses, and the frame codec.

One websocket binary frame carries one message::

    frame   = varuint type, body
    type 0  sync       varuint subtype (0 step1 | 1 step2 | 2 update), varbytes payload
    type 1  awareness  varbytes payload
                       payload = varuint count, count * (varuint client, varuint clock,
                                                         varstring JSON state)
    type 2  auth       varuint subtype (0 permission denied), varstring reason
    type 3  query awareness (no body)
    type 100 crdtedge extension (opt-in, see docs/protocol.md)
                       varuint subtype (0 hello: varuint version | 1 stored: varbytes
                                        state vector)

Bytes after a complete message are ignored, as y-websocket and its server do
(they read one message per frame and never look at the rest); use
:func:`decode_prefix` to see where the message ended. Unknown top-level types
decode to :class:`UnknownMessage` rather than failing, so a peer can ignore and
count protocol extensions it does not speak. Everything else that is malformed
raises :class:`ProtocolError`, and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, TypeAlias, assert_never

import orjson

from .encoding import Reader, write_varbytes, write_varstring, write_varuint
from .errors import ProtocolError

__all__ = [
    "MESSAGE_AUTH",
    "MESSAGE_AWARENESS",
    "MESSAGE_CRDTEDGE",
    "MESSAGE_QUERY_AWARENESS",
    "MESSAGE_SYNC",
    "AuthDenied",
    "AwarenessEntry",
    "AwarenessUpdate",
    "Message",
    "ProtocolError",
    "QueryAwareness",
    "StoredHello",
    "StoredUpTo",
    "SyncStep1",
    "SyncStep2",
    "SyncUpdate",
    "UnknownMessage",
    "decode",
    "decode_prefix",
    "decode_state_vector",
    "encode",
    "encode_awareness_payload",
]

MESSAGE_SYNC: Final = 0
MESSAGE_AWARENESS: Final = 1
MESSAGE_AUTH: Final = 2
MESSAGE_QUERY_AWARENESS: Final = 3
#: crdtedge's extension type. A stock y-websocket client logs an error on a type it
#: does not know, so a relay sends extension messages only to peers that said hello.
MESSAGE_CRDTEDGE: Final = 100

_SYNC_STEP1: Final = 0
_SYNC_STEP2: Final = 1
_SYNC_UPDATE: Final = 2
_AUTH_PERMISSION_DENIED: Final = 0
_EXT_HELLO: Final = 0
_EXT_STORED: Final = 1

# Smallest possible awareness entry: 1-byte client id, 1-byte clock, 1-byte length, "{}".
_MIN_AWARENESS_ENTRY: Final = 5


@dataclass(frozen=True, slots=True)
class SyncStep1:
    """Carries my state vector, asking for what I lack; answered with :class:`SyncStep2`."""

    state_vector: bytes


@dataclass(frozen=True, slots=True)
class SyncStep2:
    """The answer to step 1: every struct and deletion the asking peer lacked."""

    update: bytes


@dataclass(frozen=True, slots=True)
class SyncUpdate:
    """An incremental document update pushed after the handshake."""

    update: bytes


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    """One client's presence state; ``state is None`` means the client is gone."""

    client_id: int
    clock: int
    state: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class AwarenessUpdate:
    """A batch of awareness entries (y-protocols ``encodeAwarenessUpdate``)."""

    entries: tuple[AwarenessEntry, ...]


@dataclass(frozen=True, slots=True)
class AuthDenied:
    """The server refuses access to the room; ``reason`` is for humans."""

    reason: str


@dataclass(frozen=True, slots=True)
class QueryAwareness:
    """Ask the peer to send all awareness states it knows."""


@dataclass(frozen=True, slots=True)
class StoredHello:
    """Client to relay: "I speak the durable-acknowledgement extension; send me acks"."""

    version: int = 1


@dataclass(frozen=True, slots=True)
class StoredUpTo:
    """Relay to client: everything covered by ``state_vector`` is durable in my log."""

    state_vector: bytes


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A message this codec does not understand, kept verbatim so it can be ignored.

    ``payload`` is everything after the type varuint. Also used for auth messages
    with an unknown subtype (``type == 2``), which y-protocols silently ignores.
    """

    type: int
    payload: bytes


Message: TypeAlias = (
    SyncStep1
    | SyncStep2
    | SyncUpdate
    | AwarenessUpdate
    | AuthDenied
    | QueryAwareness
    | StoredHello
    | StoredUpTo
    | UnknownMessage
)

_HEAD_STEP1: Final = bytes((MESSAGE_SYNC, _SYNC_STEP1))
_HEAD_STEP2: Final = bytes((MESSAGE_SYNC, _SYNC_STEP2))
_HEAD_UPDATE: Final = bytes((MESSAGE_SYNC, _SYNC_UPDATE))
_HEAD_AWARENESS: Final = bytes((MESSAGE_AWARENESS,))
_HEAD_AUTH_DENIED: Final = bytes((MESSAGE_AUTH, _AUTH_PERMISSION_DENIED))
_QUERY_AWARENESS_FRAME: Final = bytes((MESSAGE_QUERY_AWARENESS,))


def encode(message: Message) -> bytes:
    """Encode one message as one frame.

    Raises ``ValueError`` (not :class:`ProtocolError`: the bytes are ours) for values
    the wire cannot carry: negative or > 64-bit integers, awareness states that
    are not JSON-serialisable dicts, strings with lone surrogates.
    """
    match message:
        case SyncStep1(state_vector):
            return b"".join((_HEAD_STEP1, write_varuint(len(state_vector)), state_vector))
        case SyncStep2(update):
            return b"".join((_HEAD_STEP2, write_varuint(len(update)), update))
        case SyncUpdate(update):
            return b"".join((_HEAD_UPDATE, write_varuint(len(update)), update))
        case AwarenessUpdate(entries):
            return _HEAD_AWARENESS + write_varbytes(encode_awareness_payload(entries))
        case AuthDenied(reason):
            return _HEAD_AUTH_DENIED + write_varstring(reason)
        case QueryAwareness():
            return _QUERY_AWARENESS_FRAME
        case StoredHello(version):
            return bytes((MESSAGE_CRDTEDGE, _EXT_HELLO)) + write_varuint(version)
        case StoredUpTo(state_vector):
            return bytes((MESSAGE_CRDTEDGE, _EXT_STORED)) + write_varbytes(state_vector)
        case UnknownMessage(type_, payload):
            return write_varuint(type_) + payload
        case _:
            assert_never(message)


def encode_awareness_payload(entries: tuple[AwarenessEntry, ...]) -> bytes:
    """Encode the inner awareness payload (what y-protocols calls an awareness update)."""
    parts = [write_varuint(len(entries))]
    for entry in entries:
        parts.append(write_varuint(entry.client_id))
        parts.append(write_varuint(entry.clock))
        parts.append(write_varbytes(_dump_state(entry.state)))
    return b"".join(parts)


def _dump_state(state: dict[str, Any] | None) -> bytes:
    if state is None:
        return b"null"
    if not isinstance(state, dict):
        raise ValueError(f"awareness state must be a dict or None, not {type(state).__name__}")
    try:
        return orjson.dumps(state)
    except TypeError as exc:  # orjson.JSONEncodeError
        raise ValueError(f"awareness state is not JSON-serialisable: {exc}") from None


def decode(frame: bytes) -> Message:
    """Decode one frame; bytes after the message are ignored (as y-websocket does)."""
    return decode_prefix(frame)[0]


def decode_prefix(frame: bytes) -> tuple[Message, int]:
    """Decode the message at the start of ``frame`` and return it with its length.

    ``frame[:length]`` is the message without trailing bytes, which a relay can
    forward as is instead of re-encoding.
    """
    if not isinstance(frame, bytes):
        frame = bytes(frame)
    if not frame:
        raise ProtocolError("empty frame", 0)
    reader = Reader(frame)
    message_type = reader.read_varuint("message type")
    message: Message
    if message_type == MESSAGE_SYNC:
        message = _decode_sync(reader)
    elif message_type == MESSAGE_AWARENESS:
        start, end = reader.skip_varbytes("awareness payload")
        message = AwarenessUpdate(_decode_awareness_payload(Reader(frame, start, end)))
    elif message_type == MESSAGE_AUTH:
        message = _decode_auth(frame, reader)
    elif message_type == MESSAGE_QUERY_AWARENESS:
        message = QueryAwareness()
    elif message_type == MESSAGE_CRDTEDGE:
        message = _decode_extension(frame, reader)
    else:
        message = UnknownMessage(message_type, frame[reader.pos :])
    # An unknown message owns the rest of the frame: we cannot tell where it ends.
    return message, len(frame) if isinstance(message, UnknownMessage) else reader.pos


def _decode_sync(reader: Reader) -> Message:
    subtype_offset = reader.pos
    subtype = reader.read_varuint("sync subtype")
    if subtype == _SYNC_STEP1:
        return SyncStep1(reader.read_varbytes("state vector"))
    if subtype == _SYNC_STEP2:
        return SyncStep2(reader.read_varbytes("update"))
    if subtype == _SYNC_UPDATE:
        return SyncUpdate(reader.read_varbytes("update"))
    # y-protocols throws on unknown sync subtypes too: there is no extension point here.
    raise ProtocolError(f"unknown sync subtype {subtype}", subtype_offset)


def _decode_auth(frame: bytes, reader: Reader) -> Message:
    body = reader.pos
    subtype = reader.read_varuint("auth subtype")
    if subtype == _AUTH_PERMISSION_DENIED:
        return AuthDenied(reader.read_varstring("permission-denied reason"))
    # y-protocols' readAuthMessage ignores unknown auth subtypes; so do we.
    return UnknownMessage(MESSAGE_AUTH, frame[body:])


def _decode_extension(frame: bytes, reader: Reader) -> Message:
    body = reader.pos
    subtype = reader.read_varuint("extension subtype")
    if subtype == _EXT_HELLO:
        return StoredHello(reader.read_varuint("extension version"))
    if subtype == _EXT_STORED:
        return StoredUpTo(reader.read_varbytes("stored state vector"))
    return UnknownMessage(MESSAGE_CRDTEDGE, frame[body:])  # a newer extension: ignore


def decode_state_vector(state_vector: bytes) -> dict[int, int]:
    """A Yjs state vector (varuint count, then client id and clock pairs) as a dict."""
    reader = Reader(state_vector)
    count = reader.read_varuint("state vector length")
    if count > reader.remaining // 2:
        raise ProtocolError(f"state vector claims {count} entries", 0)
    clocks = {}
    for _ in range(count):
        client = reader.read_varuint("client id")
        clocks[client] = reader.read_varuint("clock")
    return clocks


def _decode_awareness_payload(reader: Reader) -> tuple[AwarenessEntry, ...]:
    count_offset = reader.pos
    count = reader.read_varuint("awareness entry count")
    if count > reader.remaining // _MIN_AWARENESS_ENTRY:
        raise ProtocolError(
            f"awareness entry count {count} cannot fit in the {reader.remaining} bytes left",
            count_offset,
        )
    entries = []
    for index in range(count):
        client_id = reader.read_varuint(f"awareness entry {index} client id")
        clock = reader.read_varuint(f"awareness entry {index} clock")
        state_offset = reader.pos
        text = reader.read_varstring(f"awareness entry {index} state")
        entries.append(AwarenessEntry(client_id, clock, _load_state(text, index, state_offset)))
    # Bytes after the last entry are ignored, as y-protocols' applyAwarenessUpdate does.
    return tuple(entries)


def _load_state(text: str, index: int, offset: int) -> dict[str, Any] | None:
    try:
        state = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(
            f"awareness entry {index} state is not valid JSON ({exc.msg})", offset
        ) from None
    if state is None or isinstance(state, dict):
        return state
    kind = type(state).__name__
    raise ProtocolError(
        f"awareness entry {index} state must be a JSON object or null, not {kind}", offset
    )
