"""crdtedge's own types on the simulated cluster: their laws hold through partitions,
crashes that tear log tails, skewed clocks and duplicated frames.

A crash legitimately loses a replica's local changes that were not durable yet (it never
sent them), so the laws are checked against the operations that survived, as the
`Ledger` tells them; without crashes, none may be lost.
"""

from __future__ import annotations

import os
import typing
from collections import Counter as Multiset
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, get_args, get_origin

import pycrdt
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from crdtedge import Counter, List, Map, Record, Register, Series, Set, Text
from crdtedge.testing import Cluster, ClusterMachine, LinkFaults, Operation
from crdtedge.testing.typed import (
    SKIPPED,
    Add,
    Append,
    Applied,
    Assign,
    Change,
    Clear,
    CreateEntry,
    Discard,
    Field,
    Increment,
    Ledger,
    On,
    Put,
    Remove,
    Write,
    bind_root,
    identity,
    preload,
    typed_operations,
)
from crdtedge.types import Summary

DEEP = os.environ.get("HYPOTHESIS_PROFILE") in ("deep", "crdtedge-deep")


def harness_settings(examples: int, steps: int = 30) -> settings:
    """Bounded in CI; HYPOTHESIS_PROFILE=deep runs 40 times more examples."""
    return settings(
        settings.default,
        max_examples=examples * (40 if DEEP else 1),
        stateful_step_count=steps * (2 if DEEP else 1),
    )


class Size(Record):
    width: int
    unit: str = "mm"


class Item(Record):
    name: str
    price: float = 0.0
    note: str | None
    stock: Counter
    notes: Text
    mode: Register
    tags: Set
    history: List[int]
    size: Size


ROOTS: dict[str, Any] = {
    "visits": Counter,
    "mode": Register,
    "tags": Set,
    "temps": Series,
    "notes": Text,
    "log": List[int],
    "stock": Map[int],
    "item": Item,  # a record with every kind of field, created once (preloaded)
    "catalog": Map[Item],  # records created, edited and removed concurrently
}


def create_item(doc: pycrdt.Doc[Any]) -> None:
    Item.create(doc, "item", name="bolt", size={"width": 3})


# -- the laws ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """An operation on one target (a root, or a field of a record), as applied."""

    entry: Applied
    edit: Any  # the edit on the target itself
    survived: bool

    @property
    def effect(self) -> Any:
        return self.entry.effect

    def saw(self, other: Step) -> bool:
        return other.entry.serial in self.entry.seen

    @property
    def consistent(self) -> bool:
        """Whether what it saw is a snapshot the laws can rely on (see `Applied`)."""
        return self.entry.consistent

    def __repr__(self) -> str:
        fate = "survived" if self.survived else "LOST"
        if not self.consistent:
            fate += ", saw an inconsistent snapshot"
        return (
            f"#{self.entry.serial} {self.entry.operation!r} by {self.entry.client} "
            f"saw {sorted(self.entry.seen)} -> {self.effect!r} ({fate})"
        )


def story(steps: Iterable[Step]) -> str:
    return "\n".join(f"  {step!r}" for step in steps)


PLAIN = "a plain field"  # the declared type of a plain record field, for the laws


def targets(ledger: Ledger, doc: pycrdt.Doc[Any]) -> dict[tuple[str, ...], tuple[Any, list[Step]]]:
    """Every operation by target path (a root, a record's field, ...) with the declared
    type there. Edits inside map entries and list items, whose targets move, are counted
    as operations on their map or list."""
    held = ledger.held(doc)
    found: dict[tuple[str, ...], tuple[Any, list[Step]]] = {}
    for entry in ledger.entries:
        operation = entry.operation
        assert isinstance(operation, On)
        path: tuple[str, ...] = (operation.root,)
        kind, edit = operation.kind, operation.edit
        while isinstance(edit, Field | Assign):
            path = (*path, edit.field)
            if isinstance(edit, Assign):
                kind = PLAIN
                break
            kind, edit = typing.get_type_hints(kind)[edit.field], edit.edit
        found.setdefault(path, (kind, []))[1].append(Step(entry, edit, entry.serial in held))
    return found


def live(steps: list[Step]) -> list[Step]:
    """The surviving steps that did something."""
    return [step for step in steps if step.survived and step.effect is not SKIPPED]


def counter_law(counter: Counter, steps: list[Step]) -> None:
    expected = sum(step.effect for step in live(steps))
    assert counter.value == expected, f"counter {counter.value} != {expected}\n{story(steps)}"


