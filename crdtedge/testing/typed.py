"""Hypothesis strategies for edits on crdtedge's own types, and a ledger of which edits
survived a run with crashes.

    typed_operations({"visits": Counter, "mode": Register, "tags": Set, "temps": Series,
                      "notes": Text, "log": List[int], "stock": Map[int], "item": Item,
                      "raw": pycrdt.Map})

draws edits on the named roots, declared like record fields (crdtedge types, `List[T]`,
`Map[T]`, `Record` subclasses; raw `pycrdt.Map` / `Array` / `Text` roots get the edits of
`crdtedge.testing.strategies`). An edit on a root prints as `On('visits', Increment(by=2))`;
edits inside a record, a map entry or a list item nest: `On('item', Field('stock',
Increment(by=2)))`. Each is a frozen dataclass with `apply(doc)`, and `run(doc)` returning
what it did (its effect: a timestamp, a reading, the characters it deleted...).

Every edit is valid whatever the document holds when it runs: positions are fractions of
the current length, and an edit of a nested type that is not there is skipped (creating
it lazily would race with other replicas: create nested types once, e.g. with `preload`).
Every edit also checks that it did, in the replica's own document, what it says
(`LocalEditError` otherwise). Root objects are bound once per document and kept, as an
app keeps them, so cached views (`Text`'s) live across remote changes.

Wall-clock time comes from the editing node: inside `SimReplica.edit`, `Write` stamps a
register with `current_clock()`, and `Append` takes a series reading at the node's own
(skewed) wall clock. Outside the harness they use the system clock.

`Ledger` tells which edits survived crashes and what each had seen, for checking laws.
"""

from __future__ import annotations

import functools
import json
import math
import typing
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import UnionType
from typing import Any, Protocol, get_args, get_origin, runtime_checkable

import pycrdt
from hypothesis import strategies as st

from ..protocol import decode_state_vector
from ..types import (
    Counter,
    HybridClock,
    List,
    Map,
    Record,
    Register,
    Series,
    Set,
    Text,
)
from ..types.hlc import system_wall_ms
from ..types.schema import SharedKind, compile_type
from ..types.text import _diff as text_diff
from .cluster import Cluster
from .nodes import current_clock
from .strategies import Operation, operations

# -- the editing node's clocks -------------------------------------------------------------


def node_clock() -> HybridClock:
    """The editing replica's hybrid clock (`current_clock()`); a fresh system-time clock
    outside the harness."""
    try:
        return current_clock()
    except RuntimeError:
        return HybridClock()


def node_wall_ms() -> int:
    """The editing replica's own (skewed) wall clock in ms; the system's outside it."""
    try:
        clock = current_clock()
    except RuntimeError:
        return system_wall_ms()
    return clock.wall_ms()


# -- effects -------------------------------------------------------------------------------


class _Skipped:
    def __repr__(self) -> str:
        return "SKIPPED"


#: The effect of an edit whose target was not there (a nested type not created yet, an
#: item of an empty list): it changed nothing.
SKIPPED: Any = _Skipped()


@dataclass(frozen=True)
class Change:
    """What a text or list edit did: the characters (str) or items (tuple) it removed and
    the ones it added, as they were in the editing replica."""

    removed: Any
    added: Any


def _at(fraction: float, length: int) -> int:
    """An insertion point in `[0, length]`."""
    return min(length, int(fraction * (length + 1)))


def _index(fraction: float, length: int) -> int:
    """An existing position in `[0, length)` (length > 0)."""
    return min(length - 1, int(fraction * length))


def _name(kind: Any) -> str:
    if get_origin(kind) is not None:
        args = ", ".join(_name(arg) for arg in get_args(kind))
        return f"{_name(get_origin(kind))}[{args}]"
    return getattr(kind, "__name__", repr(kind))


# -- edits: one per action of each type, applied to a bound wrapper -------------------------
#
# Each edit also checks what it must see at once in its own document (its postcondition,
# read where possible from the underlying pycrdt type rather than through the wrapper): a
# wrapper that edits the wrong place or miscounts fails there, with a `LocalEditError`.


