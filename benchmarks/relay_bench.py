"""Benchmark crdtedge's relay side by side with @y/websocket-server and pycrdt.websocket.

Three servers, each its own subprocess on 127.0.0.1, serve the same stock Yjs clients
(yjs + y-websocket from tests/interop, all in one Node process per measurement: see
relay_clients.cjs), so only the server differs. Workloads:

(a) 1 writer -> 20 readers: 2,000 single-character updates in a burst, time until every
    reader has the whole text; (b) the same with 100 readers; (c) 100 updates/s for 10 s
    to 100 readers, delivery latency over every (reader, update) pair; (d) server RSS with
    1,000 small rooms and no connections, then after the rooms have gone idle.

(a) and (b) are repeated with the servers interleaved (the order rotates every round) and
the medians are compared: the machine is shared and noisy, the ratios mean more than the
seconds. Every reader's final text is checked against the writer's. See
benchmarks/README.md for the method and a recorded run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _common import format_table, progress

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
INTEROP = ROOT / "tests" / "interop"
CLIENTS = HERE / "relay_clients.cjs"
HOST = "127.0.0.1"

OURS, NODE, PYCRDT = "crdtedge", "node", "pycrdt"
SERVERS = (OURS, NODE, PYCRDT)
LABELS = {OURS: "crdtedge relay", NODE: "@y/websocket-server", PYCRDT: "pycrdt.websocket"}
IDLE_UNLOAD_SECONDS = 2.0  # passed to our relay, so (d) sees rooms unloaded


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


FULL = Config(
    "full",
    reps=5,
    updates=2_000,
    small_readers=20,
    big_readers=100,
    paced_rate=100,
    paced_seconds=10,
    rooms=1_000,
)
QUICK = Config(
    "quick",
    reps=1,
    updates=500,
    small_readers=20,
    big_readers=100,
    paced_rate=100,
    paced_seconds=2,
    rooms=100,
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


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _leaf(pid: int) -> int:
    """The last process of a chain such as npm exec -> sh -> node (the server itself)."""
    for _ in range(8):
        children = _children(pid)
        if not children:
            return pid
        pid = max(children, key=lambda child: rss_kib(child) or 0)
    return pid


def rss_kib(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


@dataclass
class ServerProcess:
    name: str
    argv: list[str]
    port: int
    log_path: Path
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: npx's children go with it
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited early:\n{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 0.5):
                return
            time.sleep(0.05)
        raise BenchError(f"{self.name} did not listen within {timeout:.0f} s:\n{self.log_tail()}")

    def server_pid(self) -> int:
        assert self.process is not None
        return _leaf(self.process.pid)

    def rss_kib(self) -> int:
        rss = rss_kib(self.server_pid())
        if rss is None:
            raise BenchError(f"{self.name}: no VmRSS (did it exit?)\n{self.log_tail()}")
        return rss

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after a grace period."""
        if self.process is None:
            return
        pgid = self.process.pid  # start_new_session: the group id is the leader's pid
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(grace)
                if not _group_alive(pgid):
                    return
        if _group_alive(pgid):
            progress(f"warning: process group {pgid} ({self.name}) survived SIGKILL")

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def make_server(name: str, workdir: Path) -> ServerProcess:
    port = free_port()
    log_path = workdir / f"{name}.log"
    if name == OURS:
        crdtedge = Path(sys.executable).parent / "crdtedge"
        argv = [str(crdtedge), "serve", "--host", HOST, "--port", str(port)]
        argv += ["--data-dir", str(workdir / "data")]
        argv += ["--idle-unload-seconds", str(IDLE_UNLOAD_SECONDS), "--log-level", "warning"]
        return ServerProcess(name, argv, port, log_path)
    if name == NODE:
        env = {"HOST": HOST, "PORT": str(port)}
        return ServerProcess(name, ["npx", "y-websocket-server"], port, log_path, INTEROP, env)
    argv = [sys.executable, str(Path(__file__).resolve()), "--serve-pycrdt-websocket", str(port)]
    return ServerProcess(name, argv, port, log_path)


