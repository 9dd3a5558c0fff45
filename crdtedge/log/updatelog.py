"""`UpdateLog`: one document's compacted binary update log.

Appends go to an in-memory buffer (a few hundred nanoseconds, no syscall); the buffer
reaches the file when it grows large, on `sync()`, or on the group committer's tick.
Three locks, always taken in this order, keep it correct under threads:

- `_compact_lock`: one compaction at a time.
- `_sync_lock`: whoever holds it may fsync the file descriptor; compaction holds it to
  swap files, so an fsync never lands on a closed descriptor.
- `_lock`: guards the buffer, the descriptor and the counters; held only for memory work
  and `os.write`, never across an fsync, so appends never wait for the disk.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import logging
import os
import threading
import time
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import orjson
import pycrdt

from . import state
from .committer import GroupCommitter
from .files import fdatasync, fsync_dir, read_file, replace_atomically, write_all
from .format import (
    FRAME,
    FRAME_HEADER_SIZE,
    HEADER_SIZE,
    LENGTH_MASK,
    MAX_RECORD_SIZE,
    Header,
    LogError,
    RecordKind,
    ScanResult,
    encode_frame,
    scan,
)

logger = logging.getLogger("crdtedge.log")

#: Buffered appends are written to the file (not fsynced) once they reach this size.
WRITE_THRESHOLD = 256 * 1024
COMPACT_SUFFIX = ".compacting"


class Durability(enum.StrEnum):
    """What `append()` promises. See docs/log-format.md for the power-cut guarantees."""

    ALWAYS = "always"  # fsync before append returns
    GROUP = "group"  # durable within the commit window; sync() is the barrier
    NONE = "none"  # durable only at sync() or close()


@dataclass(frozen=True)
class CompactionPolicy:
    """Compact once the incremental records outweigh the last snapshot (as automerge-repo).

    `min_bytes` is the floor that keeps small documents from compacting on every write.
    """

    min_bytes: int = 1024 * 1024
    ratio: float = 1.0

    def threshold(self, snapshot_bytes: int) -> int:
        return max(self.min_bytes, int(snapshot_bytes * self.ratio))


DEFAULT_POLICY = CompactionPolicy()


@dataclass(frozen=True)
class Recovery:
    """What opening the log dropped: a torn tail left by a crash mid-write."""

    offset: int  # where the dropped bytes began (the new end of the file)
    dropped_bytes: int
    dropped_records: int


@dataclass(frozen=True)
class CompactionResult:
    updates_folded: int
    bytes_before: int
    bytes_after: int
    snapshot_bytes: int  # the compressed snapshot record's payload
    state_bytes: int  # the uncompressed Yjs state
    seconds: float


@dataclass(frozen=True)
class LogStats:
    path: str
    name: str | None
    doc_id: uuid.UUID
    generation: int  # number of compactions this document has been through
    file_bytes: int  # on disk, excluding appends still buffered
    records: Mapping[str, int]  # by kind
    bytes_since_snapshot: int
    snapshot_bytes: int
    last_compaction: float | None  # unix time
    appended: int  # appends through this handle
    durable: int  # how many of them are known durable
    recovery: Recovery | None


class ClosedLogError(LogError):
    """The log was closed (or failed) and takes no more appends."""


class UpdateLog:
    """The compacted binary update log of one document.

    >>> with UpdateLog("doc.ylog") as log:
    ...     seq = log.append(update)
    ...     log.sync()          # everything appended so far is on disk
    ...     state = log.read_state()
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability | str = Durability.GROUP,
        group_window: float = 0.005,
        compaction: CompactionPolicy = DEFAULT_POLICY,
        auto_compact: bool = True,
        name: str | None = None,
        committer: GroupCommitter | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.durability = Durability(durability)
        self._always = self.durability is Durability.ALWAYS
        self.policy = compaction
        self.auto_compact = auto_compact
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._compact_lock = threading.Lock()
        self._buf = bytearray()
        self._seq = 0  # appends so far
        self._written_seq = 0  # appends handed to the OS
        self._durable_seq = 0  # appends fsynced
        self._dirty = False  # the committer has been woken for the current buffer
        self._failure: BaseException | None = None
        self._closed = False
        self._compactor: threading.Thread | None = None
        self._compacting = False

        if not os.path.exists(self.path):
            _create(self.path, name)
        self._fd = _open_locked(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            _remove_if_exists(self.path + COMPACT_SUFFIX)  # left by a crash mid-compaction
            scanned = scan(read_file(self.path), self.path)[0]
            self.recovery = _truncate_torn_tail(self._fd, self.path, scanned)
        except BaseException:
            os.close(self._fd)
            raise
        self.header = scanned.header
        self._account(scanned)
        self.name = name if name is not None else self._name
        self._size = scanned.end
        # Opening verified every record; the first read (a relay or replica loading the
        # document right away) reuses that instead of reading and verifying them again.
        self._opened: ScanResult | None = scanned

        self._owns_committer = committer is None and self.durability is Durability.GROUP
        if self._owns_committer:
            committer = GroupCommitter(group_window)
        self._committer = committer

    # -- the append path -------------------------------------------------------------

    def append(self, update: bytes) -> int:
        """Append one Yjs update; return its sequence number (1, 2, ...) in this handle.

        Durability follows the log's mode; `sync()` or `wait_durable()` is the barrier.
        This is the hot path: no syscall, one lock, one checksum.
        """
        n = len(update)
        if n > MAX_RECORD_SIZE:
            raise ValueError(f"update of {n} bytes exceeds the {MAX_RECORD_SIZE}-byte record limit")
        frame = _pack_frame(n, 1, _crc32(update, 1), n ^ LENGTH_MASK)
        with self._lock:
            if self._closed:
                raise self._closed_error()
            buf = self._buf
            buf += frame
            buf += update
            self._seq = seq = self._seq + 1
            self._updates += 1
            self._since_snapshot += FRAME_HEADER_SIZE + n
            if len(buf) >= WRITE_THRESHOLD:
                self._write_locked()
            if not self._dirty and self._committer is not None:
                self._dirty = True
                self._committer.wake(self)
        if self._always:
            self._sync_to(seq)
        if self._since_snapshot >= self._threshold and self.auto_compact and not self._compacting:
            self._start_background_compaction()
        return seq

    def append_metadata(self, meta: Mapping[str, Any]) -> int:
        """Append a JSON object record (ignored by read_state; seen by inspect and stats)."""
        payload = orjson.dumps(dict(meta))
        with self._lock:
            if self._closed:
                raise self._closed_error()
            self._buf += encode_frame(RecordKind.METADATA, payload)
            self._seq = seq = self._seq + 1
            self._metadata += 1
        if self._always:
            self._sync_to(seq)
        return seq

    @property
    def appended(self) -> int:
        return self._seq

    @property
    def durable(self) -> int:
        """Sequence number through which every append is known to be on disk."""
        return self._durable_seq

    def sync(self) -> None:
        """Return once everything appended so far is durable on disk (in every mode)."""
        self._sync_to(self._seq)

    async def wait_durable(self, seq: int | None = None) -> None:
        """Async barrier: wait until append `seq` (default: all so far) is durable.

        The fsync runs in a worker thread, so the event loop never blocks on the disk.
        """
        target = self._seq if seq is None else seq
        if self._durable_seq < target:
            await anyio.to_thread.run_sync(self._sync_to, target)

    def commit(self) -> None:
        """The group committer's tick: make every append so far durable."""
        self._sync_to(self._seq)

    def _sync_to(self, target: int) -> None:
        if self._durable_seq >= target:
            return
        with self._sync_lock:
            if self._durable_seq >= target:  # a concurrent fsync covered us: group commit
                return
            with self._lock:
                if self._failure is not None:
                    raise self._closed_error()
                if self._fd < 0:  # closed (everything was synced) or abandoned
                    return
                self._dirty = False
                self._write_locked()
                covered = self._written_seq
                fd = self._fd
            try:
                fdatasync(fd)
            except OSError as exc:
                # After a failed fsync the kernel may have dropped the dirty pages: the
                # only honest state is failed (the "fsyncgate" lesson).
                self._fail(exc)
                raise LogError(f"{self.path}: fsync failed, log closed: {exc}") from exc
            self._durable_seq = covered

    def _write_locked(self) -> None:
        self._opened = None
        if self._buf:
            try:
                write_all(self._fd, self._buf)
            except OSError as exc:
                self._fail(exc)
                raise LogError(f"{self.path}: write failed, log closed: {exc}") from exc
            self._size += len(self._buf)
            self._buf = bytearray()
        self._written_seq = self._seq

    def _fail(self, exc: BaseException) -> None:
        self._failure = exc
        self._closed = True

    def _closed_error(self) -> LogError:
        if self._failure is not None:
            return ClosedLogError(f"{self.path}: log failed earlier: {self._failure}")
        return ClosedLogError(f"{self.path}: log is closed")

    # -- reading ---------------------------------------------------------------------

    def read_state(self) -> bytes:
        """The whole document (every append so far) as one Yjs v1 update."""
        return state.state_of(self.scan(), self.path)

    def load(self, doc: pycrdt.Doc[Any]) -> None:
        """Apply the whole log to `doc` (cheaper than read_state when you hold a Doc)."""
        state.replay(doc, self.scan(), self.path)

    def metadata(self) -> dict[str, Any]:
        """The metadata records merged in file order (later values win; kept by compaction)."""
        return _merged_meta(self.scan())

    def scan(self) -> ScanResult:
        """Read and verify every record, including appends still buffered."""
        with self._lock:
            if self._failure is not None:
                raise self._closed_error()
            opened = self._opened if self._seq == 0 else None
            self._write_locked()
        if opened is not None:
            return opened
        return scan(read_file(self.path), self.path)[0]

    # -- compaction ------------------------------------------------------------------

    def compact(self, progress: state.Progress | None = None) -> CompactionResult:
        """Fold every record into one compressed snapshot; appends may continue meanwhile.

        The new file is written beside the old one, fsynced, and renamed over it; the
        directory is fsynced. A crash at any instant leaves the old or the new file whole.
        """
        with self._compact_lock:
            started = time.perf_counter()
            with self._lock:
                if self._closed:
                    raise self._closed_error()
                self._write_locked()
                cut = self._size
            before = scan(read_file(self.path)[:cut], self.path)[0]
            doc: pycrdt.Doc[Any] = pycrdt.Doc()
            replayed = state.replay(doc, before, self.path, progress)
            folded = replayed.updates
            full_state = doc.get_update()
            snapshot = state.compress_snapshot(full_state)
            header = Header(self.header.doc_id, self.header.generation + 1)
            # Metadata is a key-value record stream: the merged latest values carry over.
            meta = _merged_meta(before)
            meta.update(name=self.name, compacted_at=time.time(), updates_folded=folded)
            new = bytearray(header.encode())
            new += encode_frame(RecordKind.METADATA, orjson.dumps(meta))
            new += encode_frame(RecordKind.SNAPSHOT, snapshot)
            for waiting in replayed.pending:  # kept whole until their dependencies arrive
                new += encode_frame(RecordKind.UPDATE, waiting)
            tmp = self.path + COMPACT_SUFFIX
            with self._sync_lock, self._lock:
                # Appends wait only for this block: copy what arrived since the cut.
                self._write_locked()
                with open(self.path, "rb") as old:
                    old.seek(cut)
                    tail = old.read(self._size - cut)
                new += tail
                # Locked before the rename, so no other process can open the new file.
                fd = _open_locked(tmp, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC)
                try:
                    write_all(fd, new)
                    os.fsync(fd)
                    os.replace(tmp, self.path)
                except BaseException:
                    os.close(fd)
                    raise
                fsync_dir(os.path.dirname(self.path))
                os.close(self._fd)
                self._fd = fd
                self._durable_seq = self._written_seq
                self.header = header
                self._account(scan(bytes(new), self.path)[0])
                self._size = len(new)
            return CompactionResult(
                updates_folded=folded,
                bytes_before=cut,
                bytes_after=len(new),
                snapshot_bytes=len(snapshot),
                state_bytes=len(full_state),
                seconds=time.perf_counter() - started,
            )

    async def compact_async(self, progress: state.Progress | None = None) -> CompactionResult:
        return await anyio.to_thread.run_sync(self.compact, progress)

    def _start_background_compaction(self) -> None:
        with self._lock:
            if self._closed or self._compacting:
                return
            self._compacting = True
            self._compactor = threading.Thread(
                target=self._compact_in_background, name="crdtedge-compact", daemon=True
            )
            self._compactor.start()

    def _compact_in_background(self) -> None:
        try:
            self.compact()
        except Exception:
            logger.exception("%s: background compaction failed; the log is unchanged", self.path)
        finally:
            self._compacting = False

    def _account(self, scanned: ScanResult) -> None:
        """Derive the counters that drive the compaction policy and stats from a scan."""
        self._updates = len(scanned.updates)
        self._metadata = 0
        self._snapshots = 0
        self._snapshot_bytes = 0
        self._name: str | None = None
        self.last_compaction: float | None = None
        snapshot_end = HEADER_SIZE
        for record in scanned.others:
            if record.kind is RecordKind.SNAPSHOT:
                self._snapshots += 1
                self._snapshot_bytes = FRAME_HEADER_SIZE + len(record.payload)
                snapshot_end = record.offset + self._snapshot_bytes
            else:
                self._metadata += 1
                meta = _parse_meta(record.payload)
                self._name = meta.get("name", self._name)
                self.last_compaction = meta.get("compacted_at", self.last_compaction)
        self._since_snapshot = scanned.end - snapshot_end
        self._threshold = self.policy.threshold(self._snapshot_bytes)

    # -- lifecycle -------------------------------------------------------------------

    def stats(self) -> LogStats:
        return LogStats(
            path=self.path,
            name=self.name,
            doc_id=self.header.doc_id,
            generation=self.header.generation,
            file_bytes=self._size,
            records={
                "update": self._updates,
                "snapshot": self._snapshots,
                "metadata": self._metadata,
            },
            bytes_since_snapshot=self._since_snapshot,
            snapshot_bytes=self._snapshot_bytes,
            last_compaction=self.last_compaction,
            appended=self._seq,
            durable=self._durable_seq,
            recovery=self.recovery,
        )

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Make everything durable, wait for a running compaction, release the file."""
        if self._fd < 0:
            return
        compactor = self._compactor
        if compactor is not None:
            compactor.join()
        try:
            if self._failure is None:
                self.sync()
        finally:
            with self._lock:
                self._closed = True
                os.close(self._fd)
                self._fd = -1
            if self._owns_committer and self._committer is not None:
                self._committer.close()

    def abandon(self, torn: int = 0) -> None:
        """Drop the handle as a killed process would: nothing more is flushed or fsynced.

        `torn` bytes of the buffered appends reach the file first, as a write the crash
        interrupted would leave them. For crash tests (`crdtedge.testing`).
        """
        compactor = self._compactor
        if compactor is not None:
            compactor.join()
        with self._lock:
            self._closed = True
            if self._fd >= 0:
                write_all(self._fd, self._buf[: max(0, torn)])
                os.close(self._fd)
                self._fd = -1
            self._buf = bytearray()
        if self._owns_committer and self._committer is not None:
            self._committer.close()

    @property
    def buffered_bytes(self) -> int:
        """Appended bytes not yet handed to the OS."""
        return len(self._buf)

    def __enter__(self) -> UpdateLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<UpdateLog {self.path!r} {self.durability.value} seq={self._seq}>"


_pack_frame = FRAME.pack
_crc32 = zlib.crc32


def _create(path: str, name: str | None) -> None:
    data = Header(uuid.uuid4()).encode()
    if name is not None:
        data += encode_frame(RecordKind.METADATA, orjson.dumps({"name": name}))
    replace_atomically(path, data)


def _open_locked(path: str, flags: int) -> int:
    """Open for writing and take an exclusive lock: one writer per log, across processes."""
    fd = os.open(path, flags, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LogError(f"{path}: the log is open for writing in another process") from None
    return fd


def _truncate_torn_tail(fd: int, path: str, scanned: ScanResult) -> Recovery | None:
    if not scanned.torn_bytes:
        return None
    os.ftruncate(fd, scanned.end)
    os.fsync(fd)
    recovery = Recovery(scanned.end, scanned.torn_bytes, scanned.torn_records)
    logger.warning(
        "%s: dropped a torn tail of %d bytes (%d partial record) at offset %d",
        path,
        recovery.dropped_bytes,
        recovery.dropped_records,
        recovery.offset,
    )
    return recovery


def _merged_meta(scanned: ScanResult) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for record in scanned.of_kind(RecordKind.METADATA):
        merged.update(_parse_meta(record.payload))
    return merged


def _parse_meta(payload: bytes) -> dict[str, Any]:
    try:
        meta = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return {}
    return meta if isinstance(meta, dict) else {}


def _remove_if_exists(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
