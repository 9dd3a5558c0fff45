"""`SyncClient`: keep one pycrdt Doc in sync with a relay room, through partitions.

It drives the same sans-I/O `SyncSession` as the relay. On every (re)connection it says
hello to the durable-acknowledgement extension, sends step 1 and its awareness, answers
the relay's step 1 with step 2, then streams local updates. Anything that carries local
document content waits for `before_send` first (a replica passes its log's durability
barrier), so a relay never holds a change its author could still forget.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import ssl as ssl_module
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import pycrdt
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ..protocol import (
    AwarenessChange,
    AwarenessQueried,
    AwarenessReceived,
    AwarenessState,
    PermissionDenied,
    ProtocolError,
    Send,
    Stored,
    StoredHello,
    Synced,
    SyncSession,
    decode_state_vector,
    encode,
)
from .backoff import Backoff

logger = logging.getLogger("crdtedge.client")

AWARENESS_RENEW_SECONDS = 15.0  # half of y-protocols' 30 s timeout


class SyncStatus(enum.StrEnum):
    OFFLINE = "offline"
    CONNECTING = "connecting"
    SYNCING = "syncing"  # connected, waiting for the relay's step 2
    SYNCED = "synced"


class SyncRefused(Exception):
    """A permanent failure (401/403, permission denied): retrying would not help."""


async def _no_barrier() -> None:
    return None


class SyncClient:
    def __init__(
        self,
        doc: pycrdt.Doc[Any],
        url: str,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        ssl: ssl_module.SSLContext | None = None,
        backoff: Backoff | None = None,
        resync_interval: float | None = None,
        want_acks: bool = True,
        before_send: Callable[[], Awaitable[None]] = _no_barrier,
        receiving: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
        max_message_bytes: int = 64 * 1024 * 1024,
        open_timeout: float = 10.0,
    ) -> None:
        self.doc = doc
        # Browsers cannot set websocket headers, so relays accept ?token=; so do we.
        self.url = _with_token(url, token) if token else url
        self.headers = dict(headers or {})
        self.ssl = ssl
        self.backoff = backoff or Backoff()
        self.resync_interval = resync_interval
        self.want_acks = want_acks
        self.before_send = before_send
        self.receiving = receiving  # wraps applying remote updates (a replica logs them)
        self.max_message_bytes = max_message_bytes
        self.open_timeout = open_timeout
        self.awareness = AwarenessState()
        self.status = SyncStatus.OFFLINE
        self.error: BaseException | None = None
        self.stored: dict[int, int] = {}  # the relay's durable state vector, when it acks
        self.attempts: list[float] = []  # monotonic times of connection attempts
        self._local_awareness: dict[str, Any] | None = None
        self._outgoing: list[bytes] = []
        self._wake_sender = asyncio.Event()
        self._changed = asyncio.Event()
        self._status_callbacks: list[Callable[[SyncStatus], None]] = []
        self._stored_callbacks: list[Callable[[dict[int, int]], None]] = []
        self._awareness_callbacks: list[Callable[[AwarenessChange], None]] = []
        self._connection: ClientConnection | None = None

    # -- what the app sees -----------------------------------------------------------

    def on_status(self, callback: Callable[[SyncStatus], None]) -> None:
        self._status_callbacks.append(callback)

    def on_stored(self, callback: Callable[[dict[int, int]], None]) -> None:
        """Called with the relay's durable state vector each time it acknowledges."""
        self._stored_callbacks.append(callback)

    def on_awareness(self, callback: Callable[[AwarenessChange], None]) -> None:
        self._awareness_callbacks.append(callback)

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until `predicate()` holds; raises the permanent failure if one happens."""
        while not predicate():
            if self.error is not None:
                raise self.error
            self._changed.clear()
            await self._changed.wait()

    async def synced(self) -> None:
        await self.wait_for(lambda: self.status is SyncStatus.SYNCED)

    def send_update(self, update: bytes) -> None:
        """Queue a local update for the relay. Offline, nothing is queued: the step 2 of the
        next connection carries every local change."""
        if self._connection is not None:
            self._outgoing.append(update)
            self._wake_sender.set()

    def set_awareness(self, state: dict[str, Any] | None) -> None:
        """Set (None: withdraw) our presence; re-announced on every reconnect."""
        self._local_awareness = state
        frame = self.awareness.set_local(self.doc.client_id, state, time.monotonic())
        self._send_soon(frame)

    # -- the connection loop ---------------------------------------------------------

    async def run(self) -> None:
        """Connect, sync, and reconnect with backoff until cancelled or refused."""
        after_drop = False
        while True:
            self._set_status(SyncStatus.CONNECTING)
            self.attempts.append(time.monotonic())
            connected_at: float | None = None
            try:
                async with connect(
                    self.url,
                    additional_headers=self.headers or None,
                    ssl=self.ssl,
                    max_size=self.max_message_bytes,
                    open_timeout=self.open_timeout,
                    compression=None,
                ) as connection:
                    connected_at = time.monotonic()
                    await self._converse(connection)
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (401, 403):
                    body = exc.response.body.decode("utf-8", "replace").strip()
                    self._refuse(f"relay refused the connection ({status}): {body}")
                logger.info("event=connect_failed url=%s status=%d", self.url, status)
            except SyncRefused as exc:
                self._refuse(str(exc))
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
                logger.info("event=disconnected url=%s error=%s", self.url, exc)
            except ProtocolError as exc:
                logger.warning("event=protocol_error url=%s error=%s", self.url, exc)
            finally:
                self._connection = None
                self._forget_peers()
            self._set_status(SyncStatus.OFFLINE)
            if connected_at is not None:
                after_drop = True
                self.backoff.connected_for(time.monotonic() - connected_at)
            await asyncio.sleep(self.backoff.next_delay(after_drop=after_drop))

    async def _converse(self, connection: ClientConnection) -> None:
        self._connection = connection
        session = SyncSession(self.doc)
        self._outgoing.clear()  # our step 2 will carry all of it
        if self.want_acks:
            await connection.send(encode(StoredHello()))
        for frame in session.open():
            await connection.send(frame)
        if self._local_awareness is not None:
            now = time.monotonic()
            await connection.send(
                self.awareness.set_local(self.doc.client_id, self._local_awareness, now)
            )
        self._set_status(SyncStatus.SYNCING)
        helpers = [
            asyncio.create_task(self._send_updates(connection)),
            asyncio.create_task(self._housekeeping(connection, session)),
        ]
        try:
            await self._receive(connection, session)
        finally:  # the connection is over: its helpers go with it
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _receive(self, connection: ClientConnection, session: SyncSession) -> None:
        async for frame in connection:
            if isinstance(frame, str):
                raise ProtocolError("relay sent a text frame", 0)
            with self.receiving():
                events = session.receive(frame)
            for event in events:
                if isinstance(event, Send):  # our step 2: local content, so barrier first
                    await self.before_send()
                    await connection.send(event.frame)
                elif isinstance(event, Synced):
                    self._set_status(SyncStatus.SYNCED)
                elif isinstance(event, Stored):
                    self.stored = decode_state_vector(event.state_vector)
                    for callback in self._stored_callbacks:
                        callback(self.stored)
                    self._changed.set()
                elif isinstance(event, AwarenessReceived):
                    change = self.awareness.apply(event.message, time.monotonic())
                    if change.reply is not None:
                        await connection.send(change.reply)
                    if change.changed:
                        for awareness_callback in self._awareness_callbacks:
                            awareness_callback(change)
                elif isinstance(event, AwarenessQueried):
                    frame_all = self.awareness.encode_all()
                    if frame_all is not None:
                        await connection.send(frame_all)
                elif isinstance(event, PermissionDenied):
                    raise SyncRefused(f"relay denied permission: {event.reason}")

    async def _send_updates(self, connection: ClientConnection) -> None:
        while True:
            await self._wake_sender.wait()
            self._wake_sender.clear()
            batch, self._outgoing = self._outgoing, []
            if not batch:
                continue
            await self.before_send()
            update = batch[0] if len(batch) == 1 else pycrdt.merge_updates(*batch)
            await connection.send(SyncSession.update_frame(update))

    async def _housekeeping(self, connection: ClientConnection, session: SyncSession) -> None:
        """Renew our presence, expire silent peers, and resync periodically if asked."""
        interval = min(AWARENESS_RENEW_SECONDS / 3, self.resync_interval or float("inf"))
        last_resync = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            renewal = self.awareness.renew_local(now)
            if renewal is not None:
                await connection.send(renewal)
            expired = self.awareness.expire(now)
            if expired is not None:
                for callback in self._awareness_callbacks:
                    callback(AwarenessChange(frame=expired))
            if self.resync_interval and now - last_resync >= self.resync_interval:
                last_resync = now
                for frame in session.open():
                    await connection.send(frame)

    def _forget_peers(self) -> None:
        """Offline, we cannot tell who is still there (y-websocket does the same)."""
        remote = [cid for cid in self.awareness.states() if cid != self.doc.client_id]
        if remote:
            self.awareness.remove(remote, time.monotonic())
            for callback in self._awareness_callbacks:
                callback(AwarenessChange(removed=tuple(remote)))

    def _send_soon(self, frame: bytes) -> None:
        connection = self._connection
        if connection is not None:
            asyncio.get_running_loop().create_task(_send_quietly(connection, frame))

    async def say_goodbye(self) -> None:
        """Withdraw our presence while still connected (part of a clean close)."""
        connection = self._connection
        if connection is not None and self._local_awareness is not None:
            frame = self.awareness.set_local(self.doc.client_id, None, time.monotonic())
            await _send_quietly(connection, frame)

    def _refuse(self, message: str) -> None:
        self.error = SyncRefused(message)
        self._set_status(SyncStatus.OFFLINE)
        logger.error("event=sync_refused url=%s error=%s", self.url, message)
        raise self.error

    def _set_status(self, status: SyncStatus) -> None:
        if status is self.status:
            return
        self.status = status
        self._changed.set()
        for callback in self._status_callbacks:
            callback(status)


async def _send_quietly(connection: ClientConnection, frame: bytes) -> None:
    with contextlib.suppress(ConnectionClosed):  # the next connection re-sends it
        await connection.send(frame)


def _with_token(url: str, token: str) -> str:
    parts = urlsplit(url)
    query = (parts.query + "&" if parts.query else "") + urlencode({"token": token})
    return urlunsplit(parts._replace(query=query))
