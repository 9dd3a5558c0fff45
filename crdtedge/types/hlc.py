"""Hybrid logical clock timestamps: wall time, a logical counter, and a client id."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


def system_wall_ms() -> int:
    """Milliseconds since the Unix epoch, from the system clock."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, order=True)
class Timestamp:
    """A hybrid logical clock reading; ordered by wall time, then counter, then client."""

    wall_ms: int
    counter: int
    client: int


class HybridClock:
    """A hybrid logical clock (Kulkarni et al., 2014).

    `tick()` returns a timestamp greater than every one this clock issued or `observe()`d,
    and as close to the wall clock as that allows: a node whose clock lags still orders its
    writes after everything it has seen, and the counter separates writes within one
    millisecond. Share one clock between the registers of a node; inject `wall_ms` in tests.
    """

    def __init__(self, wall_ms: Callable[[], int] = system_wall_ms) -> None:
        self._wall_ms = wall_ms
        self._last = (0, 0)

    def wall_ms(self) -> int:
        """This clock's wall time in ms, e.g. to stamp other data of the same node."""
        return self._wall_ms()

    def observe(self, timestamp: Timestamp) -> None:
        """Advance past a timestamp seen elsewhere (remote writes, messages)."""
        self._last = max(self._last, (timestamp.wall_ms, timestamp.counter))

    def tick(self, client: int) -> Timestamp:
        """A new timestamp for a write by `client`."""
        wall, counter = self._last
        now = self.wall_ms()
        self._last = (now, 0) if now > wall else (wall, counter + 1)
        return Timestamp(*self._last, client)
