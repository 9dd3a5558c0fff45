"""Replicas against real relay processes on 127.0.0.1: partitions, crashes, client ids."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pycrdt
import pytest
from polling import until
from relay_process import RelayProcess, free_port

from crdtedge import Backoff, LogStore, Replica, SyncStatus, UpdateLog
from crdtedge.protocol import decode_state_vector

WORKER = Path(__file__).with_name("replica_worker.py")


def fast_backoff() -> Backoff:
    return Backoff(initial=0.05, cap=0.5, spread=0.1)


def keys(replica: Replica) -> set[str]:
    return set(replica.doc.get("m", type=pycrdt.Map).keys())


@asynccontextmanager
async def replicas(tmp_path: Path, url: str, n: int) -> AsyncIterator[list[Replica]]:
    async with AsyncExitStack() as stack:
        result = []
        for i in range(n):
            store = stack.enter_context(LogStore(tmp_path / f"replica{i}"))
            replica = Replica(store, "doc", url=url, backoff=fast_backoff())
            result.append(await stack.enter_async_context(replica))
        yield result


@pytest.fixture
def relay(tmp_path: Path) -> Any:
    process = RelayProcess(tmp_path / "relay-data", free_port())
    process.start()
    yield process
    process.stop(signal.SIGKILL)


async def test_edits_on_both_sides_of_a_partition_converge(
    relay: RelayProcess, tmp_path: Path
) -> None:
    async with replicas(tmp_path, relay.url + "/doc", 2) as (a, b):
        await asyncio.wait_for(asyncio.gather(a.synced(), b.synced()), 10)
        a.doc.get("m", type=pycrdt.Map)["before"] = 0
        await until(lambda: "before" in keys(b))
        relay.stop(signal.SIGKILL)
        await until(lambda: a.status is not SyncStatus.SYNCED and b.status is not SyncStatus.SYNCED)
        for i in range(20):  # both keep working while the relay is gone
            a.doc.get("m", type=pycrdt.Map)[f"a{i}"] = i
            b.doc.get("m", type=pycrdt.Map)[f"b{i}"] = i
        a.doc.get("t", type=pycrdt.Text).insert(0, "grüße")
        await asyncio.to_thread(relay.start)
        expected = {"before"} | {f"a{i}" for i in range(20)} | {f"b{i}" for i in range(20)}
        await until(lambda: keys(a) == expected and keys(b) == expected, timeout=15)
        await until(lambda: str(b.doc.get("t", type=pycrdt.Text)) == "grüße")
        await asyncio.wait_for(asyncio.gather(a.flushed(), b.flushed()), 10)
    # The relay's own log holds the union.
    relay.stop(signal.SIGTERM)
    with UpdateLog(Path(relay.data_dir) / "doc.ylog") as log:
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        log.load(doc)
    assert set(doc.get("m", type=pycrdt.Map).keys()) == expected


async def test_relay_sigkill_mid_stream_keeps_every_acknowledged_change(
    relay: RelayProcess, tmp_path: Path
) -> None:
    async with replicas(tmp_path, relay.url + "/doc", 2) as (a, b):
        await asyncio.wait_for(asyncio.gather(a.synced(), b.synced()), 10)
        items = a.doc.get("m", type=pycrdt.Map)
        acked_at_kill = 0
        for i in range(400):
            items[str(i)] = i
            if i == 250:
                await asyncio.sleep(0.05)
                assert a.client is not None
                acked_at_kill = a.client.stored.get(a.client_id, 0)
                relay.stop(signal.SIGKILL)
            await asyncio.sleep(0.002)
        assert acked_at_kill > 0, "the relay acknowledged something before the kill"
        # Everything the relay acknowledged as durable is in its log.
        with UpdateLog(Path(relay.data_dir) / "doc.ylog") as log:
            relay_clocks = decode_state_vector(pycrdt.get_state(log.read_state()))
        assert relay_clocks.get(a.client_id, 0) >= acked_at_kill
        await asyncio.to_thread(relay.start)
        everything = {str(i) for i in range(400)}
        await until(lambda: keys(b) == everything, timeout=15)
        await asyncio.wait_for(a.flushed(), 10)
        assert a.unflushed == 0


async def test_replica_process_sigkill_loses_nothing_durable(
    relay: RelayProcess, tmp_path: Path
) -> None:
    data = tmp_path / "worker"
    for round_ in range(3):
        worker = subprocess.Popen(
            [sys.executable, str(WORKER), str(data), relay.url + "/doc"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert worker.stdout is not None
        client_line = worker.stdout.readline()
        assert client_line.startswith("client "), client_line
        client_id = int(client_line.split()[1])
        await asyncio.sleep(random.Random(round_).uniform(0.2, 0.6))
        os.kill(worker.pid, signal.SIGKILL)
        out, _ = worker.communicate()
        durable = [int(line.split()[1]) for line in out.splitlines() if line.startswith("durable")]
        promised = durable[-1] if durable else 0
        with LogStore(data) as store:
            async with Replica(store, "doc") as again:
                mine = {k for k in keys(again) if k.startswith(f"{client_id}-")}
                assert len(mine) >= promised  # nothing that was durable is lost
                assert again.log is not None
                # The rule: same id only when the log proves it is complete.
                assert again.client_id_reused == (again.log.recovery is None)
                if again.client_id_reused:
                    assert again.client_id == client_id
    # Through all of it, the relay and a fresh replica converge on the worker's log.
    with LogStore(data) as store:
        async with Replica(store, "doc", url=relay.url + "/doc", backoff=fast_backoff()) as w:
            await asyncio.wait_for(w.synced(), 10)
            local = keys(w)
            async with replicas(tmp_path, relay.url + "/doc", 1) as (reader,):
                await until(lambda: keys(reader) == local, timeout=10)


async def test_lost_tail_after_sending_takes_a_fresh_client_id(
    relay: RelayProcess, tmp_path: Path
) -> None:
    """The dangerous case: updates reached the relay, then the local tail was lost."""
    url = relay.url + "/doc"
    store_dir = tmp_path / "a"
    async with replicas(tmp_path, url, 1) as (b,):
        with LogStore(store_dir) as store:
            async with Replica(store, "doc", url=url, backoff=fast_backoff()) as a:
                await asyncio.wait_for(a.synced(), 10)
                first_id = a.client_id
                text = a.doc.get("t", type=pycrdt.Text)
                text.insert(0, "abc")
                text.insert(3, "def")
                await asyncio.wait_for(a.flushed(), 10)
                path = Path(store.path_for("doc"))
        await until(lambda: str(b.doc.get("t", type=pycrdt.Text)) == "abcdef")
        path.write_bytes(path.read_bytes()[:-5])  # the last record is torn: "def" is lost
        with LogStore(store_dir) as store:
            async with Replica(store, "doc", url=url, backoff=fast_backoff()) as a:
                assert not a.client_id_reused and a.client_id != first_id
                a.doc.get("t", type=pycrdt.Text).insert(0, "X")  # new edits, new id
                await asyncio.wait_for(a.synced(), 10)
                await until(lambda: str(a.doc.get("t", type=pycrdt.Text)) == "Xabcdef")
                await until(lambda: str(b.doc.get("t", type=pycrdt.Text)) == "Xabcdef")


async def test_salvaged_log_takes_a_fresh_client_id(tmp_path: Path) -> None:
    from crdtedge.log.salvage import salvage

    with LogStore(tmp_path) as store:
        async with Replica(store, "doc") as r:
            r.doc.get("m", type=pycrdt.Map)["k"] = 1
            first = r.client_id
        path = store.path_for("doc")
    salvage(path)
    with LogStore(tmp_path) as store:
        async with Replica(store, "doc") as r:
            assert r.client_id != first and not r.client_id_reused
            assert keys(r) == {"k"}
        async with Replica(store, "doc") as r:  # a clean restart keeps the new id
            assert r.client_id_reused
