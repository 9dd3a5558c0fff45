"""The layout header, binding to roots and nested maps, and JSON value handling."""

from __future__ import annotations

from typing import Any

import pycrdt
import pytest

from crdtedge.types import Counter, LayoutError, Register, Series, Set, Text
from crdtedge.types.jsonvalue import canonical, from_yjs

MAP_TYPES = [Counter, Register, Set, Series]


def write_something(value: Counter | Register | Set | Series) -> None:
    if isinstance(value, Counter):
        value.increment()
    elif isinstance(value, Register):
        value.set(1)
    elif isinstance(value, Set):
        value.add(1)
    else:
        value.append("s", 1.0, at=0)


@pytest.mark.parametrize("kind", MAP_TYPES, ids=lambda k: k.__name__)
def test_the_header_is_written_with_the_first_change(kind: Any) -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    value = kind(doc, "x")
    assert doc.get("x", type=pycrdt.Map).to_py() == {}  # binding alone writes nothing
    write_something(value)
    stored = doc.get("x", type=pycrdt.Map)
    assert (stored["type"], stored["v"]) == (kind.TYPE, 1)


@pytest.mark.parametrize("kind", MAP_TYPES, ids=lambda k: k.__name__)
def test_a_newer_layout_version_is_a_clear_error(kind: Any) -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    write_something(kind(doc, "x"))
    doc.get("x", type=pycrdt.Map)["v"] = 2
    message = f"{kind.TYPE} layout version 2 is newer than this crdtedge reads \\(up to 1\\)"
    with pytest.raises(LayoutError, match=message):
        kind(doc, "x")


def test_another_types_map_or_a_bad_version_is_refused() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    Counter(doc, "visits").increment()
    with pytest.raises(LayoutError, match=r"holds a 'counter', not a 'set'"):
        Set(doc, "visits")
    doc.get("odd", type=pycrdt.Map).update({"type": "register", "v": 0})
    with pytest.raises(LayoutError, match=r"version 0 is not valid"):
        Register(doc, "odd")
    doc.get("odder", type=pycrdt.Map).update({"type": "register", "v": "1"})
    with pytest.raises(LayoutError, match=r"expected an integer"):
        Register(doc, "odder")
    counter = Counter(doc, "later")  # a newer writer upgrades the layout after binding ...
    doc.get("later", type=pycrdt.Map)["v"] = 3
    with pytest.raises(LayoutError, match=r"version 3"):
        counter.increment()  # ... and is refused before any write


def test_types_nest_in_maps_and_refuse_a_key_holding_something_else() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    machine = doc.get("machine", type=pycrdt.Map)
    Counter(machine, "cycles").increment(3)
    assert isinstance(machine["cycles"], pycrdt.Map)
    assert Counter(machine, "cycles").value == 3
    machine["label"] = "press 4"
    with pytest.raises(LayoutError, match=r"'label' holds the value 'press 4', not a Y.Map"):
        Counter(machine, "label")
    with pytest.raises(LayoutError, match=r"holds a Y.Map, not a Y.Text"):
        Text(machine, "cycles")
    with pytest.raises(TypeError, match=r"container must be a pycrdt Doc or Map"):
        Counter(doc.get("list", type=pycrdt.Array), "x")
    with pytest.raises(TypeError, match=r"name must be a str"):
        Counter(doc, 3)  # type: ignore[arg-type]
    assert Counter(machine, "cycles").shared is not None


def test_json_identity_and_integral_numbers() -> None:
    assert canonical({"b": [1.0, True], "a": None}) == canonical({"a": None, "b": [1, True]})
    assert canonical(1) != canonical(True)
    assert canonical("é") == '"é"'
    assert from_yjs({"n": [2.0, 2.5, 2.0**60]}) == {"n": [2, 2.5, 2.0**60]}
    assert isinstance(from_yjs(2.0), int) and isinstance(from_yjs(2.0**60), float)
