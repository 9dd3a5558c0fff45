"""Benchmark crdtedge's update log side by side with pycrdt.store and the limits.

Everything runs in one process, on the same updates, so the ratios between the figures
mean more than the figures themselves on a shared, noisy machine. Workloads: the real
automerge-paper editing trace and 20,000 seeded random single-character inserts. "Cold"
load means a new object opening the file and reading the state; the OS page cache stays
warm. See benchmarks/README.md for the method and a recorded run.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio
import pycrdt
from _common import (
    AUTOMERGE_PAPER,
    doc_text,
    format_bytes,
    format_seconds,
    format_table,
    median_seconds,
    progress,
    random_insert_updates,
    text_of,
    trace_updates,
)
from pycrdt.store import BaseYStore, FileYStore, SQLiteYStore

from crdtedge.log import CompactionResult, UpdateLog
from crdtedge.log.format import FRAME, HEADER_SIZE, LENGTH_MASK

TRACE = "automerge-paper"
RANDOM = "random-insert"
RANDOM_UPDATES = 20_000


@dataclass(frozen=True)
class Config:
    mode: str
    trace_limit: int | None  # None: the whole trace
    reps: int  # repetitions of the whole-workload items (the median is kept)
    fast_reps: int  # repetitions of the millisecond items
    store_reps: int  # repetitions of the pycrdt.store writes (slow: milliseconds an update)
    subset: int  # first updates fed to always mode and to the pycrdt.store stores
    sync_samples: int  # append-then-sync() cycles timed for the sync() latency


FULL = Config("full", None, reps=3, fast_reps=9, store_reps=3, subset=1_000, sync_samples=200)
QUICK = Config("quick", 50_000, reps=3, fast_reps=5, store_reps=1, subset=200, sync_samples=50)


@dataclass(frozen=True)
class AppendRun:
    append_s: float  # the append() calls
    sync_s: float  # the sync() after the last one
    total_s: float
    compactions: int  # background compactions run by auto_compact (0 when it is off)


@dataclass(frozen=True)
class LogFigures:
    group: AppendRun
    group_auto_compact: AppendRun  # the constructor's default, auto_compact=True
    none: AppendRun
    always_per_update_s: float
    sync_latency_median_s: float
    sync_latency_p95_s: float
    compaction_s: float
    compaction: dict[str, Any]  # the CompactionResult of the last repetition
    cold_load_compacted_s: float  # open + read_state(): the state as bytes
    cold_load_into_doc_compacted_s: float  # open + load(doc): the state applied to a Doc
    cold_load_uncompacted_s: float
    bytes_uncompacted: int
    bytes_compacted: int


@dataclass(frozen=True)
class LimitFigures:
    raw_loop_s: float  # framed records written by a plain loop, one fsync at the end
    apply_all_s: float  # every update applied to a fresh Doc, then get_update()
    read_apply_state_s: float  # read a file holding the final state, apply it once
    state_bytes: int
    update_bytes: int  # the updates themselves, unframed
    raw_loop_bytes: int


@dataclass(frozen=True)
class SubsetFigures:
    """One store fed the first `updates` updates of a workload, then loaded into a Doc."""

    store: str
    updates: int
    write_per_update_s: float
    load_s: float
    bytes_on_disk: int


@dataclass(frozen=True)
class WorkloadResult:
    name: str
    updates: int
    log: LogFigures
    limits: LimitFigures
    subset: list[SubsetFigures]


@dataclass(frozen=True)
class Target:
    op: str  # ">=" or "<="
    bound: float
    meaning: str

    def met(self, value: float) -> bool:
        return value >= self.bound if self.op == ">=" else value <= self.bound


TARGETS = {
    "append_vs_sqlite": Target(
        ">=", 300, "SQLiteYStore write / UpdateLog group append+sync, per update"
    ),
    "append_vs_raw_loop": Target(
        "<=", 3, "UpdateLog group append all+sync / framed-write loop + 1 fsync"
    ),
    "load_vs_limit": Target("<=", 2, "cold load of compacted log / read state file + apply once"),
    "compact_vs_limit": Target("<=", 1.5, "compaction / apply all updates to a Doc + get_update"),
    "size_vs_state": Target("<=", 0.4, "compacted log bytes on disk / len(get_update())"),
}


# -- the limits --------------------------------------------------------------------------


def time_raw_loop(updates: Sequence[bytes], path: Path) -> float:
    """The same header-sized prefix and framed records as the log, written by a bare loop."""
    started = time.perf_counter()
    with path.open("wb") as f:
        write, pack, crc32 = f.write, FRAME.pack, zlib.crc32
        write(bytes(HEADER_SIZE))
        for update in updates:
            n = len(update)
            write(pack(n, 1, crc32(update, 1), n ^ LENGTH_MASK))
            write(update)
        f.flush()
        os.fsync(f.fileno())
    return time.perf_counter() - started


def apply_all(updates: Sequence[bytes]) -> tuple[float, bytes]:
    started = time.perf_counter()
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for update in updates:
        doc.apply_update(update)
    state = doc.get_update()
    return time.perf_counter() - started, state


def time_read_apply_state(path: Path) -> float:
    started = time.perf_counter()
    state = path.read_bytes()
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(state)
    return time.perf_counter() - started


def measure_limits(updates: Sequence[bytes], cfg: Config, work: Path) -> tuple[LimitFigures, bytes]:
    raw = work / "raw.bin"
    raw_loop_s = median_seconds(cfg.reps, lambda: time_raw_loop(updates, raw))
    runs = [apply_all(updates) for _ in range(cfg.reps)]
    state = runs[0][1]
    state_file = work / "state.bin"
    state_file.write_bytes(state)
    limits = LimitFigures(
        raw_loop_s=raw_loop_s,
        apply_all_s=statistics.median(seconds for seconds, _ in runs),
        read_apply_state_s=median_seconds(cfg.fast_reps, lambda: time_read_apply_state(state_file)),
        state_bytes=len(state),
        update_bytes=sum(map(len, updates)),
        raw_loop_bytes=raw.stat().st_size,
    )
    return limits, state


# -- the update log ----------------------------------------------------------------------


def time_log_append(
    updates: Sequence[bytes], path: Path, durability: str, auto_compact: bool
) -> AppendRun:
    """Append every update to a new log, then sync(); creating and closing are not timed."""
    with UpdateLog(path, durability=durability, auto_compact=auto_compact) as log:
        append = log.append
        started = time.perf_counter()
        for update in updates:
            append(update)
        appended = time.perf_counter()
        log.sync()
        synced = time.perf_counter()
    compactions = log.header.generation  # includes one that close() may have waited for
    return AppendRun(appended - started, synced - appended, synced - started, compactions)


def median_append(
    updates: Sequence[bytes], cfg: Config, work: Path, durability: str, auto_compact: bool = False
) -> tuple[AppendRun, Path]:
    """The repetition with the median total; returns the last log file written."""
    stem = f"{durability}-auto" if auto_compact else durability
    paths = [work / f"{stem}-{i}.ylog" for i in range(cfg.reps)]
    runs = sorted(
        (time_log_append(updates, path, durability, auto_compact) for path in paths),
        key=lambda r: r.total_s,
    )
    return runs[len(runs) // 2], paths[-1]


def sync_latencies(updates: Sequence[bytes], path: Path) -> list[float]:
    """Time sync() right after each append, with one update pending each time."""
    samples = []
    with UpdateLog(path, durability="group", auto_compact=False) as log:
        for update in updates:
            log.append(update)
            started = time.perf_counter()
            log.sync()
            samples.append(time.perf_counter() - started)
    return samples


def copy_durably(source: Path, target: Path) -> None:
    """Copy and fsync, so the copy's dirty pages are not flushed inside a timed fsync."""
    shutil.copyfile(source, target)
    with target.open("rb+") as f:
        os.fsync(f.fileno())