class LocalEditError(AssertionError):
    """An edit did not do, in the replica's own document, what it says it does."""


def _expect(holds: bool, edit: object, what: str) -> None:
    if not holds:
        raise LocalEditError(f"{edit!r}: {what}")


class Edit(Protocol):
    """An action on a bound crdtedge object (a `Counter`, a record...); returns its effect."""

    def on(self, target: Any) -> Any: ...


@dataclass(frozen=True)
class Increment:
    """`Counter.increment(by)`; effect: `by`."""

    by: int

    def on(self, target: Counter) -> int:
        before = target.value
        target.increment(self.by)
        _expect(target.value == before + self.by, self, f"{before} became {target.value}")
        return self.by


@dataclass(frozen=True)
class Decrement:
    """`Counter.decrement(by)`; effect: `-by`."""

    by: int

    def on(self, target: Counter) -> int:
        before = target.value
        target.decrement(self.by)
        _expect(target.value == before - self.by, self, f"{before} became {target.value}")
        return -self.by


@dataclass(frozen=True)
class Write:
    """`Register.set(value)` stamped by the node's clock; effect: the write's `Timestamp`."""

    value: Any

    def on(self, target: Register) -> Any:
        target.clock = node_clock()
        stamp = target.set(self.value)
        _expect(target.timestamp == stamp, self, f"stamped {stamp}, reads {target.entry}")
        _expect(identity(target.value) == identity(self.value), self, f"reads {target.value!r}")
        return stamp


@dataclass(frozen=True)
class Add:
    """`Set.add(value)`."""

    value: Any

    def on(self, target: Set) -> None:
        target.add(self.value)
        _expect(self.value in target, self, f"not a member of {target.values()}")


@dataclass(frozen=True)
class Discard:
    """`Set.discard(value)`: removes the tags of `value` seen here, if any."""

    value: Any

    def on(self, target: Set) -> None:
        target.discard(self.value)
        _expect(self.value not in target, self, f"still a member of {target.values()}")


@dataclass(frozen=True)
class Clear:
    """`Set.clear()`."""

    def on(self, target: Set) -> None:
        target.clear()
        _expect(not len(target), self, f"left {target.values()}")


@dataclass(frozen=True)
class Append:
    """`Series.append(source, value)` at the node's wall clock minus `ago_ms` (a reading
    taken earlier and recorded late); effect: the `Reading`."""

    source: str
    value: int
    ago_ms: int = 0

    def on(self, target: Series) -> Any:
        reading = target.append(self.source, self.value, at=node_wall_ms() - self.ago_ms)
        _expect(reading in target.readings(self.source), self, f"{reading} not listed")
        return reading


@dataclass(frozen=True)
class Compact:
    """`Series.compact()` at the node's wall clock with this retention; effect: how many
    readings it rolled up (which must leave the summaries as they were)."""

    max_age_ms: int | None
    max_count: int | None

    def on(self, target: Series) -> int:
        target.max_age_ms = self.max_age_ms
        target.max_count = self.max_count
        before = target.summarize()
        rolled = target.compact(node_wall_ms())
        after = target.summarize()
        _expect(after == before, self, f"summaries changed from {before} to {after}")
        return rolled


def _text(target: Text) -> str:
    """The text as pycrdt has it (not through the wrapper's cached view)."""
    return str(target.shared)


@dataclass(frozen=True)
class Splice:
    """On a `Text`: delete up to `delete` characters at `at` (a fraction of the length),
    then insert `insert` there; effect: a `Change` of the two strings."""

    at: float
    delete: int
    insert: str

    def on(self, target: Text) -> Change:
        current = _text(target)
        start = _at(self.at, len(current))
        count = min(self.delete, len(current) - start)
        if count:
            target.delete(start, count)
        if self.insert:
            target.insert(start, self.insert)
        expected = current[:start] + self.insert + current[start + count :]
        _expect(_text(target) == expected, self, f"{current!r} became {_text(target)!r}")
        return Change(current[start : start + count], self.insert)


