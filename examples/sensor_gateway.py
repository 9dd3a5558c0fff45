"""A sensor gateway that keeps recording while its uplink is down.

Readings go into a replica (durable on local disk first): a `Series` per sensor, with
retention that rolls old readings up into per-minute summaries, a `Counter` of readings
taken across every gateway of the room, and a `Register` holding the newest reading of any
gateway (hybrid logical clock: the newest wins even if gateway clocks disagree). Any Yjs
client can read them (docs/types.md). It prints its sync status and how many changes the
relay has not yet stored, and catches up by itself when the relay is reachable.

    bash scripts/serve.sh                                     # in one terminal (optional)
    .venv/bin/python examples/sensor_gateway.py               # in another

Stop the relay and start it again: the gateway keeps recording, then catches up.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import time
from typing import Any

from crdtedge import LogStore, Replica
from crdtedge.types import Counter, Register, Series


async def record(replica: Replica, args: argparse.Namespace) -> None:
    readings = Series(
        replica.doc,
        "temperatures",
        bucket_ms=60_000,
        max_age_ms=args.keep_minutes * 60_000,
        max_count=args.keep,
    )
    taken = Counter(replica.doc, "readings-taken")
    latest = Register(replica.doc, "latest-reading")
    rng = random.Random()
    for _ in range(args.count) if args.count is not None else itertools.count():
        celsius = round(20 + rng.gauss(0, 0.5), 2)
        with replica.doc.transaction():  # one update, logged and sent together
            readings.append(args.sensor, celsius)
            taken.increment()
            latest.set({"sensor": args.sensor, "celsius": celsius})
            rolled = readings.compact()
        summaries = readings.rollups(args.sensor)
        print(
            f"{time.strftime('%H:%M:%S')} {args.sensor} {celsius:5.2f} °C  "
            f"status={replica.status:<10} unsynced={replica.unflushed:<4} "
            f"readings taken={taken.value} kept={len(readings.readings(args.sensor))} "
            f"rolled up={sum(s.summary.count for s in summaries)} (+{rolled}) "
            f"latest by={'me' if latest.writer == replica.client_id else latest.writer}",
            flush=True,
        )
        await asyncio.sleep(args.every)
    for rollup in readings.rollups(args.sensor):
        s = rollup.summary
        print(
            f"-- minute {time.strftime('%H:%M', time.localtime(rollup.start / 1000))}: "
            f"{s.count} readings, mean {s.mean:.2f} °C, min {s.minimum:.2f}, max {s.maximum:.2f}"
        )


async def main(args: argparse.Namespace) -> None:
    with LogStore(args.data_dir) as store:
        url = f"{args.relay.rstrip('/')}/{args.room}"
        async with Replica(store, args.room, url=url) as replica:
            replica.set_awareness({"gateway": args.sensor, "kind": "sensor-gateway"})
            replica.on_status(lambda status: print(f"-- link is {status}", flush=True))
            await record(replica, args)
            if args.count is not None:  # a bounded run waits until the relay has it all
                try:
                    await asyncio.wait_for(replica.flushed(), args.flush_timeout)
                    print("-- every reading is stored by the relay")
                except TimeoutError:
                    print(f"-- {replica.unflushed} changes not yet stored upstream")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--relay", default="ws://127.0.0.1:8765", help="relay base URL")
    parser.add_argument("--room", default="plant-1/sensors", help="document (room) name")
    parser.add_argument("--data-dir", default="./gateway-data", help="local log directory")
    parser.add_argument("--sensor", default="boiler-temp", help="sensor name")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between readings")
    parser.add_argument("--count", type=int, default=None, help="stop after N readings")
    parser.add_argument("--keep", type=int, default=600, help="raw readings kept per sensor")
    parser.add_argument("--keep-minutes", type=int, default=60, help="raw readings' max age")
    parser.add_argument("--flush-timeout", type=float, default=10.0)
    return parser.parse_args(argv)


def run(argv: list[str] | None = None) -> Any:
    return asyncio.run(main(parse(argv)))


if __name__ == "__main__":
    try:
        run()
    except KeyboardInterrupt:
        print("-- stopped; readings are safe in the local log")
