"""`crdtedge serve` as a real process: durability across SIGKILL, graceful SIGTERM,
HTTP endpoints, and the refusal to serve a public address without auth."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pycrdt
from pypeer import PyPeer
from relay_process import RelayProcess, free_port, relay_process
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


async def write_keys(url: str, keys: range) -> None:
    """Write one map key per update and wait until a second peer has seen them all."""
    async with connect(url) as w_conn, connect(url) as r_conn:
        writer, reader = PyPeer(w_conn), PyPeer(r_conn)
        await writer.start()
        await reader.start()
        await asyncio.wait_for(writer.synced.wait(), 5)
        items = writer.doc.get("m", type=pycrdt.Map)
        for k in keys:
            items[str(k)] = k
            await writer.push_local()
        want = {str(k) for k in keys}
        await reader.wait_for(lambda: want <= set(reader.doc.get("m", type=pycrdt.Map).keys()))


async def read_keys(url: str) -> set[str]:
    async with connect(url) as conn:
        peer = PyPeer(conn)
        await peer.start()
        await asyncio.wait_for(peer.synced.wait(), 5)
        return set(peer.doc.get("m", type=pycrdt.Map).keys())


async def test_sigkill_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # always: a record is fsynced before the update is fanned out, so whatever another
    # peer has seen survives a SIGKILL at once.
    relay = RelayProcess(data, free_port(), ("--durability", "always"))
    relay.start()
    await write_keys(relay.url + "/room", range(200))
    assert relay.stop(signal.SIGKILL) == -signal.SIGKILL
    relay.start()
    try:
        assert await read_keys(relay.url + "/room") == {str(k) for k in range(200)}
    finally:
        relay.stop(signal.SIGKILL)


async def test_group_mode_survives_sigkill_after_the_commit_window(tmp_path: Path) -> None:
    data = tmp_path / "data"
    relay = RelayProcess(data, free_port())
    relay.start()
    await write_keys(relay.url + "/room", range(300))
    await asyncio.sleep(0.2)  # far beyond the 5 ms group-commit window
    relay.stop(signal.SIGKILL)
    relay.start()
    try:
        assert await read_keys(relay.url + "/room") == {str(k) for k in range(300)}
    finally:
        relay.stop(signal.SIGKILL)


async def test_sigterm_closes_peers_with_1001_and_flushes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    relay = RelayProcess(data, free_port(), ("--durability", "none"))
    relay.start()
    await write_keys(relay.url + "/room", range(50))
    async with connect(relay.url + "/room") as peer:
        await asyncio.wait_for(peer.recv(), 5)
        assert relay.stop(signal.SIGTERM) == 0
        try:
            while True:
                await asyncio.wait_for(peer.recv(), 5)
        except ConnectionClosed:
            pass
        assert peer.close_code == 1001
    assert "event=stopped" in relay.output()
    relay.start()  # durability none: only the graceful flush made these durable
    try:
        assert await read_keys(relay.url + "/room") == {str(k) for k in range(50)}
    finally:
        relay.stop(signal.SIGKILL)


def test_healthz_and_metrics(tmp_path: Path) -> None:
    with relay_process(tmp_path / "data") as relay:
        asyncio.run(write_keys(relay.url + "/m", range(10)))
        base = f"http://127.0.0.1:{relay.port}"
        with urllib.request.urlopen(base + "/healthz", timeout=5) as response:
            assert response.status == 200
        with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
            metrics = response.read().decode()
        assert response.headers["Content-Type"].startswith("text/plain")
        assert "crdtedge_updates_appended_total 10.0" in metrics
        assert 'crdtedge_messages_received_total{kind="sync"}' in metrics
        assert "crdtedge_fanout_seconds_bucket" in metrics
        assert "crdtedge_rooms_loaded 1.0" in metrics


def test_refuses_public_address_without_auth(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "crdtedge", "serve", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "without auth" in result.stderr and "--insecure" in result.stderr
