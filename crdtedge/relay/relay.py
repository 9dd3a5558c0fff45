"""The websocket side of the relay: rooms loaded on demand, peers, auth hook, lifecycle.

Embed it in a gateway or run it through `crdtedge serve`:

    async with Relay(LogStore("./data")) as relay, relay.serve("127.0.0.1", 8765) as server:
        await server.serve_forever()
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any

import anyio
import anyio.to_thread
import pycrdt
from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..log import LogError, LogStore
from ..protocol import ProtocolError
from .observer import RelayObserver
from .room import Room

logger = logging.getLogger("crdtedge.relay")

MAX_ROOM_NAME = 1024  # bytes of URL path; LogStore hashes long names, this bounds abuse
_KINDS = {0: "sync", 1: "awareness", 2: "auth", 3: "query_awareness"}


@dataclass(frozen=True)
class RelayConfig:
    max_message_bytes: int = 16 * 1024 * 1024  # larger frames close the peer with 1009
    max_buffered_bytes: int = 8 * 1024 * 1024  # a peer further behind is cut off (1013)
    idle_unload_seconds: float = 30.0  # a room without peers is flushed and unloaded
    housekeeping_seconds: float = 1.0  # awareness expiry and idle checks
    compression: bool = False  # permessage-deflate costs CPU per peer on every fan-out


@dataclass(frozen=True)
class Grant:
    """What an authorized peer may do in its room."""

    readonly: bool = False
    subject: str | None = None


class Rejected(Exception):
    """Raised by an authorizer to refuse a handshake with an HTTP status."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


#: Decides, from the handshake request and the room name, what a peer may do.
Authorizer = Callable[[Request, str], Grant]
#: Extra plain-HTTP routes served on the same port (e.g. /healthz, /metrics).
HttpRoute = Callable[[ServerConnection, Request], Response]


def room_of(path: str) -> str:
    """The room is the URL path without the leading `/` and the query string
    (as y-websocket and its reference server name rooms; not percent-decoded)."""
    return path[1:].split("?", 1)[0] if path.startswith("/") else path.split("?", 1)[0]


class WebSocketPeer:
    """A websocket connection seen by a room: non-blocking pushes, bounded backlog."""

    #: A cut-off peer gets this long to take the close frame before the socket is dropped.
    CLOSE_GRACE = 1.0

    def __init__(
        self, connection: ServerConnection, label: str, limit: int, observer: RelayObserver
    ) -> None:
        self.connection = connection
        self.label = label
        self.closed_with: int | None = None  # the code we closed with, if we did
        self._limit = limit
        self._observer = observer
        self._closing: asyncio.Task[None] | None = None

    def push(self, frame: bytes) -> None:
        if self._closing is not None:
            return
        if self.connection.transport.get_write_buffer_size() > self._limit:
            logger.warning("event=slow_consumer peer=%s backlog_bytes>%d", self.label, self._limit)
            self.close(1013, "slow consumer: fell too far behind, reconnect to resync")
            return
        broadcast([self.connection], frame)
        self._observer.messages_sent(1, len(frame))

    def close(self, code: int, reason: str) -> None:
        if self._closing is None:
            self.closed_with = code
            self._closing = asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(self.connection.close(code, _truncate(reason)), self.CLOSE_GRACE)
        except TimeoutError:
            # A stalled reader never reads the close frame; do not keep its backlog.
            self.connection.transport.abort()