def time_compaction(source: Path, target: Path) -> tuple[float, CompactionResult]:
    copy_durably(source, target)
    with UpdateLog(target, auto_compact=False) as log:
        started = time.perf_counter()
        result = log.compact()
        elapsed = time.perf_counter() - started
    return elapsed, result


ColdLoad = Callable[[Path], tuple[float, str]]


def cold_read_state(path: Path) -> tuple[float, str]:
    """A new UpdateLog opening the file, then read_state(); closing is not timed."""
    started = time.perf_counter()
    with UpdateLog(path) as log:
        state = log.read_state()
        elapsed = time.perf_counter() - started
    return elapsed, text_of(state)


def cold_load_into_doc(path: Path) -> tuple[float, str]:
    """A new UpdateLog opening the file, then load() into a fresh Doc; closing is not timed."""
    started = time.perf_counter()
    with UpdateLog(path) as log:
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        log.load(doc)
        elapsed = time.perf_counter() - started
    return elapsed, doc_text(doc)


def time_cold_load(load: ColdLoad, path: Path, expected_text: str) -> float:
    elapsed, text = load(path)
    check_text(f"{load.__name__} of {path.name}", text, expected_text)
    return elapsed


def check_text(what: str, text: str, expected: str) -> None:
    """A benchmark of a log that loses or garbles data would be meaningless: stop."""
    if text != expected:
        raise RuntimeError(
            f"{what}: the document text differs from the expected one "
            f"({len(text):,} vs {len(expected):,} characters)"
        )


