"""Records, List and Map: typed schemas on Yjs maps and arrays, checked on read and write."""

from __future__ import annotations

from typing import Any, ClassVar

import pycrdt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from types_network import Network

from crdtedge.types import (
    Counter,
    List,
    ListChanged,
    Map,
    MapChanged,
    Record,
    RecordChanged,
    Register,
    SchemaError,
    Series,
    Set,
    Text,
)


class Size(Record):
    width: float
    unit: str = "mm"


class Item(Record):
    name: str
    price: float = 0.0
    note: str | None
    aliases: list[str] = []  # noqa: RUF012 (defaults are copied on every read and write)
    extra: dict[str, int | None] = {}  # noqa: RUF012
    anything: Any = None
    stock: Counter
    location: Register
    labels: Set
    description: Text
    size: Size
    history: List[int]
    parts: Map[Size]
    kind: ClassVar[str] = "item"  # not a field


KEYS = st.sampled_from(["sku-1", "sku-2", "sku-3"])
OPS = st.one_of(
    st.tuples(st.just("create"), KEYS, st.text(max_size=3)),
    st.tuples(st.just("price"), KEYS, st.floats(0, 100)),
    st.tuples(st.just("stock"), KEYS, st.integers(-5, 5)),
    st.tuples(st.just("history"), KEYS, st.integers(0, 9)),
    st.tuples(st.just("delete"), KEYS, st.none()),
)


@given(st.data())
def test_replicas_editing_records_converge_and_every_read_checks(data: st.DataObject) -> None:
    net = Network.draw(data)
    inventories = [Map(doc, "inventory", Item) for doc in net.docs]

    def apply(replica: int, op: tuple[str, str, Any]) -> None:
        kind, key, arg = op
        inventory = inventories[replica]
        if kind == "create":
            fields = {"name": arg, "size": {"width": 1}}
            item = net.local(replica, lambda: inventory.create(key, fields))
            assert item.to_py()["name"] == arg and item.stock.value == 0
        elif key not in inventory:
            return
        elif kind == "price":
            net.local(replica, lambda: setattr(inventory[key], "price", arg))
            assert inventory[key].price == arg
        elif kind == "stock":
            stock = inventory[key].stock
            net.local(replica, lambda: stock.increment(arg) if arg >= 0 else stock.decrement(-arg))
        elif kind == "history":
            net.local(replica, lambda: inventory[key].history.append(arg))
            assert inventory[key].history[-1] == arg
        else:
            net.local(replica, lambda: inventory.__delitem__(key))
            assert key not in inventory

    net.play(data, OPS, apply)
    net.settle(data)
    final = inventories[0].to_py()
    for inventory in inventories:
        assert inventory.to_py() == final
        assert inventory.keys() == sorted(final)


def test_create_fills_defaults_and_new_shared_types() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=3)
    item = Item.create(
        doc,
        "bolt",
        name="bolt",
        stock=10,
        location="shelf 4",
        labels=["m3", "steel"],
        description="héx",
        size={"width": 3},
        history=[1, 2],
        parts={"head": {"width": 5.5, "unit": "cm"}},
    )
    assert item.to_py() == {
        "name": "bolt",
        "price": 0.0,
        "note": None,
        "aliases": [],
        "extra": {},
        "anything": None,
        "stock": 10,
        "location": "shelf 4",
        "labels": ["m3", "steel"],
        "description": "héx",
        "size": {"width": 3.0, "unit": "mm"},
        "history": [1, 2],
        "parts": {"head": {"width": 5.5, "unit": "cm"}},
    }
    assert "kind" not in Item.schema() and Item.kind == "item"
    same = Item(doc, "bolt")  # binds to what is there
    assert same.size.width == 3.0 and same.parts["head"].unit == "cm"
    same.price = 2  # an int is a fine float
    same.update(note="zinc plated", aliases=["m3 bolt"], extra={"pack": 100, "box": None})
    assert (item.price, item.note, item.aliases) == (2.0, "zinc plated", ["m3 bolt"])
    assert isinstance(item.price, float)
    assert doc.get("bolt", type=pycrdt.Map)["stock"]["type"] == "counter"