class Relay:
    """Rooms, peers and their lifecycle; owns no socket until `serve()`."""

    def __init__(
        self,
        store: LogStore,
        *,
        config: RelayConfig | None = None,
        authorize: Authorizer | None = None,
        observer: RelayObserver | None = None,
    ) -> None:
        self.store = store
        self.config = config or RelayConfig()
        self.observer = observer or RelayObserver()
        self._authorize = authorize
        self._routes: dict[str, HttpRoute] = {}
        self._rooms: dict[str, Room] = {}
        self._loading: dict[str, asyncio.Future[Room]] = {}
        # A handshake can still fail after auth passed: weak keys let its grant go with it.
        self._grants: weakref.WeakKeyDictionary[ServerConnection, Grant] = (
            weakref.WeakKeyDictionary()
        )
        self._counter = itertools.count(1)
        self._housekeeper: asyncio.Task[None] | None = None
        self._ackers: set[asyncio.Task[None]] = set()
        self.serving = False

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> Relay:
        # A plain task, not a task group: the relay may be entered and exited from
        # different tasks (fixtures, embedding gateways); it is cancelled on exit.
        self._housekeeper = asyncio.get_running_loop().create_task(self._housekeeping())
        self.serving = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.serving = False
        if self._housekeeper is not None:
            self._housekeeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeper
        for room in list(self._rooms.values()):
            room.close_all(1001, "relay shutting down")
            await self._unload(room)
        await anyio.to_thread.run_sync(self.store.sync)
        logger.info("event=relay_stopped rooms_flushed=ok")

    def serve(self, host: str, port: int, **kwargs: Any) -> Server | Any:
        """A websockets server (use as `async with`) speaking y-websocket for this relay."""
        return serve(
            self.handler,
            host,
            port,
            process_request=self.process_request,
            max_size=self.config.max_message_bytes,
            compression="deflate" if self.config.compression else None,
            **kwargs,
        )

    def add_route(self, path: str, route: HttpRoute) -> None:
        """Serve a plain-HTTP GET on the websocket port (health checks, metrics)."""
        self._routes[path] = route

    @property
    def rooms(self) -> dict[str, Room]:
        return self._rooms

    # -- handshake -------------------------------------------------------------------

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Serve plain-HTTP routes, then validate the room name and authorize the peer."""
        path = request.path.split("?", 1)[0]
        route = self._routes.get(path)
        if route is not None and "upgrade" not in request.headers.get("Connection", "").lower():
            return route(connection, request)
        room = room_of(request.path)
        if not room:
            return self._refuse(connection, HTTPStatus.BAD_REQUEST, "no room: connect to /<room>")
        if len(room.encode("utf-8", "surrogatepass")) > MAX_ROOM_NAME:
            return self._refuse(connection, HTTPStatus.BAD_REQUEST, "room name too long")
        if self._authorize is not None:
            try:
                self._grants[connection] = self._authorize(request, room)
            except Rejected as exc:
                logger.info("event=auth_refused room=%r status=%d why=%s", room, exc.status, exc)
                return self._refuse(connection, exc.status, exc.reason)
        return None

    def _refuse(self, connection: ServerConnection, status: HTTPStatus, reason: str) -> Response:
        self.observer.handshake_refused(int(status))
        return connection.respond(status, reason + "\n")

    # -- connections -----------------------------------------------------------------

    async def handler(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        name = room_of(connection.request.path)
        grant = self._grants.pop(connection, Grant())
        label = f"{_address(connection)}#{next(self._counter)}"
        peer = WebSocketPeer(connection, label, self.config.max_buffered_bytes, self.observer)
        try:
            room = await self._room(name)
        except LogError as exc:
            logger.error("event=room_unavailable room=%r peer=%s error=%s", name, label, exc)
            await connection.close(1011, "room storage unavailable")
            return
        self.observer.connection_opened(name)
        logger.info("event=peer_joined room=%r peer=%s readonly=%s", name, label, grant.readonly)
        room.attach(peer, readonly=grant.readonly)
        code, reason = 1000, ""
        try:
            async for message in connection:
                if isinstance(message, str):
                    code, reason = 1003, "text frames are not y-websocket messages"
                    break
                self.observer.message_received(_KINDS.get(message[0], "other"), len(message))
                try:
                    room.receive(peer, message)
                except ProtocolError as exc:
                    code, reason = 1007, f"malformed message: {exc}"
                    break
                except LogError as exc:
                    logger.error("event=room_failed room=%r error=%s", name, exc)
                    code, reason = 1011, "room storage failed"
                    room.close_all(1011, reason)
                    break
        except ConnectionClosed:
            pass
        finally:
            room.detach(peer)
        if code != 1000:
            logger.warning(
                "event=peer_refused room=%r peer=%s code=%d %s", name, label, code, reason
            )
            await connection.close(code, _truncate(reason))
        closed_with = peer.closed_with or connection.close_code or code
        self.observer.connection_closed(name, closed_with, reason)
        logger.info("event=peer_left room=%r peer=%s code=%s", name, label, closed_with)

    async def _room(self, name: str) -> Room:
        room = self._rooms.get(name)
        if room is not None:
            return room
        loading = self._loading.get(name)
        if loading is not None:
            return await asyncio.shield(loading)
        future: asyncio.Future[Room] = asyncio.get_running_loop().create_future()
        self._loading[name] = future
        try:
            room = await self._load(name)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters, if any, get it re-raised
            raise
        finally:
            del self._loading[name]
        future.set_result(room)
        return room

    async def _load(self, name: str) -> Room:
        """Open the log and read its state off the event loop (a big log takes a while)."""
        log = await anyio.to_thread.run_sync(self.store.open, name)
        try:
            state = await anyio.to_thread.run_sync(log.read_state)
        except BaseException:
            self.store.release(name)
            raise
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        doc.apply_update(state)
        loop = asyncio.get_running_loop()
        room = Room(
            name,
            log,
            doc,
            schedule=loop.call_later,
            acks_wanted=self._start_acks,
            observer=self.observer,
        )
        self._rooms[name] = room
        self.observer.room_loaded(name)
        logger.info("event=room_loaded room=%r bytes=%d", name, len(state))
        return room

    def _start_acks(self, room: Room) -> None:
        task = asyncio.get_running_loop().create_task(self._acknowledge(room))
        self._ackers.add(task)
        task.add_done_callback(self._ackers.discard)

    async def _acknowledge(self, room: Room) -> None:
        """Tell peers that asked what the room's log holds durably, once it does."""
        await asyncio.sleep(0)  # let the frames of this event-loop turn arrive first
        while room.unacked:
            seq, state_vector = room.ack_round()
            started = time.perf_counter()
            try:
                await room.log.wait_durable(seq)
            except LogError as exc:
                logger.error("event=room_failed room=%r error=%s", room.name, exc)
                room.close_all(1011, "room storage failed")
                return
            self.observer.log_synced(time.perf_counter() - started)
            room.send_acks(seq, state_vector)

    async def _unload(self, room: Room) -> None:
        if self._rooms.get(room.name) is room:
            del self._rooms[room.name]
        room.flush()
        started = time.perf_counter()
        try:
            await room.log.wait_durable()
        finally:
            self.store.release(room.name)
        self.observer.log_synced(time.perf_counter() - started)
        self.observer.room_unloaded(room.name)
        logger.info("event=room_unloaded room=%r", room.name)

    async def _housekeeping(self) -> None:
        while True:
            await anyio.sleep(self.config.housekeeping_seconds)
            for room in list(self._rooms.values()):
                if room.housekeeping(self.config.idle_unload_seconds):
                    await self._unload(room)


def _address(connection: ServerConnection) -> str:
    address = connection.remote_address
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)


def _truncate(reason: str, limit: int = 123) -> str:
    """Close reasons are limited to 123 bytes of UTF-8."""
    data = reason.encode("utf-8")
    return reason if len(data) <= limit else data[:limit].decode("utf-8", "ignore")
