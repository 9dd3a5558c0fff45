"""Hooks through which a relay reports what it does (metrics live outside the library)."""

from __future__ import annotations


class RelayObserver:
    """Every hook is a no-op here; the server's Prometheus metrics override them.

    Hooks run on the event loop's hot path: they must be cheap and must not raise.
    """

    def connection_opened(self, room: str) -> None:
        pass

    def connection_closed(self, room: str, code: int, reason: str) -> None:
        pass

    def handshake_refused(self, status: int) -> None:
        """A handshake was answered with an HTTP error (bad room name, auth)."""

    def room_loaded(self, room: str) -> None:
        pass

    def room_unloaded(self, room: str) -> None:
        pass

    def message_received(self, kind: str, size: int) -> None:
        pass

    def messages_sent(self, count: int, size: int) -> None:
        pass

    def update_appended(self, size: int) -> None:
        pass

    def dropped(self, why: str) -> None:
        """A message was ignored: `unknown_type` or `read_only`."""

    def fanout(self, seconds: float) -> None:
        """Time from receiving an update to handing it to every other peer's socket."""

    def log_synced(self, seconds: float) -> None:
        pass
