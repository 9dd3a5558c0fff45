"""Unit tests of UpdateLog: append, durability modes, compaction, recovery, errors."""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest

from crdtedge.log import (
    BadUpdateError,
    ClosedLogError,
    CompactionPolicy,
    CorruptLogError,
    LogError,
    UnsupportedFormatError,
    UpdateLog,
)
from crdtedge.log.format import FORMAT_VERSION, FRAME_HEADER_SIZE, HEADER_SIZE, Header


def edits(n: int, text: str = "héllo wörld ") -> tuple[list[bytes], str]:
    """n single-character Yjs updates (non-ASCII included) and the final text."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    t = doc.get("text", type=pycrdt.Text)
    updates: list[bytes] = []
    doc.observe(lambda e: updates.append(e.update))
    for i in range(n):
        t += text[i % len(text)]
    return updates, str(t)


def text_of(state: bytes) -> str:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(state)
    return str(doc.get("text", type=pycrdt.Text))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "doc.ylog"


@pytest.mark.parametrize("mode", ["always", "group", "none"])
def test_append_sync_read_back(path: Path, mode: str) -> None:
    updates, expected = edits(200)
    with UpdateLog(path, durability=mode) as log:
        seqs = [log.append(u) for u in updates]
        assert seqs == list(range(1, 201))
        assert text_of(log.read_state()) == expected  # buffered appends are included
        log.sync()
        assert log.durable == 200
    with UpdateLog(path) as log:
        assert text_of(log.read_state()) == expected
        assert log.recovery is None


def test_new_log_is_empty_and_has_identity(path: Path) -> None:
    with UpdateLog(path, name="room/1") as log:
        assert text_of(log.read_state()) == ""
        doc_id = log.header.doc_id
    with UpdateLog(path) as log:
        assert log.header.doc_id == doc_id
        assert log.name == "room/1"


def test_always_mode_is_durable_when_append_returns(path: Path) -> None:
    updates, _ = edits(5)
    with UpdateLog(path, durability="always") as log:
        for u in updates:
            seq = log.append(u)
            assert log.durable == seq
        # The bytes are in the file, not in a buffer.
        assert os.path.getsize(path) == HEADER_SIZE + sum(
            FRAME_HEADER_SIZE + len(u) for u in updates
        )


def test_group_mode_becomes_durable_without_sync(path: Path) -> None:
    updates, _ = edits(50)
    with UpdateLog(path, durability="group", group_window=0.002) as log:
        for u in updates:
            log.append(u)
        for _ in range(500):
            if log.durable == 50:
                break
            threading.Event().wait(0.01)
        assert log.durable == 50  # the committer flushed within the window, nobody called sync


def test_none_mode_does_not_flush_on_its_own(path: Path) -> None:
    updates, _ = edits(10)
    with UpdateLog(path, durability="none") as log:
        for u in updates:
            log.append(u)
        threading.Event().wait(0.05)
        assert log.durable == 0
        assert os.path.getsize(path) == HEADER_SIZE
        log.sync()
        assert log.durable == 10


async def test_wait_durable_does_not_block_the_loop(path: Path) -> None:
    updates, expected = edits(20)
    with UpdateLog(path, durability="none") as log:
        seq = 0
        for u in updates:
            seq = log.append(u)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await anyio.sleep(0)

        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            await log.wait_durable(seq)
            tg.cancel_scope.cancel()
        assert log.durable == seq
        assert ticks > 0
        result = await log.compact_async()
        assert result.updates_folded == 20
    with UpdateLog(path) as log:
        assert text_of(log.read_state()) == expected


def test_compaction_folds_and_keeps_content(path: Path) -> None:
    updates, expected = edits(503)
    with UpdateLog(path, auto_compact=False) as log:
        for u in updates[:500]:
            log.append(u)
        log.sync()
        before = os.path.getsize(path)
        result = log.compact()
        assert result.updates_folded == 500
        assert result.bytes_before == before
        assert result.bytes_after == os.path.getsize(path) < before
        stats = log.stats()
        assert stats.records == {"update": 0, "snapshot": 1, "metadata": 1}
        assert stats.generation == 1
        assert stats.last_compaction is not None
        for u in updates[500:]:  # appends after a compaction land in the new file
            log.append(u)
    with UpdateLog(path) as log:
        assert text_of(log.read_state()) == expected
        assert log.stats().records["update"] == 3


def test_compaction_policy_triggers_in_background(path: Path) -> None:
    updates, expected = edits(400)
    policy = CompactionPolicy(min_bytes=2_000, ratio=1.0)
    with UpdateLog(path, durability="none", compaction=policy) as log:
        for u in updates:
            log.append(u)
        log.close()  # waits for a running compaction
        assert log.stats().generation >= 1
    with UpdateLog(path, auto_compact=False) as log:
        assert text_of(log.read_state()) == expected
        assert log.stats().generation >= 1


def test_appends_during_compaction_are_kept(path: Path) -> None:
    updates, expected = edits(3000)
    with UpdateLog(path, durability="none", auto_compact=False) as log:
        for u in updates[:2000]:
            log.append(u)
        stop = threading.Event()
        results: list[int] = []

        def compact_loop() -> None:
            while not stop.is_set():
                results.append(log.compact().updates_folded)

        worker = threading.Thread(target=compact_loop)
        worker.start()
        for u in updates[2000:]:
            log.append(u)
        stop.set()
        worker.join()
        assert results, "compaction ran"
        assert text_of(log.read_state()) == expected
    with UpdateLog(path) as log:
        assert text_of(log.read_state()) == expected


def test_leftover_compaction_file_is_ignored(path: Path) -> None:
    updates, expected = edits(30)
    with UpdateLog(path) as log:
        for u in updates:
            log.append(u)
    Path(str(path) + ".compacting").write_bytes(b"half a compaction")
    with UpdateLog(path) as log:
        assert text_of(log.read_state()) == expected
    assert not Path(str(path) + ".compacting").exists()


def test_torn_tail_is_truncated_and_reported(path: Path) -> None:
    updates, _ = edits(10)
    with UpdateLog(path) as log:
        for u in updates:
            log.append(u)
    whole = path.read_bytes()
    last = FRAME_HEADER_SIZE + len(updates[-1])
    path.write_bytes(whole[: len(whole) - last + 5])  # 5 bytes of the last frame made it
    with UpdateLog(path) as log:
        assert log.recovery is not None
        assert log.recovery.dropped_bytes == 5
        assert log.recovery.dropped_records == 1
        assert log.recovery.offset == len(whole) - last
        state = log.read_state()
    expected_doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for u in updates[:-1]:
        expected_doc.apply_update(u)
    assert text_of(state) == str(expected_doc.get("text", type=pycrdt.Text))
    assert os.path.getsize(path) == len(whole) - last
    with UpdateLog(path) as log:
        assert log.recovery is None  # the truncation itself was durable


def test_zero_filled_tail_is_a_torn_tail(path: Path) -> None:
    updates, expected = edits(10)
    with UpdateLog(path) as log:
        for u in updates:
            log.append(u)
    with open(path, "ab") as f:
        f.write(b"\0" * 100)  # a power cut after the size grew but before data hit the disk
    with UpdateLog(path) as log:
        assert log.recovery is not None and log.recovery.dropped_bytes == 100
        assert text_of(log.read_state()) == expected


@pytest.mark.parametrize("where", ["length", "kind", "payload", "check"])
def test_damage_before_the_tail_is_corruption(path: Path, where: str) -> None:
    updates, _ = edits(10)
    with UpdateLog(path) as log:
        for u in updates:
            log.append(u)
    data = bytearray(path.read_bytes())
    second = HEADER_SIZE + FRAME_HEADER_SIZE + len(updates[0])
    offset = {"length": 0, "kind": 4, "check": 9, "payload": FRAME_HEADER_SIZE + 1}[where]
    data[second + offset] ^= 0x02
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError) as info:
        UpdateLog(path)
    assert info.value.offset == second
    assert str(path) in str(info.value)
    assert path.read_bytes() == bytes(data), "a corrupt log is never modified on open"


def test_flip_in_the_last_record_is_not_mistaken_for_a_torn_tail(path: Path) -> None:
    updates, _ = edits(3)
    with UpdateLog(path) as log:
        for u in updates:
            log.append(u)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError):
        UpdateLog(path)


def test_bad_header(path: Path) -> None:
    path.write_bytes(b"not a log at all, just some text")
    with pytest.raises(CorruptLogError, match="bad magic"):
        UpdateLog(path)


def test_unknown_format_version(path: Path) -> None:
    header = Header(uuid.uuid4(), version=FORMAT_VERSION + 1).encode()
    path.write_bytes(header)
    with pytest.raises(UnsupportedFormatError, match="version 2"):
        UpdateLog(path)


def test_header_checksum(path: Path) -> None:
    data = bytearray(Header(uuid.uuid4()).encode())
    data[20] ^= 0x10  # inside the document id
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError, match="header checksum"):
        UpdateLog(path)


def test_checksummed_garbage_is_a_clear_error_on_read(path: Path) -> None:
    with UpdateLog(path) as log:
        log.append(b"\xff\xff\xff garbage that passes the checksum")
        with pytest.raises(BadUpdateError, match="offset"):
            log.read_state()


def test_closed_log_refuses_appends(path: Path) -> None:
    log = UpdateLog(path)
    log.close()
    log.close()  # idempotent
    with pytest.raises(ClosedLogError):
        log.append(b"\x00\x00")


def test_one_writer_per_file(path: Path) -> None:
    with UpdateLog(path), pytest.raises(LogError, match="another process"):
        UpdateLog(path)


def test_metadata_records_are_kept_and_ignored_by_state(path: Path) -> None:
    updates, expected = edits(5)
    with UpdateLog(path) as log:
        log.append_metadata({"client_id": 42})
        for u in updates:
            log.append(u)
        assert log.stats().records["metadata"] == 1
        assert text_of(log.read_state()) == expected


def test_metadata_survives_compaction(path: Path) -> None:
    with UpdateLog(path, name="n") as log:
        log.append_metadata({"client_id": 1, "note": "a"})
        log.append_metadata({"client_id": 2})
        log.compact()
    with UpdateLog(path) as log:
        meta = log.metadata()
    assert meta["client_id"] == 2 and meta["note"] == "a" and meta["name"] == "n"


def test_load_into_existing_doc(path: Path) -> None:
    updates, expected = edits(70)
    with UpdateLog(path) as log:
        for u in updates:
            log.append(u)
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        log.load(doc)
    assert str(doc.get("text", type=pycrdt.Text)) == expected


def test_concurrent_appends_from_threads(path: Path) -> None:
    per_thread = 300

    def writer(k: int) -> None:
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        m = doc.get("m", type=pycrdt.Map)
        doc.observe(lambda e: log.append(e.update))
        for i in range(per_thread):
            m[f"{k}-{i}"] = i

    with UpdateLog(path, group_window=0.001) as log:
        threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        log.sync()
        assert log.durable == 4 * per_thread
    with UpdateLog(path) as log:
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        doc.apply_update(log.read_state())
    assert len(doc.get("m", type=pycrdt.Map)) == 4 * per_thread


@pytest.mark.parametrize("compact_between", [False, True])
def test_updates_waiting_for_dependencies_are_kept(path: Path, compact_between: bool) -> None:
    """Relayed out of order: a delete and an insert arrive before what they build on."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=1)
    text = doc.get("text", type=pycrdt.Text)
    updates: list[bytes] = []
    doc.observe(lambda e: updates.append(e.update))
    text.insert(0, "hello")
    del text[0:2]
    text.insert(3, "!")
    first, delete, insert = updates
    with UpdateLog(path, auto_compact=False) as log:
        log.append(delete)
        log.append(insert)
        assert text_of(log.read_state()) == ""  # nothing visible yet, but nothing lost
        if compact_between:
            log.compact()
            assert log.stats().records["update"] >= 1  # kept whole beside the snapshot
        log.append(first)
        assert text_of(log.read_state()) == "llo!"
        log.compact()
        assert log.stats().records["update"] == 0
    with UpdateLog(path) as log:
        assert text_of(log.read_state()) == "llo!"