@contextlib.contextmanager
def running_servers(workdir: Path) -> Iterator[dict[str, ServerProcess]]:
    """All three servers, started; every process group is killed on the way out."""
    workdir.mkdir(parents=True, exist_ok=True)
    servers: dict[str, ServerProcess] = {}
    try:
        for name in SERVERS:
            servers[name] = make_server(name, workdir)
            servers[name].start()
            progress(f"  {LABELS[name]} listening on {servers[name].url}")
        yield servers
    finally:
        for server in servers.values():
            server.stop()


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


def run_clients(config: dict[str, Any]) -> dict[str, Any]:
    """One Node process of y-websocket clients; its one-line JSON result."""
    timeout = config["timeoutMs"] / 1000 + 15
    try:
        done = subprocess.run(
            ["node", str(CLIENTS), json.dumps(config)],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"node clients ran over {timeout:.0f} s ({config['mode']})") from exc
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        stderr = done.stderr.decode(errors="replace")[-2000:]
        raise BenchError(
            f"node clients gave no result (exit {done.returncode}): {stderr}"
        ) from None
    if result.get("event") != "result":
        raise BenchError(f"node clients: {json.dumps(result)[:1500]}")
    return result


def attempt(server: ServerProcess, config: dict[str, Any]) -> dict[str, Any]:
    """Run the clients against `server`; a failed run is recorded, not raised."""
    try:
        return run_clients({"url": server.url, **config})
    except BenchError as exc:
        alive = "alive" if server.alive() else "DEAD"
        progress(f"  FAILED on {LABELS[server.name]} (server {alive}): {exc}")
        return {
            "error": str(exc),
            "server_alive": server.alive(),
            "server_log_tail": server.log_tail(),
            "failures": 1,
        }


# -- workloads ---------------------------------------------------------------------------


def rotated(round_no: int) -> list[str]:
    shift = round_no % len(SERVERS)
    return [*SERVERS[shift:], *SERVERS[:shift]]


def settle_ms(readers: int) -> int:
    """Quiet time after the joins: every join is an awareness message to every peer."""
    return 500 + 10 * readers


def burst_phase(
    servers: dict[str, ServerProcess], config: Config, readers: int, tag: str
) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SERVERS}
    for round_no in range(config.reps):
        for name in rotated(round_no):
            client = {
                "mode": "burst",
                "room": f"{tag}-{round_no}",
                "readers": readers,
                "updates": config.updates,
                "settleMs": settle_ms(readers),
                "timeoutMs": 240_000,
            }
            result = attempt(servers[name], client)
            runs[name].append(result)
            shown = f"{result['ms'] / 1000:.3f} s" if "ms" in result else "failed"
            progress(f"  round {round_no + 1}/{config.reps} {LABELS[name]}: {shown}")
    return runs


def paced_phase(servers: dict[str, ServerProcess], config: Config) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for name in SERVERS:
        client = {
            "mode": "paced",
            "room": "paced",
            "readers": config.big_readers,
            "rate": config.paced_rate,
            "seconds": config.paced_seconds,
            "settleMs": settle_ms(config.big_readers),
            "timeoutMs": int(config.paced_seconds * 1000) + 180_000,
        }
        results[name] = attempt(servers[name], client)
        shown = results[name]
        if "p99Ms" in shown:
            progress(
                f"  {LABELS[name]}: p50 {shown['p50Ms']:.1f} ms, p99 {shown['p99Ms']:.1f} ms, "
                f"drained {shown['drainMs']:.0f} ms after the last send"
            )
    return results


def rooms_loaded(server: ServerProcess) -> int | None:
    """Our relay's crdtedge_rooms_loaded gauge (None for the other servers)."""
    if server.name != OURS:
        return None
    url = f"http://{HOST}:{server.port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith("crdtedge_rooms_loaded "):
            return int(float(line.split()[1]))
    raise BenchError("no crdtedge_rooms_loaded in /metrics")


def snapshot(server: ServerProcess) -> dict[str, int | None]:
    return {"rss_kib": server.rss_kib(), "rooms_loaded": rooms_loaded(server)}


