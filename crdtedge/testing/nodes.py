"""Simulated nodes that run the real code: `LocalReplica`, `SyncSession`, `Room`, `UpdateLog`.

Only the I/O is simulated. Logs are real files in `durability="none"` mode, with the
fsyncs a real process would make done explicitly at the same points (before sending
local content, on the relay's group-commit tick, before an acknowledgement), so a
crash can cut each log exactly where a power cut could.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import pycrdt

from ..local_replica import LocalReplica
from ..log import LogStore, UpdateLog
from ..protocol import (
    ProtocolError,
    Send,
    Stored,
    StoredHello,
    SyncSession,
    decode_state_vector,
    encode,
)
from ..relay import Room
from ..types import HybridClock
from .network import Connection, Simulation

COMMIT_WINDOW = 0.005  # the relay's group-commit tick
RESYNC_INTERVAL = 1.0  # clients reconnect this often: heals lost frames and partitions
HOUSEKEEPING_INTERVAL = 1.0  # as the real relay: awareness expiry, idle rooms unloaded
IDLE_UNLOAD = 3.0  # a room without peers this long is unloaded (the real default is 30 s)

_editing: ContextVar[HybridClock] = ContextVar("crdtedge.testing.editing")


def current_clock() -> HybridClock:
    """The hybrid clock of the replica whose `edit` is running, on that node's own (skewed)
    wall clock: operations stamp their writes with it, e.g. `Register(doc, name,
    clock=current_clock())`. It lives as long as the replica's process: a crash resets it."""
    try:
        return _editing.get()
    except LookupError:
        raise RuntimeError("current_clock() is only set inside SimReplica.edit") from None


def first_lost(acknowledged: dict[int, int], held: dict[int, int]) -> tuple[int, int, int] | None:
    """The first (client, acknowledged clock, held clock) where `held` falls short."""
    for client, clock in acknowledged.items():
        if held.get(client, 0) < clock:
            return client, clock, held.get(client, 0)
    return None


class SimPeer:
    """A room member on the far side of a simulated connection."""

    def __init__(self, sim: Simulation, node: SimRelay, connection: Connection) -> None:
        self.sim = sim
        self.node = node
        self.connection = connection
        self.label = repr(connection)

    def push(self, frame: bytes) -> None:
        self.sim.transmit(self.connection, self.node, frame)

    def close(self, code: int, reason: str) -> None:
        self.sim.close(self.connection, f"{code} {reason}")