@dataclass(frozen=True)
class Format:
    """On a `Text`: set (True) or remove (None) the `bold` attribute over a range."""

    at: float
    length: int
    bold: bool | None

    def on(self, target: Text) -> None:
        current = _text(target)
        start = _at(self.at, len(current))
        end = min(len(current), start + self.length)
        if end > start:
            target.format(start, end, {"bold": self.bold})
        _expect(_text(target) == current, self, f"{current!r} became {_text(target)!r}")


@dataclass(frozen=True)
class Rewrite:
    """`Text.replace(text)` (a character diff); effect: a `Change` of the characters the
    diff deleted and inserted."""

    text: str

    def on(self, target: Text) -> Change:
        old = _text(target)
        runs = text_diff(old, self.text)
        removed = "".join(old[i1:i2] for i1, i2, _, _ in runs)
        added = "".join(self.text[j1:j2] for _, _, j1, j2 in runs)
        target.replace(self.text)
        _expect(_text(target) == self.text, self, f"{old!r} became {_text(target)!r}")
        return Change(removed, added)


@dataclass(frozen=True)
class Insert:
    """On a `List` of plain items: insert `values` at `at`; effect: a `Change`."""

    at: float
    values: tuple[Any, ...]

    def on(self, target: List[Any]) -> Change:
        current = [identity(item) for item in target]
        start = _at(self.at, len(current))
        for offset, value in enumerate(self.values):
            target.insert(start + offset, value)
        added = tuple(target[start : start + len(self.values)])
        expected = current[:start] + [identity(v) for v in self.values] + current[start:]
        _expect([identity(item) for item in target] == expected, self, f"now {target!r}")
        return Change((), added)


@dataclass(frozen=True)
class Delete:
    """On a `List`: delete up to `count` items at `at`; effect: a `Change`."""

    at: float
    count: int

    def on(self, target: List[Any]) -> Change:
        size = len(target)
        start = _at(self.at, size)
        stop = min(size, start + self.count)
        if stop <= start:
            return Change((), ())
        removed = tuple(target[start:stop])
        del target[start:stop]
        _expect(len(target) == size - (stop - start), self, f"{size} items became {len(target)}")
        return Change(removed, ())


@dataclass(frozen=True)
class CreateItem:
    """On a `List` of shared items (records, texts...): `create(initial, at=...)`."""

    at: float
    initial: Any

    def on(self, target: List[Any]) -> None:
        size = len(target)
        target.create(self.initial, at=_at(self.at, size))
        _expect(len(target) == size + 1, self, f"{size} items became {len(target)}")


@dataclass(frozen=True)
class AtIndex:
    """On a `List` of shared items: `edit` on the item at `at` (skipped if empty)."""

    at: float
    edit: Edit

    def on(self, target: List[Any]) -> Any:
        size = len(target)
        return SKIPPED if not size else self.edit.on(target[_index(self.at, size)])


@dataclass(frozen=True)
class Put:
    """On a `Map` of plain values: `map[key] = value`; effect: `value`."""

    key: str
    value: Any

    def on(self, target: Map[Any]) -> Any:
        target[self.key] = self.value
        found = target.get(self.key)
        _expect(identity(found) == identity(self.value), self, f"reads {found!r}")
        return self.value


@dataclass(frozen=True)
class Remove:
    """On a `Map`: delete `key` if present."""

    key: str

    def on(self, target: Map[Any]) -> None:
        if self.key in target:
            del target[self.key]
        _expect(self.key not in target, self, "still there")


@dataclass(frozen=True)
class CreateEntry:
    """On a `Map` of shared values: `create(key, initial)` (replacing what was there)."""

    key: str
    initial: Any

    def on(self, target: Map[Any]) -> None:
        target.create(self.key, self.initial)
        _expect(self.key in target, self, "not there")


@dataclass(frozen=True)
class AtKey:
    """On a `Map` of shared values: `edit` on the value at `key` (skipped if absent)."""

    key: str
    edit: Edit

    def on(self, target: Map[Any]) -> Any:
        return self.edit.on(target[self.key]) if self.key in target else SKIPPED


