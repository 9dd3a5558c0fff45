"""`ClusterMachine`: a hypothesis state machine over a simulated cluster, to subclass.

Hypothesis picks the link faults and a sequence of steps (edits, time passing,
partitions, heals, crashes, restarts); at the end the cluster settles and must have
converged with no acknowledged write lost. A failure is shrunk to a short list of steps
and reported with the simulation's own history (lost frames, torn tails, client ids).

Subclass it for your app: override `topology()` to shape the cluster, `operations()` to
draw your app's edits, and `check(cluster)` for your own invariants (run after settling;
`invariants` run after every step). Then `TestMyApp = MyMachine.TestCase`.
"""

from __future__ import annotations

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from .cluster import Cluster
from .network import LinkFaults
from .strategies import Operation, link_faults
from .strategies import operations as yjs_operations


class ClusterMachine(RuleBasedStateMachine):
    cluster: Cluster
    #: Fault families to explore; narrowing them makes a search for one kind of bug faster.
    partitions = True
    crashes = True

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
        self._operations = self.operations()  # built once: strategies are costly to build
        self._replicas = st.sampled_from(sorted(self.cluster.replicas))
        self._nodes = st.sampled_from(sorted([*self.cluster.relays, *self.cluster.replicas]))
        note(f"cluster seed={seed} {faults}")

    @rule(data=st.data())
    def edit(self, data: st.DataObject) -> None:
        """One to three edits on one replica, each its own transaction."""
        name = data.draw(self._replicas, label="replica")
        for operation in data.draw(st.lists(self._operations, min_size=1, max_size=3)):
            self._edit(name, operation)

    def _edit(self, name: str, operation: Operation) -> None:
        if self.cluster.replicas[name].edit(operation.apply):
            self.cluster.sim.note(f"EDIT {name}: {operation}")

    @rule(seconds=st.sampled_from([0.001, 0.01, 0.1, 0.5, 1.5]))
    def wait(self, seconds: float) -> None:
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
        """After `after` seconds, kill a node (its log keeps a torn tail). Unless it stays
        down, restart it at once; a restarted replica may be edited straight away, as an
        app that resumes work would."""
        name = data.draw(self._nodes, label="crash")
        self.cluster.run(after)
        self.cluster.crash(name)
        if stay_down:
            return
        self.cluster.restart(name)
        if name in self.cluster.replicas and data.draw(st.booleans(), label="edit at once"):
            self._edit(name, data.draw(self._operations, label="operation"))

    @precondition(lambda self: self.crashes)
    @rule(data=st.data())
    def restart(self, data: st.DataObject) -> None:
        self.cluster.restart(data.draw(self._nodes, label="restart"))

    @invariant()
    def invariants_hold(self) -> None:
        if hasattr(self, "cluster"):
            self.cluster.check_invariants()

    def teardown(self) -> None:
        if not hasattr(self, "cluster"):
            return
        try:
            self.cluster.settle()
            self.cluster.assert_no_acknowledged_write_lost()
            self.cluster.assert_converged()
            self.check(self.cluster)
        except AssertionError:
            note(self.cluster.story(last=200))
            raise
        finally:
            self.cluster.close()
