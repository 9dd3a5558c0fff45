"""Wiring: store + relay + auth + metrics + HTTP endpoints + signals, for `crdtedge serve`."""

from __future__ import annotations

import asyncio
import logging
import signal
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Response

from crdtedge.log import LogStore
from crdtedge.relay import Authorizer, Relay, RelayConfig

from .auth import TokenAuth
from .config import ServerConfig
from .metrics import PrometheusObserver

logger = logging.getLogger("crdtedge.server")


def make_authorizer(config: ServerConfig) -> Authorizer | None:
    if not config.auth_enabled:
        return None
    public_key = config.auth_public_key.read_bytes() if config.auth_public_key else None
    secret = config.auth_secret.encode() if config.auth_secret else None
    return TokenAuth(hs256_secret=secret, eddsa_public_key=public_key)


async def run(config: ServerConfig) -> None:
    """Serve until SIGTERM or SIGINT, then close peers (1001) and flush every log."""
    observer = PrometheusObserver()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    relay_config = RelayConfig(
        max_message_bytes=config.max_message_bytes,
        max_buffered_bytes=config.max_buffered_bytes,
        idle_unload_seconds=config.idle_unload_seconds,
        compression=config.compression,
    )
    store = LogStore(config.data_dir, durability=config.durability, max_open=config.max_open_logs)
    try:
        relay = Relay(
            store,
            config=relay_config,
            authorize=make_authorizer(config),
            observer=observer,
        )
        relay.add_route("/healthz", lambda c, r: _health(relay, c))
        relay.add_route("/metrics", lambda c, r: _metrics(observer))
        async with relay, relay.serve(config.host, config.port) as server:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                logger.info(
                    "event=listening host=%s port=%d data_dir=%s", host, port, config.data_dir
                )
            await stop.wait()
            logger.info("event=shutting_down")
            server.close()  # stop accepting; open connections are closed with 1001
            await server.wait_closed()
    finally:
        store.close()
    logger.info("event=stopped")


def _health(relay: Relay, connection: ServerConnection) -> Response:
    if relay.serving:
        return connection.respond(HTTPStatus.OK, "ok\n")
    return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "shutting down\n")


def _metrics(observer: PrometheusObserver) -> Response:
    body = observer.render()
    headers = Headers([("Content-Type", observer.content_type), ("Content-Length", str(len(body)))])
    return Response(HTTPStatus.OK, "OK", headers, body)
