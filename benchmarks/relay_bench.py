"""Benchmark crdtedge's relay side by side with @y/websocket-server and pycrdt.websocket.

Three servers, each its own subprocess on 127.0.0.1, serve the same stock Yjs clients
(yjs + y-websocket from tests/interop, a writer and its readers in one Node process per
measurement, one clock for every timestamp: see relay_clients.cjs), so only the server
differs. Workloads:

(a) 1 writer -> 20 readers: 2,000 single-character updates (typed beforehand, sent back
    to back) in a burst, time from the first frame until every reader has the whole text;
    (b) the same with 100 readers; (c) 100 updates/s for 10 s to 100 readers, delivery
    latency over every (reader, update) pair; (d) server RSS with 1,000 small rooms and no
    connections, then after the rooms have gone idle.

(a) and (b) are repeated with the servers interleaved (the order rotates every round) and
the medians compared: the machine is shared and noisy, the ratios mean more than the
seconds. Before every measurement all three servers must be idle (CPU), so one server's
backlog never runs during another's measurement. Every reader's final text is checked
against the writer's. See benchmarks/README.md for the method and a recorded run.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import queue
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from _common import format_table, progress

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
INTEROP = ROOT / "tests" / "interop"
CLIENTS = HERE / "relay_clients.cjs"
HOST = "127.0.0.1"

OURS, NODE, PYCRDT = "crdtedge", "node", "pycrdt"
SERVERS = (OURS, NODE, PYCRDT)
LABELS = {OURS: "crdtedge relay", NODE: "@y/websocket-server", PYCRDT: "pycrdt.websocket"}
IDLE_UNLOAD_SECONDS = 2.0  # passed to our relay, so (d) sees its rooms unloaded
IDLE_CPU = 0.10  # a server using less than this share of a core is idle
IDLE_TIMEOUT = 20.0  # a server still busy after this long is restarted


@dataclass(frozen=True)
class Config:
    mode: str
    reps: int  # interleaved rounds of (a) and (b); medians are compared
    updates: int  # characters typed in a burst
    small_readers: int
    big_readers: int
    paced_rate: float  # updates per second in (c)
    paced_seconds: float
    rooms: int  # rooms in (d)
    settle_ms: int  # pause after the joins, before waiting for the server to go idle
    pycrdt_big_cap_s: float  # pycrdt.websocket's time limit for a run with 100 readers
    warm_up: bool = True


FULL = Config(
    "full",
    reps=5,
    updates=2_000,
    small_readers=20,
    big_readers=100,
    paced_rate=100,
    paced_seconds=10,
    rooms=1_000,
    settle_ms=300,
    pycrdt_big_cap_s=60,
)
QUICK = Config(
    "quick",
    reps=1,
    updates=300,
    small_readers=20,
    big_readers=50,
    paced_rate=100,
    paced_seconds=1.5,
    rooms=50,
    settle_ms=100,
    pycrdt_big_cap_s=3,
    warm_up=False,
)


@dataclass(frozen=True)
class Target:
    op: str  # ">=" or "<="
    bound: float
    meaning: str

    def met(self, value: float) -> bool:
        return value >= self.bound if self.op == ">=" else value <= self.bound


TARGETS = {
    "vs_node_server": Target("<=", 0.4, "burst (a): crdtedge / @y/websocket-server"),
    "vs_node_server_100": Target("<=", 0.25, "burst (b): crdtedge / @y/websocket-server"),
    "vs_pycrdt_websocket": Target(">=", 10, "burst (a): pycrdt.websocket / crdtedge"),
    "p99_vs_node_server": Target("<=", 1.0, "paced (c) p99: crdtedge / @y/websocket-server"),
}


class BenchError(Exception):
    """A server or the clients failed in a way that leaves no figure to report."""


# -- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat from field 3 (state) on: the command name may hold spaces."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int(_stat_fields(int(entry.name))[1]) == pid:
                    found.append(int(entry.name))
    return found


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                fields = _stat_fields(int(entry.name))
                if int(fields[2]) == pgid and fields[0] != "Z":
                    found.append(int(entry.name))
    return found


def rss_kib(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class ServerProcess:
    name: str
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    pid: int | None = None  # the server itself (npx runs it as a grandchild)
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def command(self) -> tuple[list[str], Path | None, dict[str, str]]:
        """argv, working directory and extra environment of this server."""
        if self.name == OURS:
            argv = [str(Path(sys.executable).parent / "crdtedge"), "serve", "--host", HOST]
            argv += ["--port", str(self.port), "--data-dir", str(self.workdir / "data")]
            argv += ["--idle-unload-seconds", str(IDLE_UNLOAD_SECONDS), "--log-level", "warning"]
            return argv, None, {}
        if self.name == NODE:
            return ["npx", "y-websocket-server"], INTEROP, {"HOST": HOST, "PORT": str(self.port)}
        argv = [sys.executable, str(Path(__file__).resolve())]
        return [*argv, "--serve-pycrdt-websocket", str(self.port)], None, {}

    def launch(self) -> None:
        argv, cwd, env = self.command()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv,
                cwd=cwd,
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: npx's children go with it
            )

    def wait_listening(self, timeout: float = 30.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited early:\n{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 0.5):
                self.pid = self._leaf(self.process.pid)
                return
            time.sleep(0.05)
        raise BenchError(f"{self.name} did not listen within {timeout:.0f} s:\n{self.log_tail()}")

    @staticmethod
    def _leaf(pid: int) -> int:
        """The last process of a chain such as npm exec -> sh -> node."""
        for _ in range(8):
            children = _children(pid)
            if not children:
                return pid
            pid = max(children, key=lambda child: rss_kib(child) or 0)
        return pid

    def restart(self, why: str) -> None:
        progress(f"  restarting {LABELS[self.name]}: {why}")
        self.stop()
        self.port = free_port()
        self.restarts += 1
        self.launch()
        self.wait_listening()

    def rss_kib(self) -> int:
        rss = rss_kib(self.pid) if self.pid is not None else None
        if rss is None:
            raise BenchError(f"{self.name}: no VmRSS (did it exit?)\n{self.log_tail()}")
        return rss

    def cpu_seconds(self) -> float:
        assert self.pid is not None
        return cpu_seconds(self.pid)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after a grace period."""
        if self.process is None:
            return
        pgid = self.process.pid  # start_new_session: the group id is the leader's pid
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5.0)
            deadline = time.monotonic() + 5.0
            while _group_members(pgid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not _group_members(pgid):
                return
        progress(f"warning: process group {pgid} ({self.name}) survived SIGKILL")

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


@contextlib.contextmanager
def running_servers(workdir: Path) -> Iterator[dict[str, ServerProcess]]:
    """All three servers, started; every process group is killed on the way out."""
    workdir.mkdir(parents=True, exist_ok=True)
    servers = {name: ServerProcess(name, workdir) for name in SERVERS}
    try:
        for server in servers.values():
            server.launch()
        for server in servers.values():
            server.wait_listening()
            progress(f"  {LABELS[server.name]} listening on {server.url} (pid {server.pid})")
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def settle(servers: dict[str, ServerProcess], window: float = 0.25) -> None:
    """Every server idle (CPU) before a measurement; one that stays busy is restarted."""
    busy = list(servers.values())
    deadline = time.monotonic() + IDLE_TIMEOUT
    while busy and time.monotonic() < deadline:
        before = [server.cpu_seconds() for server in busy]
        time.sleep(window)
        after = [server.cpu_seconds() for server in busy]
        busy = [s for s, b, a in zip(busy, before, after, strict=True) if a - b > IDLE_CPU * window]
    for server in busy:
        server.restart(f"still busy {IDLE_TIMEOUT:.0f} s after its last run")


# -- the pycrdt.websocket server (run by this script as a subprocess) --------------------


class WebsocketsChannel:
    """pycrdt's `Channel` over a `websockets` server connection.

    pycrdt.websocket 0.16 ships adapters for ASGI and httpx-ws only; with the old websockets
    API a connection was a Channel as it stood (it had `.path`). A peer that leaves while
    the room is sending to it must not take the room down: send swallows ConnectionClosed.
    """

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    @property
    def path(self) -> str:
        path: str = self._connection.request.path
        return path

    def __aiter__(self) -> WebsocketsChannel:
        return self

    async def __anext__(self) -> bytes:
        from websockets.exceptions import ConnectionClosed

        try:
            return await self.recv()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    async def send(self, message: bytes) -> None:
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):
            await self._connection.send(message)

    async def recv(self) -> bytes:
        message = await self._connection.recv()
        return message if isinstance(message, bytes) else message.encode()


