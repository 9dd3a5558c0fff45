"""The partition harness: our own replicas and relays under it (the proof that it finds
bugs is in test_finds_bugs.py)."""

from __future__ import annotations

import os

import pycrdt
from hypothesis import settings

from crdtedge.testing import Cluster, ClusterMachine, LinkFaults

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