class SimRelay:
    """A relay: rooms over update logs, optionally chained to an `upstream` relay."""

    def __init__(
        self, sim: Simulation, name: str, directory: str, upstream: SimRelay | None = None
    ) -> None:
        self.sim = sim
        self.name = name
        self.directory = directory
        self.upstream = upstream
        self.up = False
        self.rooms: dict[str, Room] = {}
        self.peers: dict[Connection, SimPeer] = {}
        self.acknowledged: dict[str, dict[int, int]] = {}  # room -> client -> clock acked
        self.store: LogStore | None = None
        self.life = 0  # bumped by each start, so timers of an earlier life stop
        self._commit_pending = False
        self.start()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self.store = LogStore(self.directory, durability="none", auto_compact=False)
        self.up = True
        self.life += 1
        life = self.life
        self._commit_pending = False
        self.sim.at(RESYNC_INTERVAL, lambda: self._resync_tick(life))
        self.sim.at(HOUSEKEEPING_INTERVAL, lambda: self._housekeeping(life))

    def crash(self) -> None:
        """Die mid-flight: connections drop, each room log keeps a random torn tail."""
        if not self.up:
            return
        assert self.store is not None
        self.up = False
        for connection in list(self.peers):
            self.sim.close(connection, f"{self.name} crashed")
        for log in self.store.open_logs():
            torn = self.sim.rng.randint(0, log.buffered_bytes)
            log.abandon(torn)
            if torn:
                self.sim.note(f"{self.name} log {log.name} torn after {torn} buffered bytes")
        self.store.abandon()
        self.store = None
        self.rooms.clear()
        self.sim.note(f"CRASH {self.name}")

    def restart(self) -> None:
        if self.up:
            return
        self.start()
        self.sim.note(f"RESTART {self.name}")
        self._check_acknowledged()

    def _check_acknowledged(self) -> None:
        """Everything this relay acknowledged as durable must be in its logs now."""
        assert self.store is not None
        for room, clocks in self.acknowledged.items():
            with self.store.checkout(room) as log:
                held = decode_state_vector(pycrdt.get_state(log.read_state()))
            lost = first_lost(clocks, held)
            if lost is not None:
                client, clock, has = lost
                raise AssertionError(
                    f"{self.name} acknowledged client {client} up to clock {clock} in "
                    f"room {room!r}, but after a crash its log holds {has}\n{self.sim.story()}"
                )

    # -- rooms -----------------------------------------------------------------------

    def room(self, name: str) -> Room:
        room = self.rooms.get(name)
        if room is None:
            assert self.store is not None
            log = self.store.open(name)
            doc: pycrdt.Doc[Any] = pycrdt.Doc()
            doc.apply_update(log.read_state())
            room = self.make_room(name, log, doc)
            self.rooms[name] = room
            if self.upstream is not None:
                self._connect_upstream(room)
        return room

    def make_room(self, name: str, log: UpdateLog, doc: pycrdt.Doc[Any]) -> Room:
        """The room implementation (a test may plant a faulty one here)."""
        return Room(
            name,
            log,
            doc,
            schedule=self.sim.at,
            acks_wanted=lambda room: self.sim.at(COMMIT_WINDOW, lambda: self._ack(room)),
            clock=lambda: self.sim.monotonic(self.name),
        )

    def _connect_upstream(self, room: Room) -> None:
        assert self.upstream is not None
        connection = self.sim.connect(self, self.upstream, room.name)
        if self.upstream.accept(connection):
            peer = SimPeer(self.sim, self, connection)
            self.peers[connection] = peer
            room.attach(peer)

    def _ack(self, room: Room) -> None:
        if not self.up or self.rooms.get(room.name) is not room or not room.unacked:
            return
        seq, state_vector = room.ack_round()
        self.fsync(room.log)
        acked = self.acknowledged.setdefault(room.name, {})
        for member in room.unacked:
            if isinstance(member.peer, SimPeer):
                client = member.peer.connection.client
                if isinstance(client, SimReplica) and client.local is not None:
                    cid = client.local.client_id
                    clock = decode_state_vector(state_vector).get(cid, 0)
                    acked[cid] = max(acked.get(cid, 0), clock)
        room.send_acks(seq, state_vector)
        if room.unacked:
            self.sim.at(COMMIT_WINDOW, lambda: self._ack(room))

    def fsync(self, log: UpdateLog) -> None:
        """Make a room log durable (a test may plant a relay that skips this)."""
        log.sync()

    # -- the network side ------------------------------------------------------------

    def accept(self, connection: Connection) -> bool:
        if not self.up or not self.sim.reachable(connection.client.name, self.name):
            return False
        peer = SimPeer(self.sim, self, connection)
        self.peers[connection] = peer
        self.room(connection.room).attach(peer)
        return True

    def deliver(self, connection: Connection, frame: bytes) -> None:
        peer = self.peers.get(connection)
        room = self.rooms.get(connection.room)
        if not self.up or peer is None or room is None:
            return
        try:
            room.receive(peer, frame)
        except ProtocolError as exc:
            self.sim.close(connection, f"1007 {exc}")
        if room.log.durable < room.log.appended and not self._commit_pending:
            # Group commit: the first append after a commit starts the window.
            self._commit_pending = True
            life = self.life
            self.sim.at(COMMIT_WINDOW, lambda: self._commit(life))

    def disconnected(self, connection: Connection) -> None:
        peer = self.peers.pop(connection, None)
        room = self.rooms.get(connection.room)
        if peer is not None and room is not None:
            room.detach(peer)

    def _commit(self, life: int) -> None:
        if life != self.life or not self.up:
            return
        assert self.store is not None
        self._commit_pending = False
        for log in self.store.open_logs():
            self.fsync(log)

    def _housekeeping(self, life: int) -> None:
        """The real relay's upkeep: a room that has been idle is flushed, made durable and
        unloaded; the next peer loads it again from its log."""
        if life != self.life or not self.up:
            return
        assert self.store is not None
        for room in list(self.rooms.values()):
            if room.housekeeping(IDLE_UNLOAD):
                del self.rooms[room.name]
                room.flush()
                self.fsync(room.log)
                self.store.release(room.name)
                self.sim.note(f"{self.name} unloaded idle room {room.name!r}")
        self.sim.at(HOUSEKEEPING_INTERVAL, lambda: self._housekeeping(life))

    def _resync_tick(self, life: int) -> None:
        if life != self.life or not self.up:
            return
        if self.upstream is not None:  # reconnect upstream links, as a client would
            for connection in [c for c in self.peers if c.client is self]:
                self.sim.close(connection, "periodic reconnect")
            for room in list(self.rooms.values()):
                self._connect_upstream(room)
        self.sim.at(RESYNC_INTERVAL, lambda: self._resync_tick(life))


