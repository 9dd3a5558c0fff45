"""Declared types of record fields and collection items, checked on write and on read.

Plain types are stored as JSON values: `str`, `int`, `float`, `bool`, `None`, unions of
them (`int | None`), `list[T]` and `dict[str, T]` of plain types, and `Any` (any JSON
value). Shared types are stored as nested Yjs types and edited in place: `Counter`,
`Register`, `Set`, `Series`, `Text`, `List[T]`, `Map[T]` and `Record` subclasses.
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any, Union, get_args, get_origin

import pycrdt

from .errors import SchemaError
from .jsonvalue import MAX_SAFE_INTEGER, check_json, from_yjs


class ValueKind:
    """A plain type: stored as a JSON value."""

    name: str

    def write(self, value: Any, where: str) -> Any:
        """`value` as stored, or a `SchemaError`."""
        raise NotImplementedError

    def read(self, stored: Any, where: str) -> Any:
        """A stored value as this type, or a `SchemaError`."""
        raise NotImplementedError

    def _mismatch(self, value: Any, where: str, stored: bool = False) -> SchemaError:
        found = "stored value" if stored else type(value).__name__
        return SchemaError(f"{where}: expected {self.name}, got {found} {value!r}")


class _Str(ValueKind):
    name = "str"

    def write(self, value: Any, where: str) -> Any:
        if isinstance(value, str):
            return value
        raise self._mismatch(value, where)

    def read(self, stored: Any, where: str) -> Any:
        if isinstance(stored, str):
            return stored
        raise self._mismatch(stored, where, stored=True)


class _Bool(ValueKind):
    name = "bool"

    def write(self, value: Any, where: str) -> Any:
        if isinstance(value, bool):
            return value
        raise self._mismatch(value, where)

    def read(self, stored: Any, where: str) -> Any:
        if isinstance(stored, bool):
            return stored
        raise self._mismatch(stored, where, stored=True)


class _None(ValueKind):
    name = "None"

    def write(self, value: Any, where: str) -> Any:
        if value is None:
            return None
        raise self._mismatch(value, where)

    def read(self, stored: Any, where: str) -> Any:
        if stored is None:
            return None
        raise self._mismatch(stored, where, stored=True)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class _Int(ValueKind):
    name = "int"

    def write(self, value: Any, where: str) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return check_json(value, where)
        raise self._mismatch(value, where)

    def read(self, stored: Any, where: str) -> Any:
        if _is_number(stored) and float(stored).is_integer() and abs(stored) <= MAX_SAFE_INTEGER:
            return int(stored)
        raise self._mismatch(stored, where, stored=True)


class _Float(ValueKind):
    name = "float"

    def write(self, value: Any, where: str) -> Any:
        if _is_number(value):
            return float(value)
        raise self._mismatch(value, where)

    def read(self, stored: Any, where: str) -> Any:
        if _is_number(stored):
            return float(stored)
        raise self._mismatch(stored, where, stored=True)


class _AnyJSON(ValueKind):
    name = "a JSON value"

    def write(self, value: Any, where: str) -> Any:
        return check_json(value, where)

    def read(self, stored: Any, where: str) -> Any:
        return from_yjs(check_json(stored, where))


class _Union(ValueKind):
    def __init__(self, kinds: list[ValueKind]) -> None:
        self.kinds = kinds
        self.name = " | ".join(kind.name for kind in kinds)

    def write(self, value: Any, where: str) -> Any:
        for kind in self.kinds:
            try:
                return kind.write(value, where)
            except SchemaError:
                continue
        raise self._mismatch(value, where)

    def read(self, stored: Any, where: str) -> Any:
        for kind in self.kinds:
            try:
                return kind.read(stored, where)
            except SchemaError:
                continue
        raise self._mismatch(stored, where, stored=True)


class _ListOf(ValueKind):
    def __init__(self, item: ValueKind) -> None:
        self.item = item
        self.name = f"list[{item.name}]"

    def write(self, value: Any, where: str) -> Any:
        if isinstance(value, list | tuple):
            return [self.item.write(v, f"{where}[{i}]") for i, v in enumerate(value)]
        raise self._mismatch(value, where)

    def read(self, stored: Any, where: str) -> Any:
        if isinstance(stored, list):
            return [self.item.read(v, f"{where}[{i}]") for i, v in enumerate(stored)]
        raise self._mismatch(stored, where, stored=True)


class _DictOf(ValueKind):
    def __init__(self, item: ValueKind) -> None:
        self.item = item
        self.name = f"dict[str, {item.name}]"

    def write(self, value: Any, where: str) -> Any:
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {k: self.item.write(v, f"{where}[{k!r}]") for k, v in value.items()}
        raise self._mismatch(value, where)

    def read(self, stored: Any, where: str) -> Any:
        if isinstance(stored, dict):
            return {k: self.item.read(v, f"{where}[{k!r}]") for k, v in stored.items()}
        raise self._mismatch(stored, where, stored=True)


class SharedKind:
    """A shared type: a nested Yjs type wrapped by one of our classes."""

    def __init__(self, cls: Any, args: tuple[Any, ...]) -> None:
        self.cls = cls
        self.args = args
        self.name = cls.__name__ if not args else f"{cls.__name__}[{args[0]!r}]"
        self.ytype = type(cls._prelim())
        # A record is always filled (its fields need values or defaults), from {} at least.
        self.fill_empty: bool = getattr(cls, "_fill_when_empty", False)

    def create(self) -> Any:
        """A new, empty shared type to insert."""
        return self.cls._prelim()

    def bind(self, stored: Any, where: str) -> Any:
        """Our object for a stored shared type, or a `SchemaError`."""
        if not isinstance(stored, self.ytype):
            raise SchemaError(
                f"{where}: expected a {self.name} (a Y.{self.ytype.__name__}), got {stored!r}"
            )
        return self.cls._bind(stored, *self.args)

    def check(self, initial: Any, where: str) -> None:
        """Raise what `fill` with `initial` would, without touching the document (a dry
        run in a scratch document: pycrdt cannot roll a transaction back)."""
        if initial is None and not self.fill_empty:
            return
        scratch: pycrdt.Doc[Any] = pycrdt.Doc()
        holder = scratch.get("check", type=pycrdt.Map)
        holder["item"] = self.create()
        self.fill(self.bind(holder["item"], where), initial, where)

    def fill(self, bound: Any, initial: Any, where: str) -> None:
        """Give a just-created shared type its initial content."""
        if initial is None and self.fill_empty:
            initial = {}
        if initial is None:
            return
        fill = getattr(bound, "_fill", None)
        if fill is None:
            raise SchemaError(f"{where}: a {self.name} starts empty (got {initial!r})")
        fill(initial, where)


Kind = ValueKind | SharedKind

_SCALARS: dict[Any, ValueKind] = {
    str: _Str(),
    int: _Int(),
    float: _Float(),
    bool: _Bool(),
    None: _None(),
    type(None): _None(),
    Any: _AnyJSON(),
}


def compile_type(declared: Any, where: str) -> Kind:
    """The kind for a declared type, or a `SchemaError` naming what is unsupported."""
    if declared in _SCALARS:
        return _SCALARS[declared]
    origin = get_origin(declared)
    args = get_args(declared)
    if origin in (Union, types.UnionType):
        return _Union([_plain(arg, where) for arg in args])
    if origin is list:
        return _ListOf(_plain(args[0], where))
    if origin is dict:
        if args[0] is not str:
            raise SchemaError(f"{where}: dict keys must be str, not {args[0]!r}")
        return _DictOf(_plain(args[1], where))
    cls = origin if origin is not None else declared
    if isinstance(cls, type) and hasattr(cls, "_prelim") and hasattr(cls, "_bind"):
        return SharedKind(cls, args)
    raise SchemaError(f"{where}: unsupported type {declared!r} (see crdtedge.types.schema)")


def _plain(declared: Any, where: str) -> ValueKind:
    kind = compile_type(declared, where)
    if not isinstance(kind, ValueKind):
        raise SchemaError(f"{where}: {kind.name} cannot be inside a plain (JSON) type")
    return kind


def is_class_var(declared: Any) -> bool:
    return declared is typing.ClassVar or get_origin(declared) is typing.ClassVar
