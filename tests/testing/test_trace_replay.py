"""Real concurrent data: the `friendsforever` trace (2 agents typing one document, a DAG
of 26,078 transactions) replayed by two replicas through relays under lost, duplicated and
reordered frames, partitions and crashes with torn log tails; every copy must end with the
trace's `endContent`, byte for byte. The trace's source and licence: tests/data/README.md."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pycrdt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdtedge.local_replica import LocalReplica
from crdtedge.log import UpdateLog
from crdtedge.testing import Cluster, LinkFaults
from crdtedge.testing.strategies import link_faults
from crdtedge.testing.traces import ConcurrentTrace, PreparedTrace, TraceError, TraceReplay

TRACE = Path(__file__).parent.parent / "data" / "friendsforever.json.gz"
DEEP = os.environ.get("HYPOTHESIS_PROFILE") == "deep"
NODES = ["agent0", "agent1", "cloud", "gateway"]


@pytest.fixture(scope="module")
def friends() -> PreparedTrace:
    """Prepared once per module: about a second and a half of pycrdt work."""
    return ConcurrentTrace.load(TRACE).prepare()


def cluster_for(trace: PreparedTrace, seed: int, faults: LinkFaults) -> tuple[Cluster, TraceReplay]:
    """Agent 0 behind a gateway chained to the cloud relay, agent 1 on the cloud."""
    cluster = Cluster(seed=seed, faults=faults)
    cluster.add_relay("cloud")
    cluster.add_relay("gateway", upstream="cloud")
    replay = TraceReplay(cluster, trace, relays=["gateway", "cloud"])
    return cluster, replay


def assert_every_copy_holds(cluster: Cluster, trace: PreparedTrace) -> None:
    docs = cluster.docs()
    assert sorted(docs) == ["agent0", "agent1", "cloud/doc", "gateway/doc"]
    for name, doc in docs.items():
        text = trace.text(doc)
        assert text == trace.end_content, f"{name}: {len(text)} code points\n{cluster.story()}"
    cluster.assert_converged()
    cluster.assert_no_acknowledged_write_lost()


# -- offline ------------------------------------------------------------------------------


def test_the_offline_replay_reproduces_end_content(friends: PreparedTrace) -> None:
    assert len(friends.txns) == 26_078
    assert [len(txns) for txns in friends.by_agent] == [12_124, 13_954]
    assert friends.text(friends.merged()) == friends.end_content
    assert len(friends.end_content) == 21_362
    # Each agent's clock ranges follow on from one another, and a prefix is a trace too.
    for txns in friends.by_agent:
        ends = [friends.txns[i].end for i in txns]
        assert [friends.txns[i].start for i in txns] == [0, *ends[:-1]]
    prefix = friends.prefix(1000)
    assert prefix.end_content == prefix.text(friends.merged(1000))
    assert len(prefix.txns) == sum(map(len, prefix.by_agent)) == 1000


def test_concurrent_inserts_are_ordered_like_the_trace_orders_agents() -> None:
    """Agent 0's insert goes first: the rule the client ids (0 -> 1, 1 -> 2) rely on."""
    data = {
        "kind": "concurrent",
        "numAgents": 2,
        "endContent": "ab",
        "txns": [
            {"agent": 1, "parents": [], "patches": [[0, 0, "b"]]},
            {"agent": 0, "parents": [], "patches": [[0, 0, "a"]]},
        ],
    }
    assert ConcurrentTrace.from_json(data).prepare().client_ids == (1, 2)
    with pytest.raises(TraceError, match="first difference at code point 0"):
        ConcurrentTrace.from_json({**data, "endContent": "ba"}).prepare()


def test_positions_count_code_points_not_utf8_bytes() -> None:
    data = {
        "kind": "concurrent",
        "numAgents": 2,
        "endContent": "é🎉!xü",  # concurrent "!" and "x" at 2: agent 0's goes first
        "txns": [
            {"agent": 0, "parents": [], "patches": [[0, 0, "é🎉ü"]]},
            {"agent": 1, "parents": [0], "patches": [[2, 0, "x"], [3, 0, "?"]]},
            {"agent": 0, "parents": [0], "patches": [[2, 0, "!"]]},
            {"agent": 1, "parents": [1, 2], "patches": [[4, 1, ""]]},
        ],
    }
    trace = ConcurrentTrace.from_json(data).prepare()
    assert trace.prefix(2).end_content == "é🎉x?ü"
    assert trace.text(trace.merged()) == "é🎉!xü"


def test_a_sequential_trace_is_one_agent() -> None:
    data = {"endContent": "hi!", "txns": [{"patches": [[0, 0, "hx"]]}, {"patches": [[1, 1, "i!"]]}]}
    trace = ConcurrentTrace.from_json(data).prepare()
    assert trace.by_agent == ((0, 1),)


def test_an_agent_forking_from_its_own_past_is_refused() -> None:
    data = {
        "kind": "concurrent",
        "numAgents": 1,
        "endContent": "ab",
        "txns": [
            {"agent": 0, "parents": [], "patches": [[0, 0, "a"]]},
            {"agent": 0, "parents": [], "patches": [[0, 0, "b"]]},  # not on txn 0
        ],
    }
    with pytest.raises(TraceError, match="does not build on its previous txn"):
        ConcurrentTrace.from_json(data).prepare()


