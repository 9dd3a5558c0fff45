"""`ClusterMachine`: a hypothesis state machine over a simulated cluster, to subclass.

Hypothesis picks the link faults and a sequence of steps (edits, time passing,
partitions, heals, crashes, restarts); at the end the cluster settles and must have
converged with no acknowledged write lost. A failure is shrunk to a short list of steps
and reported with the simulation's own history (lost frames, torn tails, client ids).

Subclass it for your app: override `topology()` to shape the cluster, `operations()` to
draw your app's edits, and `check(cluster)` for your own invariants (run after settling;
`invariants` run after every step). Then `TestMyApp = MyMachine.TestCase`.

A Rust panic inside pycrdt (pyo3's `PanicException`, a `BaseException` that hypothesis
does not treat as a test failure) is turned into an `AssertionError` with the story, so
it is shrunk and reported like any failure: two nodes holding different changes under
one (client id, clock) can make yrs panic instead of merely diverge.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ..protocol import is_pycrdt_panic
from .cluster import Cluster
from .network import LinkFaults
from .strategies import Operation, clock_skews, link_faults
from .strategies import operations as yjs_operations


class ClusterMachine(RuleBasedStateMachine):
    cluster: Cluster
    #: Fault families to explore; narrowing them makes a search for one kind of bug faster.
    partitions = True
    crashes = True
    skewed_clocks = True  # every node's clocks stray from true time by a drawn `ClockSkew`

    def links(self) -> st.SearchStrategy[LinkFaults]:
        """How links misbehave (`st.just(CALM)` for perfect links)."""
        return link_faults()

    # -- what a subclass shapes ------------------------------------------------------

    def topology(self, cluster: Cluster) -> None:
        """Default: two replicas behind a gateway chained to a cloud relay, one direct."""
        cluster.add_relay("cloud")
        cluster.add_relay("gateway", upstream="cloud")
        cluster.add_replica("a", relay="gateway")
        cluster.add_replica("b", relay="gateway")
        cluster.add_replica("c", relay="cloud")

    def operations(self) -> st.SearchStrategy[Operation]:
        return yjs_operations()

    def make_cluster(self, seed: int, faults: LinkFaults) -> Cluster:
        """Where a test plants faulty node classes (`cluster.replica_class = ...`)."""
        return Cluster(seed=seed, faults=faults)

    def check(self, cluster: Cluster) -> None:
        """The app's own invariants on the settled cluster."""

    # -- the rules -------------------------------------------------------------------

    @initialize(seed=st.integers(0, 2**32 - 1), data=st.data())
    def start(self, seed: int, data: st.DataObject) -> None:
        faults = data.draw(self.links(), label="links")
        self.cluster = self.make_cluster(seed, faults)
        self.topology(self.cluster)
        if self.skewed_clocks:
            for name in sorted([*self.cluster.relays, *self.cluster.replicas]):
                self.cluster.skew(name, data.draw(clock_skews(), label=f"clock of {name}"))
        self.drawn_operations = self.operations()  # built once: strategies are costly to build
        self._edits = st.lists(self.drawn_operations, min_size=1, max_size=3)
        self._replicas = st.sampled_from(sorted(self.cluster.replicas))
        self._nodes = st.sampled_from(sorted([*self.cluster.relays, *self.cluster.replicas]))
        note(f"cluster seed={seed} {faults}")

    @rule(data=st.data(), then=st.sampled_from([0.0, 0.01, 0.1]))
    def edit(self, data: st.DataObject, then: float) -> None:
        """One to three edits on one replica, each its own transaction; then `then`
        seconds pass (hypothesis often switches the `wait` rule off for a whole example,
        and edits that never travel would test little)."""
        name = data.draw(self._replicas, label="replica")
        with self.simulating():
            for operation in data.draw(self._edits):
                self.edit_replica(name, operation)
            self.cluster.run(then)

    def edit_replica(self, name: str, operation: Operation) -> None:
        """Apply one operation on replica `name` (if it is up), noted in the story; rules a
        subclass adds edit through it, drawing from `drawn_operations`."""
        if self.cluster.replicas[name].edit(operation.apply):
            self.cluster.sim.note(f"EDIT {name}: {operation}")

    @rule(seconds=st.sampled_from([0.001, 0.01, 0.1, 0.5, 1.5]))
    def wait(self, seconds: float) -> None:
        with self.simulating():
            self.cluster.run(seconds)

    @precondition(lambda self: self.partitions)
    @rule(data=st.data())
    def partition(self, data: st.DataObject) -> None:
        names = sorted([*self.cluster.relays, *self.cluster.replicas])
        side = data.draw(st.sets(st.sampled_from(names), min_size=1), label="side")
        rest = set(names) - side
        if rest:
            self.cluster.partition(side, rest)

    @precondition(lambda self: self.partitions)
    @rule()
    def heal(self) -> None:
        self.cluster.heal()

    @precondition(lambda self: self.crashes)
    @rule(data=st.data(), stay_down=st.booleans(), after=st.sampled_from([0.0, 0.01, 0.1]))
    def crash(self, data: st.DataObject, stay_down: bool, after: float) -> None:
        """After `after` seconds (0: what is in flight dies with it), kill a node: its log
        keeps a torn tail. Unless it stays down, restart it at once; a replica is then
        edited at once, as an app that resumes work after a power cut would, before its
        first sync brings back what its relay holds (if it came back with less than it had
        sent and with its old client id, that edit reuses clocks the relay holds)."""
        name = data.draw(self._nodes, label="crash")
        with self.simulating():
            self.cluster.run(after)
            self.cluster.crash(name)
            if not stay_down:
                self.cluster.restart(name)
                if name in self.cluster.replicas:
                    self.edit_replica(name, data.draw(self.drawn_operations, label="edit at once"))

    @precondition(lambda self: self.crashes and self._down())
    @rule(data=st.data())
    def restart(self, data: st.DataObject) -> None:
        """Restart a node that stayed down; a replica may be edited at once, before its
        first sync."""
        name = data.draw(st.sampled_from(self._down()), label="restart")
        with self.simulating():
            self.cluster.restart(name)
            if name in self.cluster.replicas and data.draw(st.booleans(), label="edit at once"):
                self.edit_replica(name, data.draw(self.drawn_operations, label="operation"))

    def _down(self) -> list[str]:
        if not hasattr(self, "cluster"):
            return []
        nodes = [*self.cluster.relays, *self.cluster.replicas]
        return sorted(name for name in nodes if not self.cluster.node(name).up)

    @contextmanager
    def simulating(self) -> Iterator[None]:
        """Run simulation steps; a pycrdt panic fails the step with the story (see the
        module docstring). Rules a subclass adds should run their steps inside it too."""
        try:
            yield
        except BaseException as exc:
            if not is_pycrdt_panic(exc):
                raise
            raise AssertionError(
                f"not converged: pycrdt panicked while a node applied an update ({exc}); "
                "do two nodes hold different changes under one client id and clock?\n"
                f"{self.cluster.story()}"
            ) from exc

    @invariant()
    def invariants_hold(self) -> None:
        if hasattr(self, "cluster"):
            self.cluster.check_invariants()

    def teardown(self) -> None:
        if not hasattr(self, "cluster"):
            return
        try:
            if sys.exc_info()[1] is not None:
                # A step failed (hypothesis tears down while its exception propagates):
                # report that failure, not whatever settling the broken cluster says.
                note(self.cluster.story(last=200))
                return
            with self.simulating():
                self.cluster.settle()
                self.cluster.assert_no_acknowledged_write_lost()
                self.cluster.assert_converged()
                self.check(self.cluster)
        except AssertionError:
            note(self.cluster.story(last=200))
            raise
        finally:
            self.cluster.close()
