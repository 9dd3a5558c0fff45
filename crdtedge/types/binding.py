"""Binding a type to its Yjs shared type, the layout header, and observation plumbing.

Every type is built as `Type(container, name)`: a `pycrdt.Doc` container means the root
type `name` (roots merge by name, so replicas can create them independently); a
`pycrdt.Map` container means the shared type under key `name`, created there when missing.
A nested shared type created concurrently by two replicas under the same key is one Yjs
map entry: one creation wins and the other's content is lost. So create nested types once
(e.g. with the record that holds them, `Record.create`), never lazily on two replicas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Self, TypeAlias, TypeVar

import pycrdt

from ..protocol import decode_state_vector
from .errors import LayoutError
from .jsonvalue import read_int

Container: TypeAlias = "pycrdt.Doc[Any] | pycrdt.Map[Any]"
#: Returned by every `observe()`: call it to stop the callbacks (idempotent).
Unsubscribe: TypeAlias = Callable[[], None]

S = TypeVar("S", pycrdt.Map[Any], pycrdt.Array[Any], pycrdt.Text)
V = TypeVar("V")

TYPE_KEY = "type"
VERSION_KEY = "v"


def resolve(container: Container, name: str, kind: type[S]) -> S:
    """The shared type of class `kind` at `name` in `container`, created when missing."""
    if not isinstance(name, str):
        raise TypeError(f"a shared type's name must be a str, got {name!r}")
    if isinstance(container, pycrdt.Doc):
        root: S = container.get(name, type=kind)
        return root
    if isinstance(container, pycrdt.Map):
        with container.doc.transaction():
            if name in container:
                found = container[name]
                if not isinstance(found, kind):
                    raise LayoutError(f"{name!r} holds {_describe(found)}, not a Y.{kind.__name__}")
                return found
            shared = kind()
            container[name] = shared
            return shared
    raise TypeError(f"container must be a pycrdt Doc or Map, got {type(container).__name__}")


def _describe(value: Any) -> str:
    if isinstance(value, pycrdt.Map | pycrdt.Array | pycrdt.Text):
        return f"a Y.{type(value).__name__}"
    return f"the value {value!r}"


def own_clock(doc: pycrdt.Doc[Any]) -> int:
    """How many structs this document's own client has created (its Yjs clock)."""
    return decode_state_vector(doc.get_state()).get(doc.client_id, 0)


def subscribe(shared: Any, handler: Callable[[Any], None], *, deep: bool = False) -> Unsubscribe:
    """Observe a pycrdt shared type; the returned function stops it."""
    subscription = shared.observe_deep(handler) if deep else shared.observe(handler)
    active = [True]

    def unsubscribe() -> None:
        if active[0]:
            active[0] = False
            shared.unobserve(subscription)

    return unsubscribe


class MapType:
    """Base of the types stored as one flat Y.Map with a layout header.

    Header: `"type"` (the type's name) and `"v"` (its layout version), written with the
    first change. A map without a header reads as an empty or version 1 one; another
    type's name, or a newer version than `VERSION`, raises `LayoutError`.
    """

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1

    _map: pycrdt.Map[Any]

    def __init__(self, container: Container, name: str) -> None:
        self._attach(resolve(container, name, pycrdt.Map))

    @classmethod
    def _bind(cls, ymap: pycrdt.Map[Any]) -> Self:
        bound = cls.__new__(cls)
        bound._attach(ymap)
        return bound

    @classmethod
    def _prelim(cls) -> pycrdt.Map[Any]:
        """A new, empty instance to insert into a document (header included)."""
        return pycrdt.Map({TYPE_KEY: cls.TYPE, VERSION_KEY: cls.VERSION})

    def _attach(self, ymap: pycrdt.Map[Any]) -> None:
        self._map = ymap
        self._entries()  # fail early on another type or a newer layout

    @property
    def shared(self) -> pycrdt.Map[Any]:
        """The underlying Y.Map."""
        return self._map

    @property
    def _doc(self) -> pycrdt.Doc[Any]:
        return self._map.doc

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._doc.transaction():
            yield

    def _entries(self) -> dict[str, Any]:
        """Every entry but the header, after checking the header."""
        with self._doc.transaction():
            entries = dict(self._map.items())
        kind = entries.pop(TYPE_KEY, None)
        version = entries.pop(VERSION_KEY, None)
        if kind is not None and kind != self.TYPE:
            raise LayoutError(f"this Y.Map holds a {kind!r}, not a {self.TYPE!r}")
        if version is not None:
            number = read_int(version, f"{self.TYPE} layout version")
            if number > self.VERSION:
                raise LayoutError(
                    f"{self.TYPE} layout version {number} is newer than this crdtedge reads "
                    f"(up to {self.VERSION}): upgrade crdtedge to read this document"
                )
            if number < 1:
                raise LayoutError(f"{self.TYPE} layout version {number} is not valid")
        return entries

    def _stamp(self) -> dict[str, Any]:
        """Before a change: check the header, write it if missing, return the entries."""
        entries = self._entries()
        if TYPE_KEY not in self._map:
            self._map[TYPE_KEY] = self.TYPE
            self._map[VERSION_KEY] = self.VERSION
        return entries

    def _observe_state(
        self, state: Callable[[dict[str, Any]], V], report: Callable[[V, V], None]
    ) -> Unsubscribe:
        """After every transaction that changes this map, call `report(old, new)` with
        `state(entries)` before and after. (A diff of states, not of the event's keys:
        pycrdt can integrate a remote struct before the ones it follows, and its map
        events then miss some changes.)"""
        last = [state(self._entries())]

        def on_event(_: Any) -> None:
            new = state(self._entries())
            old, last[0] = last[0], new
            report(old, new)

        return subscribe(self._map, on_event)