@dataclass(frozen=True)
class Assign:
    """On a `Record`: set a plain field; effect: the value."""

    field: str
    value: Any

    def on(self, target: Record) -> Any:
        setattr(target, self.field, self.value)
        found = getattr(target, self.field)
        _expect(identity(found) == identity(self.value), self, f"reads {found!r}")
        return self.value


@dataclass(frozen=True)
class Field:
    """On a `Record`: `edit` on a shared field (skipped if the record does not hold it
    yet: create records whole, with `Record.create`)."""

    field: str
    edit: Edit

    def on(self, target: Record) -> Any:
        if self.field not in target.shared:
            return SKIPPED
        return self.edit.on(getattr(target, self.field))


# -- operations: an edit on a root ---------------------------------------------------------


@runtime_checkable
class Effectful(Protocol):
    """An operation that reports its effect: `run(doc)` is `apply(doc)` returning it."""

    def apply(self, doc: pycrdt.Doc[Any]) -> None: ...

    def run(self, doc: pycrdt.Doc[Any]) -> Any: ...


@functools.lru_cache(maxsize=256)
def _shared_kind(kind: Any, root: str) -> SharedKind:
    compiled = compile_type(kind, root)
    if not isinstance(compiled, SharedKind):
        raise TypeError(f"root {root!r}: {_name(kind)} is not a shared type")
    return compiled


def bind_root(doc: pycrdt.Doc[Any], root: str, kind: Any) -> Any:
    """The crdtedge object of type `kind` (`Counter`, `List[int]`, a record class...) for
    root `root`."""
    shared = _shared_kind(kind, root)
    return shared.bind(doc.get(root, type=shared.ytype), root)


_held: weakref.WeakKeyDictionary[pycrdt.Doc[Any], dict[tuple[str, Any], Any]]
_held = weakref.WeakKeyDictionary()


def held_root(doc: pycrdt.Doc[Any], root: str, kind: Any) -> Any:
    """`bind_root`, bound once per document and kept, as an app holds its objects: a
    `Text` then edits through its cached view of the text across remote changes."""
    bound = _held.setdefault(doc, {})
    key = (root, kind)
    if key not in bound:
        bound[key] = bind_root(doc, root, kind)
    return bound[key]


@dataclass(frozen=True)
class On:
    """`edit` on root `root`, which holds a `kind` (a crdtedge type, `List[T]`, `Map[T]`
    or a record class)."""

    root: str
    kind: Any = field(compare=False)
    edit: Edit

    def run(self, doc: pycrdt.Doc[Any]) -> Any:
        return self.edit.on(held_root(doc, self.root, self.kind))

    def apply(self, doc: pycrdt.Doc[Any]) -> None:
        self.run(doc)

    def __repr__(self) -> str:
        return f"On({self.root!r}, {self.edit!r})"


# -- values --------------------------------------------------------------------------------

_TEXT = "abcxyz éü☃🎉"
_texts = st.text(alphabet=_TEXT, max_size=4)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-100, 100)
    | st.floats(-1000, 1000, allow_nan=False, allow_infinity=False)
    | st.text(alphabet=_TEXT, max_size=4)
)
json_values: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner),
    max_leaves=4,
)

#: Set members: few, so edits of one value are often concurrent, and chosen to test
#: identity: 1 and 1.0 are one value, True is not 1, objects are equal whatever their key
#: order.
SET_VALUES: tuple[Any, ...] = (
    1,
    1.0,
    True,
    "x",
    None,
    {"a": 1, "b": [1, 2]},
    {"b": [1.0, 2], "a": 1.0},
)

SOURCES = ("boiler", "pump:2")  # a series source may hold ':'
_keys = st.sampled_from(["a", "b", "c", "d"])


def values_of(declared: Any) -> st.SearchStrategy[Any]:
    """Values of a plain declared type (`str`, `int | None`, `list[float]`, `Any`...)."""
    if declared is str:
        return st.text(alphabet=_TEXT, max_size=6)
    if declared is bool:
        return st.booleans()
    if declared is int:
        return st.integers(-1000, 1000)
    if declared is float:
        return st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
    if declared is None or declared is type(None):
        return st.none()
    if declared is Any:
        return json_values
    origin, args = get_origin(declared), get_args(declared)
    if origin in (typing.Union, UnionType):
        return st.one_of([values_of(arg) for arg in args])
    if origin is list:
        return st.lists(values_of(args[0]), max_size=3)
    if origin is dict:
        return st.dictionaries(st.sampled_from("abc"), values_of(args[1]), max_size=3)
    raise TypeError(f"no values for {declared!r}")


