"""Document content as plain Python data, for export and debugging.

A Yjs update does not say which type each root holds (roots are typed by whoever reads
them), so this reads each root in a scratch Doc as every type and keeps the one that
shows content: a map's keys, then text, then array items, then XML.
"""

from __future__ import annotations

from typing import Any

import pycrdt


def to_python(state: bytes) -> dict[str, Any]:
    """Every root of the document in `state` (a Yjs v1 update) as JSON-ready data."""
    probe: pycrdt.Doc[Any] = pycrdt.Doc()
    probe.apply_update(state)
    return {name: _root(state, name) for name in sorted(probe.keys())}


def _as(state: bytes, name: str, kind: type[Any]) -> Any:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(state)
    return doc.get(name, type=kind)


def _root(state: bytes, name: str) -> Any:
    as_map = _as(state, name, pycrdt.Map)
    if len(as_map):
        return as_map.to_py()
    text = str(_as(state, name, pycrdt.Text))
    if text:
        return text
    try:
        return _as(state, name, pycrdt.Array).to_py()
    except ValueError:  # XML elements have no Python equivalent: export them as markup
        return str(_as(state, name, pycrdt.XmlFragment))
