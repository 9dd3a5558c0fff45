"""Run `crdtedge serve` as a real subprocess on a free loopback port (for crash and
interop tests): started, waited for through /healthz, stopped with SIGTERM or SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RelayProcess:
    data_dir: Path
    port: int
    args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        self.log_path = self.data_dir.parent / f"relay-{self.port}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "crdtedge_server.cli", "--port", str(self.port)),
                *("--data-dir", str(self.data_dir), *self.args),
            ],
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"relay exited early:\n{self.log_path.read_text()}")
            with contextlib.suppress(OSError):
                url = f"http://127.0.0.1:{self.port}/healthz"
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            time.sleep(0.05)
        raise RuntimeError(f"relay did not start:\n{self.log_path.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
        return self.process.wait(timeout)

    def output(self) -> str:
        return self.log_path.read_text() if self.log_path else ""


@contextlib.contextmanager
def relay_process(data_dir: Path, *args: str) -> Iterator[RelayProcess]:
    relay = RelayProcess(data_dir, free_port(), args)
    relay.start()
    try:
        yield relay
    finally:
        relay.stop(signal.SIGKILL)
