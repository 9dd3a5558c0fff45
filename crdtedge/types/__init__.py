"""Replicated state types on Yjs primitives, readable and writable by any Yjs client.

Each type is a thin object bound to a shared type of a pycrdt `Doc`: `Type(doc, name)`
for a root, `Type(parent_map, key)` for one nested in a Y.Map. The Yjs layout of each
(shared types, keys, values) is in docs/types.md.
"""

from .binding import Unsubscribe
from .containers import List, ListChanged, Map, MapChanged
from .counter import Counter, CounterChanged
from .errors import LayoutError, SchemaError
from .hlc import HybridClock, Timestamp
from .orset import Set, SetChanged
from .records import Record, RecordChanged
from .register import Entry, Register, RegisterChanged
from .rollup import Summary
from .series import Reading, Rollup, Series, SeriesChanged
from .text import Text, TextChanged

__all__ = [
    "Counter",
    "CounterChanged",
    "Entry",
    "HybridClock",
    "LayoutError",
    "List",
    "ListChanged",
    "Map",
    "MapChanged",
    "Reading",
    "Record",
    "RecordChanged",
    "Register",
    "RegisterChanged",
    "Rollup",
    "SchemaError",
    "Series",
    "SeriesChanged",
    "Set",
    "SetChanged",
    "Summary",
    "Text",
    "TextChanged",
    "Timestamp",
    "Unsubscribe",
]
