"""A sensor gateway that keeps recording while its uplink is down.

Readings go into a replica (durable on local disk first); the gateway prints its sync
status and how many readings the relay has not yet stored, and catches up by itself when
the relay becomes reachable.

    bash scripts/serve.sh                                  # in one terminal (optional)
    .venv/bin/python examples/sensor_gateway.py            # in another

Stop the relay and start it again: the gateway keeps recording, then catches up.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

import pycrdt

from crdtedge import LogStore, Replica


async def record(replica: Replica, sensor: str, every: float, count: int | None) -> None:
    readings = replica.doc.get("readings", type=pycrdt.Array)
    rng = random.Random()
    taken = 0
    while count is None or taken < count:
        celsius = round(20 + rng.gauss(0, 0.5), 2)
        readings.append({"sensor": sensor, "t": time.time(), "celsius": celsius})
        taken += 1
        print(
            f"{time.strftime('%H:%M:%S')} {sensor} {celsius:5.2f} °C  "
            f"status={replica.status:<10} unsynced={replica.unflushed:<4} "
            f"stored locally={len(readings)}",
            flush=True,
        )
        await asyncio.sleep(every)


async def main(args: argparse.Namespace) -> None:
    with LogStore(args.data_dir) as store:
        url = f"{args.relay.rstrip('/')}/{args.room}"
        async with Replica(store, args.room, url=url) as replica:
            replica.set_awareness({"gateway": args.sensor, "kind": "sensor-gateway"})
            replica.on_status(lambda status: print(f"-- link is {status}", flush=True))
            await record(replica, args.sensor, args.every, args.count)
            if args.count is not None:  # a bounded run waits until the relay has it all
                try:
                    await asyncio.wait_for(replica.flushed(), args.flush_timeout)
                    print("-- every reading is stored by the relay")
                except TimeoutError:
                    print(f"-- {replica.unflushed} readings not yet stored upstream")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--relay", default="ws://127.0.0.1:8765", help="relay base URL")
    parser.add_argument("--room", default="plant-1/sensors", help="document (room) name")
    parser.add_argument("--data-dir", default="./gateway-data", help="local log directory")
    parser.add_argument("--sensor", default="boiler-temp", help="sensor name")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between readings")
    parser.add_argument("--count", type=int, default=None, help="stop after N readings")
    parser.add_argument("--flush-timeout", type=float, default=10.0)
    return parser.parse_args(argv)


def run(argv: list[str] | None = None) -> Any:
    return asyncio.run(main(parse(argv)))


if __name__ == "__main__":
    try:
        run()
    except KeyboardInterrupt:
        print("-- stopped; readings are safe in the local log")
