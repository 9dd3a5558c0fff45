"""What :meth:`SyncSession.receive` tells its driver to do or to know."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from .messages import AwarenessUpdate


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``frame`` back to the peer this session talks to."""

    frame: bytes


@dataclass(frozen=True, slots=True)
class DocUpdated:
    """``update`` was applied to the doc; a relay fans it out, a client may persist it."""

    update: bytes


@dataclass(frozen=True, slots=True)
class Synced:
    """The peer answered our step 1: the handshake is complete (emitted once)."""


@dataclass(frozen=True, slots=True)
class ReadOnlyDropped:
    """A read-only session received a non-empty update and did not apply it."""

    update: bytes


@dataclass(frozen=True, slots=True)
class AwarenessReceived:
    """The peer sent awareness states; apply them to the room's awareness registry.

    ``frame`` is the received message without trailing bytes, for forwarding
    without re-encoding.
    """

    message: AwarenessUpdate
    frame: bytes


@dataclass(frozen=True, slots=True)
class AwarenessQueried:
    """The peer asked for all awareness states (answer with ``encode_all()``)."""


@dataclass(frozen=True, slots=True)
class PermissionDenied:
    """The server refused access; ``reason`` is for humans."""

    reason: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """A message of a type we do not speak (e.g. an extension) was skipped."""

    type: int


@dataclass(frozen=True, slots=True)
class AcksRequested:
    """The peer asked for durable acknowledgements (crdtedge extension)."""


@dataclass(frozen=True, slots=True)
class Stored:
    """The relay reports that everything in ``state_vector`` is durable in its log."""

    state_vector: bytes


Event: TypeAlias = (
    Send
    | DocUpdated
    | Synced
    | ReadOnlyDropped
    | AwarenessReceived
    | AwarenessQueried
    | PermissionDenied
    | Ignored
    | AcksRequested
    | Stored
)
