"""An offline-first inventory that two replicas edit through a network partition.

A warehouse and a delivery van each hold the inventory, a `Map` of `Item` records, in a
`Replica`: durable on local disk first, synced through a relay whenever a link exists.
This example runs its own relay in-process, cuts the link, lets both sides keep working,
then heals the link and shows how each kind of field merged:

    .venv/bin/python examples/inventory.py
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crdtedge import Backoff, LogStore, Replica, SyncStatus
from crdtedge.relay import Relay
from crdtedge.types import Counter, Map, Record, Register, Set, Text


class Item(Record):
    name: str
    price: float = 0.0  # a plain field: the last write wins
    stock: Counter  # every delivery and every sale counts, exactly once
    location: Register  # the newest move wins (hybrid logical clock)
    tags: Set  # add-wins: a tag added on one side survives a concurrent removal
    notes: Text  # edits on both sides interleave, character by character


def inventory(replica: Replica) -> Map[Item]:
    return Map(replica.doc, "inventory", Item)


def show(label: str, replica: Replica) -> None:
    print(f"{label}:")
    for key, item in inventory(replica).items():
        print(
            f"  {key}: {item.name!r} stock {item.stock.value}, price {item.price:.2f}, "
            f"at {item.location.value!r}, tags {item.tags.values()}, notes {str(item.notes)!r}"
        )


async def until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def main(data: Path, port: int) -> bool:
    fast = Backoff(initial=0.05, cap=0.3, spread=0.1)  # reconnect quickly for the demo
    with (
        LogStore(data / "relay") as relay_store,
        LogStore(data / "warehouse") as warehouse_store,
        LogStore(data / "van") as van_store,
    ):
        async with Relay(relay_store) as relay:
            server = await relay.serve("127.0.0.1", port)
            port = next(iter(server.sockets)).getsockname()[1]
            url = f"ws://127.0.0.1:{port}/inventory"
            async with (
                Replica(warehouse_store, "inventory", url=url, backoff=fast) as warehouse,
                Replica(van_store, "inventory", url=url, backoff=fast) as van,
            ):
                await asyncio.wait_for(asyncio.gather(warehouse.synced(), van.synced()), 10)
                bolts = inventory(warehouse).create(
                    "bolt-m3",
                    {
                        "name": "M3 bolt",
                        "price": 0.10,
                        "stock": 100,
                        "location": "aisle 4",
                        "tags": ["hardware"],
                        "notes": "Zinc plated.",
                    },
                )
                await until(lambda: "bolt-m3" in inventory(van))
                show("-- both sides, online", van)

                print("-- the link goes down")
                server.close()
                await server.wait_closed()
                await until(lambda: SyncStatus.SYNCED not in (warehouse.status, van.status))

                # The warehouse takes a delivery, reprices, moves the bolts, retires a tag.
                bolts.stock.increment(20)
                bolts.price = 0.12
                bolts.location.set("aisle 7")
                bolts.tags.remove("hardware")
                bolts.notes.insert(len(bolts.notes), " Box of 100.")
                # The van, meanwhile, sells some, loads the rest, tags them, adds an item.
                on_van = inventory(van)["bolt-m3"]
                on_van.stock.decrement(5)
                await asyncio.sleep(0.01)  # the van moves them last
                on_van.location.set("van shelf 2")
                on_van.tags.add("hardware")
                on_van.tags.add("low-stock")
                on_van.notes.insert(0, "Popular! ")
                inventory(van).create("washer-m3", {"name": "M3 washer", "stock": 40})
                show("-- warehouse, offline", warehouse)
                show("-- van, offline", van)

                print("-- the link is back")
                server = await relay.serve("127.0.0.1", port)
                await until(
                    lambda: (
                        inventory(warehouse).to_py() == inventory(van).to_py()
                        and len(inventory(warehouse)) == 2
                    )
                )
                show("-- both sides, merged", warehouse)
                agree = inventory(warehouse).to_py() == inventory(van).to_py()
                print(f"-- the replicas agree: {agree}")
                await asyncio.wait_for(asyncio.gather(warehouse.flushed(), van.flushed()), 10)
                print("-- every change is stored by the relay")
            server.close()
            await server.wait_closed()
    return agree


def run(argv: list[str] | None = None) -> Any:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--data-dir", help="where the logs go (default: a temporary directory)")
    parser.add_argument("--port", type=int, default=0, help="relay port (default: any free one)")
    args = parser.parse_args(argv)
    if args.data_dir is not None:
        return asyncio.run(main(Path(args.data_dir), args.port))
    with tempfile.TemporaryDirectory() as data:
        return asyncio.run(main(Path(data), args.port))


if __name__ == "__main__":
    raise SystemExit(0 if run() else 1)
