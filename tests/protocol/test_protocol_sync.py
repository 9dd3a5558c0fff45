"""SyncSession: the handshake, fan-out frames, read-only mode and bad input."""

from __future__ import annotations

from typing import Any

import pycrdt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdtedge.protocol import (
    AuthDenied,
    AwarenessEntry,
    AwarenessQueried,
    AwarenessReceived,
    AwarenessUpdate,
    DocUpdated,
    Event,
    Ignored,
    PermissionDenied,
    ProtocolError,
    QueryAwareness,
    ReadOnlyDropped,
    Send,
    Synced,
    SyncSession,
    SyncStep2,
    SyncUpdate,
    UnknownMessage,
    encode,
)

Doc = pycrdt.Doc[Any]


def new_doc(client_id: int) -> Doc:
    doc: Doc = pycrdt.Doc(client_id=client_id)
    doc["text"] = pycrdt.Text()
    doc["map"] = pycrdt.Map()
    doc["list"] = pycrdt.Array()
    return doc


def exchange(a: SyncSession, b: SyncSession, to_b: list[bytes], to_a: list[bytes]) -> list[Event]:
    """Deliver frames both ways until nothing is left to send; return all events."""
    events: list[Event] = []
    while to_b or to_a:
        for dst, inbox, outbox in ((b, to_b, to_a), (a, to_a, to_b)):
            while inbox:
                for event in dst.receive(inbox.pop(0)):
                    events.append(event)
                    if isinstance(event, Send):
                        outbox.append(event.frame)
    return events


def edit(doc: Doc, text: str, key: str) -> bytes:
    """Make local edits and return the update they produced."""
    before = doc.get_state()
    with doc.transaction():
        doc["text"] += text
        doc["map"][key] = text
        doc["list"].append(text)
    return doc.get_update(before)


def contents(doc: Doc) -> tuple[str, dict[str, Any], list[Any]]:
    return str(doc["text"]), doc["map"].to_py(), doc["list"].to_py()


def test_open_sends_step1_with_state_vector() -> None:
    doc = new_doc(1)
    edit(doc, "x", "k")
    (frame,) = SyncSession(doc).open()
    assert frame == b"\x00\x00" + bytes((len(doc.get_state()),)) + doc.get_state()


def test_handshake_converges_with_edits_on_both_sides() -> None:
    doc_a, doc_b = new_doc(1), new_doc(2)
    edit(doc_a, "grüße, ", "a")
    edit(doc_b, "日本語 😀", "b")
    a, b = SyncSession(doc_a), SyncSession(doc_b)
    events = exchange(a, b, a.open(), b.open())
    assert a.synced and b.synced
    assert sum(isinstance(e, Synced) for e in events) == 2
    assert sum(isinstance(e, DocUpdated) for e in events) == 2
    assert doc_a.get_state() == doc_b.get_state()
    assert contents(doc_a) == contents(doc_b)
    text, mapping, items = contents(doc_a)
    assert "grüße, " in text and "日本語 😀" in text and len(text) == len("grüße, 日本語 😀")
    assert mapping == {"a": "grüße, ", "b": "日本語 😀"}
    assert sorted(items) == sorted(["grüße, ", "日本語 😀"])


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("ab"), st.text(min_size=1, max_size=5), st.booleans()),
        max_size=12,
    )
)
def test_concurrent_edits_converge(script: list[tuple[str, str, bool]]) -> None:
    docs = {"a": new_doc(1), "b": new_doc(2)}
    sessions = {name: SyncSession(doc) for name, doc in docs.items()}
    held: dict[str, list[bytes]] = {"a": [], "b": []}  # frames in flight, by sender
    exchange(sessions["a"], sessions["b"], sessions["a"].open(), sessions["b"].open())
    for step, (who, text, deliver) in enumerate(script):
        update = edit(docs[who], text, f"{who}{step}")
        held[who].append(SyncSession.update_frame(update))
        if deliver:  # otherwise the frames wait, so edits become concurrent
            exchange(sessions["a"], sessions["b"], held["a"], held["b"])
    exchange(sessions["a"], sessions["b"], held["a"], held["b"])
    assert docs["a"].get_state() == docs["b"].get_state()
    assert contents(docs["a"]) == contents(docs["b"])
    assert len(contents(docs["a"])[2]) == len(script)


def test_synced_is_emitted_once_and_empty_updates_are_silent() -> None:
    session = SyncSession(new_doc(1))
    empty = encode(SyncStep2(b"\x00\x00"))
    assert session.receive(empty) == [Synced()]
    assert session.receive(empty) == []
    assert session.receive(encode(SyncUpdate(b"\x00\x00"))) == []