def _is_record(declared: Any) -> bool:
    return isinstance(declared, type) and issubclass(declared, Record)


def _fields(record: type[Record]) -> dict[str, Any]:
    """A record class's fields and their declared types."""
    hints = typing.get_type_hints(record)
    return {name: hints[name] for name in record.schema()}


def _is_shared(declared: Any) -> bool:
    return isinstance(compile_type(declared, "field"), SharedKind)


def initial_of(declared: Any) -> st.SearchStrategy[Any]:
    """Initial content to create a shared type with: every plain field of a record (nested
    records too, whose required fields must be given); None (empty) for other types."""
    if _is_record(declared):
        fields = _fields(declared)
        return st.fixed_dictionaries(
            {
                name: initial_of(kind) if _is_shared(kind) else values_of(kind)
                for name, kind in fields.items()
                if not _is_shared(kind) or _is_record(kind)
            }
        )
    return st.none()


_fractions = st.floats(0, 1)


def _set_edit(drawn: tuple[int, Any]) -> Edit:
    """Half adds, 4 in 10 discards, 1 in 10 clears (which empty what a replica sees)."""
    kind, value = drawn
    return Add(value) if kind < 5 else Discard(value) if kind < 9 else Clear()


def edits_for(declared: Any, depth: int = 0) -> st.SearchStrategy[Edit]:
    """The edits of an object of declared type `declared` (a crdtedge type, `List[T]`,
    `Map[T]`, a record class)."""
    if depth > 4:
        raise ValueError(f"{_name(declared)}: schema nested too deep to draw edits for")
    origin, args = get_origin(declared), get_args(declared)
    choices: list[st.SearchStrategy[Edit]]
    if declared is Counter:
        amounts = st.integers(1, 5)
        choices = [st.builds(Increment, amounts), st.builds(Decrement, amounts)]
    elif declared is Register:
        choices = [st.builds(Write, json_values)]
    elif declared is Set:
        choices = [st.tuples(st.integers(0, 9), st.sampled_from(SET_VALUES)).map(_set_edit)]
    elif declared is Series:
        choices = [
            st.builds(
                Append,
                st.sampled_from(SOURCES),
                st.integers(-50, 50),
                st.sampled_from([0, 0, 1_500, 90_000, 7_200_000]),
            ),
            st.builds(
                Compact,
                st.sampled_from([None, 60_000, 3_600_000]),
                st.sampled_from([None, 1, 3]),
            ),
        ]
    elif declared is Text:
        choices = [
            st.builds(Splice, _fractions, st.integers(0, 3), _texts),
            st.builds(Format, _fractions, st.integers(1, 4), st.sampled_from([True, None])),
            st.builds(Rewrite, st.text(alphabet="abcé🎉", max_size=6)),
        ]
    elif origin is List:
        (item,) = args
        if _is_shared(item):
            choices = [
                st.builds(CreateItem, _fractions, initial_of(item)),
                st.builds(Delete, _fractions, st.integers(1, 2)),
                st.builds(AtIndex, _fractions, edits_for(item, depth + 1)),
            ]
        else:
            items = st.lists(values_of(item), min_size=1, max_size=3).map(tuple)
            choices = [
                st.builds(Insert, _fractions, items),
                st.builds(Delete, _fractions, st.integers(1, 3)),
            ]
    elif origin is Map:
        (item,) = args
        if _is_shared(item):
            choices = [
                st.builds(CreateEntry, _keys, initial_of(item)),
                st.builds(Remove, _keys),
                st.builds(AtKey, _keys, edits_for(item, depth + 1)),
            ]
        else:
            choices = [st.builds(Put, _keys, values_of(item)), st.builds(Remove, _keys)]
    elif _is_record(declared):
        choices = []
        for name, kind in _fields(declared).items():
            if _is_shared(kind):
                choices.append(st.builds(Field, st.just(name), edits_for(kind, depth + 1)))
            else:
                choices.append(st.builds(Assign, st.just(name), values_of(kind)))
    else:
        raise TypeError(f"no edits for {declared!r}")
    return st.one_of(choices)