def wait_unloaded(server: ServerProcess, timeout: float) -> float | None:
    """Seconds until our relay reports no room loaded; None if it did not within timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if rooms_loaded(server) == 0:
            return time.monotonic() - started
        time.sleep(0.25)
    return None


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def rss_phase(
    servers: dict[str, ServerProcess], config: Config, workdir: Path
) -> dict[str, dict[str, Any]]:
    names = [f"rss-{i:04d}" for i in range(config.rooms)]
    results: dict[str, dict[str, Any]] = {}
    for name, server in servers.items():
        results[name] = {"baseline": snapshot(server)}
        populate = {"mode": "populate", "rooms": names, "concurrency": 25, "timeoutMs": 300_000}
        results[name]["populate"] = attempt(server, populate)
        time.sleep(1.0)  # closes finish on the server side
        results[name]["no_connections"] = snapshot(server)
        progress(f"  {LABELS[name]}: {config.rooms} rooms written, {snapshot_text(results[name])}")
    progress("  waiting for idle rooms to be unloaded (crdtedge: --idle-unload-seconds 2)")
    unloaded = wait_unloaded(servers[OURS], timeout=60)
    time.sleep(IDLE_UNLOAD_SECONDS + 1.0)
    results[OURS]["unloaded_after_s"] = unloaded
    results[OURS]["disk_bytes"] = disk_bytes(workdir / "data")
    for name, server in servers.items():
        results[name]["idle"] = snapshot(server)
        check = {"mode": "check", "rooms": names, "concurrency": 25, "timeoutMs": 300_000}
        results[name]["check"] = attempt(server, check)
        results[name]["after_check"] = snapshot(server)
    return results


def snapshot_text(result: dict[str, Any]) -> str:
    before = result["baseline"]["rss_kib"] / 1024
    after = result["no_connections"]["rss_kib"] / 1024
    return f"RSS {before:.1f} -> {after:.1f} MiB"


# -- figures -----------------------------------------------------------------------------


def median_of(runs: list[dict[str, Any]], key: str = "ms") -> float | None:
    values = [run[key] for run in runs if key in run and run.get("failures", 0) == 0]
    return statistics.median(values) if values else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def paired_ratios(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> list[float]:
    """Round-by-round ratios (ours / theirs) of the runs that both succeeded."""
    pairs = zip(ours, theirs, strict=True)
    return [a["ms"] / b["ms"] for a, b in pairs if "ms" in a and "ms" in b and b["ms"] > 0]


def compute_ratios(results: dict[str, Any]) -> dict[str, float | None]:
    small, big, paced = results["burst_small"], results["burst_big"], results["paced"]
    return {
        "vs_node_server": ratio(median_of(small[OURS]), median_of(small[NODE])),
        "vs_node_server_100": ratio(median_of(big[OURS]), median_of(big[NODE])),
        "vs_pycrdt_websocket": ratio(median_of(small[PYCRDT]), median_of(small[OURS])),
        "p99_vs_node_server": ratio(paced[OURS].get("p99Ms"), paced[NODE].get("p99Ms")),
    }


def count_failures(results: dict[str, Any]) -> int:
    total = 0
    for phase in ("burst_small", "burst_big"):
        total += sum(run.get("failures", 0) for runs in results[phase].values() for run in runs)
    total += sum(run.get("failures", 0) for run in results["paced"].values())
    for figures in results["rss"].values():
        total += figures["populate"].get("failures", 0) + figures["check"].get("failures", 0)
    return total


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in ("pycrdt", "pycrdt-websocket", "websockets", "crdtedge"):
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
    return "failed" if value is None else f"{value * scale:.{digits}g}"


def rss_cell(figures: dict[str, Any], key: str) -> str:
    snap = figures[key]
    text = f"{snap['rss_kib'] / 1024:.1f}"
    return text if snap["rooms_loaded"] is None else f"{text} ({snap['rooms_loaded']} loaded)"


def kept_cell(figures: dict[str, Any]) -> str:
    check = figures["check"]
    if "kept" not in check:
        return "failed"
    return f"{check['kept']}/{check['rooms']} kept, {check['empty']} empty"


def results_table(config: Config, results: dict[str, Any]) -> str:
    small, big, paced, rss = (results[k] for k in ("burst_small", "burst_big", "paced", "rss"))
    n = f"{config.updates:,}"
    rows = [
        [f"(a) burst {n} -> {config.small_readers} readers, s"]
        + [fmt(median_of(small[s]), 1e-3) for s in SERVERS],
        [f"(b) burst {n} -> {config.big_readers} readers, s"]
        + [fmt(median_of(big[s]), 1e-3) for s in SERVERS],
        ["(a) updates applied per reader (median)"]
        + [fmt(median_of(small[s], "updatesPerReaderMedian"), digits=5) for s in SERVERS],
        ["(b) updates applied per reader (median)"]
        + [fmt(median_of(big[s], "updatesPerReaderMedian"), digits=5) for s in SERVERS],
    ]
    for key, label in (("p50Ms", "p50"), ("p99Ms", "p99"), ("maxMs", "max")):
        rows.append(
            [f"(c) {config.paced_rate:g}/s x {config.paced_seconds:g} s, {label} ms"]
            + [fmt(paced[s].get(key)) for s in SERVERS]
        )
    rows += [
        ["(d) RSS MiB, fresh server"] + [rss_cell(rss[s], "baseline") for s in SERVERS],
        [f"(d) RSS MiB, {config.rooms} rooms, no connections"]
        + [rss_cell(rss[s], "no_connections") for s in SERVERS],
        ["(d) RSS MiB, after idle unload wait"] + [rss_cell(rss[s], "idle") for s in SERVERS],
        ["(d) rooms' content after idle"] + [kept_cell(rss[s]) for s in SERVERS],
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


def run_all(config: Config, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    progress("starting the three servers for (a)-(c)")
    with running_servers(workdir / "fanout") as servers:
        progress("warm-up burst on every server (not counted)")
        for name in SERVERS:
            warm = {"mode": "burst", "room": "warm-up", "readers": 5, "updates": 200}
            attempt(servers[name], {**warm, "settleMs": 100, "timeoutMs": 60_000})
        progress(f"(a) burst of {config.updates} updates to {config.small_readers} readers")
        results["burst_small"] = burst_phase(servers, config, config.small_readers, "small")
        progress(f"(b) burst of {config.updates} updates to {config.big_readers} readers")
        results["burst_big"] = burst_phase(servers, config, config.big_readers, "big")
        progress(f"(c) {config.paced_rate:g} updates/s for {config.paced_seconds:g} s")
        results["paced"] = paced_phase(servers, config)
    progress(f"(d) RSS with {config.rooms} rooms: three fresh servers")
    with running_servers(workdir / "rss") as servers:
        results["rss"] = rss_phase(servers, config, workdir / "rss")
    return results


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
    raise SystemExit(128 + signum)  # unwinds through running_servers: subprocesses are killed


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_pycrdt_websocket is not None:
        serve_pycrdt_websocket(args.serve_pycrdt_websocket)
        return 0
    config = QUICK if args.quick else FULL
    if args.reps:
        config = Config(**{**asdict(config), "reps": args.reps})
    if not (INTEROP / "node_modules" / "y-websocket").is_dir():
        sys.stderr.write(f"missing {INTEROP}/node_modules: run `npm ci` there first\n")
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp:
        results = run_all(config, Path(tmp))
    ratios = compute_ratios(results)
    failures = count_failures(results)
    print(results_table(config, results))
    print()
    print(ratios_table(ratios))
    report = {
        "config": asdict(config),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "versions": versions(),
        "seconds": time.perf_counter() - started,
        **results,
        "paired_ratios": {
            "burst_small_vs_node": paired_ratios(
                results["burst_small"][OURS], results["burst_small"][NODE]
            ),
            "burst_big_vs_node": paired_ratios(
                results["burst_big"][OURS], results["burst_big"][NODE]
            ),
        },
        "ratios": ratios,
        "targets": {k: {"op": t.op, "bound": t.bound} for k, t in TARGETS.items()},
        "failures": failures,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    progress(f"done in {time.perf_counter() - started:.0f} s")
    if failures:
        print(f"\nFAILED: {failures} failed reader checks or runs (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
