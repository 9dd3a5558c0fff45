"""The partition harness: our own replicas and relays under it, and proof it finds bugs."""

from __future__ import annotations

import os

import pycrdt
import pytest
from hypothesis import settings

from crdtedge.local_replica import LocalReplica
from crdtedge.log import UpdateLog
from crdtedge.testing import (
    Cluster,
    ClusterMachine,
    LinkFaults,
    SimRelay,
    SimReplica,
)
from crdtedge.testing.strategies import MapSet

DEEP = os.environ.get("HYPOTHESIS_PROFILE") == "deep"


def harness_settings(examples: int, steps: int = 30) -> settings:
    """Bounded in CI; HYPOTHESIS_PROFILE=deep runs 40 times more examples."""
    return settings(
        settings.default,
        max_examples=examples * (40 if DEEP else 1),
        stateful_step_count=steps * (2 if DEEP else 1),
    )


# -- our own code under the harness ------------------------------------------------------


class DefaultCluster(ClusterMachine):
    """Replicas behind a chained gateway and a cloud relay, raw Yjs edits, every fault."""


TestDefaultCluster = DefaultCluster.TestCase
TestDefaultCluster.settings = harness_settings(20)


def test_a_scripted_story_converges() -> None:
    faults = LinkFaults(loss=0.1, duplicate=0.1, delay=(0.001, 0.05))
    with Cluster(seed=3, faults=faults) as cluster:
        cluster.add_relay("cloud")
        cluster.add_relay("gw", upstream="cloud")
        a = cluster.add_replica("a", relay="gw")
        b = cluster.add_replica("b", relay="cloud")
        for i in range(20):
            a.edit(lambda doc, i=i: doc.get("m", type=pycrdt.Map).__setitem__(f"a{i}", i))
            b.edit(lambda doc: doc.get("t", type=pycrdt.Text).insert(0, "é"))
            cluster.run(0.05)
            if i == 5:
                cluster.partition({"gw"}, {"cloud"})
            if i == 8:
                cluster.crash("a")
            if i == 12:
                cluster.restart("a")
                cluster.crash("gw")
            if i == 15:
                cluster.restart("gw")
                cluster.heal()
        cluster.settle()
        cluster.assert_converged()
        cluster.assert_no_acknowledged_write_lost()
        keys = set(a.doc.get("m", type=pycrdt.Map).keys())
        assert keys == {f"a{i}" for i in [*range(9), *range(13, 20)]}  # down from 9 to 12
        assert str(b.doc.get("t", type=pycrdt.Text)) == "é" * 20
        assert any("LOST" in line for line in cluster.sim.history)
        assert any("DUPLICATED" in line for line in cluster.sim.history)


def test_a_seed_replays_a_run_exactly() -> None:
    def story(seed: int) -> list[str]:
        faults = LinkFaults(loss=0.2, duplicate=0.2, delay=(0.001, 0.1))
        with Cluster(seed=seed, faults=faults) as cluster:
            cluster.add_relay("r")
            a = cluster.add_replica("a", relay="r")
            for i in range(10):
                a.edit(lambda doc, i=i: doc.get("m", type=pycrdt.Map).__setitem__(str(i), i))
                cluster.run(0.1)
            cluster.crash("a")
            cluster.restart("a")
            cluster.run(1.0)
            return cluster.sim.history

    assert story(11) == story(11)
    assert story(11) != story(12)


# -- planted bugs: the harness must find them --------------------------------------------


class CarelessReplica(SimReplica):
    """Sends changes before they are durable (as many Yjs stores do) and keeps its client
    id whatever happened to its log: a crash then reuses clocks others already hold."""

    def barrier(self) -> None:
        pass

    def make_local(self, log: UpdateLog) -> LocalReplica:
        class Trusting(LocalReplica):
            def log_is_complete(self) -> bool:
                return True

        return Trusting(log, name=self.name, new_client_id=self.new_client_id)


class EagerRelay(SimRelay):
    """Acknowledges updates as durable without ever fsyncing its logs."""

    def fsync(self, log: UpdateLog) -> None:
        pass


def careless_story(replica_class: type[SimReplica]) -> Cluster:
    """Edit, let it reach the relay, crash (torn tail), restart, edit at once, settle."""
    cluster = Cluster(seed=1)
    cluster.replica_class = replica_class
    cluster.add_relay("r")
    a = cluster.add_replica("a", relay="r")
    cluster.add_replica("b", relay="r")
    a.edit(MapSet("map", "a", 1).apply)
    cluster.run(0.05)
    cluster.crash("a")
    cluster.restart("a")
    a.edit(MapSet("map", "b", 2).apply)
    cluster.settle()
    return cluster


def test_the_harness_catches_a_replica_that_sends_before_durable() -> None:
    with careless_story(SimReplica) as cluster:  # our replica: fine
        cluster.assert_converged()
    with careless_story(CarelessReplica) as cluster, pytest.raises(AssertionError) as failure:
        cluster.assert_converged()
    assert "not converged" in str(failure.value)
    assert "CRASH a" in str(failure.value) and "(kept)" in str(failure.value)


def eager_story(relay_class: type[SimRelay]) -> None:
    with Cluster(seed=1) as cluster:
        cluster.relay_class = relay_class
        cluster.add_relay("r")
        a = cluster.add_replica("a", relay="r")
        a.edit(MapSet("map", "a", 1).apply)
        cluster.run(0.1)  # sent, appended, acknowledged
        assert cluster.relays["r"].acknowledged["doc"][a.local.client_id] > 0  # type: ignore[union-attr]
        cluster.crash("r")
        cluster.restart("r")  # checks that everything acknowledged survived


def test_the_harness_catches_a_relay_that_acks_before_fsync() -> None:
    eager_story(SimRelay)
    with pytest.raises(AssertionError, match=r"acknowledged client .* after a crash") as failure:
        eager_story(EagerRelay)
    assert "CRASH r" in str(failure.value)
