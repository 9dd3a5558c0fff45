"""Errors of the replicated state types."""

from __future__ import annotations


class LayoutError(ValueError):
    """The document holds something this type cannot read as itself: another type, a
    newer layout version than this crdtedge understands, or malformed entries."""


class SchemaError(TypeError):
    """A value does not match the declared type of a record field or collection item
    (on write: refused before anything is written; on read: the stored value)."""
