"""Salvage: rebuild a damaged log from the verified records that precede the damage.

Loading refuses a corrupt log on purpose; this is the explicit, separate operation that
accepts losing what follows the damage. The salvaged log carries a metadata record saying
so, because a log that lost records can no longer prove it holds every local change (a
replica must then take a fresh client id).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import orjson

from .files import read_file, replace_atomically
from .format import RecordKind, encode_frame, scan


@dataclass(frozen=True)
class SalvageReport:
    source: str
    output: str
    records_kept: int
    bytes_kept: int  # of the original file, up to the damage
    bytes_dropped: int
    damage: str | None  # None if the log was whole (or only had a torn tail)


def salvage(path: str, output: str | None = None) -> SalvageReport:
    """Write the records before the first damage of `path` to `output` (default: in place,
    after keeping the damaged original as `path.damaged-<unix time>`)."""
    data = read_file(path)
    scanned, damage = scan(data, path, stop_at_damage=True)
    kept = len(scanned.updates) + len(scanned.others)
    out = bytearray(data[: scanned.end])
    dropped = len(data) - scanned.end
    # A salvaged log cannot prove it holds every local change: clearing the recorded
    # client id makes a replica take a fresh one (see docs/replica.md).
    meta = {
        "salvaged_at": time.time(),
        "bytes_dropped": dropped,
        "damage": damage,
        "client_id": None,
    }
    out += encode_frame(RecordKind.METADATA, orjson.dumps(meta))
    target = output if output is not None else path
    if output is None:  # a hard link keeps the original whole until the rename replaces it
        os.link(path, f"{path}.damaged-{int(time.time())}")
    replace_atomically(target, bytes(out))
    return SalvageReport(path, target, kept, scanned.end, dropped, damage)
