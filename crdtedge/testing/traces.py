"""Replay real concurrent editing traces (josephg/editing-traces format) through a cluster.

A concurrent trace is a DAG: each transaction (txn) was typed by one agent on the merged
state of its `parents`. Replaying it on the harness takes two steps:

1. `ConcurrentTrace.prepare()` replays the DAG offline with pycrdt, one doc per agent with a
   fixed client id, and keeps the Yjs update each txn produced, what its agent must have
   seen before typing it, and the clock range it covers. It checks that merging every
   update gives exactly the trace's `endContent`.
2. `TraceReplay` makes one replica per agent in a `Cluster` type those updates in order, each
   as one local transaction (`SimReplica.edit`), so the write-ahead log, the durability
   barrier and sync run for real; an agent types a txn only once its replica has seen the
   txn's parents, and after a crash resumes from the first txn its replica lost.

Precomputed updates are what make the replay exact: a txn's positions are relative to its
parents' merge, which a replica on a live network almost never holds exactly (it has seen
more, or is still waiting for some), but the update names the items it inserts after and
deletes, so it lands where the author meant whatever else the replica holds.

    trace = ConcurrentTrace.load("friendsforever.json.gz").prepare()
    with Cluster(seed=1, faults=LinkFaults(loss=0.1)) as cluster:
        cluster.add_relay("cloud")
        replay = TraceReplay(cluster, trace, relays=["cloud"])
        replay.run_until_typed()
        cluster.settle()
        assert all(replay.text(doc) == trace.end_content for doc in cluster.docs().values())
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pycrdt

from ..protocol import decode_state_vector
from .cluster import Cluster
from .nodes import SimReplica

Patch = tuple[int, int, str]  # (position, code points deleted, text inserted)


class TraceError(ValueError):
    """The trace cannot be replayed as described (bad DAG, or a result that differs)."""


@dataclass(frozen=True)
class TraceTxn:
    agent: int
    parents: tuple[int, ...]  # earlier txns whose merged state this one was typed on
    patches: tuple[Patch, ...]  # code point positions, applied one after another


@dataclass(frozen=True)
class ConcurrentTrace:
    """An editing trace: `txns` typed by `num_agents` agents, ending in `end_content`."""

    txns: tuple[TraceTxn, ...]
    num_agents: int
    end_content: str

    @classmethod
    def load(cls, path: str | Path) -> ConcurrentTrace:
        """Read a trace file (JSON, gzipped if the name ends in .gz)."""
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as file:
            return cls.from_json(json.load(file))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConcurrentTrace:
        """A concurrent trace; a sequential one (no agents, no parents) becomes one agent
        typing each txn on the previous one."""
        if data.get("startContent", ""):
            raise TraceError("traces that start from non-empty content are not supported")
        concurrent = data.get("kind") == "concurrent" or "numAgents" in data
        txns = []
        for index, raw in enumerate(data["txns"]):
            parents = tuple(raw["parents"]) if concurrent else ((index - 1,) if index else ())
            patches = tuple((int(p), int(n), str(s)) for p, n, s in raw["patches"])
            txns.append(TraceTxn(int(raw.get("agent", 0)), parents, patches))
        agents = int(data["numAgents"]) if concurrent else 1
        return cls(tuple(txns), agents, str(data["endContent"]))

    def prepare(self, *, root: str = "text", first_client_id: int = 1) -> PreparedTrace:
        """Replay the DAG offline: see `PreparedTrace`."""
        return _prepare(self, root, first_client_id)


@dataclass(frozen=True)
class PreparedTxn:
    agent: int
    update: bytes  # the Yjs update (v1) its agent's edit produced
    needs: dict[int, int]  # client id -> clock: the inserts of its parents' closure
    start: int  # its agent's clock before the txn
    end: int  # ... and after it (equal for a txn that only deletes)

    def ready(self, seen: Mapping[int, int]) -> bool:
        """Whether a replica whose state vector is `seen` has what this txn was typed on."""
        return all(seen.get(client, 0) >= clock for client, clock in self.needs.items())


@dataclass(frozen=True)
class PreparedTrace:
    """A trace as Yjs updates, one per txn, ready to be typed on replicas.

    Agent `a` writes with client id `client_ids[a]`; `by_agent[a]` lists its txns in the
    order it typed them (indexes into `txns`); every prefix of `txns` is closed under
    parents, so `prefix(n)` is a smaller trace with its own exact `end_content`."""

    txns: tuple[PreparedTxn, ...]
    client_ids: tuple[int, ...]
    by_agent: tuple[tuple[int, ...], ...]
    end_content: str
    root: str

    def text(self, doc: pycrdt.Doc[Any]) -> str:
        """The trace's text as `doc` holds it."""
        return str(doc.get(self.root, type=pycrdt.Text))

    def merged(self, count: int | None = None) -> pycrdt.Doc[Any]:
        """A doc holding the first `count` txns (all by default)."""
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        for txn in self.txns[:count]:
            doc.apply_update(txn.update)
        return doc

    def prefix(self, count: int) -> PreparedTrace:
        """The first `count` txns, with the text their merge gives as `end_content`."""
        by_agent = tuple(tuple(i for i in txns if i < count) for txns in self.by_agent)
        text = self.text(self.merged(count))
        return PreparedTrace(self.txns[:count], self.client_ids, by_agent, text, self.root)