def register_law(register: Register, steps: list[Step]) -> None:
    """The newest surviving write wins, and a write is newer than every write it saw,
    even when its node's wall clock lags (the hybrid logical clock)."""
    for later in steps:
        for earlier in steps:
            if later.consistent and later.saw(earlier):
                assert later.effect > earlier.effect, (
                    f"#{later.entry.serial} saw #{earlier.entry.serial} but is not after it"
                    f"\n{story(steps)}"
                )
    survivors = live(steps)
    if not survivors:
        assert register.entry is None, f"{register.entry} but no write survived\n{story(steps)}"
        return
    newest = max(survivors, key=lambda step: step.effect)
    assert register.timestamp == newest.effect, f"{register.entry}\n{story(steps)}"
    assert identity(register.value) == identity(newest.edit.value), story(steps)


def set_law(members: Set, steps: list[Step]) -> None:
    """Add-wins OR-set: a value is present iff some surviving add of it was not seen by
    another surviving add, discard or clear of it. (Not for values edited from an
    inconsistent snapshot: what such an edit removed is unknown.)"""
    ops = live(steps)
    shaky = [op for op in ops if not op.consistent]
    if any(isinstance(op.edit, Clear) for op in shaky):
        return
    unknown = {identity(op.edit.value) for op in shaky}

    def covers(step: Step, add: Step) -> bool:
        same = isinstance(step.edit, Clear) or identity(step.edit.value) == identity(add.edit.value)
        return step is not add and same and step.saw(add)

    expected = {
        identity(add.edit.value)
        for add in ops
        if isinstance(add.edit, Add) and not any(covers(other, add) for other in ops)
    }
    expected -= unknown
    got = {identity(value) for value in members.values()} - unknown
    assert got == expected, f"set {sorted(got)} != {sorted(expected)}\n{story(steps)}"