async def _serve_pycrdt_websocket(port: int) -> None:
    from pycrdt.websocket import WebsocketServer, exception_logger
    from websockets.asyncio.server import serve

    rooms = WebsocketServer(exception_handler=exception_logger)

    async def handler(connection: Any) -> None:
        await rooms.serve(WebsocketsChannel(connection))

    # No permessage-deflate, like the other two servers (websockets offers it by default).
    async with rooms, serve(handler, HOST, port, compression=None) as server:
        await server.serve_forever()


def serve_pycrdt_websocket(port: int) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_pycrdt_websocket(port))


# -- clients -----------------------------------------------------------------------------


def wait_idle(
    server: ServerProcess, stop: Callable[[], bool], window: float = 0.25
) -> float | None:
    """Seconds until `server` is idle (CPU); None if it is not within IDLE_TIMEOUT."""
    started = time.monotonic()
    while time.monotonic() - started < IDLE_TIMEOUT and not stop():
        before = server.cpu_seconds()
        time.sleep(window)
        if server.cpu_seconds() - before <= IDLE_CPU * window:
            return time.monotonic() - started
    return None


def _pump(stream: IO[bytes], lines: queue.Queue[bytes]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(b"")  # end of output


def _converse(
    process: subprocess.Popen[bytes], server: ServerProcess, lines: queue.Queue[bytes], limit: float
) -> dict[str, Any]:
    """Read the clients' JSON lines; answer "ready" with "go" once the server is idle."""
    deadline = time.monotonic() + limit
    idle_wait: dict[str, Any] = {}
    while True:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            raise BenchError(f"node clients ran over {limit:.0f} s") from None
        if not line:
            raise BenchError(f"node clients gave no result (exit {process.wait()})")
        with contextlib.suppress(json.JSONDecodeError):
            message = json.loads(line)
            if isinstance(message, dict) and message.get("event") == "ready":
                idle_wait["idle_wait_s"] = wait_idle(server, lambda: process.poll() is not None)
                with contextlib.suppress(BrokenPipeError):
                    assert process.stdin is not None
                    process.stdin.write(b"go\n")
                    process.stdin.flush()
            elif isinstance(message, dict) and "event" in message:
                return {**message, **idle_wait}


def run_clients(server: ServerProcess, config: dict[str, Any]) -> dict[str, Any]:
    """One Node process of y-websocket clients: its result, or its progress at the deadline
    (`incomplete`: the server did not deliver within `timeoutMs`)."""
    argv = ["node", str(CLIENTS), json.dumps({"url": server.url, **config})]
    limit = config["timeoutMs"] / 1000 + IDLE_TIMEOUT + 30
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors
        )
        assert process.stdout is not None
        lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
        try:
            result = _converse(process, server, lines, limit)
        except BenchError as exc:
            errors.seek(0)
            raise BenchError(f"{exc}: {errors.read()[-1500:].decode(errors='replace')}") from None
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
    if result.get("event") == "timeout":
        return {**result, "incomplete": True, "limit_s": config["timeoutMs"] / 1000}
    if result.get("event") != "result":
        raise BenchError(f"node clients: {json.dumps(result)[:1500]}")
    return result


