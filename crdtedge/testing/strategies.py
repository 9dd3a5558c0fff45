"""Hypothesis strategies: edits on raw Yjs maps, arrays and text, and link faults.

An operation is a small frozen dataclass with `apply(doc)`, so a shrunk failure prints as
a readable list of edits. Positions are fractions of the current length, so an operation
stays valid whatever the document holds when it runs; text positions are Python `str`
indices, converted to the UTF-8 byte offsets pycrdt's Text expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import pycrdt
from hypothesis import strategies as st

from .network import ClockSkew, LinkFaults


class Operation(Protocol):
    def apply(self, doc: pycrdt.Doc[Any]) -> None: ...


def _at(fraction: float, length: int) -> int:
    return min(length, int(fraction * (length + 1)))


def _utf8_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


@dataclass(frozen=True)
class MapSet:
    root: str
    key: str
    value: Any

    def apply(self, doc: pycrdt.Doc[Any]) -> None:
        doc.get(self.root, type=pycrdt.Map)[self.key] = self.value


@dataclass(frozen=True)
class MapDelete:
    root: str
    key: str

    def apply(self, doc: pycrdt.Doc[Any]) -> None:
        items = doc.get(self.root, type=pycrdt.Map)
        if self.key in items:
            del items[self.key]


@dataclass(frozen=True)
class ArrayInsert:
    root: str
    at: float
    values: tuple[Any, ...]

    def apply(self, doc: pycrdt.Doc[Any]) -> None:
        array = doc.get(self.root, type=pycrdt.Array)
        index = _at(self.at, len(array))
        for offset, value in enumerate(self.values):
            array.insert(index + offset, value)


@dataclass(frozen=True)
class ArrayDelete:
    root: str
    at: float
    count: int

    def apply(self, doc: pycrdt.Doc[Any]) -> None:
        array = doc.get(self.root, type=pycrdt.Array)
        start = _at(self.at, len(array))
        stop = min(len(array), start + self.count)
        if start < stop:
            del array[start:stop]


@dataclass(frozen=True)
class TextInsert:
    root: str
    at: float
    text: str

    def apply(self, doc: pycrdt.Doc[Any]) -> None:
        target = doc.get(self.root, type=pycrdt.Text)
        current = str(target)
        target.insert(_utf8_offset(current, _at(self.at, len(current))), self.text)


@dataclass(frozen=True)
class TextDelete:
    root: str
    at: float
    count: int

    def apply(self, doc: pycrdt.Doc[Any]) -> None:
        target = doc.get(self.root, type=pycrdt.Text)
        current = str(target)
        start = _at(self.at, len(current))
        stop = min(len(current), start + self.count)
        if start < stop:
            del target[_utf8_offset(current, start) : _utf8_offset(current, stop)]


_fractions = st.floats(0, 1)
_keys = st.sampled_from(["a", "b", "c", "d", "e"])
_values = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=6)
_texts = st.text(alphabet="abcxyz éü☃🎉", min_size=1, max_size=5)


def operations(
    maps: tuple[str, ...] = ("map",),
    arrays: tuple[str, ...] = ("list",),
    texts: tuple[str, ...] = ("text",),
) -> st.SearchStrategy[Operation]:
    """Edits on the named roots of each Yjs type (non-ASCII text included)."""
    choices: list[st.SearchStrategy[Operation]] = []
    if maps:
        roots = st.sampled_from(maps)
        choices += [st.builds(MapSet, roots, _keys, _values), st.builds(MapDelete, roots, _keys)]
    if arrays:
        roots = st.sampled_from(arrays)
        values = st.lists(_values, min_size=1, max_size=3).map(tuple)
        choices += [
            st.builds(ArrayInsert, roots, _fractions, values),
            st.builds(ArrayDelete, roots, _fractions, st.integers(1, 3)),
        ]
    if texts:
        roots = st.sampled_from(texts)
        choices += [
            st.builds(TextInsert, roots, _fractions, _texts),
            st.builds(TextDelete, roots, _fractions, st.integers(1, 4)),
        ]
    if not choices:
        raise ValueError("name at least one root")
    return st.one_of(choices)


def link_faults(max_loss: float = 0.3, max_duplicate: float = 0.3) -> st.SearchStrategy[LinkFaults]:
    """Lossy, duplicating, reordering links (shrinking towards calm ones)."""
    return st.builds(
        LinkFaults,
        loss=st.sampled_from([0.0, 0.05, max_loss]),
        duplicate=st.sampled_from([0.0, 0.1, max_duplicate]),
        delay=st.sampled_from([(0.001, 0.01), (0.001, 0.2)]),
    )


def clock_skews() -> st.SearchStrategy[ClockSkew]:
    """Node clocks that are right, a little off, minutes off either way, or drifting
    fast (shrinking towards true time)."""
    return st.builds(
        ClockSkew,
        offset=st.sampled_from([0.0, 0.05, -2.0, 300.0, -3600.0]),
        drift=st.sampled_from([0.0, 1e-4, -1e-3, 0.01]),
    )
