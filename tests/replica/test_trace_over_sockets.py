"""The trace replay once more over real sockets: two replicas type the first part of the
friendsforever trace through a relay subprocess that is SIGKILLed mid-way; every copy,
the relay's log included, ends on exactly the trace's text."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pycrdt
from relay_process import RelayProcess, free_port
from test_partitions import fast_backoff

from crdtedge import LogStore, Replica, UpdateLog
from crdtedge.protocol import decode_state_vector
from crdtedge.testing import ConcurrentTrace, PreparedTrace

TRACE = Path(__file__).parents[1] / "data" / "friendsforever.json.gz"
TXNS = 3_000


async def type_agent(trace: PreparedTrace, agent: int, replica: Replica) -> None:
    """Type this agent's txns in order, each once its replica has seen the txn's parents."""
    for index in trace.by_agent[agent]:
        txn = trace.txns[index]
        while not txn.ready(decode_state_vector(replica.doc.get_state())):
            await asyncio.sleep(0.002)
        with replica.doc.transaction():
            replica.doc.apply_update(txn.update)
        await asyncio.sleep(0)


async def test_a_trace_prefix_replays_exactly_through_a_relay_sigkill(tmp_path: Path) -> None:
    trace = (await asyncio.to_thread(ConcurrentTrace.load(TRACE).prepare)).prefix(TXNS)
    relay = RelayProcess(tmp_path / "relay", free_port())
    relay.start()
    url = relay.url + "/trace"
    try:
        with LogStore(tmp_path / "a") as store_a, LogStore(tmp_path / "b") as store_b:
            async with (
                Replica(store_a, "trace", url=url, backoff=fast_backoff()) as a,
                Replica(store_b, "trace", url=url, backoff=fast_backoff()) as b,
            ):
                typing = asyncio.gather(type_agent(trace, 0, a), type_agent(trace, 1, b))
                await asyncio.sleep(0.3)
                assert not typing.done(), "the kill must land mid-trace"
                relay.stop(signal.SIGKILL)
                await asyncio.sleep(0.2)  # the agents type on until they need each other
                await asyncio.to_thread(relay.start)
                await asyncio.wait_for(typing, 60)
                await asyncio.wait_for(asyncio.gather(a.flushed(), b.flushed()), 30)
                async with asyncio.timeout(15):
                    for replica in (a, b):
                        while trace.text(replica.doc) != trace.end_content:
                            await asyncio.sleep(0.01)
        relay.stop(signal.SIGTERM)
        with UpdateLog(tmp_path / "relay" / "trace.ylog") as log:
            doc: pycrdt.Doc[Any] = pycrdt.Doc()
            log.load(doc)
        assert trace.text(doc) == trace.end_content
    finally:
        relay.stop(signal.SIGKILL)
