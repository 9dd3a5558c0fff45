"""`Counter`: increments and decrements from any replica, exact after merge."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .binding import MapType, Unsubscribe
from .errors import LayoutError, SchemaError
from .jsonvalue import check_count, read_int


@dataclass(frozen=True)
class CounterChanged:
    """The counter's value before and after a transaction (local or remote)."""

    old: int
    new: int


class Counter(MapType):
    """A counter that any replica can increment and decrement.

    Merge rule: each client counts in its own slot (key: its client id; value: its total
    increments and decrements), written only by that client. The value is the sum over
    slots of `inc - dec`, so every change counts exactly once after merge.
    """

    TYPE = "counter"

    @property
    def value(self) -> int:
        return self._total(self._entries())

    def __int__(self) -> int:
        return self.value

    def increment(self, by: int = 1) -> None:
        """Add `by` (a non-negative int)."""
        self._count(check_count(by, "Counter.increment"), 0)

    def decrement(self, by: int = 1) -> None:
        """Subtract `by` (a non-negative int)."""
        self._count(0, check_count(by, "Counter.decrement"))

    def to_py(self) -> int:
        return self.value

    def _fill(self, initial: int, where: str) -> None:
        if not isinstance(initial, int) or isinstance(initial, bool):
            raise SchemaError(f"{where}: a Counter starts from an int, got {initial!r}")
        if initial >= 0:
            self.increment(initial)
        else:
            self.decrement(-initial)

    def contributions(self) -> dict[int, int]:
        """Each client's net contribution (`inc - dec`), by client id."""
        return {client: inc - dec for client, (inc, dec) in self._slots(self._entries()).items()}

    def observe(self, callback: Callable[[CounterChanged], None]) -> Unsubscribe:
        """Call `callback` whenever the value changes."""

        def report(old: int, new: int) -> None:
            if old != new:
                callback(CounterChanged(old, new))

        return self._observe_state(self._total, report)

    def _count(self, inc: int, dec: int) -> None:
        if not inc and not dec:
            return
        with self._transaction():
            key = str(self._doc.client_id)
            entries = self._stamp()
            old_inc, old_dec = _slot(key, entries[key]) if key in entries else (0, 0)
            self._map[key] = {"inc": old_inc + inc, "dec": old_dec + dec}

    @classmethod
    def _total(cls, entries: dict[str, Any]) -> int:
        return sum(inc - dec for inc, dec in cls._slots(entries).values())

    @staticmethod
    def _slots(entries: dict[str, Any]) -> dict[int, tuple[int, int]]:
        slots = {}
        for key, value in entries.items():
            if not key.isdigit():
                raise LayoutError(f"counter slot key {key!r} is not a client id")
            slots[int(key)] = _slot(key, value)
        return slots


def _slot(key: str, value: Any) -> tuple[int, int]:
    if not isinstance(value, dict):
        raise LayoutError(f"counter slot {key!r} is {value!r}, not {{'inc': n, 'dec': m}}")
    return (
        read_int(value.get("inc", 0), f"counter slot {key!r} inc"),
        read_int(value.get("dec", 0), f"counter slot {key!r} dec"),
    )