def measure(server: ServerProcess, config: dict[str, Any]) -> dict[str, Any]:
    """Run the clients against `server`, with the server's CPU time; a failed or
    incomplete run is recorded (and the server restarted), not raised."""
    cpu_before = server.cpu_seconds()
    try:
        result = run_clients(server, config)
    except BenchError as exc:
        result = {"error": str(exc), "server_alive": server.alive()}
        result["server_log_tail"] = server.log_tail()
        progress(f"  FAILED on {LABELS[server.name]}: {exc}")
    if server.alive():
        result["server_cpu_s"] = server.cpu_seconds() - cpu_before
    if "error" in result or result.get("incomplete"):
        server.restart("its last run did not complete")
    return result


# -- workloads ---------------------------------------------------------------------------


def rotated(round_no: int) -> list[str]:
    shift = round_no % len(SERVERS)
    return [*SERVERS[shift:], *SERVERS[:shift]]


def burst_client(config: Config, room: str, readers: int, limit_s: float) -> dict[str, Any]:
    return {
        "mode": "burst",
        "room": room,
        "readers": readers,
        "updates": config.updates,
        "settleMs": config.settle_ms,
        "handshake": True,  # start once the server is idle again after the joins
        "timeoutMs": int(limit_s * 1000),
    }


def describe_burst(result: dict[str, Any]) -> str:
    if "ms" in result:
        return f"{result['ms'] / 1000:.3f} s, {result['updatesPerReaderMedian']} updates/reader"
    if result.get("incomplete"):
        done = result.get("readersDone", result.get("readersSynced", 0))
        return f"INCOMPLETE after {result['limit_s']:g} s in {result['phase']}: {done} readers"
    return "FAILED"


