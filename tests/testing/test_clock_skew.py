"""Per-node clock skew: each node reads its own wall clock, and registers stay causal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pycrdt
import pytest

from crdtedge import Register
from crdtedge.testing import ClockSkew, Cluster, current_clock
from crdtedge.testing.network import EPOCH_MS, Simulation
from crdtedge.types import Timestamp


def test_each_node_reads_its_own_skewed_clocks() -> None:
    sim = Simulation()
    sim.skew("ahead", ClockSkew(offset=300))
    sim.skew("fast", ClockSkew(drift=0.01))
    sim.run_for(100)
    assert sim.wall_ms("true") == EPOCH_MS + 100_000
    assert sim.wall_ms("ahead") == EPOCH_MS + 400_000
    assert sim.wall_ms("fast") == EPOCH_MS + 101_000
    assert sim.monotonic("ahead") == 100  # an offset moves the wall clock only
    assert sim.monotonic("fast") == pytest.approx(101)
    assert "SKEW ahead: wall clock +300 s" in sim.story()


def test_a_skew_is_checked() -> None:
    with pytest.raises(ValueError, match="drift"):
        ClockSkew(drift=2)
    with Cluster() as cluster, pytest.raises(KeyError):
        cluster.skew("nobody", ClockSkew(offset=1))


def test_a_write_after_seeing_another_wins_though_its_clock_lags_an_hour() -> None:
    with Cluster(seed=3) as cluster:
        cluster.add_relay("r")
        ahead = cluster.add_replica("ahead", relay="r")
        behind = cluster.add_replica("behind", relay="r")
        cluster.skew("ahead", ClockSkew(offset=60))
        cluster.skew("behind", ClockSkew(offset=-3600))
        stamps: list[Timestamp] = []

        def write(value: str) -> Callable[[pycrdt.Doc[Any]], None]:
            def change(doc: pycrdt.Doc[Any]) -> None:
                stamps.append(Register(doc, "mode", clock=current_clock()).set(value))

            return change

        ahead.edit(write("auto"))
        cluster.run(0.5)
        behind.edit(write("manual"))  # has seen "auto": must win
        cluster.settle()
        cluster.assert_converged()
        first, second = stamps
        assert first.wall_ms - second.wall_ms == pytest.approx(0, abs=1)  # HLC: not an hour back
        assert second > first
        for name, doc in cluster.docs().items():
            assert Register(doc, "mode").value == "manual", name


def test_current_clock_outside_an_edit_is_an_error() -> None:
    with pytest.raises(RuntimeError, match=r"inside SimReplica\.edit"):
        current_clock()
