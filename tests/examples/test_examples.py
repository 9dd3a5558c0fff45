"""The examples run as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from relay_process import relay_process

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_log_quickstart(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "log_quickstart.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "{'readings': [21.5, 21.7, 22.0]}" in result.stdout


def test_sensor_gateway_offline_then_against_a_relay(tmp_path: Path) -> None:
    gateway = [sys.executable, str(EXAMPLES / "sensor_gateway.py"), "--every", "0.01"]
    data = ["--data-dir", str(tmp_path / "gw")]
    # No relay reachable: it records anyway, and says what is not stored upstream.
    offline = subprocess.run(
        [*gateway, *data, "--relay", "ws://127.0.0.1:9", "--count", "5", "--flush-timeout", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert offline.returncode == 0, offline.stderr
    assert "stored locally=5" in offline.stdout
    assert "readings not yet stored upstream" in offline.stdout
    with relay_process(tmp_path / "relay") as relay:
        online = subprocess.run(
            [*gateway, *data, "--relay", relay.url, "--count", "3"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert online.returncode == 0, online.stderr
    assert "stored locally=8" in online.stdout  # the offline readings are still there
    assert "every reading is stored by the relay" in online.stdout
