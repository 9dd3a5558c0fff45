"""Websocket sync with a relay: reconnects with backoff, resumes with state vectors."""

from .backoff import Backoff
from .sync_client import SyncClient, SyncRefused, SyncStatus

__all__ = ["Backoff", "SyncClient", "SyncRefused", "SyncStatus"]
