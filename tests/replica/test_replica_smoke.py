from __future__ import annotations

import asyncio
from pathlib import Path

import pycrdt
from pypeer import RelayHandle

from crdtedge import LogStore, Replica, SyncStatus


async def test_two_replicas_sync_and_flush(relay: RelayHandle, tmp_path: Path) -> None:
    with LogStore(tmp_path / "a") as sa, LogStore(tmp_path / "b") as sb:
        async with (
            Replica(sa, "doc", url=relay.url("doc")) as a,
            Replica(sb, "doc", url=relay.url("doc")) as b,
        ):
            await asyncio.wait_for(a.synced(), 5)
            await asyncio.wait_for(b.synced(), 5)
            assert a.status is SyncStatus.SYNCED
            a.doc.get("m", type=pycrdt.Map)["x"] = 1
            b.doc.get("m", type=pycrdt.Map)["y"] = 2
            assert a.unflushed == 1
            await asyncio.wait_for(a.flushed(), 5)
            await asyncio.wait_for(b.flushed(), 5)
            assert a.unflushed == 0
            for r in (a, b):
                while len(r.doc.get("m", type=pycrdt.Map)) < 2:
                    await asyncio.sleep(0.01)
