"""A process for test_crash.py to SIGKILL: appends to an UpdateLog until it is killed.

    python crash_worker.py PATH MODE

Update i (0, 1, 2, ...) is one transaction on one pycrdt Doc that sets map key str(i) to
`value(i)` and appends `text_piece(i)` to a Text, so the parent can check a loaded log
exactly: its keys must be 0..M-1 for some M and its text the first M pieces in order.

Lines on stdout (flushed as written):
    ready                  the log is open; appends start now
    durable N              updates 0..N-1 are durable (a sync() returned after them)
    compact start G        compaction number G begins
    compact done G         compaction number G returned

Modes:
    group        durability "group", sync() every few appends
    always       durability "always": every append is durable when it returns
    compact      a thread appends (group, with syncs) while the main thread compacts
                 in a loop, so kills land during compaction; the new file is written in
                 small, slow chunks, so kills also land while `*.compacting` is half written
    autocompact  appends with a small CompactionPolicy, so background compactions
                 run while appends continue
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

# Run as a script: make the project importable without installing it.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import pycrdt

from crdtedge.log import CompactionPolicy, UpdateLog, updatelog
from crdtedge.log.files import write_all as real_write_all

MODES = ("group", "always", "compact", "autocompact")
SYNC_EVERY = 25
CLIENT_ID = 4242


def value(i: int) -> str:
    """Bulky enough that the log grows fast and a compaction takes a while."""
    return f"value {i:08d} ünïcödé " * 6


def text_piece(i: int) -> str:
    return f"{i}é;"


class Writer:
    """Makes update i and appends it to the log."""

    def __init__(self, log: UpdateLog) -> None:
        self.log = log
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=CLIENT_ID)
        self.map = self.doc.get("map", type=pycrdt.Map)
        self.text = self.doc.get("text", type=pycrdt.Text)
        self._updates: list[bytes] = []
        self._subscription = self.doc.observe(lambda event: self._updates.append(event.update))
        self._text_bytes = 0  # pycrdt 0.14 Text indices are UTF-8 byte offsets
        self.count = 0

    def append_next(self) -> None:
        i = self.count
        piece = text_piece(i)
        with self.doc.transaction():
            self.map[str(i)] = value(i)
            self.text.insert(self._text_bytes, piece)
        self._text_bytes += len(piece.encode())
        (update,) = self._updates
        self._updates.clear()
        self.log.append(update)
        self.count = i + 1


_say_lock = threading.Lock()


def say(line: str) -> None:
    with _say_lock:  # whole lines, also from two threads
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def append_forever(writer: Writer, *, every_sync: bool) -> None:
    try:
        _append_forever(writer, every_sync=every_sync)
    except BaseException as exc:  # a thread's exception would otherwise go unnoticed
        say(f"error {exc!r}")
        os._exit(3)


def _append_forever(writer: Writer, *, every_sync: bool) -> None:
    while True:
        writer.append_next()
        if every_sync:
            say(f"durable {writer.count}")  # durability "always": durable on return
        elif writer.count % SYNC_EVERY == 0:
            writer.log.sync()
            say(f"durable {writer.count}")


def slow_down_compaction_writes(path: str) -> None:
    """Fault injection, this process only: write the compacted file in slow 2 KiB chunks.

    Writing it is otherwise so quick that a kill almost never lands while it exists.
    """
    compacting = path + updatelog.COMPACT_SUFFIX

    def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
        try:
            slow = os.path.samestat(os.fstat(fd), os.stat(compacting))
        except FileNotFoundError:
            slow = False
        if not slow:
            real_write_all(fd, data)
            return
        view = memoryview(data)
        for start in range(0, len(view), 2048):
            real_write_all(fd, view[start : start + 2048])
            time.sleep(0.001)

    updatelog.write_all = write_all  # type: ignore[attr-defined]


def main(path: str, mode: str) -> None:
    if mode not in MODES:
        raise SystemExit(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    if mode == "always":
        log = UpdateLog(path, durability="always", auto_compact=False)
    elif mode == "autocompact":
        policy = CompactionPolicy(min_bytes=64 * 1024, ratio=0.5)
        log = UpdateLog(path, durability="group", compaction=policy, auto_compact=True)
    else:
        log = UpdateLog(path, durability="group", auto_compact=False)
    writer = Writer(log)
    say("ready")
    if mode != "compact":
        append_forever(writer, every_sync=mode == "always")
        return
    slow_down_compaction_writes(path)
    appender = threading.Thread(
        target=append_forever, args=(writer,), kwargs={"every_sync": False}, daemon=True
    )
    appender.start()
    generation = 0
    while True:
        time.sleep(0.01)  # let some appends in between compactions
        generation += 1
        say(f"compact start {generation}")
        log.compact()  # also makes every append so far durable (not reported here)
        say(f"compact done {generation}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