def measure_log(
    name: str, updates: Sequence[bytes], cfg: Config, work: Path, expected_text: str
) -> LogFigures:
    progress(
        f"{name}: append {len(updates):,} updates in group and none mode, "
        f"the first {cfg.subset:,} in always mode, x{cfg.reps}"
    )
    group, uncompacted = median_append(updates, cfg, work, "group")
    group_auto_compact, _ = median_append(updates, cfg, work, "group", auto_compact=True)
    none, _ = median_append(updates, cfg, work, "none")
    always, _ = median_append(updates[: cfg.subset], cfg, work, "always")
    progress(f"{name}: sync() latency")
    latencies = sync_latencies(updates[: cfg.sync_samples], work / "sync.ylog")
    progress(f"{name}: compaction x{cfg.reps}")
    compactions = [
        time_compaction(uncompacted, work / f"compacted-{i}.ylog") for i in range(cfg.reps)
    ]
    compacted = work / f"compacted-{cfg.reps - 1}.ylog"
    folded = compactions[-1][1].updates_folded
    if folded != len(updates):
        raise RuntimeError(f"compaction folded {folded:,} of {len(updates):,} updates")
    progress(f"{name}: cold loads")
    return LogFigures(
        group=group,
        group_auto_compact=group_auto_compact,
        none=none,
        always_per_update_s=always.total_s / cfg.subset,
        sync_latency_median_s=statistics.median(latencies),
        sync_latency_p95_s=statistics.quantiles(latencies, n=20)[-1],
        compaction_s=statistics.median(seconds for seconds, _ in compactions),
        compaction=asdict(compactions[-1][1]),
        cold_load_compacted_s=median_seconds(
            cfg.fast_reps, lambda: time_cold_load(cold_read_state, compacted, expected_text)
        ),
        cold_load_into_doc_compacted_s=median_seconds(
            cfg.fast_reps, lambda: time_cold_load(cold_load_into_doc, compacted, expected_text)
        ),
        cold_load_uncompacted_s=median_seconds(
            cfg.reps, lambda: time_cold_load(cold_read_state, uncompacted, expected_text)
        ),
        bytes_uncompacted=uncompacted.stat().st_size,
        bytes_compacted=compacted.stat().st_size,
    )


# -- pycrdt.store ------------------------------------------------------------------------

StoreFactory = Callable[[Path], BaseYStore]