def burst_phase(
    servers: dict[str, ServerProcess], config: Config, readers: int, tag: str
) -> dict[str, list[dict[str, Any]]]:
    """Interleaved rounds; pycrdt.websocket runs the 100-reader burst once, in the last
    round, under a time limit (it does not keep up: see the README)."""
    big = readers == config.big_readers
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SERVERS}
    for round_no in range(config.reps):
        for name in rotated(round_no):
            if big and name == PYCRDT and round_no != config.reps - 1:
                continue
            limit = config.pycrdt_big_cap_s if big and name == PYCRDT else 240.0
            settle(servers)
            client = burst_client(config, f"{tag}-{round_no}", readers, limit)
            runs[name].append(measure(servers[name], client))
            shown = describe_burst(runs[name][-1])
            progress(f"  round {round_no + 1}/{config.reps} {LABELS[name]}: {shown}")
    return runs


def paced_phase(servers: dict[str, ServerProcess], config: Config) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for name in SERVERS:
        limit = config.paced_seconds + (config.pycrdt_big_cap_s if name == PYCRDT else 180)
        client = {
            "mode": "paced",
            "room": "paced",
            "readers": config.big_readers,
            "rate": config.paced_rate,
            "seconds": config.paced_seconds,
            "settleMs": config.settle_ms,
            "handshake": True,
            "timeoutMs": int(limit * 1000),
        }
        settle(servers)
        result = results[name] = measure(servers[name], client)
        if result.get("incomplete"):
            progress(f"  {LABELS[name]}: INCOMPLETE after {limit:g} s in {result['phase']}")
        elif "p99Ms" in result:
            progress(
                f"  {LABELS[name]}: p50 {result['p50Ms']:.1f} ms, p99 {result['p99Ms']:.1f} ms, "
                f"drained {result['drainMs']:.0f} ms after the last send"
            )
    return results


def rooms_loaded(server: ServerProcess) -> int | None:
    """Our relay's crdtedge_rooms_loaded gauge (None for the other servers)."""
    if server.name != OURS:
        return None
    with urllib.request.urlopen(f"http://{HOST}:{server.port}/metrics", timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith("crdtedge_rooms_loaded "):
            return int(float(line.split()[1]))
    raise BenchError("no crdtedge_rooms_loaded in /metrics")


def snapshot(server: ServerProcess) -> dict[str, int | None]:
    return {"rss_kib": server.rss_kib(), "rooms_loaded": rooms_loaded(server)}


def wait_unloaded(server: ServerProcess, timeout: float) -> float | None:
    """Seconds until our relay reports no room loaded; None if not within `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if rooms_loaded(server) == 0:
            return time.monotonic() - started
        time.sleep(0.25)
    return None


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def measure_then_snapshot(server: ServerProcess, client: dict[str, Any]) -> dict[str, Any]:
    """The run, and the server's RSS the moment the clients are gone (before our relay's
    idle timer can unload anything)."""
    result = measure(server, client)
    return {"run": result, "snapshot": snapshot(server)}


def on_all(servers: dict[str, ServerProcess], client: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The same client run against every server at once (for (d), where time is no figure)."""
    with concurrent.futures.ThreadPoolExecutor(len(servers)) as pool:
        futures = {
            name: pool.submit(measure_then_snapshot, server, client)
            for name, server in servers.items()
        }
        return {name: future.result() for name, future in futures.items()}