def _prepare(trace: ConcurrentTrace, root: str, first_client_id: int) -> PreparedTrace:
    """One doc per agent, brought forward to each txn's parents by applying the other
    agents' updates: linear time, as long as each agent's versions only grow."""
    agents = trace.num_agents
    # Yjs orders concurrent inserts at one place by client id (the lower id goes first).
    # The trace format promises there are none, but friendsforever has some: from txn
    # 22359 agent 1 types " The" after "90s" while agent 0 replaces the character there
    # with ", hu...". endContent puts agent 0's text first, so ids ascend with the agent
    # number; the other way round Yjs gives "90s The whole , hh?uscene".
    client_ids = tuple(first_client_id + agent for agent in range(agents))
    docs: list[pycrdt.Doc[Any]] = [pycrdt.Doc(client_id=cid) for cid in client_ids]
    texts = [doc.get(root, type=pycrdt.Text) for doc in docs]
    captured: list[bytes] = []
    for doc in docs:
        doc.observe(lambda event: captured.append(event.update))
    ascii_only = all(s.isascii() for txn in trace.txns for _, _, s in txn.patches)

    by_agent: list[list[int]] = [[] for _ in range(agents)]
    ends: list[list[int]] = [[] for _ in range(agents)]  # clock after each of an agent's txns
    versions: list[list[int]] = []  # per txn: how many txns of each agent it includes
    applied = [[0] * agents for _ in range(agents)]  # applied[a][b]: b's txns in a's doc
    prepared: list[PreparedTxn] = []
    for index, txn in enumerate(trace.txns):
        a = txn.agent
        if not 0 <= a < agents or any(not 0 <= p < index for p in txn.parents):
            raise TraceError(f"txn {index}: unknown agent or a parent that is not earlier")
        version = [0] * agents
        for parent in txn.parents:
            version = [max(x, y) for x, y in zip(version, versions[parent], strict=True)]
        if version[a] != len(by_agent[a]):
            # Agent a forked from an older state of its own (or skipped one of its txns):
            # its doc cannot go back, and per-agent counts would not describe versions.
            raise TraceError(f"txn {index}: agent {a} does not build on its previous txn")
        for b in range(agents):
            for k in range(applied[a][b], version[b]):
                docs[a].apply_update(prepared[by_agent[b][k]].update)
            applied[a][b] = max(applied[a][b], version[b])
        needs = {client_ids[b]: ends[b][version[b] - 1] for b in range(agents) if version[b]}
        captured.clear()
        with docs[a].transaction():
            _type(texts[a], txn.patches, ascii_only)
        if len(captured) > 1:
            raise TraceError(f"txn {index}: one edit made {len(captured)} transactions")
        update = captured[0] if captured else b"\x00\x00"  # an empty update (no-op txn)
        start = ends[a][-1] if ends[a] else 0
        # Not pycrdt.get_state(update): for an update that does not start at clock 0 it
        # gives an empty state vector (it only counts what an empty doc could integrate).
        end = decode_state_vector(docs[a].get_state()).get(client_ids[a], 0)
        prepared.append(PreparedTxn(a, update, needs, start, end))
        by_agent[a].append(index)
        ends[a].append(end)
        applied[a][a] += 1
        version[a] += 1
        versions.append(version)

    result = PreparedTrace(
        tuple(prepared), client_ids, tuple(map(tuple, by_agent)), trace.end_content, root
    )
    merged = result.text(result.merged())
    if merged != trace.end_content:
        pairs = zip(merged, trace.end_content, strict=False)  # one may be shorter
        at = next(
            (i for i, (x, y) in enumerate(pairs) if x != y),
            min(len(merged), len(trace.end_content)),
        )
        raise TraceError(
            f"merging every txn does not give endContent: first difference at code point "
            f"{at}: {merged[at - 20 : at + 20]!r} != {trace.end_content[at - 20 : at + 20]!r}"
        )
    return result


