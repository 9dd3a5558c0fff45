"""Byte-exact agreement with pycrdt's own y-protocols helpers for well-formed messages."""

from __future__ import annotations

import pycrdt
from hypothesis import given, settings
from hypothesis import strategies as st

from crdtedge.protocol import (
    AwarenessEntry,
    AwarenessState,
    AwarenessUpdate,
    DocUpdated,
    Send,
    SyncSession,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    decode,
    encode,
)


def edited_doc(text: str, client_id: int) -> pycrdt.Doc:  # type: ignore[type-arg]
    doc: pycrdt.Doc = pycrdt.Doc(client_id=client_id)  # type: ignore[type-arg]
    doc["text"] = pycrdt.Text(text)
    doc["map"] = pycrdt.Map({"k": text, "n": len(text)})
    return doc


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=20), st.text(max_size=20))
def test_sync_frames_match_pycrdt(left: str, right: str) -> None:
    ours, theirs = edited_doc(left, 11), edited_doc(right, 22)
    step1 = SyncSession(ours).open()[0]
    assert step1 == pycrdt.create_sync_message(ours) == encode(SyncStep1(ours.get_state()))

    # pycrdt answers our step1 exactly as we answer theirs, and vice versa.
    reply = pycrdt.handle_sync_message(step1[1:], theirs)
    assert reply is not None
    assert reply == encode(SyncStep2(theirs.get_update(ours.get_state())))
    their_step1 = pycrdt.create_sync_message(theirs)
    (send,) = SyncSession(ours).receive(their_step1)
    assert isinstance(send, Send)
    assert send.frame == pycrdt.handle_sync_message(their_step1[1:], ours)

    update = ours.get_update()
    assert SyncSession.update_frame(update) == pycrdt.create_update_message(update)
    assert decode(pycrdt.create_update_message(update)) == SyncUpdate(update)


def test_pycrdt_applies_our_frames_and_we_apply_theirs() -> None:
    ours, theirs = edited_doc("größe ✓", 1), edited_doc("日本語", 2)
    session = SyncSession(ours)
    (send,) = session.receive(pycrdt.create_sync_message(theirs))
    assert isinstance(send, Send)
    assert pycrdt.handle_sync_message(send.frame[1:], theirs) is None
    reply = pycrdt.handle_sync_message(session.open()[0][1:], theirs)
    assert reply is not None
    events = session.receive(reply)
    assert any(isinstance(event, DocUpdated) for event in events)
    assert ours.get_state() == theirs.get_state()
    assert str(ours["text"]) == str(theirs["text"])


def test_awareness_frames_match_pycrdt() -> None:
    doc: pycrdt.Doc = pycrdt.Doc(client_id=42)  # type: ignore[type-arg]
    theirs = pycrdt.Awareness(doc)
    theirs.set_local_state({"user": {"name": "ada", "color": "#ff0"}, "cursor": None})
    payload = theirs.encode_awareness_update([42])
    frame = pycrdt.create_awareness_message(payload)
    message = decode(frame)
    expected = AwarenessEntry(42, 1, {"user": {"name": "ada", "color": "#ff0"}, "cursor": None})
    assert message == AwarenessUpdate((expected,))
    assert encode(message) == frame  # ASCII states serialise identically (compact JSON)


def test_pycrdt_reads_our_awareness_including_non_ascii_and_removal() -> None:
    ours = AwarenessState()
    frame = ours.set_local(7, {"name": "Zoë 😀"}, now=0.0)
    doc: pycrdt.Doc = pycrdt.Doc(client_id=1)  # type: ignore[type-arg]
    theirs = pycrdt.Awareness(doc)
    theirs.apply_awareness_update(frame[2:], "test")  # one-byte length prefix here
    assert theirs.states[7] == {"name": "Zoë 😀"}

    removal = ours.set_local(7, None, now=1.0)
    assert pycrdt.is_awareness_disconnect_message(removal[1:])
    theirs.apply_awareness_update(removal[2:], "test")
    assert 7 not in theirs.states
