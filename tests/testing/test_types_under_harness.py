"""crdtedge's own types on the simulated cluster: their laws hold through lossy,
duplicating, reordering links and partitions, relayed through a chain of relays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pycrdt
from hypothesis import settings
from hypothesis import strategies as st

from crdtedge import Counter, Set
from crdtedge.testing import Cluster, ClusterMachine, Operation

MOVES: list[int] = []  # every counter change made, in this example
ADDED: list[str] = []


@dataclass(frozen=True)
class Count:
    by: int

    def apply(self, doc: pycrdt.Doc[Any]) -> None:
        counter = Counter(doc, "visits")
        if self.by >= 0:
            counter.increment(self.by)
        else:
            counter.decrement(-self.by)
        MOVES.append(self.by)


@dataclass(frozen=True)
class Tag:
    value: str

    def apply(self, doc: pycrdt.Doc[Any]) -> None:
        Set(doc, "tags").add(self.value)
        ADDED.append(self.value)


class TypesThroughFaults(ClusterMachine):
    """No crashes here, so no local change may be lost: the laws are exact."""

    crashes = False

    def topology(self, cluster: Cluster) -> None:
        MOVES.clear()
        ADDED.clear()
        super().topology(cluster)

    def operations(self) -> st.SearchStrategy[Operation]:
        return st.builds(Count, st.integers(-5, 5)) | st.builds(Tag, st.sampled_from("xyz"))

    def check(self, cluster: Cluster) -> None:
        for name, doc in cluster.docs().items():
            assert Counter(doc, "visits").value == sum(MOVES), name
            assert set(Set(doc, "tags").values()) == set(ADDED), name  # adds only: all win


TestTypesThroughFaults = TypesThroughFaults.TestCase
TestTypesThroughFaults.settings = settings(settings.default, max_examples=15)
