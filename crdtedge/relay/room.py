"""A relay room: one document, its update log, and the peers that share it.

No sockets here: a peer is anything that can take a frame without blocking (`push`) and
be told to go away (`close`). The I/O layer (`relay.py`) feeds frames in; tests can drive
a room with plain objects.

Fan-out is coalesced: a room flushes at most once every `FLUSH_INTERVAL`; updates that
arrive in between are merged into one update per recipient and sent once. A lone update
in a quiet room goes out at the end of the event-loop turn; a burst of 2,000 keystrokes
costs a few dozen frames per reader instead of 2,000. A stock y-websocket client cannot
tell the difference (a merged update is an update).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pycrdt

from ..log import UpdateLog
from ..log.state import waits
from ..protocol import (
    AcksRequested,
    AwarenessQueried,
    AwarenessReceived,
    AwarenessState,
    DocUpdated,
    Ignored,
    ReadOnlyDropped,
    Send,
    StoredUpTo,
    SyncSession,
    decode_state_vector,
    encode,
)
from .observer import RelayObserver

logger = logging.getLogger("crdtedge.relay")

#: Flush at once when this many updates, or bytes, are pending: bounds merge cost,
#: latency and frame size (clients limit frames too; websockets' default is 1 MiB).
MAX_BATCH = 256
MAX_BATCH_BYTES = 512 * 1024
#: Minimum time between two flushes of one room: under a burst, readers get fewer and
#: larger frames (measured: each frame costs a Yjs reader far more than its size).
FLUSH_INTERVAL = 0.010


class Peer(Protocol):
    label: str  # for logs: address and connection number

    def push(self, frame: bytes) -> None:
        """Queue a frame without blocking; a peer that is too far behind closes itself."""

    def close(self, code: int, reason: str) -> None:
        """Start closing the connection (asynchronously)."""


@dataclass(eq=False)
class Member:
    """A peer's place in a room: its sync session and the awareness clients it owns."""

    peer: Peer
    session: SyncSession
    client_ids: set[int] = field(default_factory=set)
    wants_acks: bool = False  # said hello to the durable-acknowledgement extension