def test_an_update_applied_in_a_transaction_is_a_local_change(tmp_path: Path) -> None:
    """What the driver relies on: `LocalReplica` logs and queues it like typed text."""
    author: pycrdt.Doc[Any] = pycrdt.Doc(client_id=7)
    author.get("text", type=pycrdt.Text).insert(0, "hello")
    typed = author.get_update()
    with UpdateLog(str(tmp_path / "r.ylog"), durability="none") as log:
        replica = LocalReplica(log, new_client_id=lambda: 7)
        with replica.doc.transaction():
            replica.doc.apply_update(typed)
        local = replica.take_local()
        assert len(local) == 1 and replica.unflushed == 1
        assert replica.own_clock() == 5
        replay: pycrdt.Doc[Any] = pycrdt.Doc()
        replay.apply_update(local[0])
        assert str(replay.get("text", type=pycrdt.Text)) == "hello"
        log.sync()
        replay = pycrdt.Doc()
        replay.apply_update(log.read_state())
        assert str(replay.get("text", type=pycrdt.Text)) == "hello"


# -- through a cluster ----------------------------------------------------------------------


class Chaos:
    """Faults drawn from the simulation's own generator (so the seed replays them): short
    partitions, and crashes (torn log tails) of replicas and relays that stay down a while."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.down: dict[str, float] = {}  # node -> virtual time it restarts
        self.crashes: dict[str, int] = dict.fromkeys(NODES, 0)
        self.partitions = 0

    def __call__(self) -> None:
        cluster, rng, now = self.cluster, self.cluster.sim.rng, self.cluster.sim.now
        for name, at in list(self.down.items()):
            if now >= at:
                cluster.restart(name)
                del self.down[name]
        roll = rng.random()
        if roll < 0.04:
            side = {name for name in NODES if rng.random() < 0.5} or {rng.choice(NODES)}
            if side != set(NODES):
                cluster.partition(side, set(NODES) - side)
                self.partitions += 1
        elif roll < 0.20:
            cluster.heal()
        elif roll < 0.23:
            name = rng.choice(NODES)
            cluster.crash(name)
            self.crashes[name] += 1
            self.down[name] = now + rng.choice([0.0, 0.0, 0.5, 3.0])

    def end(self) -> Iterator[str]:
        """Restart whatever is still down."""
        for name in self.down:
            self.cluster.restart(name)
            yield name
        self.down.clear()


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 9) if DEEP else [1])
def test_the_full_trace_replays_exactly_under_faults(friends: PreparedTrace, seed: int) -> None:
    faults = LinkFaults(loss=0.05, duplicate=0.05, delay=(0.001, 0.05))
    cluster, replay = cluster_for(friends, seed, faults)
    with cluster:
        chaos = Chaos(cluster)
        replay.run_until_typed(between=chaos)
        list(chaos.end())
        replay.run_until_typed()  # a restart may have lost typed txns: type them again
        cluster.settle()
        assert replay.done
        assert_every_copy_holds(cluster, friends)
        # The faults happened: every node crashed, and agents retyped txns they lost.
        assert min(chaos.crashes.values()) > 0 and chaos.partitions > 0, chaos.crashes
        assert sum(replay.resumed) > 0
        history = "\n".join(cluster.sim.history)
        for event in ("LOST", "DUPLICATED", "torn", "resumes at"):
            assert event in history


# -- hypothesis chooses the faults, on a prefix --------------------------------------------

Fault = tuple[str, ...]

faults = st.one_of(
    st.tuples(st.just("partition"), st.sampled_from(NODES), st.sampled_from(NODES)),
    st.tuples(st.just("heal")),
    st.tuples(st.just("crash"), st.sampled_from(NODES)),
    st.tuples(st.just("crash and restart"), st.sampled_from(NODES)),
    st.tuples(st.just("restart"), st.sampled_from(NODES)),
)
schedules = st.lists(st.tuples(st.sampled_from([0.01, 0.1, 0.5, 2.0]), faults), max_size=12)


@pytest.fixture(scope="module")
def friends_prefix(friends: PreparedTrace) -> PreparedTrace:
    """The first 1000 txns: 80 turns between the agents, many concurrent."""
    return friends.prefix(1000)


@settings(max_examples=8 * (40 if DEEP else 1), deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    links=link_faults(),
    schedule=schedules,
)
def test_a_prefix_replays_exactly_whatever_the_faults(
    friends_prefix: PreparedTrace, seed: int, links: LinkFaults, schedule: list[tuple[float, Fault]]
) -> None:
    cluster, replay = cluster_for(friends_prefix, seed, links)
    with cluster:
        for wait, fault in schedule:
            cluster.run(wait)
            match fault:
                case ("partition", a, b) if a != b:
                    cluster.partition({a}, {b})
                case ("heal",):
                    cluster.heal()
                case ("crash", name):
                    cluster.crash(name)
                case ("crash and restart", name):
                    cluster.crash(name)
                    cluster.restart(name)
                case ("restart", name):
                    cluster.restart(name)
        cluster.heal()
        for name in NODES:
            cluster.restart(name)
        replay.run_until_typed(limit=600)
        cluster.settle()
        assert_every_copy_holds(cluster, friends_prefix)
