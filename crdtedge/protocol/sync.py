"""The per-connection sync state machine: frames in, events and frames out."""

from __future__ import annotations

from typing import Any, Final, assert_never

from pycrdt import Doc

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
    AuthDenied,
    AwarenessUpdate,
    QueryAwareness,
    StoredHello,
    StoredUpTo,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    UnknownMessage,
    decode_prefix,
    encode,
)

EMPTY_UPDATE: Final = b"\x00\x00"
"""An update with no structs and no deletions (what Yjs and pycrdt send for "nothing new")."""


class SyncSession:
    """One y-protocols sync conversation with one peer, over ``doc``.

    The same class serves a relay (``doc`` is the shared room doc, one session
    per connection) and a client (``doc`` is the local replica). It does no I/O:
    the driver sends the frames from :meth:`open` on connect, feeds every
    received frame to :meth:`receive` and acts on the returned events.

    With ``readonly=True`` the peer may read (its step 1 is answered) but its
    updates are never applied.
    """

    __slots__ = ("_doc", "_readonly", "_synced")

    def __init__(self, doc: Doc[Any], *, readonly: bool = False) -> None:
        self._doc = doc
        self._readonly = readonly
        self._synced = False

    @property
    def doc(self) -> Doc[Any]:
        """The document this session reads from and writes to."""
        return self._doc

    @property
    def readonly(self) -> bool:
        """Whether updates from the peer are dropped instead of applied."""
        return self._readonly

    @property
    def synced(self) -> bool:
        """Whether the peer has answered our step 1 with a step 2."""
        return self._synced

    def open(self) -> list[bytes]:
        """Frames to send when the connection opens: step 1 with our state vector.

        Calling it again later re-runs the handshake (y-websocket's ``resyncInterval``).
        """
        return [encode(SyncStep1(self._doc.get_state()))]

    @staticmethod
    def update_frame(update: bytes) -> bytes:
        """Encode a local or fanned-out document update as a sync-update frame."""
        return encode(SyncUpdate(update))

    def receive(self, frame: bytes) -> list[Event]:
        """Decode and handle one frame.

        Raises :class:`ProtocolError` if the frame is malformed, if a state
        vector cannot be decoded, or if an update is rejected by pycrdt (the doc
        is then unchanged). Bytes after the message are ignored.
        """
        if not isinstance(frame, bytes):
            frame = bytes(frame)
        message, length = decode_prefix(frame)
        match message:
            case SyncStep1(state_vector):
                return [Send(encode(SyncStep2(self._diff(state_vector))))]
            case SyncStep2(update):
                events = self._apply(update)
                if not self._synced:
                    self._synced = True
                    events.append(Synced())
                return events
            case SyncUpdate(update):
                return self._apply(update)
            case AwarenessUpdate():
                return [AwarenessReceived(message, frame[:length])]
            case QueryAwareness():
                return [AwarenessQueried()]
            case AuthDenied(reason):
                return [PermissionDenied(reason)]
            case StoredHello():
                return [AcksRequested()]
            case StoredUpTo(state_vector):
                return [Stored(state_vector)]
            case UnknownMessage(type_, _):
                return [Ignored(type_)]
            case _:
                assert_never(message)

    def _diff(self, state_vector: bytes) -> bytes:
        try:
            return self._doc.get_update(state_vector)
        except Exception as exc:  # pycrdt raises ValueError("Cannot decode state")
            raise ProtocolError(f"peer sent an invalid state vector: {exc}") from None

    def _apply(self, update: bytes) -> list[Event]:
        if update == EMPTY_UPDATE:
            return []
        if self._readonly:
            return [ReadOnlyDropped(update)]
        try:
            self._doc.apply_update(update)
        except Exception as exc:  # pycrdt raises ValueError and leaves the doc unchanged
            raise ProtocolError(f"peer sent an update pycrdt rejects: {exc}") from None
        except BaseException as exc:
            if not is_pycrdt_panic(exc):
                raise
            # e.g. content that contradicts what the doc holds under the same client clock
            raise ProtocolError(f"peer sent an update that made pycrdt panic: {exc}") from None
        return [DocUpdated(update)]
