"""The relay: merges and fans out updates between peers, every update logged first."""

from .observer import RelayObserver
from .relay import Authorizer, Grant, Rejected, Relay, RelayConfig, WebSocketPeer, room_of
from .room import Member, Peer, Room

__all__ = [
    "Authorizer",
    "Grant",
    "Member",
    "Peer",
    "Rejected",
    "Relay",
    "RelayConfig",
    "RelayObserver",
    "Room",
    "WebSocketPeer",
    "room_of",
]
