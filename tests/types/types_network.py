"""A simulated network of 2-6 replicas for property tests of the replicated types.

Each local change becomes a Yjs update, queued on its origin's outgoing stream. A receiver
takes updates from the streams in any interleaving, lags behind any origin for as long as
it likes, gets some updates again (duplicates), and gets updates that depend on changes
from a third replica it has not seen yet (Yjs keeps those pending). `settle()` finally
delivers everything everywhere, shuffled across origins, with duplicates, after which
every replica must agree.

One order is never produced: two updates *of the same origin* out of their order. pycrdt
0.14.13 (yrs) does not converge then (JS Yjs does): see test_types_yrs_ordering.py. A
websocket link and our relay keep each origin's updates in order, so this is the delivery
the types meet in production.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, TypeVar

import pycrdt
from hypothesis import strategies as st

T = TypeVar("T")
Op = TypeVar("Op")

# pycrdt client ids go up to 53 bits, well beyond JS's 32.
CLIENT_IDS = st.lists(st.integers(1, 2**53 - 1), min_size=2, max_size=6, unique=True)


class Network:
    def __init__(self, client_ids: list[int]) -> None:
        self.docs: list[pycrdt.Doc[Any]] = [pycrdt.Doc(client_id=c) for c in client_ids]
        self.streams: list[list[bytes]] = [[] for _ in client_ids]  # per origin, in order
        # delivered[receiver][origin]: how much of origin's stream the receiver has had
        self.delivered = [[0] * len(client_ids) for _ in client_ids]

    @classmethod
    def draw(cls, data: st.DataObject) -> Network:
        return cls(data.draw(CLIENT_IDS, label="client ids"))

    def __len__(self) -> int:
        return len(self.docs)

    def local(self, replica: int, change: Callable[[], T]) -> T:
        """Run a local change on a replica and queue the update it made."""
        doc = self.docs[replica]
        before = doc.get_state()
        result = change()
        self.streams[replica].append(doc.get_update(before))
        self.delivered[replica][replica] = len(self.streams[replica])
        return result

    def deliver(self, receiver: int, origin: int, count: int) -> None:
        """The next `count` updates of `origin` reach `receiver`."""
        stream = self.streams[origin]
        start = self.delivered[receiver][origin]
        for update in stream[start : start + count]:
            self.docs[receiver].apply_update(update)
        self.delivered[receiver][origin] = min(len(stream), start + count)

    def duplicate(self, receiver: int, origin: int, index: int) -> None:
        """An update `receiver` already had from `origin` arrives again."""
        if self.delivered[receiver][origin]:
            update = self.streams[origin][index % self.delivered[receiver][origin]]
            self.docs[receiver].apply_update(update)

    def play(
        self,
        data: st.DataObject,
        ops: st.SearchStrategy[Op],
        apply: Callable[[int, Op], None],
        max_steps: int = 30,
    ) -> None:
        """Interleave local operations (`apply(replica, op)`) with random deliveries."""
        step: st.SearchStrategy[tuple[Any, ...]] = st.one_of(
            st.tuples(st.just("op"), st.integers(0, 5), ops),
            st.tuples(st.just("deliver"), st.integers(0, 5), st.integers(0, 5), st.integers(1, 3)),
            st.tuples(st.just("again"), st.integers(0, 5), st.integers(0, 5), st.integers(0, 99)),
        )
        n = len(self.docs)
        for kind, who, *rest in data.draw(st.lists(step, max_size=max_steps), label="steps"):
            if kind == "op":
                apply(who % n, rest[0])
            elif kind == "deliver":
                self.deliver(who % n, rest[0] % n, rest[1])
            else:
                self.duplicate(who % n, rest[0] % n, rest[1])

    def settle(self, data: st.DataObject) -> None:
        """Deliver every update to every replica: origins interleaved at random, some
        updates twice."""
        rnd: random.Random = data.draw(st.randoms(use_true_random=False), label="delivery")
        for receiver in range(len(self.docs)):
            pending = [o for o in range(len(self.docs)) for _ in self._missing(receiver, o)]
            rnd.shuffle(pending)  # which origin's next update comes next
            for origin in pending:
                if rnd.random() < 0.2:
                    self.duplicate(receiver, origin, rnd.randrange(100))
                self.deliver(receiver, origin, 1)

    def _missing(self, receiver: int, origin: int) -> range:
        return range(self.delivered[receiver][origin], len(self.streams[origin]))
