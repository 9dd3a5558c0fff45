"""LogStore: safe names, listing, the bounded handle cache, delete and stats."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdtedge.log import LogInUseError, LogStore
from crdtedge.log.store import decode_name, encode_name

UPDATE = bytes.fromhex("0101d28baae395bfa70300040104746578740568656c6c6f00")  # Text "hello"


@given(st.text(min_size=1))
def test_any_name_maps_to_a_safe_reversible_file_name(name: str) -> None:
    try:
        stem = encode_name(name)
    except ValueError:  # lone surrogates cannot be encoded
        with pytest.raises(UnicodeEncodeError):
            name.encode("utf-8")
        return
    assert "/" not in stem and "\\" not in stem and "\0" not in stem
    assert stem not in {".", ".."} and not stem.startswith(".")
    assert len(stem) <= 200
    if not stem.startswith("~"):
        assert decode_name(stem) == name
        assert stem == stem.lower() or "%" in stem  # uppercase letters are escaped


@given(st.text(min_size=1), st.text(min_size=1))
def test_distinct_names_never_collide(a: str, b: str) -> None:
    try:
        ea, eb = encode_name(a), encode_name(b)
    except ValueError:
        return
    assert (ea == eb) == (a == b)
    assert (ea.lower() == eb.lower()) == (a == b)  # safe on case-insensitive file systems


def test_empty_name_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        encode_name("")


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "/abs/path", "a/b", "..", ".", "Room", "room", "ünïcode ☃", "x" * 500],
)
def test_hostile_and_odd_names_stay_inside_the_directory(tmp_path: Path, name: str) -> None:
    with LogStore(tmp_path / "data") as store:
        with store.checkout(name) as log:
            log.append(UPDATE)
        path = Path(store.path_for(name))
        assert path.parent == tmp_path / "data"
        assert path.exists()
        assert store.list() == [name]
    assert sorted(os.listdir(tmp_path)) == ["data"]


def test_list_reads_hashed_names_back(tmp_path: Path) -> None:
    long_name = "sensor/" + "é" * 300
    with LogStore(tmp_path) as store:
        for name in ["b", "A", long_name, "a/b?c"]:
            with store.checkout(name) as log:
                log.append(UPDATE)
        (tmp_path / "unrelated.txt").write_text("ignored")
        (tmp_path / "%ZZ.ylog").write_bytes(b"not ours")
        assert store.list() == sorted(["b", "A", long_name, "a/b?c"])


def test_cache_is_bounded_and_never_closes_a_pinned_log(tmp_path: Path) -> None:
    with LogStore(tmp_path, max_open=3) as store:
        pinned = store.open("pinned")
        for i in range(10):
            with store.checkout(f"doc{i}") as log:
                log.append(UPDATE)
            assert store.open_count <= 3
        assert not pinned.closed
        pinned.append(UPDATE)
        store.release("pinned")
        for i in range(10):  # evicted logs reopen with their content
            with store.checkout(f"doc{i}") as log:
                assert log.read_state() != b"\x00\x00"


def test_delete(tmp_path: Path) -> None:
    with LogStore(tmp_path) as store:
        log = store.open("gone")
        log.append(UPDATE)
        with pytest.raises(LogInUseError):
            store.delete("gone")
        store.release("gone")
        assert store.delete("gone") is True
        assert store.delete("gone") is False
        assert store.list() == []
        assert not store.exists("gone")


def test_stats(tmp_path: Path) -> None:
    with LogStore(tmp_path) as store:
        with store.checkout("s") as log:
            log.append(UPDATE)
            log.append(UPDATE)
            log.compact()
            log.append(UPDATE)
        stats = store.stats("s")
        assert stats.name == "s"
        assert stats.records == {"update": 1, "snapshot": 1, "metadata": 1}
        assert stats.last_compaction is not None
        assert stats.file_bytes > 0
        with pytest.raises(KeyError):
            store.stats("missing")


def test_close_flushes_every_log(tmp_path: Path) -> None:
    store = LogStore(tmp_path, durability="none")
    for i in range(5):
        store.open(f"d{i}").append(UPDATE)
    store.close()
    with LogStore(tmp_path) as again:
        for i in range(5):
            with again.checkout(f"d{i}") as log:
                assert log.stats().records["update"] == 1


def test_release_without_open(tmp_path: Path) -> None:
    with LogStore(tmp_path) as store, pytest.raises(Exception, match="without a matching open"):
        store.release("never")
