"""Helpers shared by the benchmarks: workloads, timing, progress lines and plain-text tables.

Benchmarks are scripts (`python benchmarks/<name>.py`), so this module is imported as
`_common` from the script's own directory.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import json
import os
import pickle
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pycrdt

DATA_DIR = Path(__file__).resolve().parent / "data"
AUTOMERGE_PAPER = DATA_DIR / "automerge-paper.json.gz"

#: A fixed 53-bit client id (pycrdt draws random ones up to 53 bits): the generated updates
#: are byte-for-byte reproducible and as large as a real pycrdt peer's.
CLIENT_ID = 6_004_843_617_468_147
CACHE_VERSION = 1  # bump when the way updates are generated changes

_STARTED = time.perf_counter()


def progress(message: str) -> None:
    """One line on stderr, prefixed with the seconds since the benchmark started."""
    print(f"[{time.perf_counter() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def median_seconds(reps: int, run: Callable[[], float]) -> float:
    """Call `run` (which times itself and returns seconds) `reps` times; return the median."""
    return statistics.median(run() for _ in range(reps))


def cache_dir() -> Path:
    """Where generated workloads are cached between runs (never inside the repository)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "crdtedge-bench"


def _recorder(doc: pycrdt.Doc[Any]) -> tuple[list[bytes], pycrdt.Subscription]:
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(event.update))
    return updates, subscription


def replay_trace(trace: Path, limit: int | None = None) -> list[bytes]:
    """One Yjs update per patch of a sequential editing trace (the first `limit` patches).

    Each patch is one transaction on a Text root named "text". Positions are Python str
    indices, which equal pycrdt's UTF-8 offsets only for ASCII traces such as automerge-paper.
    """
    with gzip.open(trace, "rb") as f:
        recorded = json.load(f)
    txns = recorded["txns"]
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=CLIENT_ID)
    text = doc.get("text", type=pycrdt.Text)
    updates, subscription = _recorder(doc)
    patches = (patch for txn in txns for patch in txn["patches"])
    for count, (pos, n_deleted, inserted) in enumerate(patches):
        if limit is not None and count >= limit:
            break
        with doc.transaction():
            if n_deleted:
                del text[pos : pos + n_deleted]
            if inserted:
                text.insert(pos, inserted)
    doc.unobserve(subscription)
    if limit is None and str(text) != recorded["endContent"]:
        raise RuntimeError(f"replaying {trace.name} did not give its endContent")
    return updates


def trace_updates(trace: Path, limit: int | None = None) -> list[bytes]:
    """`replay_trace`, cached under `cache_dir()` by a hash of the trace and the generator.

    A prefix is sliced from a cached whole trace when there is one (the generation is
    deterministic, so a prefix of the whole is the same as a replay of the prefix).
    """
    key = hashlib.sha256(trace.read_bytes())
    key.update(f"{CACHE_VERSION}:{CLIENT_ID}:{importlib.metadata.version('pycrdt')}".encode())
    stem = f"{trace.name.split('.')[0]}-{key.hexdigest()[:16]}"
    whole = cache_dir() / f"{stem}-all.pickle"
    if whole.exists():
        return _read_cache(whole)[:limit]
    cached = whole if limit is None else cache_dir() / f"{stem}-{limit}.pickle"
    if cached.exists():
        return _read_cache(cached)
    progress(f"replaying {trace.name} into a Doc (cached in {cached.parent} for next time)")
    updates = replay_trace(trace, limit)
    _write_cache(cached, updates)
    return updates


def _read_cache(path: Path) -> list[bytes]:
    with path.open("rb") as f:
        updates: list[bytes] = pickle.load(f)
    return updates


def _write_cache(path: Path, updates: list[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        pickle.dump(updates, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)


def random_insert_updates(count: int, seed: int = 20_000) -> list[bytes]:
    """`count` single-character inserts at uniformly random positions (seeded, deterministic).

    The same shape as crdt-benchmarks B1.4: one transaction (one update) per character.
    """
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz "
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=CLIENT_ID)
    text = doc.get("text", type=pycrdt.Text)
    updates, subscription = _recorder(doc)
    for length in range(count):
        with doc.transaction():
            text.insert(rng.randint(0, length), rng.choice(alphabet))
    doc.unobserve(subscription)
    return updates


def doc_text(doc: pycrdt.Doc[Any]) -> str:
    """The "text" root that the workloads edit."""
    return str(doc.get("text", type=pycrdt.Text))


def text_of(state: bytes) -> str:
    """The "text" root of a document given as one Yjs update."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(state)
    return doc_text(doc)


def format_seconds(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_bytes(size: int) -> str:
    return f"{size:,} B"


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """A plain-text table; `align` has one "l" or "r" per column (default: "l" then "r"s)."""
    align = align or "l" + "r" * (len(header) - 1)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.ljust(width) if side == "l" else cell.rjust(width)
            for cell, width, side in zip(cells, widths, align, strict=True)
        ]
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])
