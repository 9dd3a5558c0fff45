"""Real crashes: SIGKILL a process that appends to (and compacts) an UpdateLog.

The worker (crash_worker.py) reports on stdout how many updates a returned sync() made
durable; after the kill the log must open (a torn tail is allowed and reported), hold
every one of those updates, and hold exactly the first M updates for some M >= that
count: no gaps, nothing else. Whatever a kill mid-compaction leaves beside the log
(`*.compacting`) must not affect loading.

More kills: CRDTEDGE_CRASH_ROUNDS=20 pytest tests/log/test_crash.py
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pycrdt
import pytest

from crdtedge.log import UpdateLog

WORKER = Path(__file__).with_name("crash_worker.py")
ROUNDS = int(os.environ.get("CRDTEDGE_CRASH_ROUNDS", "2"))
WAIT = 30.0  # seconds: a worker that says nothing for this long is stuck

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")


def append_to(log: UpdateLog) -> Callable[[pycrdt.TransactionEvent], None]:
    """A Doc.observe callback that appends every update of the doc to `log`."""

    def callback(event: pycrdt.TransactionEvent) -> None:
        log.append(event.update)

    return callback


# The worker's update i, restated here so the check does not trust the worker's code.
def value(i: int) -> str:
    return f"value {i:08d} ünïcödé " * 6


def text_piece(i: int) -> str:
    return f"{i}é;"


@dataclass
class Worker:
    """A running crash_worker.py and the lines it has printed so far."""

    proc: subprocess.Popen[str]
    stderr_path: Path
    lines: list[tuple[float, str]] = field(default_factory=list)  # (time received, line)
    changed: threading.Condition = field(default_factory=threading.Condition)
    eof: bool = False

    @classmethod
    def start(cls, path: Path, mode: str) -> Worker:
        stderr_path = path.with_name(path.name + ".stderr")
        with open(stderr_path, "wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, str(WORKER), str(path), mode],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                encoding="utf-8",
            )
        worker = cls(proc, stderr_path)
        threading.Thread(target=worker._read, daemon=True).start()
        return worker

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.changed:
                if line.endswith("\n"):  # a line cut short by the kill is not a claim
                    self.lines.append((time.monotonic(), line.rstrip("\n")))
                self.changed.notify_all()
        with self.changed:
            self.eof = True
            self.changed.notify_all()

    def wait_for(self, line: str) -> float:
        """Block until the worker prints `line`; return when the parent received it."""
        deadline = time.monotonic() + WAIT
        with self.changed:
            while True:
                for received, printed in self.lines:
                    if printed == line:
                        return received
                if self.eof:
                    raise AssertionError(f"worker ended before {line!r}: {self.stderr()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"worker never printed {line!r}: {self.stderr()}")
                self.changed.wait(remaining)

    def kill(self) -> list[str]:
        """SIGKILL the worker; return every whole line it printed."""
        alive = self.proc.poll() is None
        self.proc.kill()
        self.proc.wait(timeout=WAIT)
        assert alive, f"worker exited on its own ({self.proc.returncode}): {self.stderr()}"
        assert self.proc.returncode == -signal.SIGKILL
        with self.changed:
            while not self.eof:
                self.changed.wait(WAIT)
            lines = [line for _, line in self.lines]
        errors = [line for line in lines if line.startswith("error")]
        assert not errors, errors
        # E.g. a background compaction that failed is only logged: fail on it here.
        assert "Traceback" not in self.stderr(), self.stderr()
        return lines

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def durable_count(lines: list[str]) -> int:
    counts = [int(line.split()[1]) for line in lines if line.startswith("durable ")]
    assert counts == sorted(counts), "durable counts must only grow"
    return counts[-1] if counts else 0


def check_log(path: Path, durable: int) -> tuple[int, int]:
    """Open the crashed log; assert it holds exactly updates 0..M-1, M >= durable.

    Return M and the log's compaction generation.
    """
    leftover = Path(str(path) + ".compacting")
    with UpdateLog(path, durability="none", auto_compact=False) as log:
        assert not leftover.exists(), "a leftover .compacting file must be removed on open"
        if log.recovery is not None:
            assert log.recovery.offset == path.stat().st_size
            assert log.recovery.dropped_bytes > 0
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        doc.apply_update(log.read_state())
        entries = doc.get("map", type=pycrdt.Map).to_py() or {}
        keys = sorted(int(key) for key in entries)
        loaded = len(keys)
        assert keys == list(range(loaded)), "the loaded updates must be a prefix, no gaps"
        assert loaded >= durable, f"lost durable updates: {loaded} loaded, {durable} durable"
        for i in range(loaded):
            assert entries[str(i)] == value(i)
        text = str(doc.get("text", type=pycrdt.Text))
        assert text == "".join(text_piece(i) for i in range(loaded))

        generation = log.header.generation
        # The crashed log is usable again: a new replica's edit lands and survives.
        subscription = doc.observe(append_to(log))
        doc.get("map", type=pycrdt.Map)["after-crash"] = loaded
        doc.unobserve(subscription)
    with UpdateLog(path, durability="none", auto_compact=False) as log:
        assert log.recovery is None
        doc = pycrdt.Doc()
        doc.apply_update(log.read_state())
        entries = doc.get("map", type=pycrdt.Map).to_py() or {}
        assert entries["after-crash"] == loaded
        assert len(entries) == loaded + 1
    return loaded, generation


@pytest.mark.parametrize("seed", range(ROUNDS))
@pytest.mark.parametrize("mode", ["group", "always", "autocompact"])
def test_sigkill_during_appends(tmp_path: Path, mode: str, seed: int) -> None:
    rng = random.Random(f"{mode}-{seed}")
    path = tmp_path / "doc.ylog"
    worker = Worker.start(path, mode)
    try:
        worker.wait_for("ready")
        time.sleep(rng.uniform(0.1, 0.8))
        lines = worker.kill()
    finally:
        worker.close()
    durable = durable_count(lines)
    assert durable > 0, "the worker made no update durable before the kill"
    loaded, generation = check_log(path, durable)
    if mode == "autocompact":
        assert generation > 0, f"no background compaction ran in {loaded} updates"


def test_sigkill_during_compaction(tmp_path: Path) -> None:
    """Kill the worker while it compacts (as a thread appends): several times, to be sure."""
    rng = random.Random("compaction")
    mid_compaction = 0
    leftovers = 0
    kills = max(ROUNDS, 1) * 3
    for round_ in range(kills):
        path = tmp_path / f"doc-{round_}.ylog"
        worker = Worker.start(path, "compact")
        try:
            generation = rng.randint(2, 8)
            started = worker.wait_for(f"compact start {generation - 1}")
            finished = worker.wait_for(f"compact done {generation - 1}")
            worker.wait_for(f"compact start {generation}")
            if round_ % 2:
                # While the compacted file is being written beside the log.
                wait_until_exists(Path(str(path) + ".compacting"))
                time.sleep(rng.uniform(0.0, 0.004))
            else:
                # Anywhere in this compaction, which takes about as long as the last one.
                time.sleep(rng.uniform(0.0, 1.2) * (finished - started))
            lines = worker.kill()
        finally:
            worker.close()
        leftovers += Path(str(path) + ".compacting").exists()
        compaction_lines = [line for line in lines if line.startswith("compact ")]
        mid_compaction += compaction_lines[-1].startswith("compact start")
        check_log(path, durable_count(lines))
    # Without these the test could pass without ever testing a kill mid-compaction.
    assert mid_compaction > 0, f"none of {kills} kills landed during a compaction"
    assert leftovers > 0, f"none of {kills} kills left a half-written .compacting file"
    print(f"{mid_compaction}/{kills} kills mid-compaction, {leftovers} left a .compacting file")


def wait_until_exists(path: Path) -> None:
    deadline = time.monotonic() + WAIT
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.0002)


@pytest.mark.parametrize(
    "leftover",
    [b"", b"\x00" * 4096, b"not a log at all", "copy of another log"],
    ids=["empty", "zeros", "garbage", "other-log"],
)
def test_leftover_compacting_file_is_ignored_and_removed(
    tmp_path: Path, leftover: bytes | str
) -> None:
    """What a crash mid-compaction leaves beside the log never gets loaded."""
    path = tmp_path / "doc.ylog"
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    with UpdateLog(path, durability="none", auto_compact=False) as log:
        doc.observe(append_to(log))
        doc.get("map", type=pycrdt.Map)["kept"] = 1
        log.compact()
        doc.get("map", type=pycrdt.Map)["after"] = 2
    if isinstance(leftover, str):
        other = tmp_path / "other.ylog"
        other_doc: pycrdt.Doc[Any] = pycrdt.Doc()
        with UpdateLog(other, durability="none", auto_compact=False) as other_log:
            other_doc.observe(append_to(other_log))
            other_doc.get("map", type=pycrdt.Map)["intruder"] = 3
            other_log.compact()
        leftover = other.read_bytes()
    Path(str(path) + ".compacting").write_bytes(leftover)
    assert check_map(path) == {"kept": 1, "after": 2}
    assert not Path(str(path) + ".compacting").exists()


def check_map(path: Path) -> dict[str, Any]:
    with UpdateLog(path, durability="none", auto_compact=False) as log:
        assert log.recovery is None
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        doc.apply_update(log.read_state())
        return doc.get("map", type=pycrdt.Map).to_py() or {}
