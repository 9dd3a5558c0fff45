"""SyncClient: refusals, reconnect storms, awareness, TLS and periodic resync."""

from __future__ import annotations

import asyncio
import datetime
import signal
import ssl
import time
from pathlib import Path
from typing import Any

import jwt
import pycrdt
import pytest
from crdtedge_server.auth import TokenAuth
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from polling import until
from pypeer import running_relay
from relay_process import RelayProcess, free_port

from crdtedge import Backoff, LogStore, Replica, SyncClient, SyncRefused, SyncStatus
from crdtedge.relay import RelayConfig

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


def token(room: str, ttl: float = 60) -> str:
    claims = {"room": room, "perm": "rw", "exp": int(time.time() + ttl)}
    return jwt.encode(claims, SECRET, algorithm="HS256")


async def test_refused_token_stops_retrying_with_a_clear_error(tmp_path: Path) -> None:
    auth = TokenAuth(hs256_secret=SECRET.encode())
    async with running_relay(tmp_path, authorize=auth) as relay:
        for bad in (token("doc", ttl=-60), token("elsewhere"), None):
            client = SyncClient(pycrdt.Doc(), relay.url("doc"), token=bad)
            with pytest.raises(SyncRefused, match=r"40[13]"):
                await asyncio.wait_for(client.run(), 5)
            assert len(client.attempts) == 1  # no retry loop on a permanent failure
            assert client.status is SyncStatus.OFFLINE
        good = SyncClient(pycrdt.Doc(), relay.url("doc"), token=token("doc"))
        task = asyncio.create_task(good.run())
        await asyncio.wait_for(good.synced(), 5)
        task.cancel()


async def test_reconnect_storm_spreads_out(tmp_path: Path) -> None:
    relay = RelayProcess(tmp_path / "data", free_port())
    relay.start()
    clients = [SyncClient(pycrdt.Doc(), relay.url + f"/room{i % 10}") for i in range(200)]
    tasks = [asyncio.create_task(c.run()) for c in clients]
    try:
        await asyncio.wait_for(asyncio.gather(*(c.synced() for c in clients)), 30)
        relay.stop(signal.SIGKILL)
        lost = time.monotonic()
        await asyncio.sleep(1.0)
        await asyncio.to_thread(relay.start)
        await asyncio.wait_for(asyncio.gather(*(c.synced() for c in clients)), 60)
        retries = sorted(t for c in clients for t in c.attempts if t >= lost)
        assert len(retries) >= 200
        peak = max(sum(1 for t in retries if s <= t < s + 0.1) for s in retries)
        assert peak < 60, f"{peak} connection attempts within 100 ms (of 200 clients)"
    finally:
        for task in tasks:
            task.cancel()
        relay.stop(signal.SIGKILL)


async def test_awareness_presence_through_reconnects(tmp_path: Path) -> None:
    backoff = Backoff(initial=0.05, cap=0.3, spread=0.1)
    relay = RelayProcess(tmp_path / "data", free_port())
    relay.start()
    try:
        with LogStore(tmp_path / "a") as sa, LogStore(tmp_path / "b") as sb:
            async with (
                Replica(sa, "doc", url=relay.url + "/doc", backoff=backoff) as a,
                Replica(sb, "doc", url=relay.url + "/doc", backoff=backoff) as b,
            ):
                a.set_awareness({"name": "press-3", "status": "running"})
                seen: list[Any] = []
                b.on_awareness(seen.append)
                await until(lambda: a.client_id in b.peers)
                assert b.peers[a.client_id] == {"name": "press-3", "status": "running"}
                assert seen, "awareness callbacks fired"
                relay.stop(signal.SIGKILL)
                await until(lambda: a.client_id not in b.peers)  # offline: nobody is known
                await asyncio.to_thread(relay.start)
                await until(lambda: b.status is SyncStatus.SYNCED and a.client_id in b.peers)
                await a.close()  # a clean close withdraws the presence at once
                await until(lambda: a.client_id not in b.peers, timeout=3)
    finally:
        relay.stop(signal.SIGKILL)


def self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client


async def test_wss_with_an_ssl_context(tmp_path: Path) -> None:
    server_ctx, client_ctx = self_signed(tmp_path)
    store = LogStore(tmp_path / "relay")
    from crdtedge.relay import Relay

    try:
        async with (
            Relay(store) as relay,
            relay.serve("127.0.0.1", 0, ssl=server_ctx) as server,
        ):
            port = next(iter(server.sockets)).getsockname()[1]
            with LogStore(tmp_path / "replica") as local:
                url = f"wss://localhost:{port}/secure"
                async with Replica(local, "doc", url=url, ssl=client_ctx) as replica:
                    replica.doc.get("m", type=pycrdt.Map)["tls"] = True
                    await asyncio.wait_for(replica.flushed(), 5)
                assert relay.rooms["secure"].doc.get("m", type=pycrdt.Map)["tls"] is True
    finally:
        store.close()


async def test_periodic_resync_heals_a_lost_message(tmp_path: Path) -> None:
    config = RelayConfig()
    async with running_relay(tmp_path, config=config) as relay:
        reader = SyncClient(pycrdt.Doc(), relay.url("heal"), resync_interval=0.2)
        writer = SyncClient(pycrdt.Doc(), relay.url("heal"))
        tasks = [asyncio.create_task(c.run()) for c in (reader, writer)]
        try:
            await asyncio.wait_for(asyncio.gather(reader.synced(), writer.synced()), 5)
            room = relay.relay.rooms["heal"]
            # Lose the next fan-out to the reader, as a flaky middlebox would.
            members = list(room.members)
            original = {p: p.push for p in members}
            dropped: list[bytes] = []
            for p in members:
                p.push = dropped.append  # type: ignore[method-assign]
            writer.doc.get("m", type=pycrdt.Map)["x"] = 1
            writer.send_update(writer.doc.get_update())
            await until(lambda: bool(dropped))
            for p in members:
                p.push = original[p]  # type: ignore[method-assign]
            assert "x" not in reader.doc.get("m", type=pycrdt.Map)
            await until(lambda: "x" in reader.doc.get("m", type=pycrdt.Map), timeout=3)
        finally:
            for task in tasks:
                task.cancel()
