"""The simulated network: one thread, a virtual clock, links that misbehave on purpose.

Everything that happens is an event in a time-ordered queue, drawn from one seeded
random generator, so a seed replays a run exactly. Frames travel between nodes over
connections; each frame is independently lost, duplicated, or delayed (which reorders
frames) according to `LinkFaults`, and never crosses a partition.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..protocol import ProtocolError, decode


@dataclass(frozen=True)
class LinkFaults:
    loss: float = 0.0  # probability that a frame vanishes
    duplicate: float = 0.0  # probability that a frame arrives twice
    delay: tuple[float, float] = (0.001, 0.010)  # seconds; overlapping delays reorder

    def __post_init__(self) -> None:
        if not (0 <= self.loss < 1 and 0 <= self.duplicate < 1):
            raise ValueError("loss and duplicate are probabilities below 1")
        if not 0 <= self.delay[0] <= self.delay[1]:
            raise ValueError("delay must be a (min, max) range of seconds")


CALM = LinkFaults()

EPOCH_MS = 1_790_000_000_000  # virtual time 0 on every node's wall clock (Sept. 2026)


@dataclass(frozen=True)
class ClockSkew:
    """How far a node's clocks stray from true (virtual) time."""

    offset: float = 0.0  # seconds its wall clock is ahead (negative: behind)
    drift: float = 0.0  # seconds gained per second on both of its clocks (1e-4: 100 ppm)

    def __post_init__(self) -> None:
        if not -0.5 < self.drift < 0.5:
            raise ValueError("drift is a rate: seconds gained per second, well below 0.5")


_TRUE = ClockSkew()


class Endpoint(Protocol):
    name: str

    def deliver(self, connection: Connection, frame: bytes) -> None: ...

    def disconnected(self, connection: Connection) -> None: ...


@dataclass(eq=False)
class Connection:
    """A client's link to a server. Frames of a closed connection are dropped."""

    id: int
    client: Endpoint
    server: Endpoint
    room: str
    open: bool = True

    def peer_of(self, node: Endpoint) -> Endpoint:
        return self.server if node is self.client else self.client

    def __repr__(self) -> str:
        return f"#{self.id} {self.client.name}->{self.server.name}/{self.room}"


class Simulation:
    """The virtual world: the clock, the event queue, links, partitions, the history."""

    def __init__(self, *, seed: int = 0, faults: LinkFaults = CALM) -> None:
        self.now = 0.0
        self.rng = random.Random(seed)
        self.faults = faults
        self.history: list[str] = []
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._cut: set[frozenset[str]] = set()
        self._skews: dict[str, ClockSkew] = {}

    # -- time ------------------------------------------------------------------------

    def at(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (self.now + delay, next(self._seq), action))

    def run_for(self, seconds: float) -> None:
        """Process every event due in the next `seconds` of virtual time."""
        deadline = self.now + seconds
        queue = self._queue
        while queue and queue[0][0] <= deadline:
            self.now, _, action = heapq.heappop(queue)
            action()
        self.now = deadline

    def skew(self, name: str, skew: ClockSkew) -> None:
        """Give node `name` clocks that stray from true time by `skew`."""
        self._skews[name] = skew
        self.note(f"SKEW {name}: wall clock {skew.offset:+g} s, drift {skew.drift:+g} s/s")

    def monotonic(self, name: str) -> float:
        """Node `name`'s monotonic clock (seconds): it runs at the node's drifting rate."""
        return self.now * (1 + self._skews.get(name, _TRUE).drift)

    def wall_ms(self, name: str) -> int:
        """Node `name`'s wall clock, in milliseconds since the Unix epoch."""
        skew = self._skews.get(name, _TRUE)
        return EPOCH_MS + round((self.now * (1 + skew.drift) + skew.offset) * 1000)

    def note(self, text: str) -> None:
        self.history.append(f"{self.now:9.3f}s  {text}")

    def story(self, last: int = 60) -> str:
        """The end of the event history, for failure messages."""
        lines = self.history[-last:]
        skipped = len(self.history) - len(lines)
        head = [f"  ... {skipped} earlier events"] if skipped else []
        return "history:\n" + "\n".join(head + ["  " + line for line in lines])

    # -- links -----------------------------------------------------------------------

    def connect(self, client: Endpoint, server: Endpoint, room: str) -> Connection:
        return Connection(next(self._ids), client, server, room)

    def reachable(self, a: str, b: str) -> bool:
        return frozenset((a, b)) not in self._cut

    def partition(self, group_a: set[str], group_b: set[str]) -> None:
        """Cut every link between the two groups (frames in flight are lost too)."""
        for a in group_a:
            for b in group_b:
                self._cut.add(frozenset((a, b)))
        self.note(f"PARTITION {sorted(group_a)} | {sorted(group_b)}")

    def heal(self) -> None:
        if self._cut:
            self._cut.clear()
            self.note("HEAL all partitions")

    def transmit(self, connection: Connection, sender: Endpoint, frame: bytes) -> None:
        """Send `frame` to the other end of `connection`, through this world's faults."""
        receiver = connection.peer_of(sender)
        what = describe(frame)
        route = f"{sender.name}->{receiver.name} {what}"
        if not self.reachable(sender.name, receiver.name):
            self.note(f"{route} CUT by partition")
            return
        if self.rng.random() < self.faults.loss:
            self.note(f"{route} LOST")
            return
        copies = 2 if self.rng.random() < self.faults.duplicate else 1
        if copies == 2:
            self.note(f"{route} DUPLICATED")
        for _ in range(copies):
            delay = self.rng.uniform(*self.faults.delay)
            self.at(delay, lambda: self._arrive(connection, sender, receiver, frame))

    def _arrive(
        self, connection: Connection, sender: Endpoint, receiver: Endpoint, frame: bytes
    ) -> None:
        if not connection.open:
            return  # like TCP: a dead connection's bytes are gone
        if not self.reachable(sender.name, receiver.name):
            self.note(f"{sender.name}->{receiver.name} {describe(frame)} CUT in flight")
            return
        receiver.deliver(connection, frame)

    def close(self, connection: Connection, why: str) -> None:
        if connection.open:
            connection.open = False
            self.note(f"CLOSE {connection!r}: {why}")
            for end in (connection.client, connection.server):
                end.disconnected(connection)


def describe(frame: bytes) -> str:
    """A short human name for a frame, for the history."""
    try:
        message = decode(frame)
    except ProtocolError:
        return f"malformed frame ({len(frame)} B)"
    return f"{type(message).__name__} ({len(frame)} B)"
