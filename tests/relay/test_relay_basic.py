from __future__ import annotations

import asyncio

from pypeer import RelayHandle


async def test_two_peers_converge(relay: RelayHandle) -> None:
    async with relay.peer("room-a") as a, relay.peer("room-a") as b:
        await asyncio.wait_for(a.synced.wait(), 5)
        a.text.insert(0, "héllo")
        await a.push_local()
        await b.wait_for(lambda: str(b.text) == "héllo")
        b.text.insert(len("héllo".encode()), " wörld")
        await b.push_local()
        await a.wait_for(lambda: str(a.text) == "héllo wörld")
