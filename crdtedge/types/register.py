"""`Register`: a value whose newest write wins, by hybrid logical clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

import pycrdt

from .binding import Container, MapType, Unsubscribe
from .errors import LayoutError
from .hlc import HybridClock, Timestamp
from .jsonvalue import JSONValue, check_json, from_yjs, read_int


@dataclass(frozen=True)
class Entry:
    """A write: its value and when (and by whom, `timestamp.client`) it was made."""

    value: Any
    timestamp: Timestamp


@dataclass(frozen=True)
class RegisterChanged:
    """The winning write changed (`old` is None when the register was unset)."""

    old: Entry | None
    new: Entry


class Register(MapType):
    """A last-writer-wins register of a JSON value, ordered by hybrid logical clock.

    Merge rule: each client keeps its latest write, with its timestamp, in its own slot
    (key: its client id); the value is the write with the greatest timestamp
    (wall ms, counter, client id). A write is stamped after everything the register
    holds, so a node whose clock lags still overrides what it has seen; only truly
    concurrent writes are decided by wall time, then counter, then client id.
    """

    TYPE = "register"

    def __init__(
        self, container: Container, name: str, *, clock: HybridClock | None = None
    ) -> None:
        self.clock = clock if clock is not None else HybridClock()
        super().__init__(container, name)

    @classmethod
    def _bind(cls, ymap: pycrdt.Map[Any]) -> Self:
        bound = super()._bind(ymap)
        bound.clock = HybridClock()
        return bound

    def set(self, value: JSONValue) -> Timestamp:
        """Write `value`; returns the write's timestamp."""
        stored = check_json(value, "Register value")
        with self._transaction():
            winner = _winner(self._stamp())
            if winner is not None:
                self.clock.observe(winner.timestamp)
            stamp = self.clock.tick(self._doc.client_id)
            self._map[str(stamp.client)] = {
                "wall": stamp.wall_ms,
                "counter": stamp.counter,
                "value": stored,
            }
        return stamp

    @property
    def entry(self) -> Entry | None:
        """The winning write, or None if the register was never written."""
        return _winner(self._entries())

    @property
    def value(self) -> Any:
        """The winning value (None if never written)."""
        entry = self.entry
        return None if entry is None else entry.value

    @property
    def timestamp(self) -> Timestamp | None:
        entry = self.entry
        return None if entry is None else entry.timestamp

    @property
    def writer(self) -> int | None:
        """The client id that made the winning write."""
        entry = self.entry
        return None if entry is None else entry.timestamp.client

    def to_py(self) -> Any:
        return self.value

    def _fill(self, initial: JSONValue, where: str) -> None:
        self.set(initial)

    def observe(self, callback: Callable[[RegisterChanged], None]) -> Unsubscribe:
        """Call `callback` whenever the winning write changes."""

        def report(old: Entry | None, new: Entry | None) -> None:
            if new is not None and old != new:
                callback(RegisterChanged(old=old, new=new))

        return self._observe_state(_winner, report)


def _winner(entries: dict[str, Any]) -> Entry | None:
    return max(
        (_entry(key, slot) for key, slot in entries.items()),
        default=None,
        key=lambda entry: entry.timestamp,
    )


def _entry(key: str, slot: Any) -> Entry:
    if not key.isdigit() or not isinstance(slot, dict) or "value" not in slot:
        raise LayoutError(f"register slot {key!r}: expected {{wall, counter, value}}, got {slot!r}")
    stamp = Timestamp(
        read_int(slot.get("wall"), f"register slot {key!r} wall"),
        read_int(slot.get("counter"), f"register slot {key!r} counter"),
        int(key),
    )
    return Entry(from_yjs(slot["value"]), stamp)