def test_writes_of_the_wrong_type_are_refused_with_the_field_named() -> None:
    item = Item.create(pycrdt.Doc(), "x", name="x", size={"width": 1})
    with pytest.raises(SchemaError, match=r"Item.price: expected float, got str 'cheap'"):
        item.price = "cheap"  # type: ignore[assignment]
    with pytest.raises(SchemaError, match=r"Item.name: expected str, got NoneType"):
        item.name = None  # type: ignore[assignment]
    with pytest.raises(SchemaError, match=r"Item.aliases\[1\]: expected str"):
        item.aliases = ["a", 2]  # type: ignore[list-item]
    with pytest.raises(SchemaError, match=r"Item.stock is a Counter: edit it in place"):
        item.stock = 3  # type: ignore[assignment]
    with pytest.raises(SchemaError, match=r"no field 'colour'"):
        item.update(colour="red")
    with pytest.raises(SchemaError, match=r"expected bool"):
        Flag.create(pycrdt.Doc(), "f", on=1)
    with pytest.raises(SchemaError, match=r"Item.extra\['n'\]: expected int \| None"):
        item.extra = {"n": 1.5}  # type: ignore[dict-item]
    assert item.price == 0.0 and item.aliases == []


def test_a_refused_create_writes_nothing() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    inventory = Map(doc, "inventory", Item)
    with pytest.raises(SchemaError, match=r"Size.width: expected float"):
        inventory.create("x", {"name": "x", "size": {"width": 1}, "parts": {"a": {"width": "w"}}})
    with pytest.raises(SchemaError, match=r"a Counter starts from an int"):
        inventory.create("x", {"name": "x", "size": {"width": 1}, "stock": "many"})
    with pytest.raises(SchemaError, match=r"no field"):
        inventory.create("x", {"name": "x", "colour": "red"})
    with pytest.raises(SchemaError, match=r"Item.name needs a value"):
        inventory.create("x", {})
    with pytest.raises(SchemaError, match=r"Size.width needs a value"):
        inventory.create("x", {"name": "x"})
    assert len(inventory) == 0 and doc.get_update() == pycrdt.Doc().get_update()


def test_reads_check_what_other_writers_stored() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    item = Item.create(doc, "x", name="x", size={"width": 1})
    raw = doc.get("x", type=pycrdt.Map)
    raw["price"] = "free"  # e.g. a JS client not following the schema
    with pytest.raises(SchemaError, match=r"Item.price: expected float, got stored value 'free'"):
        item.price  # noqa: B018
    raw["stock"] = 5
    with pytest.raises(SchemaError, match=r"Item.stock: expected a Counter"):
        item.stock  # noqa: B018
    del raw["name"]
    with pytest.raises(SchemaError, match=r"Item.name is missing"):
        item.name  # noqa: B018
    del raw["aliases"]
    assert item.aliases == []  # a missing field with a default reads as the default
    raw["note"] = 3
    with pytest.raises(SchemaError, match=r"Item.note: expected str \| None"):
        item.note  # noqa: B018


class Flag(Record):
    on: bool


def test_schemas_are_checked_when_first_used() -> None:
    class Clash(Record):
        values: int

    class Bad(Record):
        when: complex

    class SharedDefault(Record):
        count: Counter = None  # type: ignore[assignment]

    class Nested(Record):
        items: list[Counter]

    with pytest.raises(SchemaError, match=r"Bad.when: unsupported type"):
        Bad.schema()
    with pytest.raises(SchemaError, match=r"cannot have a default"):
        SharedDefault.schema()
    with pytest.raises(SchemaError, match=r"cannot be inside a plain"):
        Nested.schema()
    assert list(Clash.schema()) == ["values"]
    with pytest.raises(SchemaError, match=r"taken by Record itself"):

        class Taken(Record):
            update: int  # type: ignore[assignment]


