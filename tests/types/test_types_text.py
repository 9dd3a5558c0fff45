"""Text: Python `str` indices over pycrdt's UTF-8 offsets, formatting, diff-style replace."""

from __future__ import annotations

from typing import Any

import pycrdt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from types_network import Network

from crdtedge.types import Text, TextChanged
from crdtedge.types import text as text_module

CHARS = "ab \né😀中"  # 1, 2, 4 and 3 bytes in UTF-8; the emoji is 2 UTF-16 units
WORDS = st.text(st.sampled_from(CHARS), min_size=1, max_size=4)
ATTRS = st.sampled_from([{"bold": True}, {"bold": None}, {"color": "red"}])
AT = st.integers(0, 10**6)  # a position, taken modulo the length
EDITS = st.one_of(
    st.tuples(st.just("insert"), AT, WORDS, st.one_of(st.none(), ATTRS)),
    st.tuples(st.just("delete"), AT, st.integers(0, 3), st.none()),
    st.tuples(st.just("format"), AT, st.integers(0, 3), ATTRS),
    st.tuples(st.just("replace"), AT, st.text(st.sampled_from(CHARS), max_size=3), st.none()),
)


def apply_delta(before: str, delta: list[dict[str, Any]]) -> str:
    """A Yjs-style delta in `str` units applied to `before`."""
    out, position = [], 0
    for op in delta:
        if "retain" in op:
            out.append(before[position : position + op["retain"]])
            position += op["retain"]
        elif "delete" in op:
            position += op["delete"]
        else:
            out.append(op["insert"])
    return "".join(out) + before[position:]


@given(st.data())
def test_edits_use_str_indices_and_replicas_converge(data: st.DataObject) -> None:
    net = Network.draw(data)
    texts = [Text(doc, "notes") for doc in net.docs]
    shown = [""] * len(texts)  # what each replica's observer has reconstructed

    def follow(replica: int) -> None:
        def on_change(event: TextChanged) -> None:
            shown[replica] = apply_delta(shown[replica], event.delta)
            assert shown[replica] == event.text

        texts[replica].observe(on_change)

    for replica in range(len(net)):
        follow(replica)

    def apply(replica: int, edit: tuple[str, int, Any, Any]) -> None:
        kind, at, arg, attrs = edit
        text = texts[replica]
        old = str(text)
        index = at % (len(old) + 1)
        if kind == "insert":
            net.local(replica, lambda: text.insert(index, arg, attrs))
            expected = old[:index] + arg + old[index:]
        elif kind == "delete":
            length = min(arg, len(old) - index)
            net.local(replica, lambda: text.delete(index, length))
            expected = old[:index] + old[index + length :]
        elif kind == "format":
            end = min(index + arg, len(old))
            net.local(replica, lambda: text.format(index, end, attrs))
            expected = old
        else:
            expected = old[:index] + arg + old[index + 2 :]
            net.local(replica, lambda: text.replace(expected))
        assert str(text) == expected
        assert str(text.shared) == expected  # pycrdt agrees: the offsets were right
        assert len(text) == len(expected)

    net.play(data, EDITS, apply)
    net.settle(data)
    final = str(texts[0])
    for text, seen in zip(texts, shown, strict=True):
        assert str(text) == str(text.shared) == final == seen
        assert text.to_delta() == texts[0].to_delta()


def test_indices_are_code_points_not_bytes() -> None:
    text = Text(pycrdt.Doc(), "t")
    text.insert(0, "h€llo 😀!")
    text.insert(7, " wörld")  # after the emoji
    text.delete(1, 1)  # the euro sign
    text.insert(1, "e")
    assert str(text) == "hello 😀 wörld!"
    assert len(text) == 14
    text.format(6, 7, {"emoji": True})
    assert text.to_delta() == [
        {"insert": "hello "},
        {"insert": "😀", "attributes": {"emoji": True}},
        {"insert": " wörld!"},
    ]
    with pytest.raises(IndexError):
        text.insert(15, "x")
    with pytest.raises(IndexError):
        text.delete(13, 2)
    with pytest.raises(TypeError):
        text.insert(0, 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="valid Unicode"):
        text.insert(0, "\ud800")


def test_remote_changes_refresh_what_the_wrapper_knows() -> None:
    a: pycrdt.Doc[Any] = pycrdt.Doc(client_id=1)
    b: pycrdt.Doc[Any] = pycrdt.Doc(client_id=2)
    mine, theirs = Text(a, "t"), Text(b, "t")
    mine.insert(0, "abcdef")
    b.apply_update(a.get_update())
    assert str(theirs) == "abcdef"
    before = a.get_state()
    mine.delete(0, 3)  # a delete only: the state vector stays, the length moves
    b.apply_update(a.get_update(before))
    theirs.insert(1, "é")
    assert str(theirs) == "déef"
    before = b.get_state()
    theirs.insert(0, "ü")  # an insert elsewhere: the state vector moves
    a.apply_update(b.get_update())
    mine.insert(2, "!")
    assert str(mine) == str(mine.shared) == "üd!éef"


def test_replace_touches_only_what_differs_so_concurrent_edits_survive() -> None:
    a: pycrdt.Doc[Any] = pycrdt.Doc(client_id=1)
    b: pycrdt.Doc[Any] = pycrdt.Doc(client_id=2)
    Text(a, "t").insert(0, "The quick brown fox")
    Text(a, "t").format(4, 9, {"bold": True})
    b.apply_update(a.get_update())
    Text(a, "t").replace("The quick red fox jumps")  # brown -> red, and an append
    Text(b, "t").insert(0, ">> ")  # concurrently, at the start
    a.apply_update(b.get_update())
    b.apply_update(a.get_update())
    assert str(Text(a, "t")) == str(Text(b, "t")) == ">> The quick red fox jumps"
    assert Text(a, "t").to_delta()[1] == {"insert": "quick", "attributes": {"bold": True}}


def test_replace_beyond_the_diff_limit_swaps_the_differing_middle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(text_module, "DIFF_LIMIT", 4)
    text = Text(pycrdt.Doc(), "t")
    text.insert(0, "keep: abc :keep")
    seen: list[TextChanged] = []
    text.observe(seen.append)
    text.replace("keep: xyz :keep")
    assert str(text) == "keep: xyz :keep"
    assert seen[0].delta == [{"retain": 6}, {"delete": 3}, {"insert": "xyz"}]
    text.replace("keep: xyz :keep")  # no change, no event
    assert len(seen) == 1


def test_a_text_nested_in_a_map_and_clear() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    holder = doc.get("task", type=pycrdt.Map)
    notes = Text(holder, "notes")
    notes.insert(0, "milk, eggs")
    assert isinstance(holder["notes"], pycrdt.Text)
    assert str(Text(holder, "notes")) == "milk, eggs"
    notes.clear()
    assert str(notes) == "" and repr(notes) == "Text('')"
