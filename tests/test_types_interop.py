"""The replicated state types against plain JS Yjs: `tests/interop/types.mjs` reads and
writes them with `yjs` (pinned) by following docs/types.md, exchanging Yjs update bytes
(base64 in JSON over stdin/stdout) with pycrdt documents here."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pycrdt
import pytest

from crdtedge.types import (
    Counter,
    HybridClock,
    LayoutError,
    Map,
    Record,
    Register,
    Series,
    Set,
    Text,
    Timestamp,
)
from crdtedge.types.jsonvalue import JSONValue

INTEROP = Path(__file__).parent / "interop"
SCRIPT = INTEROP / "types.mjs"
YJS_VERSION = "13.6.33"
PY_CLIENT = 2**40 + 7  # beyond 32 bits, as pycrdt allows
JS_CLIENT = 3_000_000_001


@pytest.fixture(scope="module")
def node() -> str:
    """The node binary, with the pinned `yjs` installed in tests/interop/node_modules."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("the types interop tests need Node >= 20 on PATH")
    manifest = INTEROP / "node_modules" / "yjs" / "package.json"
    if not manifest.exists() or json.loads(manifest.read_text())["version"] != YJS_VERSION:
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(f"{INTEROP}/node_modules is missing and `npm` is not on PATH")
        subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=INTEROP,
            check=True,
            capture_output=True,
            timeout=600,
        )
    return node


def run_js(
    node: str, doc: pycrdt.Doc[Any], steps: list[dict[str, Any]], client: int = JS_CLIENT
) -> list[Any]:
    """Run `steps` in a JS Yjs doc (client id `client`) holding `doc`'s state; apply what
    JS wrote back into `doc`; return the results of the read steps.

    Yjs takes a new client id (and says so on stdout) when it receives structs of its
    own: the result is the last line."""
    update = base64.b64encode(doc.get_update()).decode()
    result = subprocess.run(
        [node, str(SCRIPT)],
        input=json.dumps({"clientID": client, "update": update, "steps": steps}),
        capture_output=True,
        text=True,
        cwd=INTEROP,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout.splitlines()[-1])
    doc.apply_update(base64.b64decode(output["update"]))
    reads: list[Any] = output["reads"]
    return reads


def canonical_set(values: list[Any]) -> set[str]:
    return {json.dumps(v, sort_keys=True) for v in values}


class Item(Record):
    name: str
    stock: Counter


def test_js_reads_what_python_wrote(node: str) -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=PY_CLIENT)
    visits = Counter(doc, "visits")
    visits.increment(7)
    visits.decrement(2)
    mode = Register(doc, "mode", clock=HybridClock(lambda: 1_700_000_000_000))
    stamp = mode.set({"level": "eco", "fan": 2})
    tags = Set(doc, "tags")
    values: list[JSONValue] = ["a", {"k": 1}, 2.0, "b"]
    for value in values:
        tags.add(value)
    tags.remove("a")
    temps = Series(doc, "temps", bucket_ms=1000, max_count=2)
    for i, celsius in enumerate([20.5, 21.0, 22.5, 23.0]):
        temps.append("boiler", celsius, at=1000 * i + 10)
    assert temps.compact(now_ms=10_000) == 2  # the two oldest become a rollup
    Text(doc, "notes").insert(0, "héllo 😀 wörld")

    counter, register, members, series, text = run_js(
        node,
        doc,
        [
            {"op": "readCounter", "name": "visits"},
            {"op": "readRegister", "name": "mode"},
            {"op": "readSet", "name": "tags"},
            {"op": "readSeries", "name": "temps"},
            {"op": "readText", "name": "notes"},
        ],
    )
    assert counter == 5
    assert register == {
        "value": {"level": "eco", "fan": 2},
        "wall": stamp.wall_ms,
        "counter": stamp.counter,
        "client": PY_CLIENT,
    }
    assert canonical_set(members) == canonical_set([{"k": 1}, 2, "b"])
    assert [(r["source"], r["t"], r["v"], r["seq"]) for r in series["readings"]] == [
        ("boiler", 2010, 22.5, 2),
        ("boiler", 3010, 23.0, 3),
    ]
    assert series["bucket"] == 1000
    [rollup] = series["rollups"]
    assert rollup["upto"] == 2
    assert rollup["b"] == {"0": [1, 20.5, 20.5, 20.5], "1000": [1, 21.0, 21.0, 21.0]}
    assert text == "héllo 😀 wörld"


