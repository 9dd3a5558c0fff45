"""Group commit: one background thread makes many logs' appends durable in batches.

Appends in `group` mode return at once; the first append after a flush wakes the
committer, which waits `window` seconds to gather more appends, then writes and fsyncs
every log that has pending records. One committer can serve a whole `LogStore`, so a
relay with a thousand rooms still has one flushing thread, owned and stopped by the store.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

logger = logging.getLogger("crdtedge.log")


class Committable(Protocol):
    def commit(self) -> None: ...


class GroupCommitter:
    """The owner of the flushing thread; `close()` stops it after a last flush."""

    def __init__(self, window: float = 0.005) -> None:
        if window < 0:
            raise ValueError("group commit window must be >= 0 seconds")
        self.window = window
        self._pending: set[Committable] = set()
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="crdtedge-group-commit", daemon=True)
        self._thread.start()

    def wake(self, log: Committable) -> None:
        """Called by a log on its first append after a commit."""
        with self._lock:
            self._pending.add(log)
        self._wakeup.set()

    def _run(self) -> None:
        while True:
            self._wakeup.wait()
            if not self._stopping.is_set():
                self._stopping.wait(self.window)  # gather the appends of one window
            self._wakeup.clear()
            with self._lock:
                pending, self._pending = self._pending, set()
            for log in pending:
                try:
                    log.commit()
                except Exception:
                    # The log remembers the failure and raises it to its own callers.
                    logger.exception("group commit failed for %r", log)
            if self._stopping.is_set() and not self._pending:
                return

    def close(self) -> None:
        """Flush what is pending and stop the thread."""
        self._stopping.set()
        self._wakeup.set()
        self._thread.join()

    def __enter__(self) -> GroupCommitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
