"""`Replica`: the document an edge app holds. Always writable, durable locally first,
synced with a relay whenever a link exists.

The rules (write-ahead, the client-id rule) live in the sans-I/O `LocalReplica`; this
class adds the event loop: the log is opened off the loop, and a `SyncClient` sends local
changes only once the log holds them durably (docs/replica.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as ssl_module
from collections.abc import Callable
from types import TracebackType
from typing import Any

import anyio.to_thread
import pycrdt

from .client import Backoff, SyncClient, SyncStatus
from .local_replica import LocalReplica
from .log import LogStore, UpdateLog
from .protocol import AwarenessChange


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
        self.core: LocalReplica | None = None
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
        core = await anyio.to_thread.run_sync(lambda: LocalReplica(log, name=self.name))
        self.core = core
        self.doc = core.doc
        self.client_id_reused = core.client_id_reused
        if self.url is not None:
            client = SyncClient(
                self.doc,
                self.url,
                before_send=log.wait_durable,
                receiving=core.remote,
                **{k: v for k, v in self._client_options.items() if v is not None},
            )
            core.on_local = lambda: self._send_local(client)
            client.on_status(self._on_status)
            client.on_stored(core.stored)
            self.client = client
            self._task = asyncio.get_running_loop().create_task(client.run())

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
        if self.core is not None:
            self.core.close()
            self.core = None
        if self.log is not None:
            await self.log.wait_durable()
            self.store.release(self.name)
            self.log = None

    def _send_local(self, client: SyncClient) -> None:
        assert self.core is not None
        for update in self.core.take_local():
            client.send_update(update)

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
        return self.core.unflushed if self.core is not None else 0

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
        await client.wait_for(lambda: self.unflushed == 0)

    def _require_client(self) -> SyncClient:
        if self.client is None:
            raise RuntimeError(f"replica {self.name!r} has no relay URL (or is not open)")
        return self.client
