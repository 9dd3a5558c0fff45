"""Counter: per-client slots; after merge the value is every increment minus every decrement."""

from __future__ import annotations

from typing import Any

import pycrdt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from types_network import Network

from crdtedge.types import Counter, CounterChanged, LayoutError

CHANGES = st.tuples(st.sampled_from(["inc", "dec"]), st.integers(0, 1000))


@given(st.data())
def test_replicas_converge_to_increments_minus_decrements(data: st.DataObject) -> None:
    net = Network.draw(data)
    counters = [Counter(doc, "visits") for doc in net.docs]
    events: list[list[CounterChanged]] = [[] for _ in counters]
    for counter, seen in zip(counters, events, strict=True):
        counter.observe(seen.append)
    expected = 0

    def apply(replica: int, change: tuple[str, int]) -> None:
        nonlocal expected
        kind, amount = change
        counter = counters[replica]
        if kind == "inc":
            net.local(replica, lambda: counter.increment(amount))
            expected += amount
        else:
            net.local(replica, lambda: counter.decrement(amount))
            expected -= amount

    net.play(data, CHANGES, apply)
    net.settle(data)
    assert [counter.value for counter in counters] == [expected] * len(net)
    assert sum(counters[0].contributions().values()) == expected
    for seen in events:  # the events chain up, from 0 to the final value
        assert [e.old for e in seen] == ([0] + [e.new for e in seen])[: len(seen)]
        assert (seen[-1].new if seen else 0) == expected


def test_slots_are_per_client_and_written_only_by_their_owner() -> None:
    a: pycrdt.Doc[Any] = pycrdt.Doc(client_id=2**45)
    b: pycrdt.Doc[Any] = pycrdt.Doc(client_id=7)
    Counter(a, "c").increment(5)
    b.apply_update(a.get_update())
    Counter(b, "c").decrement(2)
    Counter(b, "c").increment()
    a.apply_update(b.get_update())
    assert a.get("c", type=pycrdt.Map).to_py() == {
        "type": "counter",
        "v": 1.0,
        str(2**45): {"inc": 5.0, "dec": 0.0},
        "7": {"inc": 1.0, "dec": 2.0},
    }
    assert Counter(a, "c").contributions() == {2**45: 5, 7: -1}
    assert int(Counter(a, "c")) == 4


def test_amounts_must_be_non_negative_ints() -> None:
    counter = Counter(pycrdt.Doc(), "c")
    with pytest.raises(ValueError, match="non-negative"):
        counter.increment(-1)
    with pytest.raises(TypeError, match="expected an int"):
        counter.decrement(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected an int"):
        counter.increment(True)
    counter.increment(0)  # no change, nothing written
    assert counter.shared.to_py() == {}


def test_unsubscribe_stops_the_callbacks() -> None:
    counter = Counter(pycrdt.Doc(), "c")
    seen: list[CounterChanged] = []
    stop = counter.observe(seen.append)
    counter.increment(2)
    stop()
    stop()  # idempotent
    counter.increment(3)
    assert seen == [CounterChanged(0, 2)]


def test_a_malformed_slot_is_a_layout_error() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.get("c", type=pycrdt.Map)["12"] = "lots"
    with pytest.raises(LayoutError, match="counter slot '12'"):
        Counter(doc, "c").value  # noqa: B018
    doc.get("d", type=pycrdt.Map)["alice"] = {"inc": 1, "dec": 0}
    with pytest.raises(LayoutError, match="not a client id"):
        Counter(doc, "d").value  # noqa: B018
