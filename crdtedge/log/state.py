"""Turning records into document state, and document state into snapshot records.

Measured on pycrdt 0.14.13 (automerge-paper, 259,778 updates): applying each update to a
Doc takes ~2 s, one `merge_updates` of all of them is quadratic, and merging runs of 64
updates before applying each run takes ~0.5 s. So replay merges small runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pycrdt
import zstandard

from ..protocol.encoding import Reader
from ..protocol.messages import decode_state_vector
from .format import LogError, RecordKind, ScanResult

#: Updates merged per apply_update call during replay (see the module docstring).
MERGE_RUN = 64
SNAPSHOT_LEVEL = 3  # zstd: ~30 % of the Yjs v1 state in ~3 ms for 377 kB

Progress = Callable[[int, int], None]


class BadUpdateError(LogError):
    """A record verified by its checksum holds bytes that are not a Yjs update."""


def compress_snapshot(state: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=SNAPSHOT_LEVEL).compress(state)


def decompress_snapshot(payload: bytes, path: str, offset: int) -> bytes:
    try:
        return zstandard.ZstdDecompressor().decompress(payload)
    except zstandard.ZstdError as exc:
        raise BadUpdateError(
            f"{path}: snapshot at byte offset {offset} does not inflate: {exc}"
        ) from None


@dataclass(frozen=True)
class Replayed:
    updates: int  # update records applied
    # Runs of updates that wait for dependencies the log does not hold (they arrived
    # before what they build on). pycrdt keeps them pending, but `Doc.get_update()`
    # leaves pending structs and deletions out, so they must be carried separately.
    pending: list[bytes]


def replay(
    doc: pycrdt.Doc[Any],
    scanned: ScanResult,
    path: str,
    progress: Progress | None = None,
) -> Replayed:
    """Apply every snapshot and update record to `doc`."""
    for record in scanned.of_kind(RecordKind.SNAPSHOT):
        snapshot = decompress_snapshot(record.payload, path, record.offset)
        _apply(doc, [snapshot], [record.offset], path)
    updates, offsets = scanned.updates, scanned.update_offsets
    total = len(updates)
    runs: list[bytes] = []
    for start in range(0, total, MERGE_RUN):
        stop = start + MERGE_RUN
        runs.extend(_apply(doc, updates[start:stop], offsets[start:stop], path))
        if progress is not None:
            progress(min(stop, total), total)
    return Replayed(total, _pending(doc, runs))


def _pending(doc: pycrdt.Doc[Any], runs: list[bytes]) -> list[bytes]:
    state = doc.get_state()
    clocks = decode_state_vector(state)
    return [run for run in runs if waits(pycrdt.get_update(run, state), clocks)]


def waits(diff: bytes, clocks: dict[int, int]) -> bool:
    """Whether `diff` (an update minus what a doc holds, whose state vector is `clocks`)
    still has anything to apply: structs the doc lacks, or deletions of items the doc
    does not have yet (pycrdt keeps both pending, and `Doc.get_update()` leaves them out)."""
    reader = Reader(diff)
    if reader.read_varuint("struct groups"):
        return True
    for _ in range(reader.read_varuint("delete set clients")):
        client = reader.read_varuint("client")
        for _ in range(reader.read_varuint("delete ranges")):
            clock = reader.read_varuint("clock")
            if clock + reader.read_varuint("length") > clocks.get(client, 0):
                return True
    return False


def _apply(doc: pycrdt.Doc[Any], run: list[bytes], offsets: list[int], path: str) -> list[bytes]:
    """Apply a run of updates, merged when possible; return what was applied."""
    if len(run) > 1:
        try:
            merged = pycrdt.merge_updates(*run)
            doc.apply_update(merged)
            return [merged]
        except ValueError:
            pass  # a failed merge or apply leaves the doc untouched: retry one by one
        applied: list[bytes] = []
        for update, offset in zip(run, offsets, strict=True):
            applied += _apply(doc, [update], [offset], path)
        return applied
    try:
        doc.apply_update(run[0])
    except ValueError:
        reason = f"{path}: record at byte offset {offsets[0]} is not a valid Yjs update"
        raise BadUpdateError(reason) from None
    return run


def state_of(scanned: ScanResult, path: str, progress: Progress | None = None) -> bytes:
    """The whole document as one Yjs v1 update."""
    snapshots = scanned.of_kind(RecordKind.SNAPSHOT)
    if len(snapshots) == 1 and not scanned.updates:
        # A freshly compacted log: the snapshot already is the state.
        return decompress_snapshot(snapshots[0].payload, path, snapshots[0].offset)
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    pending = replay(doc, scanned, path, progress).pending
    state = doc.get_update()
    return pycrdt.merge_updates(state, *pending) if pending else state
