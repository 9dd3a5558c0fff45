"""A replica in its own process, writing one map key per change until killed.

Usage: python replica_worker.py DATA_DIR URL
Prints "client ID" once, then "durable N" each time keys 0..N-1 are durable locally.
"""

from __future__ import annotations

import asyncio
import sys

import pycrdt

from crdtedge import Backoff, LogStore, Replica


async def main(data_dir: str, url: str) -> None:
    with LogStore(data_dir) as store:
        backoff = Backoff(initial=0.05, cap=0.5, spread=0.1)
        async with Replica(store, "doc", url=url, backoff=backoff) as replica:
            print(f"client {replica.client_id}", flush=True)
            items = replica.doc.get("m", type=pycrdt.Map)
            start = len(items)
            n = start
            while True:
                items[f"{replica.client_id}-{n}"] = n
                n += 1
                if n % 10 == 0:
                    assert replica.log is not None
                    await replica.log.wait_durable()
                    print(f"durable {n - start}", flush=True)
                await asyncio.sleep(0.001)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
