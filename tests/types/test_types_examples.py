"""The replicated-types examples run as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from relay_process import relay_process

EXAMPLES = Path(__file__).parents[2] / "examples"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_inventory_edited_on_both_sides_of_a_partition_merges() -> None:
    result = run(str(EXAMPLES / "inventory.py"))
    assert result.returncode == 0, result.stderr
    merged = result.stdout.split("-- both sides, merged:")[1]
    assert "stock 115" in merged  # 100 + 20 delivered - 5 sold
    assert "price 0.12" in merged
    assert "at 'van shelf 2'" in merged  # the newest move
    assert "tags ['hardware', 'low-stock']" in merged  # the re-add beat the removal
    assert "notes 'Popular! Zinc plated. Box of 100.'" in merged
    assert "washer-m3: 'M3 washer' stock 40" in merged
    assert "-- the replicas agree: True" in result.stdout


def test_sensor_gateway_offline_then_against_a_relay(tmp_path: Path) -> None:
    gateway = [str(EXAMPLES / "sensor_gateway.py"), "--every", "0.01", "--keep", "2"]
    data = ["--data-dir", str(tmp_path / "gw")]
    offline = run(
        *gateway, *data, "--relay", "ws://127.0.0.1:9", "--count", "5", "--flush-timeout", "1"
    )
    assert offline.returncode == 0, offline.stderr
    assert "readings taken=5 kept=2 rolled up=3" in offline.stdout
    assert "changes not yet stored upstream" in offline.stdout
    assert "-- minute" in offline.stdout and "3 readings, mean" in offline.stdout
    with relay_process(tmp_path / "relay") as relay:
        online = run(*gateway, *data, "--relay", relay.url, "--count", "3")
    assert online.returncode == 0, online.stderr
    assert "readings taken=8 kept=2 rolled up=6" in online.stdout  # the offline ones count
    assert "every reading is stored by the relay" in online.stdout