def test_python_reads_what_js_wrote(node: str) -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=PY_CLIENT)
    Text(doc, "notes").insert(0, "a😀b")
    run_js(
        node,
        doc,
        [
            {"op": "increment", "name": "visits", "by": 3},
            {"op": "decrement", "name": "visits", "by": 1},
            {"op": "writeRegister", "name": "mode", "value": "boost", "now": 1_700_000_000_123},
            {"op": "addToSet", "name": "tags", "value": "x"},
            {"op": "addToSet", "name": "tags", "value": {"n": 1}},
            {"op": "appendReading", "name": "temps", "source": "boiler", "value": 19.5, "t": 42},
            {"op": "appendReading", "name": "temps", "source": "boiler", "value": 20, "t": 43},
            {"op": "insertText", "name": "notes", "index": 3, "text": "é"},  # UTF-16: after 😀
        ],
    )
    assert Counter(doc, "visits").value == 2
    assert Counter(doc, "visits").contributions() == {JS_CLIENT: 2}
    mode = Register(doc, "mode")
    assert mode.value == "boost"
    assert mode.writer == JS_CLIENT
    assert mode.timestamp == Timestamp(1_700_000_000_123, 0, JS_CLIENT)
    tags = Set(doc, "tags")
    assert tags.values() == ["x", {"n": 1}]
    assert {"n": 1.0} in tags
    temps = Series(doc, "temps")
    assert [(r.writer, r.seq, r.t, r.value) for r in temps.readings()] == [
        (JS_CLIENT, 0, 42, 19.5),
        (JS_CLIENT, 1, 43, 20.0),
    ]
    notes = Text(doc, "notes")
    assert str(notes) == "a😀éb"
    notes.insert(3, "!")  # a code-point index: after é
    assert run_js(node, doc, [{"op": "readText", "name": "notes"}], client=9) == ["a😀é!b"]


def test_concurrent_writes_merge_the_same_in_both(node: str) -> None:
    base: pycrdt.Doc[Any] = pycrdt.Doc(client_id=PY_CLIENT)
    Set(base, "tags").add("x")
    Counter(base, "visits").increment(10)
    snapshot = base.get_update()

    # JS works from the snapshot, offline from Python.
    js_doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=5)
    js_doc.apply_update(snapshot)
    run_js(
        node,
        js_doc,
        [
            {"op": "increment", "name": "visits", "by": 5},
            {"op": "addToSet", "name": "tags", "value": "x"},  # concurrent with the remove
            {"op": "writeRegister", "name": "mode", "value": "js", "now": 2_000},
        ],
    )
    Counter(base, "visits").decrement(3)
    Set(base, "tags").remove("x")
    Register(base, "mode", clock=HybridClock(lambda: 1_000)).set("python")  # older wall time

    base.apply_update(js_doc.get_update())
    reads = run_js(
        node,
        base,
        [
            {"op": "readCounter", "name": "visits"},
            {"op": "readSet", "name": "tags"},
            {"op": "readRegister", "name": "mode"},
        ],
        client=9,
    )
    assert reads[0] == Counter(base, "visits").value == 12
    assert reads[1] == Set(base, "tags").values() == ["x"]  # add wins
    assert reads[2]["value"] == Register(base, "mode").value == "js"


def test_records_are_plain_maps_in_js(node: str) -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=PY_CLIENT)
    inventory = Map(doc, "inventory", Item)
    inventory.create("sku-1", {"name": "bolt", "stock": 4})
    [plain] = run_js(
        node,
        doc,
        [
            {"op": "incrementIn", "name": "inventory", "key": "sku-1", "field": "stock", "by": 6},
            {"op": "readMap", "name": "inventory"},
        ],
    )
    assert plain["sku-1"]["name"] == "bolt"
    assert plain["sku-1"]["stock"]["type"] == "counter"
    assert inventory["sku-1"].stock.value == 10


def test_a_newer_layout_version_is_refused_on_both_sides(node: str) -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=PY_CLIENT)
    Counter(doc, "visits").increment()
    run_js(node, doc, [{"op": "setVersion", "name": "visits", "v": 2}])
    with pytest.raises(LayoutError, match="layout version 2 is newer"):
        Counter(doc, "visits")

    other: pycrdt.Doc[Any] = pycrdt.Doc(client_id=PY_CLIENT)
    Register(other, "mode").set(1)
    other.get("mode", type=pycrdt.Map)["v"] = 2
    [result] = run_js(node, other, [{"op": "readRegister", "name": "mode"}])
    assert "newer" in result["error"]