def sqlite_store(directory: Path) -> BaseYStore:
    """SQLiteYStore with its defaults (a checkpoint every 100 updates, no squashing)."""
    attributes = {"db_path": str(directory / "ystore.db")}
    store_class: type[SQLiteYStore] = type("BenchSQLiteYStore", (SQLiteYStore,), attributes)
    return store_class("doc")


def file_store(directory: Path) -> BaseYStore:
    return FileYStore(str(directory / "doc.y"))


async def _write_all(store: BaseYStore, updates: Sequence[bytes]) -> float:
    async with store:
        if isinstance(store, SQLiteYStore) and store.db_initialized is not None:
            await store.db_initialized.wait()  # opening the database is not timed
        started = time.perf_counter()
        for update in updates:
            await store.write(update)
        return time.perf_counter() - started


async def _load(store: BaseYStore) -> tuple[float, str]:
    """A new store object started and applying every stored update to a fresh Doc."""
    started = time.perf_counter()
    async with store:
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        await store.apply_updates(doc)
        elapsed = time.perf_counter() - started
    return elapsed, doc_text(doc)


def store_write(factory: StoreFactory, directory: Path, updates: Sequence[bytes]) -> float:
    directory.mkdir()
    return anyio.run(_write_all, factory(directory), updates)


def store_load(factory: StoreFactory, directory: Path, expected_text: str) -> float:
    elapsed, text = anyio.run(_load, factory(directory))
    check_text(f"{directory.name} load", text, expected_text)
    return elapsed


def directory_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.iterdir())


def measure_store(
    label: str,
    factory: StoreFactory,
    updates: Sequence[bytes],
    cfg: Config,
    work: Path,
    expected: str,
) -> SubsetFigures:
    directories = [work / f"{label}-{i}" for i in range(cfg.store_reps)]
    write_s = statistics.median(store_write(factory, d, updates) for d in directories)
    last = directories[-1]
    return SubsetFigures(
        store=label,
        updates=len(updates),
        write_per_update_s=write_s / len(updates),
        load_s=median_seconds(cfg.fast_reps, lambda: store_load(factory, last, expected)),
        bytes_on_disk=directory_bytes(last),
    )


def measure_log_subset(
    updates: Sequence[bytes], cfg: Config, work: Path, expected: str
) -> SubsetFigures:
    run, path = median_append(updates, cfg, work / "subset", "group")
    return SubsetFigures(
        store="UpdateLog (group)",
        updates=len(updates),
        write_per_update_s=run.total_s / len(updates),
        load_s=median_seconds(
            cfg.fast_reps, lambda: time_cold_load(cold_load_into_doc, path, expected)
        ),
        bytes_on_disk=path.stat().st_size,
    )


def measure_subset(
    name: str, updates: Sequence[bytes], cfg: Config, work: Path
) -> list[SubsetFigures]:
    subset = updates[: cfg.subset]
    progress(f"{name}: SQLiteYStore and FileYStore on the first {len(subset):,} x{cfg.store_reps}")
    expected = text_of(apply_all(subset)[1])
    (work / "subset").mkdir()
    return [
        measure_log_subset(subset, cfg, work, expected),
        measure_store("SQLiteYStore", sqlite_store, subset, cfg, work, expected),
        measure_store("FileYStore", file_store, subset, cfg, work, expected),
    ]


# -- a whole run -------------------------------------------------------------------------


def measure_workload(name: str, updates: Sequence[bytes], cfg: Config) -> WorkloadResult:
    with tempfile.TemporaryDirectory(prefix=f"crdtedge-log-bench-{name}-") as tmp:
        work = Path(tmp)
        progress(f"{name}: limits (framed-write loop, apply all, apply state) x{cfg.reps}")
        limits, state = measure_limits(updates, cfg, work)
        log = measure_log(name, updates, cfg, work, text_of(state))
        subset = measure_subset(name, updates, cfg, work)
    return WorkloadResult(name, len(updates), log, limits, subset)


