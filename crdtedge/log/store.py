"""`LogStore`: many named documents, one update log file each, in one directory.

Names come from URLs (room names), so any string must map to a safe file name: the
encoding keeps `[a-z0-9_-]` and percent-escapes every other UTF-8 byte (uppercase too,
so case-insensitive file systems cannot make two names collide). Names whose encoding
would be too long for a file system get a hashed file name; the real name is kept in the
log's first metadata record so listing stays reversible.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from .committer import GroupCommitter
from .format import FRAME, HEADER_SIZE, LogError, RecordKind, decode_header
from .updatelog import DEFAULT_POLICY, CompactionPolicy, Durability, LogStats, UpdateLog

SUFFIX = ".ylog"
_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_-")
_MAX_ENCODED = 200  # leaves room for suffixes within the usual 255-byte file-name limit
_HASHED_PREFIX = "~"


class LogInUseError(LogError):
    """The document is open (checked out) and cannot be deleted."""


def encode_name(name: str) -> str:
    """The file name (without suffix) of a document name. Raises ValueError if unusable."""
    if not name:
        raise ValueError("document name must not be empty")
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("document name is not valid Unicode (lone surrogate)") from None
    encoded = "".join(chr(byte) if byte in _SAFE else f"%{byte:02X}" for byte in raw)
    if len(encoded) > _MAX_ENCODED:
        return _HASHED_PREFIX + hashlib.sha256(raw).hexdigest()
    return encoded


def decode_name(stem: str) -> str | None:
    """The document name of an encoded file stem; None for hashed or foreign stems."""
    if stem.startswith(_HASHED_PREFIX):
        return None
    out = bytearray()
    i = 0
    try:
        while i < len(stem):
            if stem[i] == "%":
                out.append(int(stem[i + 1 : i + 3], 16))
                i += 3
            else:
                out += stem[i].encode("ascii")
                i += 1
        name = out.decode("utf-8")
    except (ValueError, UnicodeError):
        return None
    return name if name and encode_name(name) == stem else None


def read_name(path: str) -> str | None:
    """The name recorded in a log's first metadata record, read without a full scan."""
    with open(path, "rb") as f:
        head = f.read(HEADER_SIZE + FRAME.size)
        decode_header(head, path)
        if len(head) < HEADER_SIZE + FRAME.size:
            return None
        length, kind, _, _ = FRAME.unpack_from(head, HEADER_SIZE)
        if kind != RecordKind.METADATA or length > 64 * 1024:
            return None
        try:
            meta = orjson.loads(f.read(length))
        except orjson.JSONDecodeError:
            return None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else None


@dataclass
class _Entry:
    log: UpdateLog
    pins: int = 0


class LogStore:
    """Document name -> UpdateLog, with a bounded cache of open handles.

    `open()` pins a log until `release()`; only unpinned logs are closed to keep at most
    `max_open` handles (pinned ones are never closed under their user, so the bound is
    soft while more than `max_open` are in use). All logs share one group committer.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_open: int = 128,
        durability: Durability | str = Durability.GROUP,
        group_window: float = 0.005,
        compaction: CompactionPolicy = DEFAULT_POLICY,
        auto_compact: bool = True,
    ) -> None:
        if max_open < 1:
            raise ValueError("max_open must be at least 1")
        self.directory = os.fspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.max_open = max_open
        self._durability = Durability(durability)
        self._compaction = compaction
        self._auto_compact = auto_compact
        self._committer = (
            GroupCommitter(group_window) if self._durability is Durability.GROUP else None
        )
        self._open: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False

    def path_for(self, name: str) -> str:
        return os.path.join(self.directory, encode_name(name) + SUFFIX)

    def open(self, name: str) -> UpdateLog:
        """Open (creating if needed) and pin the log of `name`; pair with `release()`."""
        path = self.path_for(name)
        with self._lock:
            if self._closed:
                raise LogError(f"{self.directory}: log store is closed")
            entry = self._open.get(name)
            if entry is None:
                log = UpdateLog(
                    path,
                    durability=self._durability,
                    compaction=self._compaction,
                    auto_compact=self._auto_compact,
                    name=name,
                    committer=self._committer,
                )
                entry = self._open[name] = _Entry(log)
            entry.pins += 1
            self._open.move_to_end(name)
            self._evict_locked()
            return entry.log

    def release(self, name: str) -> None:
        """Unpin a log; it stays cached (open) until evicted or the store closes."""
        with self._lock:
            entry = self._open.get(name)
            if entry is None or entry.pins == 0:
                raise LogError(f"release of {name!r} without a matching open")
            entry.pins -= 1
            self._evict_locked()

    @contextlib.contextmanager
    def checkout(self, name: str) -> Iterator[UpdateLog]:
        log = self.open(name)
        try:
            yield log
        finally:
            self.release(name)

    def _evict_locked(self) -> None:
        excess = len(self._open) - self.max_open
        for name in [n for n, e in self._open.items() if e.pins == 0][: max(excess, 0)]:
            self._open.pop(name).log.close()

    def exists(self, name: str) -> bool:
        return os.path.exists(self.path_for(name))

    def list(self) -> list[str]:
        """Every document name in the directory, sorted."""
        names = []
        for entry in os.scandir(self.directory):
            if not entry.name.endswith(SUFFIX):
                continue
            stem = entry.name[: -len(SUFFIX)]
            name = decode_name(stem)
            if name is None and stem.startswith(_HASHED_PREFIX):
                with contextlib.suppress(OSError, LogError):
                    name = read_name(entry.path)
            if name is not None:
                names.append(name)
        return sorted(names)

    def delete(self, name: str) -> bool:
        """Remove a document's log; False if it did not exist. Refused while checked out."""
        with self._lock:
            entry = self._open.get(name)
            if entry is not None:
                if entry.pins:
                    raise LogInUseError(f"{name!r} is open ({entry.pins} users); release it first")
                self._open.pop(name).log.close()
            try:
                os.remove(self.path_for(name))
            except FileNotFoundError:
                return False
            return True

    def stats(self, name: str) -> LogStats:
        if name not in self._open and not self.exists(name):
            raise KeyError(name)
        with self.checkout(name) as log:
            return log.stats()

    @property
    def open_count(self) -> int:
        return len(self._open)

    def sync(self) -> None:
        """Make every open log durable."""
        with self._lock:
            logs = [e.log for e in self._open.values()]
        for log in logs:
            log.sync()

    def close(self) -> None:
        """Close every log (flushing it) and stop the committer."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            entries = list(self._open.values())
            self._open.clear()
        try:
            for entry in entries:
                entry.log.close()
        finally:
            if self._committer is not None:
                self._committer.close()

    def open_logs(self) -> builtins.list[UpdateLog]:
        """The logs currently open (cached), pinned or not."""
        with self._lock:
            return [entry.log for entry in self._open.values()]

    def abandon(self) -> None:
        """Drop every log as a killed process would (see `UpdateLog.abandon`)."""
        with self._lock:
            self._closed = True
            entries = list(self._open.values())
            self._open.clear()
        for entry in entries:
            entry.log.abandon()
        if self._committer is not None:
            self._committer.close()

    def __enter__(self) -> LogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
