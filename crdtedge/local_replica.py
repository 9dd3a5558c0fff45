"""`LocalReplica`: the sans-I/O heart of a replica. A Doc whose every change is logged first.

No sockets, no event loop: the async `Replica` wraps it with a sync client, and the
simulated network in `crdtedge.testing` drives it directly, so both run the same rules.

The rules (docs/replica.md):
- write-ahead: every transaction is appended to the update log in the Doc's observer;
  local ones are also queued for the relay, to be sent only once the log holds them
  durably (the I/O layer's job: `log.wait_durable()` or `log.sync()`, then `take_local()`);
- client ids: the recorded one is kept only while the log proves it is complete.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import pycrdt

from .log import UpdateLog
from .protocol import decode_state_vector

logger = logging.getLogger("crdtedge.replica")


class LocalReplica:
    def __init__(
        self,
        log: UpdateLog,
        *,
        name: str | None = None,
        on_local: Callable[[], None] | None = None,
        new_client_id: Callable[[], int] | None = None,
    ) -> None:
        self.log = log
        self.on_local = on_local  # told after each local transaction (e.g. to wake a sender)
        self.name = name or log.name or log.path
        state = log.read_state()
        recorded = log.metadata().get("client_id")
        self.client_id_reused = isinstance(recorded, int) and self.log_is_complete()
        if self.client_id_reused:
            self.doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=recorded)
        else:
            # A fresh client id (random unless the caller draws it), recorded before any edit.
            fresh = new_client_id() if new_client_id is not None else None
            self.doc = pycrdt.Doc() if fresh is None else pycrdt.Doc(client_id=fresh)
            log.append_metadata({"client_id": self.doc.client_id})
            log.sync()
            if recorded is not None or log.recovery is not None:
                why = "torn tail" if log.recovery is not None else "log was salvaged"
                logger.warning("event=fresh_client_id doc=%r reason=%s", self.name, why)
        self.doc.apply_update(state)
        self._receiving = False
        self._local: list[bytes] = []  # local updates not yet taken for sending
        self._unflushed: deque[int] = deque()  # end clocks of changes not yet stored upstream
        own = self.own_clock()
        if own:  # changes from before the restart: unknown whether the relay has them
            self._unflushed.append(own)
        self._subscription: pycrdt.Subscription | None = self.doc.observe(self._on_transaction)

    def log_is_complete(self) -> bool:
        """Whether the log proves it holds every change this replica made: it was not
        torn (a salvage or a new log leave no client id to keep)."""
        return self.log.recovery is None

    @property
    def client_id(self) -> int:
        return self.doc.client_id

    @contextlib.contextmanager
    def remote(self) -> Iterator[None]:
        """Apply updates that came from elsewhere: logged, but not sent back."""
        self._receiving = True
        try:
            yield
        finally:
            self._receiving = False

    @property
    def receiving(self) -> bool:
        return self._receiving

    def _on_transaction(self, event: Any) -> None:
        update: bytes = event.update
        self.log.append(update)
        if self._receiving:
            return
        self._local.append(update)
        # The doc cannot be read inside its own observer; the transaction's after-state says
        # how far it took our clock (not the update's: pycrdt.get_state() of an update that
        # does not start at clock 0 is empty).
        self._unflushed.append(self.own_clock(event.after_state))
        if self.on_local is not None:
            self.on_local()

    def take_local(self) -> list[bytes]:
        """The local updates since the last call. Send them only once the log is durable
        through everything appended so far."""
        local, self._local = self._local, []
        return local

    def own_clock(self, state_vector: bytes | None = None) -> int:
        state = self.doc.get_state() if state_vector is None else state_vector
        return decode_state_vector(state).get(self.doc.client_id, 0)

    def stored(self, clocks: dict[int, int]) -> None:
        """The relay acknowledged `clocks` (its durable state vector)."""
        upto = clocks.get(self.client_id, 0)
        while self._unflushed and self._unflushed[0] <= upto:
            self._unflushed.popleft()

    @property
    def unflushed(self) -> int:
        """Local changes the relay has not acknowledged as durable."""
        return len(self._unflushed)

    def close(self) -> None:
        """Stop logging this Doc's changes (the log itself belongs to the caller)."""
        if self._subscription is not None:
            self.doc.unobserve(self._subscription)
            self._subscription = None