def _raw_operations(root: str, kind: Any) -> st.SearchStrategy[Operation] | None:
    """The edits of `crdtedge.testing.strategies` on a raw Yjs root."""
    if kind is pycrdt.Map:
        return operations(maps=(root,), arrays=(), texts=())
    if kind is pycrdt.Array:
        return operations(maps=(), arrays=(root,), texts=())
    if kind is pycrdt.Text:
        return operations(maps=(), arrays=(), texts=(root,))
    return None


def typed_operations(roots: Mapping[str, Any]) -> st.SearchStrategy[Operation]:
    """Edits on the named roots, each declared like a record field: `Counter`, `Register`,
    `Set`, `Series`, `Text`, `List[T]`, `Map[T]`, a `Record` subclass, or a raw
    `pycrdt.Map` / `pycrdt.Array` / `pycrdt.Text` (the edits of `operations()`)."""
    if not roots:
        raise ValueError("name at least one root")
    choices: list[st.SearchStrategy[Operation]] = []
    for root, kind in roots.items():
        raw = _raw_operations(root, kind)
        if raw is not None:
            choices.append(raw)
        else:
            choices.append(st.builds(On, st.just(root), st.just(kind), edits_for(kind)))
    return st.one_of(choices)


def preload(cluster: Cluster, change: Callable[[pycrdt.Doc[Any]], None]) -> None:
    """Give every replica the same initial content, durably, before the story starts, as
    if one replica had made `change` and all had synced: the way to create records and
    nested types once (two replicas creating them concurrently would race)."""
    scratch: pycrdt.Doc[Any] = pycrdt.Doc(client_id=PRELOAD_CLIENT)
    with scratch.transaction():
        change(scratch)
    update = scratch.get_update()
    for replica in cluster.replicas.values():
        local = replica.local
        if local is None:
            raise RuntimeError(f"{replica.name} is down")
        with local.remote():
            local.doc.apply_update(update)
        local.log.sync()


#: The client id of `preload`'s content: beyond 32 bits, so no simulated replica has it.
PRELOAD_CLIENT = 2**40 + 1


# -- the ledger ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    """One operation as a replica applied it."""

    serial: int
    operation: Operation
    client: int  # the Yjs client id it was written with
    clocks: tuple[int, int]  # that client's clock before and after: the structs it made
    seen: frozenset[int]  # serials of the operations its document already held
    effect: Any  # what `run(doc)` returned (None for operations without `run`)
    #: Whether `seen` was a consistent snapshot: the document held exactly the operations
    #: its state vector covers. Not so after it integrated some client's updates out of
    #: their order, which pycrdt 0.14 does partially (docs/types.md, "Known limits").
    consistent: bool = True


@dataclass(frozen=True)
class Tracked:
    """An operation that records itself in a ledger when applied (prints as the operation)."""

    operation: Operation
    ledger: Ledger = field(compare=False)

    def apply(self, doc: pycrdt.Doc[Any]) -> None:
        self.ledger.apply(doc, self.operation)

    def __repr__(self) -> str:
        return repr(self.operation)


