"""What a room fans out per flush: one squashed update, unless the batch holds more."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pycrdt

from crdtedge.log import UpdateLog
from crdtedge.protocol import SyncSession, SyncUpdate, decode
from crdtedge.relay import Room


class Peer:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def push(self, frame: bytes) -> None:
        self.frames.append(frame)

    def close(self, code: int, reason: str) -> None:
        pass


def typed(n: int, client_id: int = 5) -> list[bytes]:
    """One update per character typed at the end of a text."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=client_id)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text = doc.get("t", type=pycrdt.Text)
    for i in range(n):
        text.insert(i, "abc"[i % 3])
    return updates


def fan_out(tmp_path: Path, updates: list[bytes]) -> bytes:
    """The update a reader receives when a writer sends `updates` in one batch."""
    with UpdateLog(tmp_path / "r.ylog") as log:
        room = Room("r", log, pycrdt.Doc(), schedule=lambda delay, callback: None)
        writer, reader = Peer(), Peer()
        room.attach(writer)
        room.attach(reader)
        reader.frames.clear()
        for update in updates:
            room.receive(writer, SyncSession.update_frame(update))
        room.flush()
        (frame,) = reader.frames
        message = decode(frame)
        assert isinstance(message, SyncUpdate)
        return message.update


def text_of(update: bytes) -> str:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(update)
    return str(doc.get("t", type=pycrdt.Text))


def test_a_burst_of_keystrokes_fans_out_as_one_squashed_update(tmp_path: Path) -> None:
    updates = typed(200)
    sent = fan_out(tmp_path, updates)
    assert text_of(sent) == "abc" * 66 + "ab"
    merged = pycrdt.merge_updates(*updates)
    assert len(sent) * 5 < len(merged)  # one item for the run, not one per keystroke


def test_an_update_waiting_for_its_dependency_is_still_forwarded(tmp_path: Path) -> None:
    first, second, third = typed(3)
    sent = fan_out(tmp_path, [first, third])  # `third` builds on `second`: pending
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(sent)
    doc.apply_update(second)  # the reader gets what the room could not apply yet
    assert str(doc.get("t", type=pycrdt.Text)) == "abc"