class SimReplica:
    """A replica: a `LocalReplica` over its own log, syncing with one relay room."""

    def __init__(
        self, sim: Simulation, name: str, directory: str, relay: SimRelay, room: str = "doc"
    ) -> None:
        self.sim = sim
        self.name = name
        self.path = os.path.join(directory, f"{name}.ylog")
        self.relay = relay
        self.room = room
        self.up = False
        self.log: UpdateLog | None = None
        self.local: LocalReplica | None = None
        self.connection: Connection | None = None
        self.session: SyncSession | None = None
        self.client_ids: list[int] = []  # every id this replica has written with
        self._send_scheduled = False
        self.life = 0
        self.start()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self.log = UpdateLog(self.path, durability="none", auto_compact=False, name=self.name)
        self.local = self.make_local(self.log)
        self.local.on_local = self._local_changed
        self.clock = HybridClock(wall_ms=lambda: self.sim.wall_ms(self.name))
        if self.local.client_id not in self.client_ids:
            self.client_ids.append(self.local.client_id)
        self.up = True
        self.sim.note(
            f"START {self.name} client {self.local.client_id} "
            f"({'kept' if self.local.client_id_reused else 'fresh'})"
        )
        self.life += 1
        life = self.life
        self.connect()
        self.sim.at(RESYNC_INTERVAL, lambda: self._resync_tick(life))

    def make_local(self, log: UpdateLog) -> LocalReplica:
        """The replica core (a test may plant a faulty one here)."""
        return LocalReplica(log, name=self.name, new_client_id=self.new_client_id)

    def new_client_id(self) -> int:
        """Drawn from the simulation's generator, so a seed replays a run exactly."""
        return self.sim.rng.getrandbits(32)

    def crash(self) -> None:
        """Die mid-flight: the log keeps a random prefix of what was still buffered."""
        if not self.up:
            return
        assert self.log is not None and self.local is not None
        self.up = False
        if self.connection is not None:
            self.sim.close(self.connection, f"{self.name} crashed")
        torn = self.sim.rng.randint(0, self.log.buffered_bytes)
        self.local.close()
        self.log.abandon(torn)
        self.log = self.local = None
        self.sim.note(f"CRASH {self.name} (torn tail: {torn} buffered bytes written)")

    def restart(self) -> None:
        if not self.up:
            self.start()

    # -- local changes ---------------------------------------------------------------

    @property
    def doc(self) -> pycrdt.Doc[Any]:
        assert self.local is not None, f"{self.name} is down"
        return self.local.doc

    def edit(self, change: Any) -> bool:
        """Run `change(doc)` in one transaction; False if the replica is down."""
        if not self.up:
            return False
        with self.editing(), self.doc.transaction():
            change(self.doc)
        return True

    @contextmanager
    def editing(self) -> Iterator[None]:
        """Make this replica's clock the `current_clock()`."""
        token = _editing.set(self.clock)
        try:
            yield
        finally:
            _editing.reset(token)

    def _local_changed(self) -> None:
        if not self._send_scheduled:
            self._send_scheduled = True
            self.sim.at(0, self._send_local)

    def _send_local(self) -> None:
        self._send_scheduled = False
        if self.local is None:
            return
        updates = self.local.take_local()
        connection = self.connection
        if not updates or connection is None or not connection.open:
            return  # the step 2 of the next connection carries them
        self.barrier()
        for update in updates:
            self.sim.transmit(connection, self, SyncSession.update_frame(update))

    def barrier(self) -> None:
        """Local content leaves only once durable (a test may plant one that does not)."""
        assert self.log is not None
        self.log.sync()

    # -- the network side ------------------------------------------------------------

    def connect(self) -> None:
        if self.connection is not None:
            self.sim.close(self.connection, "reconnect")
        assert self.local is not None
        connection = self.sim.connect(self, self.relay, self.room)
        if not self.relay.accept(connection):
            self.connection = None
            return
        self.connection = connection
        self.session = SyncSession(self.local.doc)
        self.sim.transmit(connection, self, encode(StoredHello()))
        for frame in self.session.open():
            self.sim.transmit(connection, self, frame)

    def deliver(self, connection: Connection, frame: bytes) -> None:
        if connection is not self.connection or self.local is None or self.session is None:
            return
        with self.local.remote():
            events = self.session.receive(frame)
        for event in events:
            if isinstance(event, Send):  # our step 2 carries local content
                self.barrier()
                self.sim.transmit(connection, self, event.frame)
            elif isinstance(event, Stored):
                self.local.stored(decode_state_vector(event.state_vector))

    def disconnected(self, connection: Connection) -> None:
        if connection is self.connection:
            self.connection = None

    def _resync_tick(self, life: int) -> None:
        if life == self.life and self.up:
            self.connect()
            self.sim.at(RESYNC_INTERVAL, lambda: self._resync_tick(life))
