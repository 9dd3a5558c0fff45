"""Interop with real Yjs peers: pinned `yjs` + `y-websocket` clients in Node, talking to our
relay (`crdtedge serve`, as a subprocess) next to Python peers on the same rooms.

The Node side is `tests/interop/peer.mjs` (one process per peer, JSON config on argv, JSON
lines on stdout, stdin as a control channel; every process exits by itself after 10 s).
`node_modules` is installed once per session with `npm ci` when missing or stale.

Keep texts ASCII where positions matter: pycrdt Text indices are UTF-8 byte offsets, Yjs
uses UTF-16. Non-ASCII content is only compared whole or appended at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pycrdt
import pytest
from polling import until
from pypeer import PyPeer
from relay_process import RelayProcess, relay_process
from websockets.asyncio.client import connect

from crdtedge import LogStore, Replica
from crdtedge.protocol import decode_state_vector

INTEROP = Path(__file__).parent / "interop"
PEER_SCRIPT = INTEROP / "peer.mjs"
PINNED = {"yjs": "13.6.33", "y-websocket": "3.1.0", "y-protocols": "1.0.7", "ws": "8.18.3"}
NODE_TIMEOUT_MS = 10_000  # every Node peer exits by itself after this
WAIT = NODE_TIMEOUT_MS / 1000 + 5  # how long the driver waits for any one Node event
SECRET = "s3cret"

pytestmark = [
    pytest.mark.slow,
    # The tokens' test secret is short on purpose; pyjwt warns about it.
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]


# -- Node setup ----------------------------------------------------------------------


def _installed_version(package: str) -> str | None:
    manifest = INTEROP / "node_modules" / package / "package.json"
    try:
        version: str = json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
    return version


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary, with tests/interop/node_modules installed at the pinned versions."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("interop tests need Node >= 20 on PATH (`node` not found)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    if major < 20:
        pytest.fail(f"interop tests need Node >= 20, found {version.stdout.strip()}")
    if any(_installed_version(name) != pinned for name, pinned in PINNED.items()):
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(f"{INTEROP}/node_modules is missing and `npm` is not on PATH")
        install = subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=INTEROP,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if install.returncode != 0:
            pytest.fail(
                f"`npm ci` in {INTEROP} failed ({install.returncode}):\n"
                f"{install.stdout}\n{install.stderr}"
            )
        wrong = {n: _installed_version(n) for n, v in PINNED.items() if _installed_version(n) != v}
        if wrong:
            pytest.fail(f"after `npm ci`, packages are not at their pinned versions: {wrong}")
    return node


class NodePeer:
    """One `peer.mjs` process: read its JSON-lines events, poke its stdin."""

    def __init__(self, process: asyncio.subprocess.Process, config: dict[str, Any]) -> None:
        self.process = process
        self.config = config
        self.events: list[dict[str, Any]] = []
        assert process.stderr is not None
        self._stderr = asyncio.get_running_loop().create_task(process.stderr.read())

    @classmethod
    async def start(cls, node: str, config: dict[str, Any]) -> NodePeer:
        config = {"timeout": NODE_TIMEOUT_MS, **config}
        process = await asyncio.create_subprocess_exec(
            node,
            str(PEER_SCRIPT),
            json.dumps(config),
            cwd=INTEROP,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process, config)

    async def event(
        self, name: str, where: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, Any]:
        """The next event called `name` (matching `where`); fails on error, timeout or exit."""
        assert self.process.stdout is not None
        async with asyncio.timeout(WAIT):
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    raise AssertionError(f"node peer ended before {name!r}: {await self.dump()}")
                event: dict[str, Any] = json.loads(line)
                self.events.append(event)
                if event["event"] == name and (where is None or where(event)):
                    return event
                if event["event"] in ("error", "timeout"):
                    raise AssertionError(
                        f"node peer failed waiting for {name!r}: {await self.dump()}"
                    )

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")

    def close_stdin(self) -> None:
        assert self.process.stdin is not None
        if not self.process.stdin.is_closing():
            self.process.stdin.close()

    async def result(self) -> dict[str, Any]:
        """The final result; the process must then exit 0 by itself."""
        result = await self.event("result")
        async with asyncio.timeout(WAIT):
            code = await self.process.wait()
        assert code == 0, f"node peer exited {code}: {await self.dump()}"
        return result

    def dump_now(self) -> str:
        return f"mode={self.config.get('mode')} events={self.events}"

    async def dump(self) -> str:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await self.process.wait()
        stderr = (await self._stderr).decode(errors="replace") if self._stderr.done() else "?"
        return f"{self.dump_now()} exit={self.process.returncode} stderr={stderr}"

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()
        with contextlib.suppress(Exception):
            await self._stderr


Spawn = Callable[..., Awaitable[NodePeer]]


@pytest.fixture
async def spawn(node: str) -> AsyncIterator[Spawn]:
    """Start Node peers (`await spawn(mode=..., url=..., room=...)`); all are reaped after."""
    peers: list[NodePeer] = []

    async def start(**config: Any) -> NodePeer:
        peer = await NodePeer.start(node, config)
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        await peer.kill()


async def run_node(spawn: Spawn, **config: Any) -> dict[str, Any]:
    """Run a one-shot Node peer to completion and return its result."""
    peer = await spawn(**config)
    peer.close_stdin()
    return await peer.result()


# -- Python side -----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def py_peer(url: str) -> AsyncIterator[PyPeer]:
    """A PyPeer connected to `url` (relay URL + /room[?token=...]), synced."""
    async with connect(url) as connection:
        peer = PyPeer(connection)
        await peer.start()
        await asyncio.wait_for(peer.synced.wait(), 5)
        yield peer


def doc_map(peer: PyPeer) -> dict[str, Any]:
    content: dict[str, Any] = peer.doc.get("map", type=pycrdt.Map).to_py() or {}
    return content


def writers(doc: pycrdt.Doc[Any]) -> set[int]:
    """The client ids in a document's state vector (everyone who wrote to it)."""
    return set(decode_state_vector(doc.get_state()))


