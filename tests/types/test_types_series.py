"""Series: readings merge in time order, retention rolls old ones up, and rollups made
concurrently on several replicas add up to exactly the rollup of all readings."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pycrdt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from types_network import Network

from crdtedge.types import LayoutError, Reading, Rollup, SchemaError, Series, SeriesChanged, Summary

BUCKET_MS = 1_000
MAX_AGE_MS = 5_000
MAX_COUNT = 4
SOURCES = st.sampled_from(["boiler", "pump", "line:3"])  # a source may contain ':'
OPS = st.one_of(
    st.tuples(st.just("append"), SOURCES, st.integers(-50, 50), st.integers(0, 1_500)),
    st.tuples(st.just("compact"), st.just(""), st.just(0), st.integers(0, 3_000)),
)


def summarize(readings: list[tuple[str, int, float]]) -> dict[tuple[str, int], Summary]:
    """The rollup of `readings` (source, t, value), computed directly."""
    buckets: dict[tuple[str, int], Summary] = {}
    for source, t, value in readings:
        key = (source, t // BUCKET_MS * BUCKET_MS)
        buckets[key] = buckets[key] + Summary.of(value) if key in buckets else Summary.of(value)
    return buckets


def as_dict(rollups: list[Rollup]) -> dict[tuple[str, int], Summary]:
    return {(r.source, r.start): r.summary for r in rollups}


@given(st.data())
def test_concurrent_rollups_add_up_to_the_rollup_of_all_readings(data: st.DataObject) -> None:
    net = Network.draw(data)
    now = [1_000_000]
    series = [
        Series(
            doc,
            "temps",
            bucket_ms=BUCKET_MS,
            max_age_ms=MAX_AGE_MS,
            max_count=MAX_COUNT,
            wall_ms=lambda: now[0],
        )
        for doc in net.docs
    ]
    events: list[list[SeriesChanged]] = [[] for _ in series]
    for one, seen in zip(series, events, strict=True):
        one.observe(seen.append)
    appended: list[tuple[str, int, float]] = []

    def apply(replica: int, op: tuple[str, str, int, int]) -> None:
        kind, source, value, elapsed = op
        now[0] += elapsed
        target = series[replica]
        if kind == "append":
            reading = net.local(replica, lambda: target.append(source, value))
            assert reading in target.readings()
            appended.append((source, now[0], value))
        else:
            before = target.summarize()
            net.local(replica, target.compact)
            assert target.summarize() == before  # rolling up loses nothing locally

    net.play(data, OPS, apply)
    net.settle(data)
    expected = summarize(appended)
    for one in series:
        readings = one.readings()
        assert readings == series[0].readings()
        assert one.rollups() == series[0].rollups()
        assert readings == sorted(readings, key=lambda r: (r.t, r.source, r.writer, r.seq))
        # rolled up + remaining = the rollup of the union, combined here by hand ...
        combined = as_dict(one.rollups())
        for key, summary in summarize([(r.source, r.t, r.value) for r in readings]).items():
            combined[key] = combined[key] + summary if key in combined else summary
        assert combined == expected
        # ... and by summarize()
        assert as_dict(one.summarize()) == expected

    # Retention, applied on a replica that has everything, holds everywhere after sync.
    net.local(0, series[0].compact)
    net.settle(data)
    for one, seen in zip(series, events, strict=True):
        readings = one.readings()
        assert all(r.t >= now[0] - MAX_AGE_MS for r in readings)
        per_source: dict[str, int] = defaultdict(int)
        for reading in readings:
            per_source[reading.source] += 1
        assert all(count <= MAX_COUNT for count in per_source.values())
        assert as_dict(one.summarize()) == expected
        visible: set[Reading] = set()  # the events, replayed, list the same readings
        for event in seen:
            assert not visible & set(event.appended)
            visible |= set(event.appended)
            assert set(event.removed) <= visible
            visible -= set(event.removed)
        assert visible == set(readings)


def two_replicas() -> tuple[pycrdt.Doc[Any], pycrdt.Doc[Any]]:
    return pycrdt.Doc(client_id=1), pycrdt.Doc(client_id=2)


def sync(*docs: pycrdt.Doc[Any]) -> None:
    for doc in docs:
        for other in docs:
            doc.apply_update(other.get_update(doc.get_state()))


def test_two_replicas_rolling_up_overlapping_readings_count_each_once() -> None:
    a, b = two_replicas()
    writer = Series(a, "s", bucket_ms=10)
    for i in range(6):
        writer.append("x", i, at=i)  # one bucket: 0..9
    sync(a, b)
    writer.append("x", 100, at=7)  # b has not seen this one
    Series(a, "s", max_count=2).compact()  # a rolls up seq 0..4 (keeps 5 and 6)
    Series(b, "s", max_count=1).compact()  # b rolls up seq 0..4 too (keeps 5)
    sync(a, b)
    for doc in (a, b):
        [rollup] = Series(doc, "s").summarize()
        assert rollup.summary == Summary(7, 115.0, 0.0, 100.0)
        assert rollup.summary.mean == pytest.approx(115 / 7)
        assert [r.seq for r in Series(doc, "s").readings()] == [5, 6]
        entries = doc.get("s", type=pycrdt.Map).to_py() or {}
        assert entries["u:1:1:x"] == entries["u:1:2:x"]  # rollups are deterministic
    Series(b, "s").compact()  # collects the duplicate
    sync(a, b)
    entries = a.get("s", type=pycrdt.Map).to_py() or {}
    assert [key for key in entries if key.startswith("u:")] == ["u:1:2:x"]
    assert Series(a, "s").summarize()[0].summary.count == 7


def test_a_rollup_stops_at_a_reading_it_has_not_received() -> None:
    a, b, c = (pycrdt.Doc[Any](client_id=i) for i in (1, 2, 3))
    series = Series(a, "s", bucket_ms=10)
    updates = []
    for i in range(4):
        before = a.get_state()
        series.append("x", i, at=i)
        updates.append(a.get_update(before))
    for update in (updates[0], updates[2], updates[3]):  # seq 1 is still on its way
        c.apply_update(update)
    assert Series(c, "s", max_count=1).compact() == 1  # only seq 0: seq 1 is missing
    c.apply_update(updates[1])
    assert Series(c, "s", max_count=1).compact() == 2  # now 1 and 2
    sync(a, b, c)
    for doc in (a, b, c):
        assert Series(doc, "s").summarize()[0].summary == Summary(4, 6.0, 0.0, 3.0)
        assert [r.seq for r in Series(doc, "s").readings()] == [3]


def test_retention_by_age_and_the_layout_of_readings_and_rollups() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=9)
    series = Series(doc, "s", bucket_ms=100, max_age_ms=1_000, wall_ms=lambda: 5_000)
    series.append("a:b", 1.5, at=3_950)
    series.append("a:b", 2.5, at=4_050)
    series.append("a:b", 4.0)  # now
    assert series.compact() == 1
    assert series.shared.to_py() == {
        "type": "series",
        "v": 1.0,
        "bucket": 100.0,
        "n:9:a:b": 3.0,
        "r:9:1:a:b": {"t": 4_050.0, "v": 2.5},
        "r:9:2:a:b": {"t": 5_000.0, "v": 4.0},
        "u:9:9:a:b": {"upto": 1.0, "b": {"3900": [1.0, 1.5, 1.5, 1.5]}},
    }
    assert series.rollups() == [Rollup("a:b", 3_900, 4_000, Summary(1, 1.5, 1.5, 1.5))]
    assert series.sources() == ["a:b"]
    assert series.to_py()["readings"][0] == {
        "source": "a:b",
        "t": 4_050,
        "value": 2.5,
        "writer": 9,
        "seq": 1,
    }


def test_bucket_width_is_stored_and_checked() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    Series(doc, "s", bucket_ms=250).append("x", 1, at=0)
    assert Series(doc, "s").bucket_ms == 250
    with pytest.raises(LayoutError, match="bucket is 250 ms"):
        Series(doc, "s", bucket_ms=1_000)
    with pytest.raises(ValueError, match="positive int"):
        Series(doc, "s", max_count=0)


def test_concurrent_first_writes_with_different_widths_keep_counts_exact() -> None:
    a, b = two_replicas()
    Series(a, "s", bucket_ms=10).append("x", 1, at=55)
    Series(b, "s", bucket_ms=100).append("x", 2, at=15)
    Series(a, "s", max_age_ms=1).compact(now_ms=1_000)  # a rolls up into bucket 50 (of 10)
    sync(a, b)
    [width] = {Series(doc, "s").bucket_ms for doc in (a, b)}  # one width won ...
    assert width == 100  # ... here b's (the higher client id), so a's record is re-bucketed
    for doc in (a, b):
        summaries = Series(doc, "s").summarize()
        assert all(r.start % width == 0 and r.end - r.start == width for r in summaries)
        assert sum((r.summary for r in summaries[1:]), summaries[0].summary) == Summary(
            2, 3.0, 1.0, 2.0
        )


def test_bad_readings_are_refused() -> None:
    series = Series(pycrdt.Doc(), "s")
    with pytest.raises(SchemaError, match="expected a number"):
        series.append("x", "hot")  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="expected a number"):
        series.append("x", True)
    with pytest.raises(ValueError, match="non-empty"):
        series.append("", 1.0)
    with pytest.raises(TypeError, match="int ms"):
        series.append("x", 1.0, at=1.5)  # type: ignore[arg-type]
    assert series.readings() == []


def test_unknown_entries_are_a_layout_error() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.get("s", type=pycrdt.Map)["z:1"] = 1
    with pytest.raises(LayoutError, match="unknown series entry"):
        Series(doc, "s").readings()
    doc.get("t", type=pycrdt.Map)["r:x:0:src"] = {"t": 0, "v": 1}
    with pytest.raises(LayoutError, match="malformed series key"):
        Series(doc, "t").readings()
