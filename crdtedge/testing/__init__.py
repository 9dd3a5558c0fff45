"""The partition harness: real replicas, relays and logs on a simulated network.

A deterministic, single-threaded simulation (virtual clock, one seed) drives the real
protocol state machines, replica cores and update logs through lost, duplicated and
reordered frames, partitions, and crashes that tear log tails. Hypothesis chooses the
faults and shrinks failures to a short story. See docs/testing.md.

Needs the `testing` extra (hypothesis): pip install "crdtedge[testing]".
"""

from .cluster import Cluster, Invariant
from .machine import ClusterMachine
from .network import CALM, ClockSkew, LinkFaults, Simulation
from .nodes import SimRelay, SimReplica, current_clock
from .strategies import Operation, clock_skews, link_faults, operations
from .traces import ConcurrentTrace, PreparedTrace, TraceError, TraceReplay
from .typed import Applied, Ledger, LocalEditError, preload, typed_operations

__all__ = [
    "CALM",
    "Applied",
    "ClockSkew",
    "Cluster",
    "ClusterMachine",
    "ConcurrentTrace",
    "Invariant",
    "Ledger",
    "LinkFaults",
    "LocalEditError",
    "Operation",
    "PreparedTrace",
    "SimRelay",
    "SimReplica",
    "Simulation",
    "TraceError",
    "TraceReplay",
    "clock_skews",
    "current_clock",
    "link_faults",
    "operations",
    "preload",
    "typed_operations",
]