def test_update_is_applied_and_reported() -> None:
    source, target = new_doc(1), new_doc(2)
    update = edit(source, "héllo", "k")
    events = SyncSession(target).receive(SyncSession.update_frame(update))
    assert events == [DocUpdated(update)]
    assert contents(target) == contents(source)


def test_readonly_answers_step1_but_drops_updates() -> None:
    room, writer = new_doc(1), new_doc(2)
    edit(room, "room", "r")
    update = edit(writer, "intruder", "w")
    session = SyncSession(room, readonly=True)
    assert session.readonly
    before = room.get_update()

    (send,) = session.receive(SyncSession(writer).open()[0])
    assert isinstance(send, Send) and b"room" in send.frame
    assert session.receive(SyncSession.update_frame(update)) == [ReadOnlyDropped(update)]
    assert session.receive(encode(SyncStep2(update))) == [ReadOnlyDropped(update), Synced()]
    assert session.receive(encode(SyncStep2(b"\x00\x00"))) == []
    assert room.get_update() == before
    assert "intruder" not in str(room["text"])


def test_bad_update_raises_and_leaves_doc_untouched() -> None:
    doc = new_doc(1)
    edit(doc, "keep me", "k")
    before, text_before = doc.get_update(), str(doc["text"])
    session = SyncSession(doc)
    for bad in (b"\x01", b"\xff\xff\xff", b"garbage update"):
        with pytest.raises(ProtocolError, match="update pycrdt rejects"):
            session.receive(SyncSession.update_frame(bad))
        with pytest.raises(ProtocolError):
            session.receive(encode(SyncStep2(bad)))
    assert doc.get_update() == before
    assert str(doc["text"]) == text_before
    assert not session.synced


class PanicException(BaseException):
    """Stands in for pyo3's: a Rust panic surfaces as a BaseException of this name."""


class PanickingDoc(pycrdt.Doc):  # type: ignore[type-arg]
    def apply_update(self, update: bytes) -> None:
        raise PanicException("called `Option::unwrap()` on a `None` value")


def test_an_update_that_makes_pycrdt_panic_is_a_protocol_error() -> None:
    session = SyncSession(PanickingDoc())
    peer = new_doc(2)
    edit(peer, "hello", "k")
    with pytest.raises(ProtocolError, match="made pycrdt panic"):
        session.receive(SyncSession.update_frame(peer.get_update()))


def test_bad_state_vector_raises_protocol_error() -> None:
    session = SyncSession(new_doc(1))
    with pytest.raises(ProtocolError, match="invalid state vector"):
        session.receive(b"\x00\x00\x01\xff")


def test_malformed_frame_raises_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="truncated"):
        SyncSession(new_doc(1)).receive(b"\x00\x01\x09abc")


def test_other_messages_become_events() -> None:
    session = SyncSession(new_doc(1))
    awareness = AwarenessUpdate((AwarenessEntry(5, 1, {"n": 1}),))
    frame = encode(awareness)
    assert session.receive(frame + b"trailing") == [AwarenessReceived(awareness, frame)]
    assert session.receive(encode(QueryAwareness())) == [AwarenessQueried()]
    assert session.receive(encode(AuthDenied("read only"))) == [PermissionDenied("read only")]
    assert session.receive(encode(UnknownMessage(9, b"ack"))) == [Ignored(9)]
    assert session.receive(b"\x02\x05x") == [Ignored(2)]


def test_docs_worked_example() -> None:
    """The handshake bytes shown in docs/protocol.md."""
    client_doc: Doc = pycrdt.Doc(client_id=1)
    client_doc["text"] = pycrdt.Text("hi")
    relay_doc: Doc = pycrdt.Doc(client_id=2)
    client, relay = SyncSession(client_doc), SyncSession(relay_doc)
    (client_step1,) = client.open()
    (relay_step1,) = relay.open()
    assert client_step1 == bytes.fromhex("00 00 03 01 01 02")
    assert relay_step1 == bytes.fromhex("00 00 01 00")
    assert relay.receive(client_step1) == [Send(bytes.fromhex("00 01 02 00 00"))]
    (to_relay,) = client.receive(relay_step1)
    assert to_relay == Send(bytes.fromhex("00 01 0f 01 01 01 00 04 01 04") + b"text\x02hi\x00")
    assert isinstance(to_relay, Send)
    assert relay.receive(to_relay.frame)[-1] == Synced()
    assert str(relay_doc.get("text", type=pycrdt.Text)) == "hi"