def rss_phase(
    servers: dict[str, ServerProcess], config: Config, workdir: Path
) -> dict[str, dict[str, Any]]:
    """Populate every server at once; each room's last client leaves when all are written."""
    rooms = {"rooms": [f"rss-{i:04d}" for i in range(config.rooms)], "timeoutMs": 600_000}
    results = {name: {"baseline": snapshot(server)} for name, server in servers.items()}
    populated = on_all(servers, {"mode": "populate", "concurrency": 25, **rooms})
    for name in servers:
        results[name]["populate"] = populated[name]["run"]
        results[name]["no_connections"] = populated[name]["snapshot"]
        before, after = (results[name][k]["rss_kib"] / 1024 for k in ("baseline", "no_connections"))
        progress(f"  {LABELS[name]}: {config.rooms} rooms, RSS {before:.1f} -> {after:.1f} MiB")
    progress(f"  waiting for idle rooms to unload (crdtedge: after {IDLE_UNLOAD_SECONDS:g} s)")
    results[OURS]["unloaded_within_s"] = wait_unloaded(servers[OURS], timeout=60)
    time.sleep(1.0)  # the other servers: a moment more without peers
    results[OURS]["disk_bytes"] = disk_bytes(workdir / "data")
    for name, server in servers.items():
        results[name]["idle"] = snapshot(server)
    checked = on_all(servers, {"mode": "check", "concurrency": 25, **rooms})
    for name in servers:
        results[name]["check"] = checked[name]["run"]
        results[name]["after_check"] = checked[name]["snapshot"]
    return results


# -- figures -----------------------------------------------------------------------------