def token(room: str, perm: str) -> str:
    claims = {"room": room, "perm": perm, "exp": int(time.time()) + 120}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def healthy(relay: RelayProcess) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{relay.port}/healthz", timeout=2) as response:
        return bool(response.status == 200)


def metric(relay: RelayProcess, sample: str) -> float:
    """The value of one Prometheus sample from the relay's /metrics (0 if absent)."""
    url = f"http://127.0.0.1:{relay.port}/metrics"
    with urllib.request.urlopen(url, timeout=2) as response:
        for line in response.read().decode().splitlines():
            name, _, value = line.rpartition(" ")
            if name == sample:
                return float(value)
    return 0.0


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayProcess]:
    with relay_process(tmp_path / "data") as relay:
        yield relay
        assert relay.process is not None and relay.process.poll() is None, relay.output()


# A map with every JSON type; pycrdt reads numbers as floats (3 == 3.0 in Python).
NODE_MAP = {
    "title": "from node",
    "count": 3,
    "ratio": 0.25,
    "done": True,
    "nothing": None,
    "tags": ["a", "b", 7],
    "nested": {"k": "v", "n": [1, {"deep": False}]},
}
NODE_TEXT = "hello from node, héllo wörld 🎉 𝄞"


# -- 1. Node writes, Python reads ------------------------------------------------------


async def test_node_writes_python_reads(relay: RelayProcess, spawn: Spawn) -> None:
    room = "node-to-python"
    result = await run_node(
        spawn, mode="write", url=relay.url, room=room, text=NODE_TEXT, map=NODE_MAP
    )
    assert result["echo"] == {"text": NODE_TEXT, "map": NODE_MAP}  # through the relay
    async with py_peer(f"{relay.url}/{room}") as peer:
        assert str(peer.text) == NODE_TEXT
        assert doc_map(peer) == NODE_MAP
        # The relay's step 2 carried exactly the Node client's structs.
        assert writers(peer.doc) == {result["clientID"]}


# -- 2. Python writes, Node reads ------------------------------------------------------


