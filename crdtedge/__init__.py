"""crdtedge: offline-first replicated state for edge nodes, on Yjs-compatible CRDTs."""

from .client import Backoff, SyncClient, SyncRefused, SyncStatus
from .log import LogStore, UpdateLog
from .replica import Replica

__version__ = "0.1.0"

__all__ = [
    "Backoff",
    "LogStore",
    "Replica",
    "SyncClient",
    "SyncRefused",
    "SyncStatus",
    "UpdateLog",
]
