"""The harness's type scenarios once more over real sockets: crdtedge types edited by two
replicas through a relay subprocess that is SIGKILLed mid-stream, with one replica's
wall clock an hour behind. The laws checked under the simulation hold here too."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from polling import until
from relay_process import RelayProcess, free_port
from test_partitions import fast_backoff

from crdtedge import Counter, HybridClock, LogStore, Register, Replica, Set
from crdtedge.types.hlc import system_wall_ms


def an_hour_behind() -> int:
    return system_wall_ms() - 3_600_000


async def test_counter_set_and_register_laws_hold_through_a_relay_sigkill(
    tmp_path: Path,
) -> None:
    relay = RelayProcess(tmp_path / "relay", free_port())
    relay.start()
    url = relay.url + "/types"
    moves: list[int] = []
    try:
        with LogStore(tmp_path / "a") as store_a, LogStore(tmp_path / "b") as store_b:
            async with (
                Replica(store_a, "types", url=url, backoff=fast_backoff()) as a,
                Replica(store_b, "types", url=url, backoff=fast_backoff()) as b,
            ):
                await asyncio.wait_for(asyncio.gather(a.synced(), b.synced()), 10)
                lagging = HybridClock(wall_ms=an_hour_behind)
                for i in range(60):
                    for replica, by in ((a, 1), (b, -2 if i % 3 == 0 else 3)):
                        counter = Counter(replica.doc, "visits")
                        counter.increment(by) if by > 0 else counter.decrement(-by)
                        moves.append(by)
                        Set(replica.doc, "tags").add(f"{'ab'[replica is b]}{i % 7}")
                    if i == 30:
                        relay.stop(signal.SIGKILL)  # mid-stream: both keep working
                        Register(a.doc, "mode").set("auto")
                        # b's write follows a's only once b has seen it: b is offline now.
                    if i == 45:
                        await asyncio.to_thread(relay.start)
                    await asyncio.sleep(0.005)
                await until(lambda: Register(b.doc, "mode").value == "auto", timeout=15)
                Register(b.doc, "mode", clock=lagging).set("manual")  # seen "auto" first
                Set(a.doc, "tags").discard("a0")
                await asyncio.wait_for(asyncio.gather(a.flushed(), b.flushed()), 15)
                await until(lambda: Register(a.doc, "mode").value == "manual", timeout=15)
                await until(lambda: "a0" not in Set(b.doc, "tags"), timeout=15)
                for replica in (a, b):
                    assert Counter(replica.doc, "visits").value == sum(moves)
                    expected = {f"{p}{i}" for p in "ab" for i in range(7)} - {"a0"}
                    assert set(Set(replica.doc, "tags").values()) == expected
                    assert Register(replica.doc, "mode").value == "manual"
    finally:
        relay.stop(signal.SIGKILL)