async def test_python_writes_node_reads(relay: RelayProcess, spawn: Spawn) -> None:
    room = "python-to-node"
    url = f"{relay.url}/{room}"
    py_map = {"title": "from python", "count": 5, "ok": False, "list": ["x", 1.5, None]}
    async with py_peer(url) as writer:
        writer.text.insert(0, "hello from python")
        writer.text.insert(len(str(writer.text).encode()), ", ünïcödé ✓ 🐍")  # append: safe
        for key, value in py_map.items():
            writer.doc.get("map", type=pycrdt.Map)[key] = value
        await writer.push_local()
        expected = str(writer.text)
        async with py_peer(url) as check:  # the relay has it before Node connects
            await check.wait_for(lambda: str(check.text) == expected and len(doc_map(check)) == 4)

        # A Node reader syncs it, and then sees a live update from the still-connected writer.
        reader = await spawn(mode="read", url=relay.url, room=room, waitText=expected + "!")
        reader.close_stdin()
        synced = await reader.event("synced")
        writer.text.insert(len(expected.encode()), "!")
        await writer.push_local()
        result = await reader.result()
    assert expected == "hello from python, ünïcödé ✓ 🐍"
    assert synced == {"event": "synced", "text": expected, "map": py_map}
    assert result["text"] == expected + "!"
    assert result["map"] == py_map


# -- 3. Two Node clients converge (and the relay and a Python peer with them) ------------


async def test_two_node_clients_converge(relay: RelayProcess, spawn: Spawn) -> None:
    room = "converge"
    url = f"{relay.url}/{room}"
    markers = ["[A-off]", "[B-off]", "[A-on]", "[B-on]", "[PY]"]
    keys = ["a_off", "b_off", "a_on", "b_on", "shared_off", "shared_on", "py"]
    common = {
        "mode": "converge",
        "url": relay.url,
        "room": room,
        "expectMarkers": markers,
        "expectKeys": keys,
    }
    # Offline edits are concurrent by construction: made before either side connects.
    a = await spawn(
        **common,
        offline={"text": "[A-off]", "map": {"a_off": 1, "shared_off": "A"}},
        online={"text": "[A-on]", "insertAt": 0, "map": {"a_on": 1, "shared_on": "A"}},
    )
    b = await spawn(
        **common,
        offline={"text": "[B-off]", "map": {"b_off": 2, "shared_off": "B"}},
        online={"text": "[B-on]", "insertAt": 0, "map": {"b_on": 2, "shared_on": "B"}},
    )
    ready_a, ready_b = await asyncio.gather(a.event("ready"), b.event("ready"))
    async with py_peer(url) as py:
        # Online edits: both Node peers and a Python peer insert at 0; A and B race on a key.
        a.send("go")
        b.send("go")
        py.text.insert(0, "[PY]")
        py.doc.get("map", type=pycrdt.Map)["py"] = "yes"
        await py.push_local()
        result_a, result_b = await asyncio.gather(a.result(), b.result())
        await py.wait_for(lambda: all(m in str(py.text) for m in markers))
        await py.wait_for(lambda: set(doc_map(py)) == set(keys))
        py_state = {"text": str(py.text), "map": doc_map(py)}

    assert ready_a["clientID"] != ready_b["clientID"]
    assert result_a["text"] == result_b["text"] == py_state["text"]
    assert result_a["map"] == result_b["map"] == py_state["map"]
    text = result_a["text"]
    assert sorted(text.replace("]", "]\n").split()) == sorted(markers)  # each exactly once
    assert result_a["map"]["shared_off"] in ("A", "B")
    assert result_a["map"]["shared_on"] in ("A", "B")
    # And a fresh Node reader gets the same converged state from the relay's document.
    fresh = await run_node(spawn, mode="read", url=relay.url, room=room)
    assert fresh["text"] == text
    assert fresh["map"] == result_a["map"]


# -- 4. A Node late joiner sees existing awareness at once -----------------------------


