"""The awareness registry: who is here, by client id, with y-protocols' clock rules.

Sans-I/O: time is a float (seconds) passed to every call that needs it, and
every call that changes what peers should see returns the frame to send.

Rules (y-protocols ``applyAwarenessUpdate``), per received entry:

* a higher clock than the one we know wins (state set, or removed if null);
* an equal clock wins only to remove (null) a client that still has a state;
* anything else is stale and ignored;
* a remote null for one of *our* local clients is refused: we keep the state
  and re-announce it with ``clock + 1``, so the peer learns we are still here.

Deliberate differences from y-protocols, all invisible on the wire:

* a client we have never seen is accepted at any clock, including 0
  (y-protocols treats unknown as clock 0 and so ignores a first state sent at
  clock 0);
* a client whose state reappears after a removal is reported as *added*
  (y-protocols says *updated*, which makes y-websocket's server forget that the
  connection controls it);
* clocks of removed clients ("tombstones") are forgotten after
  ``tombstone_ttl`` seconds, so a long-lived relay does not grow forever.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .messages import AwarenessEntry, AwarenessUpdate, encode

__all__ = ["DEFAULT_TIMEOUT", "AwarenessChange", "AwarenessState"]

DEFAULT_TIMEOUT = 30.0
"""Seconds without renewal after which a client is dropped (y-protocols ``outdatedTimeout``)."""


@dataclass(frozen=True, slots=True)
class AwarenessChange:
    """What one :meth:`AwarenessState.apply` did.

    ``added``/``updated``/``removed`` list client ids whose visible state changed
    (``updated`` only if the state differs, like y-protocols' ``change`` event).
    ``frame`` announces every accepted entry, including clock-only renewals: a
    relay forwards it to the other peers. ``reply`` is set when a peer declared
    one of our local clients removed: send it back so peers see us again.
    """

    added: tuple[int, ...] = ()
    updated: tuple[int, ...] = ()
    removed: tuple[int, ...] = ()
    frame: bytes | None = None
    reply: bytes | None = None

    @property
    def changed(self) -> bool:
        """Whether any client appeared, changed state or disappeared."""
        return bool(self.added or self.updated or self.removed)


@dataclass(slots=True)
class _Client:
    clock: int
    state: dict[str, Any] | None
    last_updated: float


class AwarenessState:
    """Awareness states by client id, with their clocks and last-renewal times.

    A relay keeps one per room and applies what every connection sends; a client
    keeps one per document and also owns a local state (:meth:`set_local`).
    """

    __slots__ = ("_clients", "_local", "_tombstone_ttl")

    def __init__(self, *, tombstone_ttl: float = 300.0) -> None:
        self._clients: dict[int, _Client] = {}
        self._local: set[int] = set()
        self._tombstone_ttl = tombstone_ttl

    # -- reading -------------------------------------------------------------

    def __len__(self) -> int:
        return sum(1 for client in self._clients.values() if client.state is not None)

    def __contains__(self, client_id: object) -> bool:
        client = self._clients.get(client_id) if isinstance(client_id, int) else None
        return client is not None and client.state is not None

    def get(self, client_id: int) -> dict[str, Any] | None:
        """The current state of ``client_id``, or None if absent or removed."""
        client = self._clients.get(client_id)
        return None if client is None else client.state

    def clock(self, client_id: int) -> int | None:
        """The last clock seen for ``client_id`` (also for removed clients), if known."""
        client = self._clients.get(client_id)
        return None if client is None else client.clock

    def states(self) -> dict[int, dict[str, Any]]:
        """A snapshot of all present states."""
        return {cid: c.state for cid, c in self._clients.items() if c.state is not None}

    # -- remote input --------------------------------------------------------

    def apply(self, update: AwarenessUpdate, now: float) -> AwarenessChange:
        """Merge a received awareness update into the registry."""
        added: list[int] = []
        updated: list[int] = []
        removed: list[int] = []
        accepted: dict[int, None] = {}  # ordered set
        reasserted: dict[int, None] = {}
        for entry in update.entries:
            cid = entry.client_id
            client = self._clients.get(cid)
            if client is None:
                self._clients[cid] = _Client(entry.clock, entry.state, now)
                if entry.state is not None:
                    added.append(cid)
                accepted[cid] = None
                continue
            newer = entry.clock > client.clock
            if not (newer or (entry.clock == client.clock and entry.state is None)):
                continue  # stale
            if entry.state is None:
                if client.state is None:
                    if not newer:
                        continue  # equal-clock null for an already removed client
                elif cid in self._local:
                    # Never let a peer remove our own state: outbid its clock instead.
                    client.clock = entry.clock + 1
                    client.last_updated = now
                    accepted[cid] = None
                    reasserted[cid] = None
                    continue
                else:
                    removed.append(cid)
            elif client.state is None:
                added.append(cid)
            elif client.state != entry.state:
                updated.append(cid)
            client.clock = entry.clock
            client.state = entry.state
            client.last_updated = now
            accepted[cid] = None
        return AwarenessChange(
            added=tuple(added),
            updated=tuple(updated),
            removed=tuple(removed),
            frame=self._frame(accepted) if accepted else None,
            reply=self._frame(reasserted) if reasserted else None,
        )

    def remove(self, client_ids: Iterable[int], now: float) -> bytes:
        """Remove clients (e.g. those a closed connection controlled); return the announcement.

        Remote clients keep their clock, as in y-protocols ``removeAwarenessStates``:
        peers drop a state on an equal-clock null, and not bumping the clock means
        the client's own next renewal (clock + 1) is accepted when it reconnects.
        Our local clients get ``clock + 1``. The frame lists every known id asked
        for (already-removed ones again, which is harmless); unknown ids are skipped.
        """
        announce: dict[int, None] = {}
        for cid in client_ids:
            client = self._clients.get(cid)
            if client is None:
                continue
            if client.state is not None:
                client.state = None
                if cid in self._local:
                    client.clock += 1
                client.last_updated = now
            announce[cid] = None
        return self._frame(announce)

    def expire(self, now: float, timeout: float = DEFAULT_TIMEOUT) -> bytes | None:
        """Drop remote states not renewed for ``timeout`` seconds; return the announcement.

        Call it periodically (y-protocols checks every ``timeout / 10``). Local
        states never expire here; renew them with :meth:`renew_local`. Also forgets
        tombstones older than ``tombstone_ttl``.
        """
        expired: dict[int, None] = {}
        forget: list[int] = []
        for cid, client in self._clients.items():
            age = now - client.last_updated
            if client.state is None:
                if age >= self._tombstone_ttl and cid not in self._local:
                    forget.append(cid)
            elif cid not in self._local and age >= timeout:
                client.state = None
                client.last_updated = now
                expired[cid] = None
        for cid in forget:
            del self._clients[cid]
        return self._frame(expired) if expired else None

    # -- local state ---------------------------------------------------------

    def set_local(self, client_id: int, state: dict[str, Any] | None, now: float) -> bytes:
        """Set (or with None, withdraw) one of our own states; return the frame to send.

        The clock goes up by one on every call, which is also how a state is renewed.
        A new client starts at clock 1, not 0: y-protocols peers ignore a first
        state at clock 0 from a client they do not know yet.
        """
        client = self._clients.get(client_id)
        if client is None:
            self._clients[client_id] = _Client(1, state, now)
        else:
            client.clock += 1
            client.state = state
            client.last_updated = now
        self._local.add(client_id)
        return self._frame((client_id,))

    def renew_local(self, now: float, timeout: float = DEFAULT_TIMEOUT) -> bytes | None:
        """Re-announce local states older than ``timeout / 2`` so peers do not expire them."""
        renewed: dict[int, None] = {}
        for cid in self._local:
            client = self._clients[cid]
            if client.state is not None and now - client.last_updated >= timeout / 2:
                client.clock += 1
                client.last_updated = now
                renewed[cid] = None
        return self._frame(renewed) if renewed else None

    # -- encoding ------------------------------------------------------------

    def encode_all(self) -> bytes | None:
        """All present states as one awareness frame (for late joiners), None if empty."""
        present = [cid for cid, c in self._clients.items() if c.state is not None]
        return self._frame(present) if present else None

    def encode(self, client_ids: Iterable[int]) -> bytes:
        """The current entries (null if removed) of the known ``client_ids`` as one frame."""
        return self._frame(cid for cid in client_ids if cid in self._clients)

    def _frame(self, client_ids: Iterable[int]) -> bytes:
        entries = []
        for cid in client_ids:
            client = self._clients[cid]
            entries.append(AwarenessEntry(cid, client.clock, client.state))
        return encode(AwarenessUpdate(tuple(entries)))
