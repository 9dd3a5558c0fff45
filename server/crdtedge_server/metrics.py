"""Prometheus metrics for the relay, in a registry of its own (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from crdtedge.relay import RelayObserver

_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


class PrometheusObserver(RelayObserver):
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge("crdtedge_connections", "Open peer connections", registry=r)
        self.connections_total = Counter(
            "crdtedge_connections_opened", "Peer connections accepted", registry=r
        )
        self.closes = Counter(
            "crdtedge_connections_closed",
            "Closed or refused connections by close code or HTTP status",
            ["code"],
            registry=r,
        )
        self.rooms = Gauge("crdtedge_rooms_loaded", "Rooms loaded in memory", registry=r)
        self.messages_in = Counter(
            "crdtedge_messages_received", "Messages received", ["kind"], registry=r
        )
        self._messages_in_by_kind: dict[str, Counter] = {}  # labels() costs; this is per message
        self.bytes_in = Counter("crdtedge_received_bytes", "Bytes received", registry=r)
        self.messages_out = Counter("crdtedge_messages_sent", "Messages sent", registry=r)
        self.bytes_out = Counter("crdtedge_sent_bytes", "Bytes sent", registry=r)
        self.appended = Counter(
            "crdtedge_updates_appended", "Updates appended to room logs", registry=r
        )
        self.dropped_messages = Counter(
            "crdtedge_messages_dropped", "Messages ignored, by reason", ["reason"], registry=r
        )
        self.fanout_seconds = Histogram(
            "crdtedge_fanout_seconds",
            "Time from receiving an update to handing it to every other peer",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.log_sync_seconds = Histogram(
            "crdtedge_log_sync_seconds", "Time to make a room log durable", registry=r
        )

    content_type = CONTENT_TYPE_LATEST

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def connection_opened(self, room: str) -> None:
        self.connections.inc()
        self.connections_total.inc()

    def connection_closed(self, room: str, code: int, reason: str) -> None:
        self.connections.dec()
        self.closes.labels(str(code)).inc()

    def handshake_refused(self, status: int) -> None:
        self.closes.labels(str(status)).inc()

    def room_loaded(self, room: str) -> None:
        self.rooms.inc()

    def room_unloaded(self, room: str) -> None:
        self.rooms.dec()

    def message_received(self, kind: str, size: int) -> None:
        counter = self._messages_in_by_kind.get(kind)
        if counter is None:
            counter = self._messages_in_by_kind[kind] = self.messages_in.labels(kind)
        counter.inc()
        self.bytes_in.inc(size)

    def messages_sent(self, count: int, size: int) -> None:
        self.messages_out.inc(count)
        self.bytes_out.inc(size)

    def update_appended(self, size: int) -> None:
        self.appended.inc()

    def dropped(self, why: str) -> None:
        self.dropped_messages.labels(why).inc()

    def fanout(self, seconds: float) -> None:
        self.fanout_seconds.observe(seconds)

    def log_synced(self, seconds: float) -> None:
        self.log_sync_seconds.observe(seconds)
