"""`Replica`: the document an edge app holds. Always writable, durable locally first,
synced with a relay whenever a link exists.

Write-ahead: every local transaction is appended to the document's update log before it
can be sent anywhere, and nothing carrying local content is sent before the log says it
is durable. So a crash can only lose changes nobody else has seen, and the replica may
keep its client id across restarts. It takes a fresh one when its log cannot prove it is
complete: a new or missing log, a torn tail, or a salvage (docs/replica.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as ssl_module
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any

import anyio.to_thread
import pycrdt

from .client import Backoff, SyncClient, SyncStatus
from .log import LogStore, UpdateLog
from .protocol import AwarenessChange, decode_state_vector

logger = logging.getLogger("crdtedge.replica")


class Replica:
    """A named document in a `LogStore`, optionally synced with `url` (ws://host/room)."""

    def __init__(
        self,
        store: LogStore,
        name: str,
        *,
        url: str | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        ssl: ssl_module.SSLContext | None = None,
        backoff: Backoff | None = None,
        resync_interval: float | None = None,
    ) -> None:
        self.store = store
        self.name = name
        self._client_options: dict[str, Any] = {
            "token": token,
            "headers": headers,
            "ssl": ssl,
            "backoff": backoff,
            "resync_interval": resync_interval,
        }
        self.url = url
        self.log: UpdateLog | None = None
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc()
        self.client: SyncClient | None = None
        self.client_id_reused = False
        self._task: asyncio.Task[None] | None = None
        self._unflushed: deque[int] = deque()  # end clocks of local changes not yet stored
        self._status_callbacks: list[Callable[[SyncStatus], None]] = []

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> Replica:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Load the document from its log and, with a URL, start syncing."""
        log = await anyio.to_thread.run_sync(self.store.open, self.name)
        self.log = log
        state = await anyio.to_thread.run_sync(log.read_state)
        meta = await anyio.to_thread.run_sync(log.metadata)
        recorded = meta.get("client_id")
        if isinstance(recorded, int) and log.recovery is None:
            self.doc = pycrdt.Doc(client_id=recorded)
            self.client_id_reused = True
        else:
            self.doc = pycrdt.Doc()  # a fresh, random client id
            log.append_metadata({"client_id": self.doc.client_id})
            await log.wait_durable()
            if recorded is not None or log.recovery is not None:
                logger.warning(
                    "event=fresh_client_id doc=%r reason=%s",
                    self.name,
                    "torn tail" if log.recovery is not None else "log was salvaged",
                )
        self.doc.apply_update(state)
        own = self._own_clock()
        if own:  # changes from before the restart: unknown whether the relay has them
            self._unflushed.append(own)
        self.doc.observe(self._on_transaction)
        if self.url is not None:
            self.client = SyncClient(
                self.doc,
                self.url,
                before_send=log.wait_durable,
                **{k: v for k, v in self._client_options.items() if v is not None},
            )
            self.client.on_status(self._on_status)
            self.client.on_stored(self._on_stored)
            self._task = asyncio.get_running_loop().create_task(self.client.run())

    async def close(self) -> None:
        """Stop syncing (withdrawing our presence) and make the log durable."""
        if self.client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.say_goodbye(), 1.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self.log is not None:
            await self.log.wait_durable()
            self.store.release(self.name)
            self.log = None

    # -- the write-ahead path --------------------------------------------------------

    def _on_transaction(self, event: Any) -> None:
        update: bytes = event.update
        if self.log is None:
            return
        self.log.append(update)
        if self.client is not None and self.client.receiving:
            return  # a remote update: persisted, not sent back
        # The doc cannot be read inside its own observer; the update's state vector says
        # how far this transaction took our clock.
        self._unflushed.append(self._own_clock(pycrdt.get_state(update)))
        if self.client is not None:
            self.client.send_update(update)

    def _own_clock(self, state_vector: bytes | None = None) -> int:
        state = self.doc.get_state() if state_vector is None else state_vector
        return decode_state_vector(state).get(self.doc.client_id, 0)

    def _on_stored(self, stored: dict[int, int]) -> None:
        upto = stored.get(self.doc.client_id, 0)
        while self._unflushed and self._unflushed[0] <= upto:
            self._unflushed.popleft()

    def _on_status(self, status: SyncStatus) -> None:
        for callback in self._status_callbacks:
            callback(status)

    # -- what the app sees -----------------------------------------------------------

    @property
    def client_id(self) -> int:
        return self.doc.client_id

    @property
    def status(self) -> SyncStatus:
        return self.client.status if self.client is not None else SyncStatus.OFFLINE

    @property
    def unflushed(self) -> int:
        """Local changes the relay has not yet acknowledged as durable in its log."""
        return len(self._unflushed)

    def on_status(self, callback: Callable[[SyncStatus], None]) -> None:
        self._status_callbacks.append(callback)

    def on_awareness(self, callback: Callable[[AwarenessChange], None]) -> None:
        self._require_client().on_awareness(callback)

    def set_awareness(self, state: dict[str, Any] | None) -> None:
        self._require_client().set_awareness(state)

    @property
    def peers(self) -> dict[int, dict[str, Any]]:
        """Awareness states of the other peers in the room."""
        client = self._require_client()
        return {k: v for k, v in client.awareness.states().items() if k != self.client_id}

    async def synced(self) -> None:
        """Wait until connected and caught up with the relay."""
        await self._require_client().synced()

    async def flushed(self) -> None:
        """Wait until the relay has acknowledged every local change as durable.

        Needs a crdtedge relay (the acknowledgement is a protocol extension); against
        other y-websocket servers it waits forever, so give it a timeout there.
        """
        client = self._require_client()
        await client.wait_for(lambda: not self._unflushed)

    def _require_client(self) -> SyncClient:
        if self.client is None:
            raise RuntimeError(f"replica {self.name!r} has no relay URL (or is not open)")
        return self.client
