"""The `crdtedge log` command line, run as a real process for exit codes and output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pycrdt
import pytest

from crdtedge.log import UpdateLog
from crdtedge.log.format import HEADER_SIZE


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crdtedge.cli", *args], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    path = tmp_path / "room.ylog"
    with UpdateLog(path, name="room") as log:
        doc.observe(lambda e: log.append(e.update))
        text = doc.get("notes", type=pycrdt.Text)
        settings = doc.get("settings", type=pycrdt.Map)
        readings = doc.get("readings", type=pycrdt.Array)
        for ch in "grüße ☃":
            text += ch
        settings["unit"] = "°C"
        readings.append(21.5)
    return path


def test_inspect(log_file: Path) -> None:
    result = run("log", "inspect", str(log_file))
    assert result.returncode == 0, result.stderr
    assert "checksums         ok" in result.stdout
    assert "update=9" in result.stdout and "metadata=1" in result.stdout
    report = orjson.loads(run("log", "inspect", "--json", str(log_file)).stdout)
    assert report["records"] == {"update": 9, "snapshot": 0, "metadata": 1}
    assert report["last_good_offset"] == report["file_bytes"] == log_file.stat().st_size
    assert report["metadata"] == [{"name": "room"}]


def test_inspect_reports_corruption_without_changing_the_file(log_file: Path) -> None:
    data = bytearray(log_file.read_bytes())
    data[HEADER_SIZE + 20] ^= 0x40
    log_file.write_bytes(bytes(data))
    result = run("log", "inspect", str(log_file))
    assert result.returncode == 3
    assert "CORRUPT" in result.stdout and f"offset {HEADER_SIZE}" in result.stdout
    assert log_file.read_bytes() == bytes(data)


def test_inspect_reports_a_torn_tail(log_file: Path) -> None:
    log_file.write_bytes(log_file.read_bytes()[:-3])
    result = run("log", "inspect", str(log_file))
    assert result.returncode == 0
    assert "torn tail" in result.stdout


def test_export(log_file: Path) -> None:
    result = run("log", "export", str(log_file))
    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout) == {
        "notes": "grüße ☃",
        "readings": [21.5],
        "settings": {"unit": "°C"},
    }


def test_compact_with_progress_then_export(log_file: Path) -> None:
    result = run("log", "compact", "--progress", str(log_file))
    assert result.returncode == 0, result.stderr
    assert "folded 9 updates" in result.stdout
    assert "100%" in result.stderr
    exported = orjson.loads(run("log", "export", str(log_file)).stdout)
    assert exported["notes"] == "grüße ☃"
    with UpdateLog(log_file) as log:
        assert log.stats().generation == 1


def test_salvage_keeps_what_precedes_the_damage(log_file: Path, tmp_path: Path) -> None:
    data = bytearray(log_file.read_bytes())
    data[-2] ^= 0x01  # damage the last record
    log_file.write_bytes(bytes(data))
    assert run("log", "export", str(log_file)).returncode == 1
    out = tmp_path / "saved.ylog"
    result = run("log", "salvage", str(log_file), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "kept 9 records" in result.stdout  # name metadata + 8 of the 9 updates
    exported = orjson.loads(run("log", "export", str(out)).stdout)
    assert exported["notes"] == "grüße ☃"
    assert "readings" not in exported or exported["readings"] == []
    with UpdateLog(out) as log:
        assert "salvaged_at" in log.metadata()


def test_salvage_in_place_keeps_the_original(log_file: Path) -> None:
    original = log_file.read_bytes()
    result = run("log", "salvage", str(log_file))
    assert result.returncode == 0
    backups = list(log_file.parent.glob("room.ylog.damaged-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == original


@pytest.mark.parametrize("action", ["inspect", "compact", "export", "salvage"])
def test_user_errors_are_one_line(tmp_path: Path, action: str) -> None:
    result = run("log", action, str(tmp_path / "missing.ylog"))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "no such log file" in result.stderr
    not_a_log = tmp_path / "notes.txt"
    not_a_log.write_text("hello")
    result = run("log", action, str(not_a_log))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "bad magic" in result.stderr


def test_help_lists_the_log_actions() -> None:
    result = run("log", "--help")
    assert result.returncode == 0
    for action in ("inspect", "compact", "export", "salvage"):
        assert action in result.stdout
