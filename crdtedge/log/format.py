"""The on-disk format of the update log: file header, record frames, and the scanner.

Everything here is pure bytes-in/bytes-out so the format can be tested and inspected
without opening a log. See docs/log-format.md for the byte layout and the rules the
scanner applies to tell a torn tail (a crash mid-write) from corruption.
"""

from __future__ import annotations

import enum
import struct
import uuid
import zlib
from dataclasses import dataclass
from typing import NamedTuple

MAGIC = b"\x89CELOG\r\n"
FORMAT_VERSION = 1

# magic, version u16, flags u16, generation u32, doc id (16 bytes), then crc32 of all that.
_HEADER_BODY = struct.Struct("<8sHHI16s")
_HEADER_CRC = struct.Struct("<I")
HEADER_SIZE = _HEADER_BODY.size + _HEADER_CRC.size

# payload length u32, kind u8, crc32 of the payload seeded with the kind, length ^ 0xFFFFFFFF.
# The complement guards the length on its own, so a flipped length bit is caught before
# it could pass for a torn tail; seeding the crc with the kind catches a flipped kind.
FRAME = struct.Struct("<IBII")
FRAME_HEADER_SIZE = FRAME.size
LENGTH_MASK = 0xFFFFFFFF

#: Records larger than this are refused on append and treated as corruption on read.
MAX_RECORD_SIZE = 1 << 30


class RecordKind(enum.IntEnum):
    """What a record's payload holds."""

    UPDATE = 1  # one Yjs v1 update, stored as given
    SNAPSHOT = 2  # the whole document as one Yjs v1 update, zstd-compressed
    METADATA = 3  # a JSON object (orjson), e.g. the document name or compaction facts


class LogError(Exception):
    """Base class of every error the update log raises."""


class CorruptLogError(LogError):
    """Bytes that were once written whole no longer verify: never loaded silently."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(
            f"{path}: corrupt at byte offset {offset}: {reason}. "
            "The log was not loaded; `crdtedge log salvage` can recover the records before it."
        )
        self.path = path
        self.offset = offset
        self.reason = reason


class UnsupportedFormatError(LogError):
    """The file is a log of a format version this code does not understand."""


@dataclass(frozen=True)
class Header:
    """The fixed file header: format version, compaction generation, document identity."""

    doc_id: uuid.UUID
    generation: int = 0
    version: int = FORMAT_VERSION
    flags: int = 0

    def encode(self) -> bytes:
        body = _HEADER_BODY.pack(
            MAGIC, self.version, self.flags, self.generation, self.doc_id.bytes
        )
        return body + _HEADER_CRC.pack(zlib.crc32(body))


def decode_header(data: bytes, path: str) -> Header:
    """Parse and verify a file header; raise a clear error naming the file otherwise."""
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise CorruptLogError(path, 0, "not a crdtedge update log (bad magic)")
    if len(data) < HEADER_SIZE:
        raise CorruptLogError(
            path, 0, f"file header truncated ({len(data)} of {HEADER_SIZE} bytes)"
        )
    _, version, flags, generation, doc_id = _HEADER_BODY.unpack_from(data)
    if version != FORMAT_VERSION:
        raise UnsupportedFormatError(
            f"{path}: log format version {version} is not supported by this crdtedge "
            f"(it reads version {FORMAT_VERSION}); upgrade crdtedge to open it"
        )
    (crc,) = _HEADER_CRC.unpack_from(data, _HEADER_BODY.size)
    if crc != zlib.crc32(data[: _HEADER_BODY.size]):
        raise CorruptLogError(path, 0, "file header checksum mismatch")
    return Header(uuid.UUID(bytes=doc_id), generation, version, flags)


def encode_frame(kind: int, payload: bytes) -> bytes:
    """Frame one record. The append path inlines this; keep the two in step."""
    n = len(payload)
    return FRAME.pack(n, kind, zlib.crc32(payload, kind), n ^ LENGTH_MASK) + payload


class Record(NamedTuple):
    kind: RecordKind
    offset: int  # where its frame starts in the file
    payload: bytes


@dataclass
class ScanResult:
    """What a scan of the whole file found, grouped by kind (state does not need order)."""

    header: Header
    updates: list[bytes]
    update_offsets: list[int]
    others: list[Record]  # snapshots and metadata, in file order
    end: int  # offset just past the last whole, verified record
    file_size: int
    torn_bytes: int = 0  # bytes after `end` that look like an interrupted write

    @property
    def torn_records(self) -> int:
        # Only the first partial frame can be told apart; a torn write leaves at most one.
        return 1 if self.torn_bytes else 0

    def of_kind(self, kind: RecordKind) -> list[Record]:
        return [r for r in self.others if r.kind is kind]

    def counts(self) -> dict[RecordKind, int]:
        counts = {kind: len(self.of_kind(kind)) for kind in RecordKind}
        counts[RecordKind.UPDATE] = len(self.updates)
        return counts


def scan(data: bytes, path: str, *, stop_at_damage: bool = False) -> tuple[ScanResult, str | None]:
    """Verify every record of a whole log file held in `data`.

    Returns the result and, when `stop_at_damage` is set, a description of the first
    damage instead of raising (that is what salvage and inspect want). A torn tail is not
    damage: it is reported in `torn_bytes` and the caller truncates it.
    """
    header = decode_header(data, path)
    updates: list[bytes] = []
    offsets: list[int] = []
    others: list[Record] = []
    pos = HEADER_SIZE
    size = len(data)
    unpack = FRAME.unpack_from
    crc32 = zlib.crc32
    update_kind = RecordKind.UPDATE.value
    kinds = {k.value: k for k in RecordKind}
    damage: str | None = None
    torn = 0
    while pos < size:
        remaining = size - pos
        if remaining < FRAME_HEADER_SIZE:
            torn = remaining
            break
        length, kind, crc, check = unpack(data, pos)
        start = pos + FRAME_HEADER_SIZE
        end = start + length
        if length ^ check != LENGTH_MASK:
            damage = "record length check mismatch"
        elif kind not in kinds or length > MAX_RECORD_SIZE:
            damage = f"record header names unknown kind {kind} or length {length}"
        elif end > size:
            torn = remaining  # a whole, verified header whose payload never made it to disk
            break
        else:
            payload = data[start:end]
            if crc32(payload, kind) == crc:
                if kind == update_kind:
                    updates.append(payload)
                    offsets.append(pos)
                else:
                    others.append(Record(kinds[kind], pos, payload))
                pos = end
                continue
            damage = "record checksum mismatch"
        if _all_zero(data, pos):
            torn, damage = remaining, None
            break
        if not stop_at_damage:
            raise CorruptLogError(path, pos, damage)
        break
    result = ScanResult(header, updates, offsets, others, pos, size, torn)
    return result, (f"{damage} at byte offset {pos}" if damage else None)


def _all_zero(data: bytes, pos: int) -> bool:
    """A region the file system extended but never filled (a power cut) reads as zeros."""
    return data.count(0, pos) == len(data) - pos
