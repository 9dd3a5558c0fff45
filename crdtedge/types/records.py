"""`Record`: a typed, dataclass-like schema on a Y.Map."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self, get_type_hints

import pycrdt

from .binding import Container, Unsubscribe, resolve, subscribe
from .errors import SchemaError
from .schema import Kind, SharedKind, ValueKind, compile_type, is_class_var

_MISSING: Any = object()


@dataclass(frozen=True)
class RecordChanged:
    """Fields whose value, or whose shared type's content, changed in one transaction."""

    fields: frozenset[str]


@dataclass(frozen=True)
class _Field:
    kind: Kind
    default: Any  # _MISSING when there is none


class _FieldAccess:
    """The descriptor for one field: reads and writes go to the Y.Map, checked."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, record: Record | None, owner: type[Record]) -> Any:
        if record is None:
            return self
        return record._get(self.name)

    def __set__(self, record: Record, value: Any) -> None:
        record._set(self.name, value)


class Record:
    """A typed record: one Y.Map key per declared field, checked on read and on write.

    Declare fields as class annotations, like a dataclass; plain fields may have
    defaults::

        class Item(Record):
            name: str
            price: float = 0.0
            stock: Counter
            notes: Text

    `Item.create(container, key, name="bolt")` writes a new record (shared fields get new,
    empty shared types unless given initial content); `Item(container, key)` binds to an
    existing one. Plain fields are assigned (`item.price = 0.2`); shared fields are edited
    in place (`item.stock.increment()`).

    Merge rule: per field, last writer wins (Yjs map semantics); shared fields merge by
    their own rules.
    """

    _fill_when_empty: ClassVar[bool] = True
    _schema_cache: ClassVar[dict[str, _Field] | None] = None
    _defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        defaults = dict(cls._defaults)
        for name, declared in inspect.get_annotations(cls).items():
            if name.startswith("_") or _declares_class_var(declared):
                continue
            if hasattr(Record, name):
                raise SchemaError(f"{cls.__name__}.{name}: the name is taken by Record itself")
            if name in cls.__dict__:
                defaults[name] = cls.__dict__[name]
            setattr(cls, name, _FieldAccess(name))
        cls._defaults = defaults
        cls._schema_cache = None

    @classmethod
    def schema(cls) -> dict[str, Kind]:
        """The declared fields and their kinds (resolved on first use)."""
        return {name: field.kind for name, field in cls._fields().items()}

    @classmethod
    def _fields(cls) -> dict[str, _Field]:
        if cls._schema_cache is None:
            fields = {}
            for name, declared in get_type_hints(cls).items():
                if name.startswith("_") or is_class_var(declared):
                    continue
                where = f"{cls.__name__}.{name}"
                kind = compile_type(declared, where)
                default = cls._defaults.get(name, _MISSING)
                if default is not _MISSING:
                    if not isinstance(kind, ValueKind):
                        raise SchemaError(f"{where}: a {kind.name} field cannot have a default")
                    kind.write(default, f"{where} default")
                fields[name] = _Field(kind, default)
            cls._schema_cache = fields
        return cls._schema_cache

    def __init__(self, container: Container, name: str) -> None:
        self._map = resolve(container, name, pycrdt.Map)
        self._fields()

    @classmethod
    def create(cls, container: Container, name: str, /, **values: Any) -> Self:
        """Write a new record under `name` (replacing what was there) and return it."""
        cls._fields()
        if isinstance(container, pycrdt.Doc):
            ymap = container.get(name, type=pycrdt.Map)
            with container.transaction():
                record = cls._bind(ymap)
                record._fill(values, cls.__name__)
            return record
        with container.doc.transaction():
            container[name] = ymap = pycrdt.Map()
            record = cls._bind(ymap)
            record._fill(values, cls.__name__)
        return record

    @classmethod
    def _bind(cls, ymap: pycrdt.Map[Any]) -> Self:
        record = cls.__new__(cls)
        record._map = ymap
        return record

    @classmethod
    def _prelim(cls) -> pycrdt.Map[Any]:
        return pycrdt.Map()

    @property
    def shared(self) -> pycrdt.Map[Any]:
        """The underlying Y.Map."""
        return self._map

    def _fill(self, values: Mapping[str, Any], where: str) -> None:
        """Write every field: from `values`, else its default, else new (shared) or None."""
        if not isinstance(values, Mapping):
            raise SchemaError(f"{where}: a {type(self).__name__} is created from a mapping")
        fields = self._fields()
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise SchemaError(f"{where}: {type(self).__name__} has no field(s) {unknown}")
        plain: dict[str, Any] = {}
        shared: dict[str, tuple[SharedKind, Any]] = {}
        for name, field in fields.items():  # check everything before writing anything
            here = f"{type(self).__name__}.{name}"
            if isinstance(field.kind, SharedKind):
                field.kind.check(values.get(name), here)
                shared[name] = (field.kind, values.get(name))
            else:
                value = values.get(name, field.default)
                if value is _MISSING:
                    plain[name] = _none_or_missing(field.kind, here)
                else:
                    plain[name] = field.kind.write(value, here)
        with self._map.doc.transaction():
            for name, value in plain.items():
                self._map[name] = value
            for name, (kind, initial) in shared.items():
                here = f"{type(self).__name__}.{name}"
                self._map[name] = created = kind.create()
                kind.fill(kind.bind(created, here), initial, here)

    def _get(self, name: str) -> Any:
        field = self._fields()[name]
        where = f"{type(self).__name__}.{name}"
        with self._map.doc.transaction():
            if name not in self._map:
                if field.default is not _MISSING and isinstance(field.kind, ValueKind):
                    return field.kind.read(field.kind.write(field.default, where), where)
                raise SchemaError(f"{where} is missing from the document")
            stored = self._map[name]
        if isinstance(field.kind, SharedKind):
            return field.kind.bind(stored, where)
        return field.kind.read(stored, where)

    def _set(self, name: str, value: Any) -> None:
        field = self._fields()[name]
        where = f"{type(self).__name__}.{name}"
        if isinstance(field.kind, SharedKind):
            raise SchemaError(f"{where} is a {field.kind.name}: edit it in place")
        self._map[name] = field.kind.write(value, where)

    def update(self, **values: Any) -> None:
        """Assign several plain fields in one transaction (all checked first)."""
        fields = self._fields()
        stored = {}
        for name, value in values.items():
            if name not in fields:
                raise SchemaError(f"{type(self).__name__} has no field {name!r}")
            kind = fields[name].kind
            where = f"{type(self).__name__}.{name}"
            if isinstance(kind, SharedKind):
                raise SchemaError(f"{where} is a {kind.name}: edit it in place")
            stored[name] = kind.write(value, where)
        with self._map.doc.transaction():
            for name, value in stored.items():
                self._map[name] = value

    def to_py(self) -> dict[str, Any]:
        """Every field as plain Python data (shared fields through their own `to_py`)."""
        with self._map.doc.transaction():
            return {name: _plain(self._get(name)) for name in self._fields()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_py()!r})"

    def observe(self, callback: Callable[[RecordChanged], None]) -> Unsubscribe:
        """Call `callback` with the fields that changed, including changes inside shared
        fields (a counter incremented, text edited, ...)."""

        def handler(events: list[Any]) -> None:
            changed: set[str] = set()
            for event in events:
                if event.path:
                    changed.add(str(event.path[0]))
                else:
                    changed.update(event.keys)
            if changed:
                callback(RecordChanged(frozenset(changed)))

        return subscribe(self._map, handler, deep=True)


def _declares_class_var(declared: Any) -> bool:
    """`ClassVar[...]`, also as a string annotation (`from __future__ import annotations`)."""
    if isinstance(declared, str):
        return declared.startswith(("ClassVar", "typing.ClassVar"))
    return is_class_var(declared)


def _none_or_missing(kind: ValueKind, where: str) -> Any:
    try:
        return kind.write(None, where)
    except SchemaError:
        raise SchemaError(f"{where} needs a value (it has no default)") from None


def _plain(value: Any) -> Any:
    to_py: Callable[[], Any] | None = getattr(value, "to_py", None)
    return value if to_py is None else to_py()