async def test_node_late_joiner_sees_existing_awareness(relay: RelayProcess, spawn: Spawn) -> None:
    room = "awareness-late"
    url = f"{relay.url}/{room}"
    py_client = 2**40 + 7  # pycrdt-style ids go beyond JS's 32 bits; lib0 decodes 53 bits
    py_state = {"user": {"name": "python", "color": "#00ff00"}, "cursor": None}
    async with py_peer(url) as py:
        await py.connection.send(py.awareness.set_local(py_client, py_state, time.monotonic()))
        present = await spawn(
            mode="awareness", url=relay.url, room=room, state={"user": {"name": "node"}}
        )
        ready = await present.event("ready")
        node_client = ready["clientID"]
        await py.wait_for(lambda: node_client in py.awareness)  # the relay has both
        if str(py_client) not in ready["states"]:
            await present.event("awareness", where=lambda e: str(py_client) in e["states"])

        joiner = await run_node(
            spawn,
            mode="late-joiner",
            url=relay.url,
            room=room,
            expectClients=[py_client, node_client],
            wait=5000,
        )
        present.close_stdin()
        await present.result()

    assert joiner["seen"], joiner
    # At once: on connect, not after the 15 s renewal or the 30 s timeout.
    assert joiner["msFromOpen"] is not None and joiner["msFromOpen"] < 1000, joiner
    assert joiner["msFromStart"] < 2000, joiner
    assert joiner["states"] == {
        str(py_client): py_state,
        str(node_client): {"user": {"name": "node"}},
    }


# -- 5. Awareness removal on disconnect reaches a Node peer ------------------------------


async def test_awareness_removal_on_disconnect_reaches_node(
    relay: RelayProcess, spawn: Spawn
) -> None:
    room = "awareness-leave"
    url = f"{relay.url}/{room}"
    watcher = await spawn(mode="awareness", url=relay.url, room=room, state={"who": "watcher"})
    await watcher.event("ready")
    killed = await spawn(mode="awareness", url=relay.url, room=room, state={"who": "killed"})
    graceful = await spawn(mode="awareness", url=relay.url, room=room, state={"who": "leaves"})
    killed_id = (await killed.event("ready"))["clientID"]
    graceful_id = (await graceful.event("ready"))["clientID"]
    py_client = 4242
    async with connect(url) as connection:
        py = PyPeer(connection)
        await py.start()
        await connection.send(py.awareness.set_local(py_client, {"who": "py"}, time.monotonic()))

        everyone = {str(killed_id), str(graceful_id), str(py_client)}
        await watcher.event("awareness", where=lambda e: everyone <= set(e["states"]))

        async def leaves(client: int, still_here: set[int]) -> None:
            started = time.monotonic()
            event = await watcher.event("awareness", where=lambda e: bool(e["removed"]))
            assert time.monotonic() - started < 2.0, event  # not the 30 s awareness timeout
            # Exactly that client leaves; the others, still connected, must stay visible.
            assert event["removed"] == [client], f"relay removed live peers' states too: {event}"
            assert set(event["states"]) == {str(c) for c in still_here}, event

        # Abrupt: the Node process dies without a goodbye; only the relay can announce it.
        # (Like every y-websocket client, it had echoed the others' awareness to the relay.)
        killed.process.send_signal(signal.SIGKILL)
        await leaves(killed_id, {graceful_id, py_client})

        # A Python peer closes its websocket without withdrawing its state.
        await connection.close()
        await leaves(py_client, {graceful_id})

    # Graceful: y-websocket's destroy() sends its own null state; the relay forwards it.
    graceful.close_stdin()
    await graceful.result()
    await leaves(graceful_id, set())

    watcher.close_stdin()
    assert (await watcher.result())["states"] == {}


# -- 6. A read-only token cannot change the room ---------------------------------------


