"""`Cluster`: the object a test holds. Nodes, faults, and the checks that matter.

with Cluster(seed=7, faults=LinkFaults(loss=0.1, duplicate=0.1)) as cluster:
    cluster.add_relay("cloud")
    cluster.add_relay("gateway", upstream="cloud")
    a = cluster.add_replica("a", relay="gateway")
    b = cluster.add_replica("b", relay="cloud")
    a.edit(lambda doc: doc.get("m", type=pycrdt.Map).update({"x": 1}))
    cluster.partition({"a"}, {"gateway"})
    cluster.crash("b"); cluster.restart("b")
    cluster.settle()                 # heal, calm the links, restart everyone, wait
    cluster.assert_converged()
    cluster.assert_no_acknowledged_write_lost()
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

import pycrdt

from ..content import to_python
from ..protocol import decode_state_vector
from .network import CALM, ClockSkew, LinkFaults, Simulation
from .nodes import RESYNC_INTERVAL, SimRelay, SimReplica, first_lost

Invariant = Callable[["Cluster"], None]


def _fast_directory() -> str:
    """Logs fsync a lot; tmpfs makes that free where it exists."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    return tempfile.mkdtemp(prefix="crdtedge-sim-", dir=base)


class Cluster:
    def __init__(self, *, seed: int = 0, faults: LinkFaults = CALM) -> None:
        self.sim = Simulation(seed=seed, faults=faults)
        self.directory = _fast_directory()
        self.relays: dict[str, SimRelay] = {}
        self.replicas: dict[str, SimReplica] = {}
        self.invariants: list[Invariant] = []
        self.relay_class: type[SimRelay] = SimRelay
        self.replica_class: type[SimReplica] = SimReplica

    # -- building --------------------------------------------------------------------

    def add_relay(self, name: str, *, upstream: str | None = None) -> SimRelay:
        directory = self._node_dir(name)
        parent = self.relays[upstream] if upstream is not None else None
        relay = self.relay_class(self.sim, name, directory, parent)
        self.relays[name] = relay
        return relay

    def add_replica(
        self,
        name: str,
        *,
        relay: str,
        room: str = "doc",
        replica_class: type[SimReplica] | None = None,
    ) -> SimReplica:
        """A replica of `replica_class` (default: the cluster's `replica_class`)."""
        cls = replica_class or self.replica_class
        replica = cls(self.sim, name, self._node_dir(name), self.relays[relay], room)
        self.replicas[name] = replica
        return replica

    def _node_dir(self, name: str) -> str:
        if name in self.relays or name in self.replicas:
            raise ValueError(f"node {name!r} exists already")
        path = f"{self.directory}/{len(self.relays) + len(self.replicas)}"
        os.makedirs(path)
        return path

    # -- faults ----------------------------------------------------------------------

    def node(self, name: str) -> SimRelay | SimReplica:
        return self.relays.get(name) or self.replicas[name]

    def crash(self, name: str) -> None:
        self.node(name).crash()

    def restart(self, name: str) -> None:
        self.node(name).restart()

    def skew(self, name: str, skew: ClockSkew) -> None:
        """Set node `name`'s clocks off true time (its wall clock and its clock's rate)."""
        self.node(name)  # a typo must not skew nothing
        self.sim.skew(name, skew)

    def partition(self, group_a: set[str], group_b: set[str]) -> None:
        self.sim.partition(group_a, group_b)

    def heal(self) -> None:
        self.sim.heal()

    def run(self, seconds: float) -> None:
        self.sim.run_for(seconds)
        self.check_invariants()

    def settle(self, rounds: int = 4) -> None:
        """End every fault and let the cluster quiesce: what it holds then must agree."""
        self.sim.note("SETTLE: heal, calm links, restart every node")
        self.sim.heal()
        self.sim.faults = CALM
        for relay in self.relays.values():
            relay.restart()
        for replica in self.replicas.values():
            replica.restart()
        self.run(rounds * RESYNC_INTERVAL)

    # -- checks ----------------------------------------------------------------------

    def docs(self, room: str | None = None) -> dict[str, pycrdt.Doc[Any]]:
        """Every live replica's document and every relay's copy of each room (of `room`)."""
        docs: dict[str, pycrdt.Doc[Any]] = {
            name: replica.doc
            for name, replica in self.replicas.items()
            if replica.up and room in (None, replica.room)
        }
        for name, relay in self.relays.items():
            for room_name, copy in relay.rooms.items():
                if room in (None, room_name):
                    docs[f"{name}/{room_name}"] = copy.doc
        return docs

    def assert_converged(self) -> None:
        """All documents hold the same content and the same history (state vector)."""
        docs = self.docs()
        views = {name: (_clocks(doc), to_python(doc.get_update())) for name, doc in docs.items()}
        first_name, first = next(iter(views.items()))
        for name, view in views.items():
            if view != first:
                raise AssertionError(
                    f"not converged: {name} differs from {first_name}\n"
                    f"  {first_name}: {first}\n  {name}: {view}\n{self.story()}"
                )

    def assert_no_acknowledged_write_lost(self) -> None:
        """Every change a relay acknowledged as durable is in every document of its room."""
        for relay in self.relays.values():
            for room, clocks in relay.acknowledged.items():
                for name, doc in self.docs(room).items():
                    lost = first_lost(clocks, _clocks(doc))
                    if lost is not None:
                        client, clock, has = lost
                        raise AssertionError(
                            f"{name} lost an acknowledged write: client {client} clock "
                            f"{clock} (room {room!r}, acked by {relay.name}), holds {has}"
                            f"\n{self.story()}"
                        )

    def check_invariants(self) -> None:
        for invariant in self.invariants:
            invariant(self)

    def story(self, last: int = 60) -> str:
        return self.sim.story(last)

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        for replica in self.replicas.values():
            replica.crash()  # nothing to keep: drop without flushing
        for relay in self.relays.values():
            relay.crash()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _clocks(doc: pycrdt.Doc[Any]) -> dict[int, int]:
    return decode_state_vector(doc.get_state())