def test_lists_of_plain_values_and_of_records() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    words = List(doc, "words", str)
    words.extend(["b", "c"])
    words.insert(0, "a")
    words.append("d")
    assert words[0] == "a" and words[-1] == "d" and words[1:3] == ["b", "c"]
    del words[1:3]
    del words[-1]
    assert list(words) == ["a"] and len(words) == 1 and repr(words) == "List(['a'])"
    with pytest.raises(IndexError):
        words[5]
    with pytest.raises(SchemaError, match=r"expected str"):
        words.append(3)  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match=r"items are str values: assign them"):
        words.create()
    sizes = List(doc, "sizes", Size)
    first = sizes.create({"width": 1})
    sizes.create({"width": 0.5}, at=0)
    assert [s.width for s in sizes] == [0.5, 1.0] and first.unit == "mm"
    with pytest.raises(SchemaError, match=r"items are Sizes: use create"):
        sizes.append(first)
    with pytest.raises(ValueError, match=r"contiguous"):
        del sizes[::2]


def test_maps_of_plain_values() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    prices = Map(doc, "prices", float)
    prices["bolt"] = 0.1
    prices["nut"] = 1
    assert prices.items() == [("bolt", 0.1), ("nut", 1.0)]
    assert "nut" in prices and 3 not in prices and prices.get("washer") is None
    del prices["nut"]
    assert list(prices) == ["bolt"] and prices.values() == [0.1]
    with pytest.raises(KeyError):
        prices["nut"]
    with pytest.raises(KeyError):
        del prices["nut"]
    with pytest.raises(TypeError, match=r"keys must be str"):
        prices[1] = 2.0  # type: ignore[index]
    with pytest.raises(SchemaError, match=r"use create"):
        Map(doc, "sizes", Size)["a"] = Size.create(doc, "s", width=1)


def test_observers_name_what_changed() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    inventory = Map(doc, "inventory", Item)
    map_events: list[MapChanged] = []
    inventory.observe(map_events.append)
    item = inventory.create("bolt", {"name": "bolt", "size": {"width": 1}})
    record_events: list[RecordChanged] = []
    item.observe(record_events.append)
    item.price = 1.5
    item.stock.increment()
    item.description.insert(0, "m3")
    with doc.transaction():
        item.size.width = 2
        item.history.append(7)
    inventory.create("nut", {"name": "nut", "size": {"width": 1}})
    del inventory["bolt"]
    assert [e.fields for e in record_events] == [
        {"price"},
        {"stock"},
        {"description"},
        {"size", "history"},
    ]
    assert map_events[0] == MapChanged(frozenset({"bolt"}), frozenset(), frozenset())
    assert map_events[1].updated == {"bolt"}
    assert map_events[-2].added == {"nut"}
    assert map_events[-1] == MapChanged(frozenset(), frozenset(), frozenset({"bolt"}))
    numbers = List(doc, "numbers", int)
    list_events: list[ListChanged] = []
    numbers.observe(list_events.append)
    numbers.extend([1, 2, 3])
    del numbers[1]
    assert [e.delta for e in list_events] == [
        [{"insert": [1, 2, 3]}],
        [{"retain": 1}, {"delete": 1}],
    ]


def test_a_series_field_starts_empty() -> None:
    class Station(Record):
        temps: Series

    station = Station.create(pycrdt.Doc(), "s")
    station.temps.append("air", 3.5, at=0)
    assert station.to_py() == {
        "temps": {
            "readings": [
                {
                    "source": "air",
                    "t": 0,
                    "value": 3.5,
                    "writer": station.temps.shared.doc.client_id,
                    "seq": 0,
                }
            ],
            "rollups": [],
        }
    }
    with pytest.raises(SchemaError, match=r"a Series starts empty"):
        Station.create(pycrdt.Doc(), "s", temps=[1])