async def test_node_readonly_token_cannot_write(tmp_path: Path, spawn: Spawn) -> None:
    room = "team/readonly"
    with relay_process(tmp_path / "data", "--auth-secret", SECRET) as relay:
        rw_url = f"{relay.url}/{room}?token={token('team/*', 'rw')}"
        async with py_peer(rw_url) as writer:
            writer.text.insert(0, "seed")
            writer.doc.get("map", type=pycrdt.Map)["k"] = "seed"
            await writer.push_local()
            async with py_peer(rw_url) as check:
                await check.wait_for(lambda: str(check.text) == "seed")

            ro = await spawn(
                mode="readonly-write",
                url=relay.url,
                room=room,
                token=token(room, "ro"),
                text="RO-EDIT",
                map={"k": "ro", "ro_only": 1},
                expectText="RW-AFTER",
            )
            wrote = await ro.event("wrote")
            assert wrote["before"] == {"text": "seed", "map": {"k": "seed"}}  # it can read
            assert wrote["local"]["text"] == "seedRO-EDIT"
            await asyncio.sleep(0.5)  # give the relay every chance to (wrongly) apply it

            writer.text.insert(len(b"seed"), "RW-AFTER")
            await writer.push_local()
            result = await ro.result()  # the read-only peer still receives others' edits
            assert "RW-AFTER" in result["text"]
            assert "RO-EDIT" not in str(writer.text)

        async with py_peer(rw_url) as reader:
            assert str(reader.text) == "seedRW-AFTER"
            assert doc_map(reader) == {"k": "seed"}
            assert result["clientID"] not in writers(reader.doc)
        assert relay.process is not None and relay.process.poll() is None, relay.output()
        assert healthy(relay)
        # The read-only peer's update did reach the relay, which dropped it.
        assert metric(relay, 'crdtedge_messages_dropped_total{reason="read_only"}') >= 1
        # A fresh Node reader (rw token) agrees after the ro peer is gone.
        fresh = await run_node(
            spawn, mode="read", url=relay.url, room=room, token=token(room, "rw")
        )
        assert fresh["text"] == "seedRW-AFTER"
        assert fresh["map"] == {"k": "seed"}


# -- 7. Durability across a graceful restart, with Node on both sides ------------------------


async def test_node_write_survives_relay_restart(tmp_path: Path, spawn: Spawn) -> None:
    room = "durable"
    data = tmp_path / "data"
    with relay_process(data) as relay:
        written = await run_node(
            spawn, mode="write", url=relay.url, room=room, text=NODE_TEXT, map=NODE_MAP
        )
        assert written["echo"] == {"text": NODE_TEXT, "map": NODE_MAP}
        assert relay.stop(signal.SIGTERM) == 0, relay.output()
        assert "event=stopped" in relay.output()
    with relay_process(data) as restarted:
        result = await run_node(spawn, mode="read", url=restarted.url, room=room)
    assert result["synced"] == {"text": NODE_TEXT, "map": NODE_MAP}


# -- 8. A Python Replica and a Node client, through our relay and the reference server ---


@contextlib.contextmanager
def node_reference_server(node: str) -> Iterator[str]:
    """`@y/websocket-server` (npx y-websocket-server) on a free loopback port."""
    from relay_process import free_port

    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
    server = subprocess.Popen(
        [str(INTEROP / "node_modules" / ".bin" / "y-websocket-server")],
        cwd=INTEROP,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert "running" in line, line
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(10)


@pytest.mark.parametrize("server", ["crdtedge", "y-websocket-server"])
async def test_replica_and_node_client_edit_one_room(
    server: str, node: str, spawn: Spawn, tmp_path: Path
) -> None:
    with contextlib.ExitStack() as stack:
        if server == "crdtedge":
            url = stack.enter_context(relay_process(tmp_path / "data")).url
        else:
            url = stack.enter_context(node_reference_server(node))
        room = "shared"
        await run_node(spawn, mode="write", url=url, room=room, text="node:", map={"n": 1})
        with LogStore(tmp_path / "replica") as store:
            async with Replica(store, room, url=f"{url}/{room}") as replica:
                await asyncio.wait_for(replica.synced(), 10)
                text = replica.doc.get("text", type=pycrdt.Text)
                await until(lambda: str(text) == "node:")
                text.insert(len(str(text).encode()), "python")
                replica.doc.get("map", type=pycrdt.Map)["p"] = 2
                result = await run_node(
                    spawn, mode="read", url=url, room=room, waitText="node:python"
                )
                assert result["text"] == "node:python"
                assert result["map"] == {"n": 1, "p": 2}
                if server == "crdtedge":
                    await asyncio.wait_for(replica.flushed(), 10)
                    assert replica.unflushed == 0
                else:  # the reference server never acknowledges; everything else works
                    assert replica.unflushed > 0
            # Offline restart from the replica's own log: the content is local.
            async with Replica(store, room) as offline:
                assert str(offline.doc.get("text", type=pycrdt.Text)) == "node:python"
