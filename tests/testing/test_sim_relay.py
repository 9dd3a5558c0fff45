"""The simulated relay runs the real relay's room upkeep: idle rooms unload and reload."""

from __future__ import annotations

import pycrdt

from crdtedge.testing import Cluster
from crdtedge.testing.nodes import IDLE_UNLOAD
from crdtedge.testing.strategies import MapSet


def test_an_idle_room_unloads_durably_and_reloads_for_the_next_peer() -> None:
    with Cluster(seed=5) as cluster:
        relay = cluster.add_relay("r")
        a = cluster.add_replica("a", relay="r")
        a.edit(MapSet("map", "x", 1).apply)
        cluster.run(0.5)
        assert "doc" in relay.rooms
        cluster.partition({"a"}, {"r"})
        cluster.run(IDLE_UNLOAD + 2)
        assert "doc" not in relay.rooms  # no peers for IDLE_UNLOAD seconds
        assert "r unloaded idle room 'doc'" in cluster.story()
        cluster.crash("r")  # nothing loaded to lose: the room comes back from its log
        cluster.restart("r")
        a.edit(MapSet("map", "y", 2).apply)
        cluster.heal()
        cluster.run(2)
        assert "doc" in relay.rooms
        cluster.assert_converged()
        held = relay.rooms["doc"].doc.get("map", type=pycrdt.Map)
        assert dict(held) == {"x": 1, "y": 2}