def complete(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [run for run in runs if "ms" in run and run.get("failures", 0) == 0]


def median_of(runs: list[dict[str, Any]], key: str = "ms") -> float | None:
    values = [run[key] for run in complete(runs)]
    return statistics.median(values) if values else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def paired_ratios(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> list[float]:
    """Round-by-round ratios (ours / theirs) of the rounds where both runs completed."""
    pairs = zip(ours, theirs, strict=False)
    return [a["ms"] / b["ms"] for a, b in pairs if "ms" in a and "ms" in b and b["ms"] > 0]


def compute_ratios(results: dict[str, Any]) -> dict[str, float | None]:
    small, big, paced = results["burst_small"], results["burst_big"], results["paced"]
    return {
        "vs_node_server": ratio(median_of(small[OURS]), median_of(small[NODE])),
        "vs_node_server_100": ratio(median_of(big[OURS]), median_of(big[NODE])),
        "vs_pycrdt_websocket": ratio(median_of(small[PYCRDT]), median_of(small[OURS])),
        "p99_vs_node_server": ratio(paced[OURS].get("p99Ms"), paced[NODE].get("p99Ms")),
    }


def all_runs(results: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(phase, server, run) for every client run."""
    for phase in ("burst_small", "burst_big"):
        for name, runs in results[phase].items():
            for run in runs:
                yield phase, name, run
    for name, run in results["paced"].items():
        yield "paced", name, run
    for name, figures in results["rss"].items():
        yield "populate", name, figures["populate"]
        yield "check", name, figures["check"]


def problems(results: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(failures, pycrdt.websocket's incomplete runs). A failure is a reader that ended
    with a text other than the writer's, a client error, or an incomplete run of
    crdtedge or @y/websocket-server."""
    failures: list[str] = []
    incomplete: list[str] = []
    for phase, name, run in all_runs(results):
        where = f"{phase} on {LABELS[name]}"
        if run.get("failures"):
            failures.append(f"{where}: {run['failures']} readers with the wrong text")
        if "error" in run:
            failures.append(f"{where}: {run['error'][:300]}")
        if run.get("incomplete"):
            text = f"{where}: incomplete after {run['limit_s']:g} s in phase {run['phase']}"
            (incomplete if name == PYCRDT else failures).append(text)
    return failures, incomplete


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in ("pycrdt", "pycrdt-websocket", "websockets", "crdtedge", "crdtedge-server"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[dist] = importlib.metadata.version(dist)
    for package in ("yjs", "y-websocket", "ws", "@y/websocket-server"):
        with contextlib.suppress(OSError, json.JSONDecodeError):
            meta = json.loads((INTEROP / "node_modules" / package / "package.json").read_text())
            found[package] = meta["version"]
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    found["node"] = node.stdout.strip()
    return found


# -- output ------------------------------------------------------------------------------


def fmt(value: float | None, scale: float = 1.0, digits: int = 3) -> str:
    return "-" if value is None else f"{value * scale:.{digits}g}"


def burst_cell(runs: list[dict[str, Any]]) -> str:
    value = median_of(runs)
    if value is not None:
        return fmt(value, 1e-3)
    cut = [run for run in runs if run.get("incomplete")]
    return f"> {cut[0]['limit_s']:g} (cut)" if cut else "failed"


def paced_cell(result: dict[str, Any], key: str) -> str:
    if result.get("incomplete"):
        return "cut" if result.get(key) is None else f"{fmt(result[key])} (cut)"
    return fmt(result.get(key)) if "error" not in result else "failed"


def rss_cell(figures: dict[str, Any], key: str) -> str:
    snap = figures[key]
    text = f"{snap['rss_kib'] / 1024:.1f}"
    return text if snap["rooms_loaded"] is None else f"{text} ({snap['rooms_loaded']} loaded)"


def kept_cell(figures: dict[str, Any]) -> str:
    check = figures["check"]
    if "kept" not in check:
        return "failed"
    return f"{check['kept']}/{check['rooms']} kept"


def results_table(config: Config, results: dict[str, Any]) -> str:
    small, big, paced, rss = (results[k] for k in ("burst_small", "burst_big", "paced", "rss"))
    n, c = f"{config.updates:,}", f"(c) {config.paced_rate:g}/s x {config.paced_seconds:g} s"
    rows = [
        [f"(a) burst {n} -> {config.small_readers} readers, s"]
        + [burst_cell(small[s]) for s in SERVERS],
        [f"(b) burst {n} -> {config.big_readers} readers, s"]
        + [burst_cell(big[s]) for s in SERVERS],
        ["(a) frames applied per reader"]
        + [fmt(median_of(small[s], "updatesPerReaderMedian"), digits=5) for s in SERVERS],
        ["(b) frames applied per reader"]
        + [fmt(median_of(big[s], "updatesPerReaderMedian"), digits=5) for s in SERVERS],
        ["(a) writer's send loop (client side, timed), s"]
        + [fmt(median_of(small[s], "writerLoopMs"), 1e-3) for s in SERVERS],
        ["(b) writer's send loop (client side, timed), s"]
        + [fmt(median_of(big[s], "writerLoopMs"), 1e-3) for s in SERVERS],
        ["(a) writer's typing (client side, untimed), s"]
        + [fmt(median_of(small[s], "typingMs"), 1e-3) for s in SERVERS],
        ["(a) server CPU s per burst"]
        + [fmt(median_of(small[s], "server_cpu_s")) for s in SERVERS],
        ["(b) server CPU s per burst"] + [fmt(median_of(big[s], "server_cpu_s")) for s in SERVERS],
    ]
    for key, label in (("p50Ms", "p50"), ("p99Ms", "p99"), ("maxMs", "max")):
        rows.append([f"{c}, {label} ms"] + [paced_cell(paced[s], key) for s in SERVERS])
    rows += [
        ["(d) RSS MiB, fresh server"] + [rss_cell(rss[s], "baseline") for s in SERVERS],
        [f"(d) RSS MiB, {config.rooms:,} rooms, no connections"]
        + [rss_cell(rss[s], "no_connections") for s in SERVERS],
        ["(d) RSS MiB, after the idle wait"] + [rss_cell(rss[s], "idle") for s in SERVERS],
        ["(d) rooms' content after the idle wait"] + [kept_cell(rss[s]) for s in SERVERS],
    ]
    return format_table(["", *(LABELS[s] for s in SERVERS)], rows)


def ratios_table(ratios: dict[str, float | None]) -> str:
    rows = []
    for key, target in TARGETS.items():
        value = ratios[key]
        verdict = "MISS" if value is None or not target.met(value) else "PASS"
        rows.append([key, fmt(value), f"{target.op} {target.bound:g}", verdict, target.meaning])
    return format_table(["ratio", "value", "target", "", "meaning"], rows, "lrrll")


# -- main --------------------------------------------------------------------------------


def warm_up(servers: dict[str, ServerProcess]) -> None:
    progress("warm-up burst on every server (not counted)")
    for server in servers.values():
        client = {"mode": "burst", "room": "warm-up", "readers": 5, "updates": 200}
        measure(server, {**client, "settleMs": 100, "timeoutMs": 60_000})


def run_all(config: Config, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    progress("starting the three servers for (a)-(c)")
    with running_servers(workdir / "fanout") as servers:
        if config.warm_up:
            warm_up(servers)
        progress(f"(a) burst of {config.updates} updates to {config.small_readers} readers")
        results["burst_small"] = burst_phase(servers, config, config.small_readers, "small")
        progress(f"(b) burst of {config.updates} updates to {config.big_readers} readers")
        results["burst_big"] = burst_phase(servers, config, config.big_readers, "big")
        progress(f"(c) {config.paced_rate:g} updates/s for {config.paced_seconds:g} s")
        results["paced"] = paced_phase(servers, config)
        results["restarts"] = {name: server.restarts for name, server in servers.items()}
    progress(f"(d) RSS with {config.rooms} rooms: three fresh servers")
    with running_servers(workdir / "rss") as servers:
        results["rss"] = rss_phase(servers, config, workdir / "rss")
    return results


def build_report(
    config: Config, results: dict[str, Any], seconds: float, failures: list[str]
) -> dict[str, Any]:
    small, big = results["burst_small"], results["burst_big"]
    return {
        "config": asdict(config),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "versions": versions(),
        "seconds": seconds,
        **results,
        "paired_ratios": {
            "burst_small_vs_node": paired_ratios(small[OURS], small[NODE]),
            "burst_big_vs_node": paired_ratios(big[OURS], big[NODE]),
        },
        "ratios": compute_ratios(results),
        "targets": {key: {"op": t.op, "bound": t.bound} for key, t in TARGETS.items()},
        "failures": failures,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the crdtedge relay against @y/websocket-server and "
        "pycrdt.websocket with the same Yjs clients (see benchmarks/README.md)."
    )
    parser.add_argument("--quick", action="store_true", help="a smaller run, under a minute")
    parser.add_argument("--reps", type=int, help="interleaved rounds of (a) and (b)")
    parser.add_argument(
        "--json", metavar="PATH", type=Path, help="also write every figure and ratio to PATH"
    )
    parser.add_argument(
        "--serve-pycrdt-websocket", metavar="PORT", type=int, help=argparse.SUPPRESS
    )
    return parser.parse_args(argv)


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through running_servers: subprocesses die


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_pycrdt_websocket is not None:
        serve_pycrdt_websocket(args.serve_pycrdt_websocket)
        return 0
    config = QUICK if args.quick else FULL
    if args.reps:
        config = replace(config, reps=args.reps)
    if not (INTEROP / "node_modules" / "y-websocket").is_dir():
        sys.stderr.write(f"missing {INTEROP}/node_modules: run `npm ci` there first\n")
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp:
        results = run_all(config, Path(tmp))
    seconds = time.perf_counter() - started
    failures, incomplete = problems(results)
    report = build_report(config, results, seconds, failures)
    report["pycrdt_incomplete"] = incomplete
    print(results_table(config, results))
    print()
    print(ratios_table(report["ratios"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    progress(f"done in {seconds:.0f} s")
    for line in incomplete:
        progress(f"note: {line}")
    if failures:
        progress(f"FAILED: {len(failures)} problems")
        for line in failures:
            progress(f"  {line}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
