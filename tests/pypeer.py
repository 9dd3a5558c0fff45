"""An in-process relay on a free loopback port, and Python peers that speak y-websocket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pycrdt
from websockets.asyncio.client import ClientConnection, connect

from crdtedge.log import LogStore
from crdtedge.protocol import (
    AwarenessReceived,
    AwarenessState,
    DocUpdated,
    Send,
    Synced,
    SyncSession,
)
from crdtedge.relay import Relay


@dataclass
class PyPeer:
    """A pycrdt Doc synced through a real websocket, driven by our sans-I/O session."""

    connection: ClientConnection
    doc: pycrdt.Doc[Any] = field(default_factory=pycrdt.Doc)
    awareness: AwarenessState = field(default_factory=AwarenessState)
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    received: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.session = SyncSession(self.doc)
        self._local: list[bytes] = []
        self.doc.observe(self._on_local)
        self._applying = False

    def _on_local(self, event: Any) -> None:
        if not self._applying:
            self._local.append(event.update)

    @property
    def text(self) -> pycrdt.Text:
        return self.doc.get("text", type=pycrdt.Text)

    async def start(self) -> None:
        for frame in self.session.open():
            await self.connection.send(frame)
        asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for frame in self.connection:
                assert isinstance(frame, bytes)
                self.received.append(frame)
                self._applying = True
                try:
                    events = self.session.receive(frame)
                finally:
                    self._applying = False
                for event in events:
                    if isinstance(event, Send):
                        await self.connection.send(event.frame)
                    elif isinstance(event, Synced):
                        self.synced.set()
                    elif isinstance(event, DocUpdated):
                        self.changed.set()
                    elif isinstance(event, AwarenessReceived):
                        self.awareness.apply(event.message, 0.0)
                        self.changed.set()

    async def push_local(self) -> None:
        """Send the updates made locally since the last call."""
        local, self._local = self._local, []
        for update in local:
            await self.connection.send(SyncSession.update_frame(update))

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                if predicate():
                    return
                await self.changed.wait()


@dataclass
class RelayHandle:
    relay: Relay
    port: int
    data: Path

    def url(self, room: str) -> str:
        return f"ws://127.0.0.1:{self.port}/{room}"

    @contextlib.asynccontextmanager
    async def peer(self, room: str, **kwargs: Any) -> AsyncIterator[PyPeer]:
        async with connect(self.url(room), **kwargs) as connection:
            peer = PyPeer(connection)
            await peer.start()
            yield peer


@contextlib.asynccontextmanager
async def running_relay(data: Path, **relay_kwargs: Any) -> AsyncIterator[RelayHandle]:
    store = LogStore(data)
    try:
        async with (
            Relay(store, **relay_kwargs) as relay,
            relay.serve("127.0.0.1", 0) as server,
        ):
            port = next(iter(server.sockets)).getsockname()[1]
            yield RelayHandle(relay, port, data)
    finally:
        store.close()