def compute_ratios(result: WorkloadResult) -> dict[str, float]:
    log, limits = result.log, result.limits
    sqlite = subset_of(result, "SQLiteYStore")
    return {
        "append_vs_sqlite": sqlite.write_per_update_s / (log.group.total_s / result.updates),
        "append_vs_raw_loop": log.group.total_s / limits.raw_loop_s,
        "load_vs_limit": log.cold_load_compacted_s / limits.read_apply_state_s,
        "compact_vs_limit": log.compaction_s / limits.apply_all_s,
        "size_vs_state": log.bytes_compacted / limits.state_bytes,
    }


# -- output ------------------------------------------------------------------------------

Row = tuple[str, Callable[[WorkloadResult], str]]


def total_and_rate(seconds: float, updates: int) -> str:
    return f"{format_seconds(seconds)} = {format_seconds(seconds / updates)}/upd"


def log_rows(cfg: Config) -> list[Row]:
    return [
        ("updates", lambda r: f"{r.updates:,}"),
        ("update bytes (unframed)", lambda r: format_bytes(r.limits.update_bytes)),
        ("append all + sync(), group", lambda r: total_and_rate(r.log.group.total_s, r.updates)),
        ("  of which the final sync()", lambda r: format_seconds(r.log.group.sync_s)),
        (
            "same, auto_compact=True (the default)",
            lambda r: total_and_rate(r.log.group_auto_compact.total_s, r.updates),
        ),
        (
            "  background compactions it started",
            lambda r: str(r.log.group_auto_compact.compactions),
        ),
        ("append all + sync(), none", lambda r: total_and_rate(r.log.none.total_s, r.updates)),
        ("  of which the final sync()", lambda r: format_seconds(r.log.none.sync_s)),
        (
            f"append, always (first {cfg.subset:,})",
            lambda r: f"{format_seconds(r.log.always_per_update_s)}/upd",
        ),
        (
            "sync() latency, 1 pending: median / p95",
            lambda r: (
                f"{format_seconds(r.log.sync_latency_median_s)} / "
                f"{format_seconds(r.log.sync_latency_p95_s)}"
            ),
        ),
        ("compaction", lambda r: format_seconds(r.log.compaction_s)),
        (
            "cold load, compacted: open + read_state()",
            lambda r: format_seconds(r.log.cold_load_compacted_s),
        ),
        (
            "cold load, compacted: open + load(Doc)",
            lambda r: format_seconds(r.log.cold_load_into_doc_compacted_s),
        ),
        (
            "cold load, uncompacted: open + read_state()",
            lambda r: format_seconds(r.log.cold_load_uncompacted_s),
        ),
        ("bytes on disk, uncompacted", lambda r: format_bytes(r.log.bytes_uncompacted)),
        ("bytes on disk, compacted", lambda r: format_bytes(r.log.bytes_compacted)),
        ("Yjs state, len(get_update())", lambda r: format_bytes(r.limits.state_bytes)),
        ("limit: framed-write loop + 1 fsync", lambda r: format_seconds(r.limits.raw_loop_s)),
        ("limit: apply all + get_update", lambda r: format_seconds(r.limits.apply_all_s)),
        (
            "limit: read state file + apply once",
            lambda r: format_seconds(r.limits.read_apply_state_s),
        ),
    ]


def subset_of(result: WorkloadResult, store: str) -> SubsetFigures:
    return next(s for s in result.subset if s.store == store)


def subset_rows(name: str) -> list[Row]:
    def write(r: WorkloadResult) -> str:
        return f"{format_seconds(subset_of(r, name).write_per_update_s)}/upd"

    def load(r: WorkloadResult) -> str:
        return format_seconds(subset_of(r, name).load_s)

    def size(r: WorkloadResult) -> str:
        return format_bytes(subset_of(r, name).bytes_on_disk)

    return [
        (f"{name}: write", write),
        (f"{name}: cold load into a Doc", load),
        (f"{name}: bytes on disk", size),
    ]