class Ledger:
    """Which operations survived a run with crashes, and what each had seen.

    A replica that crashes loses, legitimately, the local changes it had not made durable
    yet: it never sent them. So laws like "the counter is the sum of all increments" must
    be checked against the operations that survived. The ledger knows which: each tracked
    operation also writes a marker (its serial number) into the map root `root` in the
    same transaction, so the marker is logged, sent and lost together with the operation's
    own changes. After `cluster.settle()`, `survivors(doc)` are the operations whose
    markers the settled document holds.

    Each entry also records `seen`: the operations the replica's document held when it
    ran (its causal past), for laws such as "a write made after seeing another is ordered
    after it" or "a remove deletes the adds it has seen".

    Why markers and not the clock range of each operation's update: a change that only
    deletes does not move its client's clock, and a replica whose crash cut its log
    exactly between two records keeps its client id and reuses the lost clocks. The price:
    with markers, no tracked update is delete-only. `Ledger(markers=False)` writes nothing
    and tells survival and `seen` from state vectors and clock ranges instead, which is
    exact only without crashes, and never counts a delete-only operation as seen by
    another: use it for crash-free runs, so delete-only updates travel too.

    In a `ClusterMachine`, make one per example in `topology()` and track the drawn
    operations: `return typed_operations(...).map(self.ledger.track)`.
    """

    def __init__(self, root: str = "crdtedge.ledger", *, markers: bool = True) -> None:
        self.root = root
        self.markers = markers
        self.entries: list[Applied] = []
        self._rolled_back: set[int] = set()

    def track(self, operation: Operation) -> Tracked:
        return Tracked(operation, self)

    def apply(self, doc: pycrdt.Doc[Any], operation: Operation) -> Applied:
        """Apply `operation` to `doc` (within one transaction) and record it."""
        client = doc.client_id
        with doc.transaction():
            before = decode_state_vector(doc.get_state())
            start = before.get(client, 0)
            for entry in self.entries:  # a crash rolled this client's clock back: lost
                if entry.client == client and entry.clocks[1] > start:
                    self._rolled_back.add(entry.serial)
            seen = self._held(doc, before)
            if isinstance(operation, Effectful):
                effect = operation.run(doc)
            else:
                operation.apply(doc)
                effect = None
            serial = len(self.entries)
            if self.markers:
                doc.get(self.root, type=pycrdt.Map)[str(serial)] = True
            end = decode_state_vector(doc.get_state()).get(client, 0)
        covered = frozenset(
            entry.serial
            for entry in self.entries
            if entry.clocks[0] < entry.clocks[1] <= before.get(entry.client, 0)
            and entry.serial not in self._rolled_back
        )
        consistent = covered == seen if self.markers else True
        entry = Applied(serial, operation, client, (start, end), seen, effect, consistent)
        self.entries.append(entry)
        return entry

    def _held(self, doc: pycrdt.Doc[Any], state: dict[int, int]) -> frozenset[int]:
        if self.markers:
            return frozenset(int(key) for key in doc.get(self.root, type=pycrdt.Map))
        return frozenset(
            entry.serial
            for entry in self.entries
            if entry.clocks[0] < entry.clocks[1] <= state.get(entry.client, 0)
        )

    def held(self, doc: pycrdt.Doc[Any]) -> frozenset[int]:
        """Serials of the operations `doc` holds (without markers: every delete-only one)."""
        with doc.transaction():
            found = self._held(doc, decode_state_vector(doc.get_state()))
        if self.markers:
            return found
        deletes = {entry.serial for entry in self.entries if entry.clocks[0] == entry.clocks[1]}
        return found | deletes

    def survivors(self, doc: pycrdt.Doc[Any]) -> list[Applied]:
        """The operations `doc` holds (after settling: the ones that survived)."""
        held = self.held(doc)
        return [entry for entry in self.entries if entry.serial in held]

    def lost(self, doc: pycrdt.Doc[Any]) -> list[Applied]:
        held = self.held(doc)
        return [entry for entry in self.entries if entry.serial not in held]


# -- identities for laws -------------------------------------------------------------------


def identity(value: Any) -> str:
    """A JSON value's identity as crdtedge defines it (docs/types.md): numbers by numeric
    value (1 and 1.0 alike), objects whatever their key order, booleans apart from numbers.
    Written independently of the types' own, to check them against."""

    def normal(item: Any) -> Any:
        if isinstance(item, bool) or item is None or isinstance(item, str):
            return item
        if isinstance(item, int | float):
            return int(item) if math.isfinite(item) and float(item).is_integer() else item
        if isinstance(item, list | tuple):
            return [normal(x) for x in item]
        return {key: normal(x) for key, x in item.items()}

    return json.dumps(normal(value), sort_keys=True)