def series_law(series: Series, steps: list[Step]) -> None:
    """Every surviving reading is there exactly once: listed, or counted in a rollup."""
    readings = [step.effect for step in live(steps) if isinstance(step.edit, Append)]
    listed = series.readings()
    keys = [(r.writer, r.source, r.seq) for r in listed]
    assert len(keys) == len(set(keys)), f"a reading listed twice: {listed}\n{story(steps)}"
    unknown = [r for r in listed if r not in readings]
    assert not unknown, f"readings nobody kept: {unknown}\n{story(steps)}"
    width = series.bucket_ms
    values: dict[tuple[str, int], list[float]] = {}
    for reading in readings:
        values.setdefault((reading.source, reading.t // width * width), []).append(reading.value)
    expected = {
        key: Summary(len(found), sum(found), min(found), max(found))
        for key, found in values.items()
    }
    got = {(rollup.source, rollup.start): rollup.summary for rollup in series.summarize()}
    assert got == expected, f"summaries {got} != {expected}\n{story(steps)}"


def multiset_law(content: list[Any], steps: list[Step]) -> None:
    """Text and lists: what is there was inserted by a surviving edit and not deleted.

    A delete removes what it saw, and two concurrent deletes may remove the same
    character, so per symbol: inserted - sum(deleted) <= final <= inserted - max(deleted);
    exactly inserted - sum(deleted) when the deleting edits saw one another in turn."""
    changes = [step for step in live(steps) if isinstance(step.effect, Change)]
    inserted = Multiset(symbol for step in changes for symbol in step.effect.added)
    deletes = [step for step in changes if step.effect.removed]
    removed = [Multiset(step.effect.removed) for step in deletes]
    final = Multiset(content)
    detail = f"final {content!r}\n{story(steps)}"
    for symbol in set(inserted) | set(final):
        most = max((r[symbol] for r in removed), default=0)
        total = sum(r[symbol] for r in removed)
        assert inserted[symbol] - total <= final[symbol] <= inserted[symbol] - most, (
            f"{symbol!r}: {final[symbol]} left of {inserted[symbol]} inserted, deletes "
            f"{[r[symbol] for r in removed]}\n{detail}"
        )
    in_turn = all(
        later.consistent and later.saw(earlier)
        for i, later in enumerate(deletes)
        for earlier in deletes[:i]
    )
    if in_turn:
        exact = inserted - sum(removed, Multiset())
        assert final == exact, f"{final} != {exact}\n{detail}"


UNCHECKED: Any = object()  # a created shared value: compared by presence only


def last_writer_law(
    present: bool, value: Any, steps: list[Step], *, before: tuple[bool, Any] = (False, None)
) -> None:
    """A map key or a record field, last writer wins: a value there comes from a surviving
    write that no other surviving write or delete of it saw, and is that one's if only one
    is unseen. With no surviving operation it is what it was before the story."""
    ops = live(steps)
    detail = f"present={present} value={value!r}\n{story(steps)}"
    if not ops:
        assert present == before[0], detail
        if present and value is not UNCHECKED:
            assert identity(value) == identity(before[1]), detail
        return
    if all(op.consistent for op in ops):
        unseen = [op for op in ops if not any(other.saw(op) for other in ops if other is not op)]
    else:  # who saw whom is unknown: only the sound part
        unseen = ops
    writes = [op for op in unseen if not isinstance(op.edit, Remove)]
    if present:
        assert writes, detail
        if value is not UNCHECKED:
            assert any(identity(op.edit.value) == identity(value) for op in writes), detail
    if len(unseen) == 1 and unseen[0].consistent:
        assert present == (not isinstance(unseen[0].edit, Remove)), detail
        if present and value is not UNCHECKED:
            assert identity(value) == identity(unseen[0].edit.value), detail


def resolve(doc: pycrdt.Doc[Any], path: tuple[str, ...]) -> Any:
    found = bind_root(doc, path[0], ROOTS[path[0]])
    for name in path[1:]:
        found = getattr(found, name)
    return found


def check_laws(ledger: Ledger, doc: pycrdt.Doc[Any]) -> None:
    """Every type's law on the settled document `doc`, against the surviving operations."""
    seed: pycrdt.Doc[Any] = pycrdt.Doc()
    with seed.transaction():
        create_item(seed)
    for path, (kind, steps) in targets(ledger, doc).items():
        target = resolve(doc, path)
        if kind is PLAIN:
            last_writer_law(True, target, steps, before=(True, resolve(seed, path)))
        elif kind is Counter:
            counter_law(target, steps)
        elif kind is Register:
            register_law(target, [step for step in steps if step.effect is not SKIPPED])
        elif kind is Set:
            set_law(target, steps)
        elif kind is Series:
            series_law(target, steps)
        elif kind is Text:
            multiset_law(list(str(target)), steps)
        elif kind == List[int]:
            multiset_law(list(target), steps)
        elif get_origin(kind) is Map:
            plain = get_args(kind)[0] is int
            by_key: dict[str, list[Step]] = {}
            for step in steps:
                if isinstance(step.edit, Put | Remove | CreateEntry):
                    by_key.setdefault(step.edit.key, []).append(step)
            for key, key_steps in by_key.items():
                present = key in target
                value = target[key] if present and plain else UNCHECKED
                last_writer_law(present, value, key_steps)
        else:
            raise AssertionError(f"no law for {path}: {kind}")


# -- the machines --------------------------------------------------------------------------


class TypesUnderFaults(ClusterMachine):
    """Edits on `roots` through partitions, crashes (torn log tails), skewed clocks and
    duplicated frames; the laws are checked against the surviving operations.

    Links behave as the TCP connections under a websocket do: each connection delivers
    its frames in order or dies (a partition closes the connections it cuts). The
    simulation's default links also drop or reorder single frames on a live connection;
    that delivers one client's updates out of their order, which pycrdt 0.14 integrates
    partially and may never repair (docs/types.md, "Known limits"): a failure there would
    be pycrdt's, not the types'."""

    roots: typing.ClassVar[dict[str, Any]] = ROOTS
    markers = True  # see Ledger: without crashes, run without them

    def links(self) -> st.SearchStrategy[LinkFaults]:
        return st.builds(
            LinkFaults,
            duplicate=st.sampled_from([0.0, 0.1, 0.3]),
            delay=st.sampled_from([(0.001, 0.001), (0.02, 0.02), (0.2, 0.2)]),  # in order
        )

    @precondition(lambda self: self.partitions)
    @rule(data=st.data())
    def partition(self, data: st.DataObject) -> None:
        """A partition, whose cut connections then time out and close."""
        ClusterMachine.partition(self, data)
        self.close_cut_connections()

    def close_cut_connections(self) -> None:
        sim = self.cluster.sim
        connections = [replica.connection for replica in self.cluster.replicas.values()]
        for relay in self.cluster.relays.values():
            connections += list(relay.peers)
        for connection in connections:
            if connection is None or not connection.open:
                continue
            if not sim.reachable(connection.client.name, connection.server.name):
                sim.close(connection, "cut by the partition")

    def topology(self, cluster: Cluster) -> None:
        super().topology(cluster)
        self.ledger = Ledger(markers=self.markers)
        preload(cluster, create_item)

    def operations(self) -> st.SearchStrategy[Operation]:
        return typed_operations(self.roots).map(self.ledger.track)

    @rule(data=st.data(), then=st.sampled_from([0.0, 0.01, 0.1, 0.5, 1.5]))
    def edit_concurrently(self, data: st.DataObject, then: float) -> None:
        """Several replicas edit at the same moment, none seeing the others' edits; then
        time passes (in many runs hypothesis turns the `wait` rule off)."""
        names = data.draw(
            st.lists(st.sampled_from(sorted(self.cluster.replicas)), min_size=2, max_size=3),
            label="replicas",
        )
        with self.simulating():
            for name in names:
                self.edit_replica(name, data.draw(self.drawn_operations, label=f"on {name}"))
            self.cluster.run(then)

    @precondition(lambda self: self.crashes)
    @rule(data=st.data(), restart=st.booleans())
    def power_cut(self, data: st.DataObject, restart: bool) -> None:
        """Edit, then lose power at once: the change may not be durable yet (it was not
        sent), and the torn log tail may or may not keep it."""
        name = data.draw(st.sampled_from(sorted(self.cluster.replicas)), label="replica")
        with self.simulating():
            for operation in data.draw(st.lists(self.drawn_operations, min_size=1, max_size=2)):
                self.edit_replica(name, operation)
            self.cluster.crash(name)
            if restart:
                self.cluster.restart(name)

    def check(self, cluster: Cluster) -> None:
        doc = next(replica.doc for replica in cluster.replicas.values() if replica.up)
        check_laws(self.ledger, doc)


def machine(
    name: str, roots: dict[str, Any], base: type[TypesUnderFaults] = TypesUnderFaults
) -> type[TypesUnderFaults]:
    """A machine editing only `roots`: fewer targets, so more concurrent edits of each."""
    return type(name, (base,), {"roots": roots})


TestEveryType = machine("EveryType", ROOTS).TestCase
TestEveryType.settings = harness_settings(30)

TestCountersAndRegisters = machine(
    "CountersAndRegisters", {"visits": Counter, "mode": Register}
).TestCase
TestCountersAndRegisters.settings = harness_settings(25)

TestSets = machine("Sets", {"tags": Set}).TestCase
TestSets.settings = harness_settings(30)

TestSeries = machine("SeriesUnderFaults", {"temps": Series}).TestCase
TestSeries.settings = harness_settings(25)

TestTextsAndLists = machine("TextsAndLists", {"notes": Text, "log": List[int]}).TestCase
TestTextsAndLists.settings = harness_settings(25)

TestMapsAndRecords = machine(
    "MapsAndRecords", {"stock": Map[int], "item": Item, "catalog": Map[Item]}
).TestCase
TestMapsAndRecords.settings = harness_settings(25)


class TypesWithoutCrashes(TypesUnderFaults):
    """No crashes, so no operation may be lost, and no ledger markers, so updates that
    only delete travel too (see `Ledger`): who saw what then comes from state vectors."""

    crashes = False
    markers = False

    def check(self, cluster: Cluster) -> None:
        for name, replica in cluster.replicas.items():
            lost = self.ledger.lost(replica.doc)
            assert not lost, f"{name} lost operations without a crash: {lost}"
        super().check(cluster)


TestTypesWithoutCrashes = TypesWithoutCrashes.TestCase
TestTypesWithoutCrashes.settings = harness_settings(15)

TestTextsWithoutCrashes = machine(
    "TextsWithoutCrashes", {"notes": Text, "log": List[int]}, base=TypesWithoutCrashes
).TestCase
TestTextsWithoutCrashes.settings = harness_settings(15)


# -- the ledger and the strategies on their own ---------------------------------------------


def power_cut_story(seed: int) -> tuple[Cluster, Ledger]:
    """a adds "x" (synced), then, cut off from its relay, discards it (an update that only
    deletes) and increments; a loses power, restarts and increments again."""
    ledger = Ledger()
    cluster = Cluster(seed=seed)
    cluster.add_relay("r")
    a = cluster.add_replica("a", relay="r")
    cluster.add_replica("b", relay="r")
    a.edit(ledger.track(On("tags", Set, Add("x"))).apply)
    cluster.run(0.5)
    cluster.partition({"a"}, {"r"})
    a.edit(ledger.track(On("tags", Set, Discard("x"))).apply)
    a.edit(ledger.track(On("visits", Counter, Increment(2))).apply)
    cluster.crash("a")
    cluster.restart("a")
    a.edit(ledger.track(On("visits", Counter, Increment(5))).apply)
    cluster.settle()
    cluster.assert_converged()
    return cluster, ledger


def first_story(lost: list[int], *, kept_client_id: bool = False) -> tuple[Cluster, Ledger]:
    """The first seed whose power cut lost the operations `lost` (torn tails are random)."""
    for seed in range(500):
        cluster, ledger = power_cut_story(seed)
        kept = any("START a" in line and "(kept)" in line for line in cluster.sim.history)
        doc = cluster.replicas["a"].doc
        if [entry.serial for entry in ledger.lost(doc)] == lost and kept == kept_client_id:
            return cluster, ledger
        cluster.close()
    raise AssertionError(f"no seed loses {lost}")


def test_the_ledger_tells_which_edits_a_power_cut_lost() -> None:
    cluster, ledger = first_story([1, 2])  # the torn tail lost both
    with cluster:
        doc = cluster.replicas["a"].doc
        assert Set(doc, "tags").values() == ["x"] and Counter(doc, "visits").value == 5
        check_laws(ledger, doc)
    cluster, ledger = first_story([2])  # it kept the discard (a delete-only change)
    with cluster:
        doc = cluster.replicas["a"].doc
        assert Set(doc, "tags").values() == [] and Counter(doc, "visits").value == 5
        check_laws(ledger, doc)


def test_the_ledger_is_right_when_a_restart_reuses_the_lost_clocks() -> None:
    """A cut between two log records leaves a log that looks complete: the replica keeps
    its client id and its next change reuses the clocks of the one it lost."""
    cluster, ledger = first_story([2], kept_client_id=True)
    with cluster:
        lost, again = ledger.entries[2], ledger.entries[3]
        assert (lost.client, lost.clocks) == (again.client, again.clocks)
        doc = cluster.replicas["a"].doc
        assert Counter(doc, "visits").value == 5
        check_laws(ledger, doc)


def test_an_inconsistent_snapshot_is_flagged() -> None:
    """pycrdt integrates one client's updates partially when they arrive out of order: a
    document then shows the ledger marker of a write but not the write itself."""
    ledger = Ledger()
    writer: pycrdt.Doc[Any] = pycrdt.Doc(client_id=7)
    updates = []
    for operation in [
        On("visits", Counter, Increment(1)),
        On("visits", Counter, Increment(1)),
        On("mode", Register, Write("w1")),
        On("mode", Register, Write("w2")),
    ]:
        before = writer.get_state()
        ledger.apply(writer, operation)
        updates.append(writer.get_update(before))
    reader: pycrdt.Doc[Any] = pycrdt.Doc(client_id=8)
    for index in (3, 1, 2):  # the first update is missing, the others out of order
        reader.apply_update(updates[index])
    assert "2" in reader.get(ledger.root, type=pycrdt.Map)
    assert Register(reader, "mode").entry is None  # yet the write is not there
    assert not ledger.apply(reader, On("mode", Register, Write("w3"))).consistent
    reader.apply_update(updates[0])
    writer.apply_update(reader.get_update())
    assert ledger.apply(writer, On("mode", Register, Write("w4"))).consistent


ANY_ROOTS = {**ROOTS, "raw map": pycrdt.Map, "raw list": pycrdt.Array, "raw text": pycrdt.Text}


@given(st.lists(typed_operations(ANY_ROOTS), max_size=40))
@settings(max_examples=60)
def test_edits_apply_to_any_document_and_keep_the_laws_in_sequence(
    operations: list[Operation],
) -> None:
    """On one document every edit is valid, checks itself, and the laws hold exactly."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    with doc.transaction():
        create_item(doc)
    ledger = Ledger()
    for operation in operations:
        ledger.apply(doc, operation)
    assert ledger.lost(doc) == []
    assert all(entry.seen == set(range(entry.serial)) for entry in ledger.entries)
    typed = Ledger()
    typed.entries = [entry for entry in ledger.entries if isinstance(entry.operation, On)]
    check_laws(typed, doc)
