"""Register: last writer wins by hybrid logical clock, even across skewed clocks."""

from __future__ import annotations

from typing import Any

import pycrdt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from types_network import Network

from crdtedge.types import (
    Entry,
    HybridClock,
    LayoutError,
    Register,
    RegisterChanged,
    SchemaError,
    Timestamp,
)

VALUES = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.none(), st.lists(st.booleans()))
WRITES = st.tuples(VALUES, st.integers(0, 2_000))  # (value, ms since the previous step)
SKEWS = st.integers(-60_000, 60_000)  # each node's clock error


@given(st.data())
def test_the_write_with_the_highest_clock_wins_everywhere(data: st.DataObject) -> None:
    net = Network.draw(data)
    now = [1_700_000_000_000]
    skews = data.draw(st.lists(SKEWS, min_size=len(net), max_size=len(net)), label="skews")
    registers = [
        Register(doc, "mode", clock=HybridClock(lambda skew=skew: now[0] + skew))  # type: ignore[misc]
        for doc, skew in zip(net.docs, skews, strict=True)
    ]
    writes: list[tuple[Timestamp, Any]] = []

    def apply(replica: int, write: tuple[Any, int]) -> None:
        value, elapsed = write
        now[0] += elapsed
        register = registers[replica]
        seen = register.timestamp
        stamp = net.local(replica, lambda: register.set(value))
        # The HLC orders a write after everything its node has seen, whatever the skew.
        assert seen is None or stamp > seen
        assert register.entry == Entry(value, stamp)
        writes.append((stamp, value))

    net.play(data, WRITES, apply)
    net.settle(data)
    if not writes:
        assert {r.entry for r in registers} == {None}
        return
    stamp, value = max(writes, key=lambda write: write[0])
    for register in registers:
        assert register.timestamp == stamp
        assert register.value == value
        assert register.writer == stamp.client


def test_a_node_whose_clock_lags_still_overrides_what_it_has_seen() -> None:
    ahead: pycrdt.Doc[Any] = pycrdt.Doc(client_id=2)
    behind: pycrdt.Doc[Any] = pycrdt.Doc(client_id=1)
    Register(ahead, "r", clock=HybridClock(lambda: 3_600_000 + 5)).set("from the future")
    behind.apply_update(ahead.get_update())
    register = Register(behind, "r", clock=HybridClock(lambda: 5))
    stamp = register.set("newest reading")
    assert stamp == Timestamp(3_600_005, 1, 1)  # wall time of the future, counter + 1
    ahead.apply_update(behind.get_update())
    assert Register(ahead, "r").value == "newest reading"
    assert Register(ahead, "r").writer == 1


def test_concurrent_writes_are_decided_by_wall_time_then_counter_then_client() -> None:
    docs: list[pycrdt.Doc[Any]] = [pycrdt.Doc(client_id=c) for c in (10, 20, 30)]
    stamps = [
        Register(docs[0], "r", clock=HybridClock(lambda: 1_000)).set("a"),
        Register(docs[1], "r", clock=HybridClock(lambda: 1_000)).set("b"),
        Register(docs[2], "r", clock=HybridClock(lambda: 999)).set("c"),
    ]
    for doc in docs:
        for other in docs:
            doc.apply_update(other.get_update())
    assert stamps[1] > stamps[0] > stamps[2]  # same wall time and counter: client 20 > 10
    assert {Register(doc, "r").value for doc in docs} == {"b"}


def test_the_clock_ticks_within_a_millisecond_and_observes_remote_time() -> None:
    clock = HybridClock(lambda: 100)
    assert [clock.tick(1) for _ in range(3)] == [
        Timestamp(100, 0, 1),
        Timestamp(100, 1, 1),
        Timestamp(100, 2, 1),
    ]
    clock.observe(Timestamp(500, 7, 2))
    assert clock.tick(1) == Timestamp(500, 8, 1)
    clock.observe(Timestamp(50, 0, 2))  # older: no effect
    assert clock.tick(1) == Timestamp(500, 9, 1)


def test_values_are_json_and_integral_numbers_read_back_as_int() -> None:
    register = Register(pycrdt.Doc(), "r")
    assert register.value is None and register.timestamp is None and register.writer is None
    register.set({"n": 3, "xs": (1, 2.5)})
    entry = register.entry
    assert entry is not None and entry.value == {"n": 3, "xs": [1, 2.5]}
    assert isinstance(entry.value["n"], int)
    with pytest.raises(SchemaError, match="not a JSON value"):
        register.set({1, 2})  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="beyond 2\\*\\*53"):
        register.set(2**60)
    with pytest.raises(SchemaError, match="finite"):
        register.set(float("nan"))


def test_observers_see_the_winner_change_only() -> None:
    a: pycrdt.Doc[Any] = pycrdt.Doc(client_id=1)
    b: pycrdt.Doc[Any] = pycrdt.Doc(client_id=2)
    register = Register(a, "r", clock=HybridClock(lambda: 1_000))
    seen: list[RegisterChanged] = []
    register.observe(seen.append)
    first = register.set("x")
    Register(b, "r", clock=HybridClock(lambda: 10)).set("older")  # loses: no event
    a.apply_update(b.get_update())
    assert seen == [RegisterChanged(old=None, new=Entry("x", first))]
    second = register.set("y")
    assert seen[-1] == RegisterChanged(old=Entry("x", first), new=Entry("y", second))


def test_a_malformed_slot_is_a_layout_error() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.get("r", type=pycrdt.Map)["5"] = {"value": 1}
    with pytest.raises(LayoutError, match="register slot '5' wall"):
        Register(doc, "r").value  # noqa: B018


def test_a_hybrid_clock_reads_its_own_wall_clock() -> None:
    clock = HybridClock(wall_ms=lambda: 1_234)
    assert clock.wall_ms() == 1_234
    assert clock.tick(1).wall_ms == 1_234