def figures_table(results: Sequence[WorkloadResult], cfg: Config) -> str:
    header = ["", *(r.name for r in results)]
    rows = [[label, *(cell(r) for r in results)] for label, cell in log_rows(cfg)]
    subset = [
        [label, *(cell(r) for r in results)]
        for store in results[0].subset
        for label, cell in subset_rows(store.store)
    ]
    rows.append([f"-- first {cfg.subset:,} updates, side by side --", *([""] * len(results))])
    return format_table(header, rows + subset)


def ratios_table(ratios: dict[str, float]) -> str:
    rows = [
        [
            key,
            f"{value:.3g}",
            f"{TARGETS[key].op} {TARGETS[key].bound:g}",
            "PASS" if TARGETS[key].met(value) else "MISS",
            TARGETS[key].meaning,
        ]
        for key, value in ratios.items()
    ]
    return format_table(["ratio", "value", "target", "", "definition"], rows, align="lrrll")


def report(results: Sequence[WorkloadResult], ratios: dict[str, float], cfg: Config) -> str:
    reps = (
        f"medians of {cfg.reps} (millisecond items {cfg.fast_reps}, "
        f"pycrdt.store writes {cfg.store_reps})"
    )
    return "\n".join(
        [
            f"crdtedge update log benchmark, {cfg.mode} mode, {reps}",
            "cold load = a new object opening the file + reading the state (page cache warm)",
            "",
            figures_table(results, cfg),
            "",
            f"ratios (from the {TRACE} workload, {results[0].updates:,} updates)",
            ratios_table(ratios),
        ]
    )


def metadata(cfg: Config) -> dict[str, Any]:
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.orig_argv),
        "config": asdict(cfg),
        "python": platform.python_version(),
        "pycrdt": importlib.metadata.version("pycrdt"),
        "pycrdt-store": importlib.metadata.version("pycrdt-store"),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "ratios_from": TRACE,
        "cold_load": "new object opening the file + reading the state; page cache warm",
    }


def write_json(
    path: Path, results: Sequence[WorkloadResult], ratios: dict[str, float], cfg: Config
) -> None:
    document = {
        "meta": metadata(cfg),
        "workloads": {r.name: asdict(r) for r in results},
        "ratios": ratios,
        "targets": {
            key: {**asdict(TARGETS[key]), "met": TARGETS[key].met(value)}
            for key, value in ratios.items()
        },
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Benchmark crdtedge's UpdateLog (append in each durability mode, sync() latency, "
            "compaction, cold load, bytes on disk) side by side with pycrdt.store's "
            "SQLiteYStore and FileYStore and with the limits (a plain framed-write loop, "
            "applying every update to a Doc, applying the final state once), on the "
            f"{TRACE} trace and {RANDOM_UPDATES:,} seeded random inserts. Prints a table "
            "of figures and a table of target ratios."
        ),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=(
            f"use the first {QUICK.trace_limit:,} updates of the trace, the first "
            f"{QUICK.subset} for always mode and pycrdt.store, and {QUICK.store_reps} "
            "repetition of the pycrdt.store writes (under a minute)"
        ),
    )
    parser.add_argument(
        "--json", metavar="PATH", type=Path, help="also write every figure and ratio to PATH"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    cfg = QUICK if args.quick else FULL
    progress(f"{cfg.mode} mode: loading the {TRACE} updates and generating {RANDOM}")
    workloads = {
        TRACE: trace_updates(AUTOMERGE_PAPER, cfg.trace_limit),
        RANDOM: random_insert_updates(RANDOM_UPDATES),
    }
    results = [measure_workload(name, updates, cfg) for name, updates in workloads.items()]
    ratios = compute_ratios(results[0])
    progress("done")
    print(report(results, ratios, cfg))
    if args.json is not None:
        write_json(args.json, results, ratios, cfg)


if __name__ == "__main__":
    main()
