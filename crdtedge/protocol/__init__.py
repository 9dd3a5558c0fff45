"""Sans-I/O y-protocols core: the y-websocket wire format and its state machines.

Bytes in, bytes and events out; no sockets, clocks or threads. The client, the
relay and the simulated test network all drive these same objects.
"""

from .awareness import DEFAULT_TIMEOUT, AwarenessChange, AwarenessState
from .encoding import MAX_VARUINT
from .errors import ProtocolError, is_pycrdt_panic
from .events import (
    AcksRequested,
    AwarenessQueried,
    AwarenessReceived,
    DocUpdated,
    Event,
    Ignored,
    PermissionDenied,
    ReadOnlyDropped,
    Send,
    Stored,
    Synced,
)
from .messages import (
    MESSAGE_AUTH,
    MESSAGE_AWARENESS,
    MESSAGE_CRDTEDGE,
    MESSAGE_QUERY_AWARENESS,
    MESSAGE_SYNC,
    AuthDenied,
    AwarenessEntry,
    AwarenessUpdate,
    Message,
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
    encode_awareness_payload,
)
from .sync import EMPTY_UPDATE, SyncSession

__all__ = [
    "DEFAULT_TIMEOUT",
    "EMPTY_UPDATE",
    "MAX_VARUINT",
    "MESSAGE_AUTH",
    "MESSAGE_AWARENESS",
    "MESSAGE_CRDTEDGE",
    "MESSAGE_QUERY_AWARENESS",
    "MESSAGE_SYNC",
    "AcksRequested",
    "AuthDenied",
    "AwarenessChange",
    "AwarenessEntry",
    "AwarenessQueried",
    "AwarenessReceived",
    "AwarenessState",
    "AwarenessUpdate",
    "DocUpdated",
    "Event",
    "Ignored",
    "Message",
    "PermissionDenied",
    "ProtocolError",
    "QueryAwareness",
    "ReadOnlyDropped",
    "Send",
    "Stored",
    "StoredHello",
    "StoredUpTo",
    "SyncSession",
    "SyncStep1",
    "SyncStep2",
    "SyncUpdate",
    "Synced",
    "UnknownMessage",
    "decode",
    "decode_prefix",
    "decode_state_vector",
    "encode",
    "encode_awareness_payload",
    "is_pycrdt_panic",
]
