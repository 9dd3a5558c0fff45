"""crdtedge: offline-first replicated state for edge nodes, on Yjs-compatible CRDTs."""

from .client import Backoff, SyncClient, SyncRefused, SyncStatus
from .log import LogStore, UpdateLog
from .replica import Replica
from .types import (
    Counter,
    HybridClock,
    LayoutError,
    List,
    Map,
    Record,
    Register,
    SchemaError,
    Series,
    Set,
    Text,
)

__version__ = "0.1.0"

__all__ = [
    "Backoff",
    "Counter",
    "HybridClock",
    "LayoutError",
    "List",
    "LogStore",
    "Map",
    "Record",
    "Register",
    "Replica",
    "SchemaError",
    "Series",
    "Set",
    "SyncClient",
    "SyncRefused",
    "SyncStatus",
    "Text",
    "UpdateLog",
]