def _type(text: pycrdt.Text, patches: Sequence[Patch], ascii_only: bool) -> None:
    """Apply code point patches to a pycrdt Text, which counts UTF-8 bytes."""
    for position, deleted, inserted in patches:
        if ascii_only:
            start, stop = position, position + deleted
        else:
            current = str(text)
            start = len(current[:position].encode("utf-8"))
            stop = start + len(current[position : position + deleted].encode("utf-8"))
        if stop > start:
            del text[start:stop]
        if inserted:
            text.insert(start, inserted)


# -- the driver ------------------------------------------------------------------------------


class AgentReplica(SimReplica):
    """A replica that writes with its agent's client id, also after a torn log.

    `LocalReplica` takes a fresh client id when its log lost a tail, so that new edits
    never reuse a (client, clock) that someone else may hold with other content. A trace
    agent retypes exactly the bytes it lost (same ids, same content), which is why it may
    keep its id; it has to, since the prepared updates carry it."""

    agent_client_id: int | None = None  # set by `TraceReplay` on a subclass per agent

    def new_client_id(self) -> int:
        if self.agent_client_id is None:
            raise TypeError("AgentReplica needs an agent_client_id (use TraceReplay)")
        return self.agent_client_id


class TraceReplay:
    """Agents typing a prepared trace on replicas of a `Cluster`, as people would.

    Every `interval` seconds of virtual time each agent whose replica is up types up to
    `burst` txns, stopping at the first whose parents its replica has not seen yet. Seen
    means the replica's state vector covers the parents' inserts: a state vector cannot
    show deletions, but waiting for them would change no byte, since an update names the
    items it touches. Replica `names[a]` (default "agent{a}") syncs through
    `relays[a % len(relays)]`."""

    def __init__(
        self,
        cluster: Cluster,
        trace: PreparedTrace,
        *,
        relays: Sequence[str],
        names: Sequence[str] | None = None,
        interval: float = 0.01,
        burst: int = 1,
    ) -> None:
        self.cluster = cluster
        self.trace = trace
        self.interval = interval
        self.burst = burst
        agents = len(trace.client_ids)
        self.names = list(names) if names is not None else [f"agent{a}" for a in range(agents)]
        self.replicas = [
            self._add_replica(cluster, a, self.names[a], relays[a % len(relays)])
            for a in range(agents)
        ]
        self.next = [0] * agents  # per agent: the position in by_agent of its next txn
        self.lives = [replica.life for replica in self.replicas]
        self.resumed = [0] * agents  # txns retyped after crashes, per agent
        self._seen: list[tuple[tuple[int, int], dict[int, int]]] = [((-1, -1), {})] * agents
        for agent in range(agents):
            self._schedule(agent)

    def _add_replica(self, cluster: Cluster, agent: int, name: str, relay: str) -> SimReplica:
        """A replica of `cluster.replica_class` (faulty ones too) with the agent's id."""
        base = cluster.replica_class
        attributes = {"agent_client_id": self.trace.client_ids[agent]}
        bases = (base,) if issubclass(base, AgentReplica) else (AgentReplica, base)
        cls = cast(type[SimReplica], type(f"Agent{agent}{base.__name__}", bases, attributes))
        return cluster.add_replica(name, relay=relay, replica_class=cls)

    # -- progress ------------------------------------------------------------------------

    @property
    def typed(self) -> int:
        """How many txns the agents have typed (and not lost since)."""
        return sum(self.next)

    @property
    def done(self) -> bool:
        """Every agent has typed all its txns, and its replica has not crashed since."""
        return all(
            replica.up and replica.life == life and position == len(txns)
            for replica, life, position, txns in zip(
                self.replicas, self.lives, self.next, self.trace.by_agent, strict=True
            )
        )

    def run_until_typed(
        self, limit: float = 3600.0, step: float = 0.5, between: Callable[[], None] | None = None
    ) -> None:
        """Run the cluster until every txn is typed, calling `between()` after each step
        (where a test injects faults). Fails after `limit` seconds of virtual time."""
        deadline = self.cluster.sim.now + limit
        while not self.done:
            if self.cluster.sim.now >= deadline:
                raise AssertionError(
                    f"trace not typed after {limit} s: {self.next} of "
                    f"{[len(t) for t in self.trace.by_agent]}\n{self.cluster.story()}"
                )
            self.cluster.run(step)
            if between is not None:
                between()

    def text(self, doc: pycrdt.Doc[Any]) -> str:
        return self.trace.text(doc)

    # -- typing --------------------------------------------------------------------------

    def _schedule(self, agent: int) -> None:
        self.cluster.sim.at(self.interval, lambda: self._tick(agent))

    def _tick(self, agent: int) -> None:
        self._schedule(agent)
        replica = self.replicas[agent]
        if not replica.up:
            return
        if replica.life != self.lives[agent]:
            self._resume(agent, replica)
        txns = self.trace.by_agent[agent]
        if self.next[agent] == len(txns):
            return
        seen = self._state(agent, replica)
        for _ in range(self.burst):
            if self.next[agent] == len(txns):
                return
            index = txns[self.next[agent]]
            txn = self.trace.txns[index]
            if not txn.ready(seen):
                return  # wait, as a person would, until the parents arrive
            replica.edit(_typing(txn.update))
            seen = self._state(agent, replica)
            own = seen.get(self.trace.client_ids[agent], 0)
            if own != txn.end:
                raise AssertionError(
                    f"{replica.name} typed txn {index} (clocks {txn.start}..{txn.end}) but "
                    f"holds clock {own}: the update did not integrate\n{self.cluster.story()}"
                )
            self.next[agent] += 1

    def _state(self, agent: int, replica: SimReplica) -> dict[int, int]:
        """The replica's state vector, read only when its doc changed: an agent waiting for
        its parents looks on every tick, and every change to the doc (local or remote) is
        a record appended to the replica's log first."""
        assert replica.log is not None
        key = (replica.life, replica.log.appended)
        if key != self._seen[agent][0]:
            self._seen[agent] = (key, decode_state_vector(replica.doc.get_state()))
        return self._seen[agent][1]

    def _resume(self, agent: int, replica: SimReplica) -> None:
        """After a restart: go back to the first txn the replica's log no longer holds.

        The log keeps a prefix of the replica's transactions, so its own clock says which
        inserting txns survived; a txn that only deletes, right at that clock, may or may
        not have, and is retyped (applying it again changes nothing if it survived)."""
        self.lives[agent] = replica.life
        held = decode_state_vector(replica.doc.get_state()).get(self.trace.client_ids[agent], 0)
        txns = self.trace.by_agent[agent]
        position = 0
        while position < len(txns):
            txn = self.trace.txns[txns[position]]
            if txn.end > held or txn.start == txn.end == held:
                break
            position += 1
        if position < len(txns) and self.trace.txns[txns[position]].start < held:
            raise AssertionError(f"{replica.name} holds clock {held}, in the middle of a txn")
        if position > self.next[agent]:
            raise AssertionError(f"{replica.name} holds txns its agent never typed")
        if position < self.next[agent]:
            self.cluster.sim.note(
                f"TRACE {replica.name} resumes at its txn {position} (had typed {self.next[agent]})"
            )
        self.resumed[agent] += self.next[agent] - position
        self.next[agent] = position


def _typing(update: bytes) -> Callable[[pycrdt.Doc[Any]], None]:
    """The change that types a prepared txn: its update, applied in the edit's transaction
    (the replica logs and sends it as a local change, as if typed through its Text)."""

    def change(doc: pycrdt.Doc[Any]) -> None:
        doc.apply_update(update)

    return change
