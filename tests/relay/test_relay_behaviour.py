"""Relay behaviour with Python peers over real websockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path
from typing import Any

import jwt
import pycrdt
import pytest
from crdtedge_server.auth import TokenAuth
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pypeer import PyPeer, RelayHandle, running_relay
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from crdtedge.log import UpdateLog
from crdtedge.protocol import (
    AwarenessEntry,
    AwarenessUpdate,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    decode,
    encode,
)
from crdtedge.relay import RelayConfig, RelayObserver

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


class Recorder(RelayObserver):
    def __init__(self) -> None:
        self.closed: list[int] = []
        self.dropped_reasons: list[str] = []
        self.refused: list[int] = []

    def connection_closed(self, room: str, code: int, reason: str) -> None:
        self.closed.append(code)

    def dropped(self, why: str) -> None:
        self.dropped_reasons.append(why)

    def handshake_refused(self, status: int) -> None:
        self.refused.append(status)


def token(room: str, perm: str = "rw", ttl: float = 60) -> str:
    return jwt.encode(
        {"room": room, "perm": perm, "exp": int(time.time() + ttl)}, SECRET, algorithm="HS256"
    )


async def eventually(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_fan_out_to_every_other_peer(relay: RelayHandle) -> None:
    async with relay.peer("r") as a, relay.peer("r") as b, relay.peer("r") as c:
        for i, peer in enumerate((a, b, c)):
            await asyncio.wait_for(peer.synced.wait(), 5)
            peer.doc.get("m", type=pycrdt.Map)[f"k{i}"] = i
            await peer.push_local()
        for peer in (a, b, c):
            await peer.wait_for(lambda p=peer: len(p.doc.get("m", type=pycrdt.Map)) == 3)


async def test_burst_is_coalesced_and_complete(relay: RelayHandle) -> None:
    async with relay.peer("burst") as writer, relay.peer("burst") as reader:
        await asyncio.wait_for(reader.synced.wait(), 5)
        before = len(reader.received)
        for _ in range(500):
            writer.text.insert(len(str(writer.text)), "x")
        await writer.push_local()
        await reader.wait_for(lambda: str(reader.text) == "x" * 500)
        frames = len(reader.received) - before
        assert frames < 500, f"{frames} frames for 500 updates: no coalescing"


async def test_late_joiner_gets_content_and_awareness_at_once(relay: RelayHandle) -> None:
    async with relay.peer("aw") as first:
        await asyncio.wait_for(first.synced.wait(), 5)
        first.text.insert(0, "existing")
        await first.push_local()
        frame = first.awareness.set_local(first.doc.client_id, {"user": "ana"}, 0.0)
        await first.connection.send(frame)
        await eventually(lambda: len(relay.relay.rooms["aw"].awareness) == 1)
        started = time.monotonic()
        async with relay.peer("aw") as late:
            await late.wait_for(
                lambda: str(late.text) == "existing" and late.awareness.get(first.doc.client_id)
            )
            assert time.monotonic() - started < 2.0
            assert late.awareness.get(first.doc.client_id) == {"user": "ana"}


async def test_awareness_removed_when_a_peer_disconnects(relay: RelayHandle) -> None:
    async with relay.peer("bye") as stays:
        async with relay.peer("bye") as leaves:
            frame = leaves.awareness.set_local(leaves.doc.client_id, {"user": "bo"}, 0.0)
            await leaves.connection.send(frame)
            await stays.wait_for(lambda: stays.awareness.get(leaves.doc.client_id) is not None)
        await stays.wait_for(lambda: stays.awareness.get(leaves.doc.client_id) is None)


@pytest.mark.parametrize(
    "frame",
    [
        b"\x00\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # overlong length varuint
        b"\x00\x05",  # unknown sync subtype
        b"\x00\x02\x10abc",  # update length past the frame
        encode(SyncUpdate(b"\x07\x07\x07 not a yjs update")),
        encode(AwarenessUpdate((AwarenessEntry(1, 1, None),)))[:-3],
    ],
)
async def test_bad_frames_close_only_the_offender(relay: RelayHandle, frame: bytes) -> None:
    async with relay.peer("bad") as good:
        await asyncio.wait_for(good.synced.wait(), 5)
        good.text.insert(0, "safe")
        await good.push_local()
        await eventually(lambda: str(relay.relay.rooms["bad"].doc.get("text", type=pycrdt.Text)))
        async with connect(relay.url("bad")) as offender:
            await offender.send(frame)
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(offender.recv(), 5)
            assert offender.close_code == 1007
        room = relay.relay.rooms["bad"]
        assert str(room.doc.get("text", type=pycrdt.Text)) == "safe"
        good.text.insert(4, "!")
        await good.push_local()
        async with relay.peer("bad") as other:
            await other.wait_for(lambda: str(other.text) == "safe!")


async def test_text_frames_and_unknown_types(tmp_path: Path) -> None:
    recorder = Recorder()
    async with (
        running_relay(tmp_path, observer=recorder) as relay,
        connect(relay.url("u")) as peer,
    ):
        await peer.send(b"\x63\x01\x02")  # type 99: ignored, counted
        await peer.send(encode(SyncStep1(b"\x00")))
        reply = decode(await asyncio.wait_for(peer.recv(), 5))
        while not isinstance(reply, SyncStep2):  # the relay's own step 1 comes first
            reply = decode(await asyncio.wait_for(peer.recv(), 5))
        assert recorder.dropped_reasons == ["unknown_type"]
        await peer.send("a text frame")
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(peer.recv(), 5)
        assert peer.close_code == 1003


async def test_oversized_frame_closes_with_1009(tmp_path: Path) -> None:
    config = RelayConfig(max_message_bytes=4096)
    async with (
        running_relay(tmp_path, config=config) as relay,
        connect(relay.url("big"), max_size=None) as peer,
    ):
        await peer.send(encode(SyncUpdate(b"\x00" * 10_000)))
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(peer.recv(), 5)
        assert peer.close_code == 1009


async def test_slow_consumer_is_cut_off_and_others_are_served(tmp_path: Path) -> None:
    recorder = Recorder()
    config = RelayConfig(max_buffered_bytes=256 * 1024)
    async with running_relay(tmp_path, config=config, observer=recorder) as relay:
        # The stalled reader never reads: its socket buffers fill, then the relay's.
        stalled = await connect(relay.url("slow"), max_queue=1)
        async with relay.peer("slow") as writer, relay.peer("slow") as reader:
            await asyncio.wait_for(writer.synced.wait(), 5)
            blob = "y" * 200_000
            for i in range(120):  # ~24 MB through the relay
                writer.doc.get("m", type=pycrdt.Map)[str(i)] = blob
                await writer.push_local()
            await reader.wait_for(
                lambda: len(reader.doc.get("m", type=pycrdt.Map)) == 120, timeout=30
            )
            await eventually(lambda: 1013 in recorder.closed, timeout=10)
            assert len(relay.relay.rooms["slow"].members) == 2
        await stalled.close()


async def test_token_auth(tmp_path: Path) -> None:
    recorder = Recorder()
    auth = TokenAuth(hs256_secret=SECRET.encode())
    async with running_relay(tmp_path, authorize=auth, observer=recorder) as relay:
        with pytest.raises(InvalidStatus) as missing:
            await connect(relay.url("site/a"))
        assert missing.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as expired:
            await connect(relay.url("site/a") + "?token=" + token("site/a", ttl=-60))
        assert expired.value.response.status_code == 401
        assert b"expired" in expired.value.response.body
        with pytest.raises(InvalidStatus) as wrong_room:
            await connect(relay.url("other") + "?token=" + token("site/*"))
        assert wrong_room.value.response.status_code == 403
        bad_sig = jwt.encode({"room": "x", "perm": "rw", "exp": 2**40}, "n" * 32, algorithm="HS256")
        with pytest.raises(InvalidStatus) as forged:
            await connect(relay.url("x") + "?token=" + bad_sig)
        assert forged.value.response.status_code == 401
        assert recorder.refused == [401, 401, 403, 401]
        header = {"Authorization": "Bearer " + token("site/*")}
        async with connect(relay.url("site/b"), additional_headers=header) as ok:
            assert isinstance(await asyncio.wait_for(ok.recv(), 5), bytes)  # step 1


async def test_eddsa_tokens(tmp_path: Path) -> None:
    private = Ed25519PrivateKey.generate()
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    auth = TokenAuth(eddsa_public_key=public_pem)
    claims = {"room": "dev/*", "perm": "rw", "exp": int(time.time() + 60)}
    good = jwt.encode(claims, private, algorithm="EdDSA")
    hs = token("dev/*")  # an HS256 token is refused when only EdDSA is configured
    async with running_relay(tmp_path, authorize=auth) as relay:
        async with connect(relay.url("dev/1") + "?token=" + good) as ok:
            assert isinstance(await asyncio.wait_for(ok.recv(), 5), bytes)
        with pytest.raises(InvalidStatus) as refused:
            await connect(relay.url("dev/1") + "?token=" + hs)
        assert refused.value.response.status_code == 401


async def test_read_only_peers_receive_but_cannot_write(tmp_path: Path) -> None:
    recorder = Recorder()
    auth = TokenAuth(hs256_secret=SECRET.encode())
    async with running_relay(tmp_path, authorize=auth, observer=recorder) as relay:
        rw_url = relay.url("plant") + "?token=" + token("plant")
        ro_url = relay.url("plant") + "?token=" + token("plant", "ro")
        async with connect(rw_url) as rw_conn, connect(ro_url) as ro_conn:
            writer, viewer = PyPeer(rw_conn), PyPeer(ro_conn)
            await writer.start()
            await viewer.start()
            await asyncio.wait_for(viewer.synced.wait(), 5)
            viewer.text.insert(0, "vandal")
            await viewer.push_local()
            writer.text.insert(0, "ok")
            await writer.push_local()
            await viewer.wait_for(lambda: "ok" in str(viewer.text))
            await eventually(lambda: "read_only" in recorder.dropped_reasons)
            room_text = str(relay.relay.rooms["plant"].doc.get("text", type=pycrdt.Text))
            assert room_text == "ok"
            await asyncio.sleep(0.1)
            assert "vandal" not in str(writer.text)


async def test_idle_room_unloads_and_reloads_from_its_log(relay: RelayHandle) -> None:
    async with relay.peer("idle") as peer:
        await asyncio.wait_for(peer.synced.wait(), 5)
        peer.text.insert(0, "kept")
        await peer.push_local()
        await eventually(
            lambda: "kept" in str(relay.relay.rooms["idle"].doc.get("text", type=pycrdt.Text))
        )
    await eventually(lambda: "idle" not in relay.relay.rooms, timeout=5)
    assert relay.relay.store.open_count <= 1  # the handle is released (cached, unpinned)
    async with relay.peer("idle") as again:
        await again.wait_for(lambda: str(again.text) == "kept")


async def test_corrupt_room_log_refuses_that_room_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running_relay(data) as relay:
        path = relay.relay.store.path_for("broken")
        with UpdateLog(path) as log:
            doc: pycrdt.Doc[Any] = pycrdt.Doc()
            doc.observe(lambda e: log.append(e.update))
            doc.get("text", type=pycrdt.Text).insert(0, "abc")
            doc.get("text", type=pycrdt.Text).insert(3, "def")
        raw = bytearray(Path(path).read_bytes())
        raw[50] ^= 0x01
        Path(path).write_bytes(bytes(raw))
        async with connect(relay.url("broken")) as peer:
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(peer.recv(), 5)
            assert peer.close_code == 1011
        async with relay.peer("fine") as fine:
            await asyncio.wait_for(fine.synced.wait(), 5)


async def test_a_handshake_failing_after_auth_leaves_no_grant_behind(tmp_path: Path) -> None:
    auth = TokenAuth(hs256_secret=SECRET.encode())
    async with running_relay(tmp_path, authorize=auth) as relay:
        host, port = relay.url("x").removeprefix("ws://").split("/")[0].split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        # A valid token, but no websocket upgrade headers: refused after auth ran.
        writer.write(f"GET /site/a?token={token('site/*')} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status = await asyncio.wait_for(reader.readline(), 5)
        assert status.split()[1] in (b"400", b"426"), status
        writer.close()

        def no_grants() -> bool:
            gc.collect()
            return len(relay.relay._grants) == 0

        await eventually(no_grants, timeout=5)
