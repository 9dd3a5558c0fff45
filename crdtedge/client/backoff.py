"""Reconnect delays: exponential backoff with full jitter, reset after a stable link.

Full jitter (a uniform draw between zero and the exponential bound) spreads a herd of
clients. Clients that lost the same relay at the same instant would still retry in
lockstep for the first few (short) rounds, so once a client has been connected, its
retries are drawn from at least `spread` seconds: 200 clients then make about 10
attempts per 100 ms against a restarting relay instead of 200.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 0.1
    cap: float = 30.0
    factor: float = 2.0
    spread: float = 2.0  # minimum window of retries after a connection was lost
    stable_after: float = 10.0  # a connection that lasted this long resets the backoff
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.cap or self.factor < 1:
            raise ValueError("backoff needs 0 < initial <= cap and factor >= 1")

    def next_delay(self, *, after_drop: bool = False) -> float:
        """Seconds to wait before the next attempt (and count the attempt).

        `after_drop`: the client had a connection before (a relay restart, a partition),
        rather than starting up."""
        bound = min(self.cap, self.initial * self.factor**self.attempt)
        if after_drop:
            bound = max(bound, min(self.spread, self.cap))
        self.attempt += 1
        return self.rng.uniform(0, bound)

    def connected_for(self, seconds: float) -> None:
        """Report how long the last connection lasted; a stable one resets the backoff."""
        if seconds >= self.stable_after:
            self.attempt = 0
