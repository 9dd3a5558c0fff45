"""Summaries of readings (count, sum, min, max) and how they combine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import LayoutError
from .jsonvalue import read_int, read_number


@dataclass(frozen=True)
class Summary:
    """count, total, minimum and maximum of some readings (mean derived)."""

    count: int
    total: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, value: float) -> Summary:
        return cls(1, value, value, value)

    @property
    def mean(self) -> float:
        return self.total / self.count

    def __add__(self, other: Summary) -> Summary:
        return Summary(
            self.count + other.count,
            self.total + other.total,
            min(self.minimum, other.minimum),
            max(self.maximum, other.maximum),
        )

    def to_yjs(self) -> list[float]:
        """Stored as `[count, sum, min, max]`."""
        return [self.count, self.total, self.minimum, self.maximum]

    @classmethod
    def from_yjs(cls, stored: Any, where: str) -> Summary:
        if not isinstance(stored, list) or len(stored) != 4:
            raise LayoutError(f"{where}: expected [count, sum, min, max], found {stored!r}")
        count, total, low, high = stored
        return cls(
            read_int(count, f"{where} count"),
            read_number(total, f"{where} sum"),
            read_number(low, f"{where} min"),
            read_number(high, f"{where} max"),
        )


def add_into(buckets: dict[int, Summary], start: int, summary: Summary) -> None:
    """Combine `summary` into `buckets[start]`."""
    previous = buckets.get(start)
    buckets[start] = summary if previous is None else previous + summary
