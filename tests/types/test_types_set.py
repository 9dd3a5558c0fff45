"""Set: add-wins observed-remove. An add survives unless a later operation on the same
value saw its tag; what an operation saw is read from the raw Y.Map, not through `Set`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pycrdt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from types_network import Network

from crdtedge.types import SchemaError, Set, SetChanged
from crdtedge.types.jsonvalue import canonical

# 1 and 1.0 are one value, True is another; objects compare by content.
VALUES: st.SearchStrategy[Any] = st.sampled_from(
    ["a", "b", 1, 1.0, True, None, {"k": [1, 2]}, {"k": [1, 2.0]}, [{}]]
)
OPS = st.tuples(st.sampled_from(["add", "add", "discard", "clear"]), VALUES)


@dataclass
class Op:
    kind: str
    identity: str | None  # None: every value (clear)
    seen: set[str]  # tags in the replica's Y.Map just before the operation
    tag: str = ""  # for adds: the tag it wrote


def visible_tags(doc: pycrdt.Doc[Any]) -> dict[str, str]:
    stored = doc.get("tags", type=pycrdt.Map).to_py() or {}
    return {tag: canonical(v) for tag, v in stored.items() if tag not in ("type", "v")}


@given(st.data())
def test_a_value_is_present_iff_some_add_of_it_was_not_seen_by_a_later_operation(
    data: st.DataObject,
) -> None:
    net = Network.draw(data)
    sets = [Set(doc, "tags") for doc in net.docs]
    events: list[list[SetChanged]] = [[] for _ in sets]
    for one, seen in zip(sets, events, strict=True):
        one.observe(seen.append)
    log: list[Op] = []

    def apply(replica: int, op: tuple[str, Any]) -> None:
        kind, value = op
        target = sets[replica]
        before = visible_tags(net.docs[replica])
        if kind == "add":
            net.local(replica, lambda: target.add(value))
            assert value in target
            [tag] = set(visible_tags(net.docs[replica])) - set(before)
            log.append(Op(kind, canonical(value), set(before), tag))
        elif kind == "discard":
            net.local(replica, lambda: target.discard(value))
            assert value not in target
            log.append(Op(kind, canonical(value), set(before)))
        else:
            net.local(replica, target.clear)
            assert len(target) == 0
            log.append(Op(kind, None, set(before)))

    net.play(data, OPS, apply)
    net.settle(data)

    def survives(add: Op) -> bool:
        return not any(
            other is not add and other.identity in (add.identity, None) and add.tag in other.seen
            for other in log
        )

    expected = sorted({str(op.identity) for op in log if op.kind == "add" and survives(op)})
    for one, seen in zip(sets, events, strict=True):
        assert [canonical(v) for v in one.values()] == expected
        assert len(one) == len(expected)
        replayed: dict[str, Any] = {}  # the events, replayed, give the same members
        for event in seen:
            for value in event.removed:
                del replayed[canonical(value)]
            for value in event.added:
                assert canonical(value) not in replayed
                replayed[canonical(value)] = value
        assert sorted(replayed) == expected


def test_an_add_concurrent_with_a_remove_wins() -> None:
    a: pycrdt.Doc[Any] = pycrdt.Doc(client_id=1)
    b: pycrdt.Doc[Any] = pycrdt.Doc(client_id=2)
    Set(a, "s").add("x")
    b.apply_update(a.get_update())
    Set(a, "s").remove("x")
    Set(b, "s").add("x")  # b saw the first add only
    a.apply_update(b.get_update())
    b.apply_update(a.get_update())
    assert Set(a, "s").values() == Set(b, "s").values() == ["x"]


def test_a_remove_after_seeing_every_add_removes() -> None:
    a: pycrdt.Doc[Any] = pycrdt.Doc(client_id=1)
    b: pycrdt.Doc[Any] = pycrdt.Doc(client_id=2)
    Set(a, "s").add({"id": 1, "tags": ["x"]})
    Set(b, "s").add({"tags": ["x"], "id": 1.0})  # the same value, concurrently
    a.apply_update(b.get_update())
    assert len(Set(a, "s")) == 1
    assert a.get("s", type=pycrdt.Map).to_py() is not None
    assert len(a.get("s", type=pycrdt.Map)) == 4  # header + one tag per concurrent add
    Set(a, "s").remove({"id": 1, "tags": ["x"]})
    b.apply_update(a.get_update())
    assert Set(b, "s").values() == []


def test_tags_are_client_and_clock_and_re_adding_replaces_them() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=2**50)
    tags = Set(doc, "s")
    tags.add("x")
    tags.add("x")
    stored = doc.get("s", type=pycrdt.Map).to_py()
    assert stored is not None
    [tag] = [key for key in stored if key not in ("type", "v")]
    client, clock = tag.split(":")
    assert int(client) == 2**50 and int(clock) > 0
    assert stored == {"type": "set", "v": 1.0, tag: "x"}


def test_membership_and_errors() -> None:
    tags = Set(pycrdt.Doc(), "s")
    tags.add(1)
    assert 1.0 in tags and True not in tags and "1" not in tags
    assert list(tags) == [1]
    with pytest.raises(KeyError):
        tags.remove(2)
    tags.discard(2)
    with pytest.raises(SchemaError, match="not a JSON value"):
        tags.add(object())  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="keys must be str"):
        tags.add({1: "x"})  # type: ignore[dict-item]