class Room:
    def __init__(
        self,
        name: str,
        log: UpdateLog,
        doc: pycrdt.Doc[Any],
        *,
        schedule: Callable[[float, Callable[[], None]], object],
        acks_wanted: Callable[[Room], None] = lambda room: None,
        observer: RelayObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.log = log
        self.doc = doc
        self.awareness = AwarenessState()
        self.members: dict[Peer, Member] = {}
        self.idle_since: float | None = clock()
        self._schedule = schedule
        self._observer = observer or RelayObserver()
        self._clock = clock
        self._pending: list[tuple[Member, bytes]] = []
        self._pending_since = 0.0
        self._last_flush = float("-inf")
        self._pending_bytes = 0
        self._flushed_state = doc.get_state()  # what the last flush covered
        self._acks_wanted = acks_wanted
        self._owners: dict[int, Member] = {}  # awareness client id -> its connection
        self.unacked: dict[Member, int] = {}  # member -> last log seq it is owed an ack for

    # -- membership ------------------------------------------------------------------

    def attach(self, peer: Peer, *, readonly: bool = False) -> Member:
        """Admit a peer: send it our state vector and, at once, everyone's awareness."""
        member = Member(peer, SyncSession(self.doc, readonly=readonly))
        self.members[peer] = member
        self.idle_since = None
        for frame in member.session.open():
            peer.push(frame)
        everyone = self.awareness.encode_all()
        if everyone is not None:
            peer.push(everyone)
        return member

    def detach(self, peer: Peer) -> None:
        """Forget a peer and tell the others its awareness clients are gone."""
        member = self.members.pop(peer, None)
        if member is None:
            return
        self.unacked.pop(member, None)
        if not self.members:
            self.idle_since = self._clock()
        if member.client_ids:
            for client_id in member.client_ids:
                del self._owners[client_id]
            frame = self.awareness.remove(member.client_ids, self._clock())
            self._send_to_all(frame)

    # -- input -----------------------------------------------------------------------

    def receive(self, peer: Peer, frame: bytes) -> None:
        """Handle one frame from `peer`. Raises ProtocolError on malformed input, with
        the room's document and log untouched."""
        member = self.members[peer]
        for event in member.session.receive(frame):
            if isinstance(event, Send):
                peer.push(event.frame)
            elif isinstance(event, DocUpdated):
                self._accept(member, event.update)
            elif isinstance(event, AwarenessReceived):
                self._take_awareness(member, event)
            elif isinstance(event, AwarenessQueried):
                everyone = self.awareness.encode_all()
                if everyone is not None:
                    peer.push(everyone)
            elif isinstance(event, AcksRequested):
                member.wants_acks = True
                self._owe_ack(member, self.log.appended)  # tell it what is stored already
            elif isinstance(event, ReadOnlyDropped):
                self._observer.dropped("read_only")
            elif isinstance(event, Ignored):
                self._observer.dropped("unknown_type")

    def _take_awareness(self, member: Member, event: AwarenessReceived) -> None:
        """Apply a peer's awareness and track which clients that connection speaks for.

        y-websocket clients echo every remote state they receive back to the relay, so
        merely sending a state proves nothing: a connection owns a client id when the
        registry accepts a newer clock for it from that connection (a client reconnecting
        before its old socket timed out moves its id to the new connection).
        """
        entries = event.message.entries
        before = [self.awareness.clock(entry.client_id) for entry in entries]
        change = self.awareness.apply(event.message, self._clock())
        for entry, clock in zip(entries, before, strict=True):
            if clock is not None and entry.clock <= clock:
                continue  # stale or an echo: says nothing about who owns it
            owner = self._owners.pop(entry.client_id, None)
            if owner is not None:
                owner.client_ids.discard(entry.client_id)
            if entry.state is not None:
                self._owners[entry.client_id] = member
                member.client_ids.add(entry.client_id)
        if change.frame is not None:
            self._send_to_all(change.frame, but=member.peer)
        if change.reply is not None:
            member.peer.push(change.reply)

    def _accept(self, member: Member, update: bytes) -> None:
        # Write-ahead: the update is in the log before any other peer can see it.
        seq = self.log.append(update)
        self._observer.update_appended(len(update))
        if member.wants_acks:
            self._owe_ack(member, seq)
        if not self._pending:
            self._pending_since = time.perf_counter()
            wait = self._last_flush + FLUSH_INTERVAL - self._clock()
            self._schedule(max(0.0, wait), self.flush)
        self._pending.append((member, update))
        self._pending_bytes += len(update)
        if len(self._pending) >= MAX_BATCH or self._pending_bytes >= MAX_BATCH_BYTES:
            self.flush()

    def _owe_ack(self, member: Member, seq: int) -> None:
        if not self.unacked:
            self._acks_wanted(self)
        self.unacked[member] = seq

    def ack_round(self) -> tuple[int, bytes]:
        """Start acknowledging: the log position and the state vector it covers.

        Called between frames (never inside `receive`), so every update in the doc's
        state vector has been appended at or before the returned sequence number.
        """
        return self.log.appended, self.doc.get_state()

    def send_acks(self, durable_seq: int, state_vector: bytes) -> None:
        """The log is durable through `durable_seq`: acknowledge the members it covers."""
        frame = encode(StoredUpTo(state_vector))
        for member, seq in list(self.unacked.items()):
            if seq <= durable_seq:
                del self.unacked[member]
                member.peer.push(frame)

    # -- output ----------------------------------------------------------------------

    def flush(self) -> None:
        """Send every pending update to every peer that does not have it yet."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        self._pending_bytes = 0
        self._last_flush = self._clock()
        origins = {member for member, _ in pending}
        everything = SyncSession.update_frame(self._squashed(pending))
        for peer, member in list(self.members.items()):
            if member not in origins:
                peer.push(everything)
            elif len(origins) > 1:  # others wrote too: send this origin only theirs
                peer.push(
                    SyncSession.update_frame(_merge([u for m, u in pending if m is not member]))
                )
        self._observer.fanout(time.perf_counter() - self._pending_since)

    def _squashed(self, pending: list[tuple[Member, bytes]]) -> bytes:
        """Everything since the last flush, as one update.

        The doc's own diff is squashed (one item per run of characters typed in a row,
        where merging the updates keeps one per keystroke: ten times the bytes, and ten
        times the work for every reader) but carries the doc's whole delete set, so it
        is used only while it is the smaller of the two, and holds all the batch does.
        """
        since, self._flushed_state = self._flushed_state, self.doc.get_state()
        merged = _merge([u for _, u in pending])
        diff = self.doc.get_update(since)
        if len(diff) >= len(merged):
            return merged
        # Pending structs or deletions (waiting for what they build on) are not in the diff.
        state = self._flushed_state
        if waits(pycrdt.get_update(merged, state), decode_state_vector(state)):
            return merged
        return diff

    def _send_to_all(self, frame: bytes, but: Peer | None = None) -> None:
        for peer in list(self.members):
            if peer is not but:
                peer.push(frame)

    def expire_awareness(self) -> None:
        """Drop awareness states their owners stopped renewing (y-protocols: 30 s)."""
        frame = self.awareness.expire(self._clock())
        if frame is not None:
            self._send_to_all(frame)

    def housekeeping(self, idle_after: float) -> bool:
        """Periodic upkeep (the host calls it every second or so): expire awareness, and
        say whether the room has had no peers for `idle_after` seconds. The host then
        unloads it: `flush()`, make the log durable, release it."""
        self.expire_awareness()
        return self.idle_since is not None and self._clock() - self.idle_since >= idle_after

    def close_all(self, code: int, reason: str) -> None:
        for peer in list(self.members):
            peer.close(code, reason)


def _merge(updates: list[bytes]) -> bytes:
    return updates[0] if len(updates) == 1 else pycrdt.merge_updates(*updates)
