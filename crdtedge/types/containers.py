"""`List` and `Map`: Yjs arrays and maps whose items are checked against a declared type."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar, overload

import pycrdt

from .binding import Container, Unsubscribe, resolve, subscribe
from .errors import SchemaError
from .schema import Kind, SharedKind, compile_type

T = TypeVar("T")


@dataclass(frozen=True)
class ListChanged:
    """A change as a Yjs-style delta: `{"retain": n}`, `{"insert": [items]}`, `{"delete": n}`."""

    delta: list[dict[str, Any]]


@dataclass(frozen=True)
class MapChanged:
    """Keys added, updated (including changes inside shared values) and removed."""

    added: frozenset[str]
    updated: frozenset[str]
    removed: frozenset[str]


class _Items:
    """Reading and writing items of one declared kind."""

    def __init__(self, of: Any, where: str) -> None:
        self.kind: Kind = compile_type(of, where)
        self.of = of
        self.where = where

    def read(self, stored: Any, where: str) -> Any:
        if isinstance(self.kind, SharedKind):
            return self.kind.bind(stored, where)
        return self.kind.read(stored, where)

    def write(self, value: Any, where: str) -> Any:
        if isinstance(self.kind, SharedKind):
            raise SchemaError(f"{where}: items are {self.kind.name}s: use create()")
        return self.kind.write(value, where)

    def shared(self, where: str) -> SharedKind:
        if not isinstance(self.kind, SharedKind):
            raise SchemaError(f"{where}: items are {self.kind.name} values: assign them")
        return self.kind


def _to_py(value: Any) -> Any:
    to_py: Callable[[], Any] | None = getattr(value, "to_py", None)
    return value if to_py is None else to_py()


class List(Generic[T]):
    """A Y.Array whose items are of type `of` (see `crdtedge.types.schema`).

    Merge rule (Yjs): concurrent inserts are all kept, in an order every replica agrees
    on; a delete removes exactly the items it saw.
    """

    def __init__(self, container: Container, name: str, of: type[T]) -> None:
        self._attach(resolve(container, name, pycrdt.Array), of)

    @classmethod
    def _bind(cls, yarray: pycrdt.Array[Any], of: type[T]) -> Self:
        bound = cls.__new__(cls)
        bound._attach(yarray, of)
        return bound

    @classmethod
    def _prelim(cls) -> pycrdt.Array[Any]:
        return pycrdt.Array()

    def _attach(self, yarray: pycrdt.Array[Any], of: type[T]) -> None:
        self._array = yarray
        self._items = _Items(of, f"List[{getattr(of, '__name__', of)}]")

    @property
    def shared(self) -> pycrdt.Array[Any]:
        """The underlying Y.Array."""
        return self._array

    def _fill(self, initial: Iterable[Any], where: str) -> None:
        if not isinstance(self._items.kind, SharedKind):
            self.extend(initial)
            return
        items = list(initial)
        for value in items:
            self._items.kind.check(value, where)
        for value in items:
            self.create(value)

    def __len__(self) -> int:
        return len(self._array)

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        with self._array.doc.transaction():
            if isinstance(index, slice):
                return [self[i] for i in range(*index.indices(len(self)))]
            position = self._position(index)
            stored = self._array[position]
        result: T = self._items.read(stored, f"{self._items.where}[{position}]")
        return result

    def __iter__(self) -> Iterator[T]:
        return iter(self[:])

    def append(self, value: T) -> None:
        self.insert(len(self), value)

    def extend(self, values: Iterable[T]) -> None:
        stored = [self._items.write(v, f"{self._items.where} item") for v in values]
        with self._array.doc.transaction():
            self._array.extend(stored)

    def insert(self, index: int, value: T) -> None:
        """Insert a plain item before `index`."""
        stored = self._items.write(value, f"{self._items.where} item")
        with self._array.doc.transaction():
            self._array.insert(self._position(index, insert=True), stored)

    def create(self, initial: Any = None, *, at: int | None = None) -> T:
        """Insert a new shared item (a record, a text, ...) at `at` (default: the end),
        with `initial` content, and return it."""
        kind = self._items.shared(self._items.where)
        kind.check(initial, self._items.where)
        with self._array.doc.transaction():
            position = len(self) if at is None else self._position(at, insert=True)
            self._array.insert(position, kind.create())
            item: T = kind.bind(self._array[position], f"{self._items.where}[{position}]")
            kind.fill(item, initial, f"{self._items.where}[{position}]")
        return item

    def __delitem__(self, index: int | slice) -> None:
        with self._array.doc.transaction():
            if isinstance(index, slice):
                start, stop, step = index.indices(len(self))
                if step != 1:
                    raise ValueError("List deletes contiguous slices only")
                if stop > start:
                    del self._array[start:stop]
            else:
                del self._array[self._position(index)]

    def to_py(self) -> list[Any]:
        return [_to_py(item) for item in self]

    def __repr__(self) -> str:
        return f"List({self.to_py()!r})"

    def observe(self, callback: Callable[[ListChanged], None]) -> Unsubscribe:
        """Call `callback` with every change to the list itself (not inside its items)."""

        def handler(event: Any) -> None:
            delta = []
            for op in event.delta:
                if "insert" in op:
                    items = [self._items.read(v, self._items.where) for v in op["insert"]]
                    delta.append({"insert": items})
                else:
                    delta.append(dict(op))
            callback(ListChanged(delta))

        return subscribe(self._array, handler)

    def _position(self, index: int, *, insert: bool = False) -> int:
        size = len(self)
        position = index + size if index < 0 else index
        if not 0 <= position <= (size if insert else size - 1):
            raise IndexError(f"{self._items.where} index {index} out of range (size {size})")
        return position


class Map(Generic[T]):
    """A Y.Map from str keys to values of type `of` (see `crdtedge.types.schema`).

    Merge rule (Yjs): per key, last writer wins; concurrent sets of one key resolve to the
    same one on every replica. Shared values merge inside by their own rules.
    """

    def __init__(self, container: Container, name: str, of: type[T]) -> None:
        self._attach(resolve(container, name, pycrdt.Map), of)

    @classmethod
    def _bind(cls, ymap: pycrdt.Map[Any], of: type[T]) -> Self:
        bound = cls.__new__(cls)
        bound._attach(ymap, of)
        return bound

    @classmethod
    def _prelim(cls) -> pycrdt.Map[Any]:
        return pycrdt.Map()

    def _attach(self, ymap: pycrdt.Map[Any], of: type[T]) -> None:
        self._map = ymap
        self._items = _Items(of, f"Map[{getattr(of, '__name__', of)}]")

    @property
    def shared(self) -> pycrdt.Map[Any]:
        """The underlying Y.Map."""
        return self._map

    def _fill(self, initial: Mapping[str, Any], where: str) -> None:
        if not isinstance(initial, Mapping):
            raise SchemaError(f"{where}: a Map starts from a mapping, got {initial!r}")
        kind = self._items.kind
        for key, value in initial.items():
            _check_key(key)
            if isinstance(kind, SharedKind):
                kind.check(value, f"{where}[{key!r}]")
            else:
                kind.write(value, f"{where}[{key!r}]")
        for key, value in initial.items():
            if isinstance(kind, SharedKind):
                self.create(key, value)
            else:
                self[key] = value

    def __getitem__(self, key: str) -> T:
        where = f"{self._items.where}[{key!r}]"
        with self._map.doc.transaction():
            if key not in self._map:
                raise KeyError(key)
            stored = self._map[key]
        value: T = self._items.read(stored, where)
        return value

    def get(self, key: str, default: T | None = None) -> T | None:
        with self._map.doc.transaction():
            return self[key] if key in self._map else default

    def __setitem__(self, key: str, value: T) -> None:
        """Set a plain value."""
        _check_key(key)
        self._map[key] = self._items.write(value, f"{self._items.where}[{key!r}]")

    def create(self, key: str, initial: Any = None) -> T:
        """Put a new shared value (a record, a counter, ...) under `key`, replacing what
        was there, with `initial` content, and return it."""
        _check_key(key)
        where = f"{self._items.where}[{key!r}]"
        kind = self._items.shared(where)
        kind.check(initial, where)
        with self._map.doc.transaction():
            self._map[key] = kind.create()
            value: T = kind.bind(self._map[key], where)
            kind.fill(value, initial, where)
        return value

    def __delitem__(self, key: str) -> None:
        with self._map.doc.transaction():
            if key not in self._map:
                raise KeyError(key)
            del self._map[key]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._map

    def __len__(self) -> int:
        return len(self._map)

    def keys(self) -> list[str]:
        """The keys, sorted (Yjs does not order map keys)."""
        return sorted(self._map.keys())

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def values(self) -> list[T]:
        return [value for _, value in self.items()]

    def items(self) -> list[tuple[str, T]]:
        with self._map.doc.transaction():
            return [(key, self[key]) for key in self.keys()]

    def to_py(self) -> dict[str, Any]:
        return {key: _to_py(value) for key, value in self.items()}

    def __repr__(self) -> str:
        return f"Map({self.to_py()!r})"

    def observe(self, callback: Callable[[MapChanged], None]) -> Unsubscribe:
        """Call `callback` with the keys that changed, including changes inside shared
        values (a record's field, a counter, ...)."""

        keys = [frozenset(self._map.keys())]

        def handler(events: list[Any]) -> None:
            old, new = keys[0], frozenset(self._map.keys())
            keys[0] = new
            touched: set[str] = set()
            for event in events:  # a nested change has the key of its value first in its path
                touched.update([str(event.path[0])] if event.path else event.keys)
            callback(MapChanged(new - old, frozenset(touched & old & new), old - new))

        return subscribe(self._map, handler, deep=True)


def _check_key(key: object) -> None:
    if not isinstance(key, str):
        raise TypeError(f"Map keys must be str, got {key!r}")
