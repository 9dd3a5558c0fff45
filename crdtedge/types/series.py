"""`Series`: timestamped sensor readings per source, with retention and rollups."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Self

import pycrdt

from .binding import Container, MapType, Unsubscribe
from .errors import LayoutError
from .hlc import system_wall_ms
from .jsonvalue import check_json, check_number, read_int, read_number
from .rollup import Summary, add_into

BUCKET_KEY = "bucket"
DEFAULT_BUCKET_MS = 60_000

Group = tuple[int, str]  # (writer client id, source)


@dataclass(frozen=True)
class Reading:
    """One reading: `value` of `source` at `t` (ms), the `seq`-th of its `writer`."""

    source: str
    t: int
    value: float
    writer: int
    seq: int


@dataclass(frozen=True)
class Rollup:
    """The summary of a source's readings with `start <= t < end` (ms)."""

    source: str
    start: int
    end: int
    summary: Summary


@dataclass(frozen=True)
class SeriesChanged:
    """Readings appended or removed (rolled up) and whether rollups changed."""

    appended: list[Reading]
    removed: list[Reading]
    rollups_changed: bool


@dataclass
class _Record:
    """A writer's rollup by one roller: all its readings of a source with seq < upto."""

    key: str
    roller: int
    upto: int
    buckets: dict[int, Summary]


@dataclass
class _Parsed:
    bucket: int | None = None
    readings: dict[Group, dict[int, tuple[str, Reading]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    records: dict[Group, list[_Record]] = field(default_factory=lambda: defaultdict(list))

    def best(self, group: Group) -> _Record | None:
        """The rollup covering the most: rollups are cumulative, so it holds the others."""
        return max(self.records.get(group, ()), key=lambda r: (r.upto, r.roller), default=None)

    def raw(self, group: Group) -> dict[int, tuple[str, Reading]]:
        """Readings of the group no rollup covers, by seq."""
        best = self.best(group)
        upto = 0 if best is None else best.upto
        return {seq: item for seq, item in self.readings.get(group, {}).items() if seq >= upto}

    def groups(self) -> list[Group]:
        return sorted(set(self.readings) | set(self.records))


class Series(MapType):
    """Append-only timestamped readings per source, merged in time order, with retention
    that rolls old readings up into per-bucket summaries (count, sum, min, max).

    Merge rules: readings are never edited, so replicas merge by union. Each writer
    numbers its readings of a source 0, 1, 2, ... A rollup record says "all readings of
    writer W for source S with seq < upto, summarized per time bucket"; a roller extends
    the best record it sees only over a gap-free run of W's readings, so every record is
    exact and records of one (W, S) differ only by how far they reach. Readers take the
    furthest-reaching record and the readings after it: concurrent rollups on several
    replicas never count a reading twice or lose one.
    """

    TYPE = "series"

    def __init__(
        self,
        container: Container,
        name: str,
        *,
        bucket_ms: int | None = None,
        max_age_ms: int | None = None,
        max_count: int | None = None,
        wall_ms: Callable[[], int] = system_wall_ms,
    ) -> None:
        for option, value in (
            ("bucket_ms", bucket_ms),
            ("max_age_ms", max_age_ms),
            ("max_count", max_count),
        ):
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ValueError(f"Series {option} must be a positive int, got {value!r}")
        self._configured_bucket = bucket_ms
        self.max_age_ms = max_age_ms
        self.max_count = max_count
        self._wall_ms = wall_ms
        super().__init__(container, name)
        stored = self._parse().bucket
        if bucket_ms is not None and stored is not None and stored != bucket_ms:
            raise LayoutError(f"series bucket is {stored} ms in the document, not {bucket_ms}")

    @classmethod
    def _bind(cls, ymap: pycrdt.Map[Any]) -> Self:
        bound = super()._bind(ymap)
        bound._configured_bucket = None
        bound.max_age_ms = bound.max_count = None
        bound._wall_ms = system_wall_ms
        return bound

    @property
    def bucket_ms(self) -> int:
        """Width of the rollup buckets (stored in the document by the first writer)."""
        return self._width(self._parse())

    def _width(self, parsed: _Parsed) -> int:
        return parsed.bucket or self._configured_bucket or DEFAULT_BUCKET_MS

    # -- writing -----------------------------------------------------------------------

    def append(self, source: str, value: float, *, at: int | None = None) -> Reading:
        """Record `value` for `source` at `at` ms (default: now)."""
        if not isinstance(source, str) or not source:
            raise ValueError(f"a series source must be a non-empty str, got {source!r}")
        number = check_number(value, "Series value")
        t = self._wall_ms() if at is None else at
        if not isinstance(t, int) or isinstance(t, bool):
            raise TypeError(f"Series reading time must be int ms, got {t!r}")
        check_json(t, "Series reading time")
        client = self._doc.client_id
        with self._transaction():
            self._stamp_series()
            counter_key = f"n:{client}:{source}"
            seq = read_int(self._map.get(counter_key, 0), counter_key)
            self._map[f"r:{client}:{seq}:{source}"] = {"t": t, "v": number}
            self._map[counter_key] = seq + 1
        return Reading(source, t, number, client, seq)

    def compact(self, now_ms: int | None = None) -> int:
        """Apply retention: roll readings older than `max_age_ms`, or beyond the newest
        `max_count` of their source, into rollups and delete them. Returns how many.

        Each writer's readings of a source roll up in their append order and stop at the
        first one retention keeps (or one not yet received), so readings appended out of
        time order may outlive their age until the ones before them go.
        """
        now = self._wall_ms() if now_ms is None else now_ms
        me = self._doc.client_id
        rolled = 0
        with self._transaction():
            parsed = self._parse()
            expired = self._expired(parsed, now)
            width = self._width(parsed)
            for group in parsed.groups():
                writer, source = group
                best = parsed.best(group)
                upto = 0 if best is None else best.upto
                buckets = _rebucket(best.buckets if best is not None else {}, width)
                raw = parsed.raw(group)
                start = upto
                while upto in raw and raw[upto][0] in expired:
                    reading = raw[upto][1]
                    add_into(buckets, _bucket(reading.t, width), Summary.of(reading.value))
                    upto += 1
                mine = f"u:{writer}:{me}:{source}"
                if upto > start:
                    rolled += upto - start
                    self._stamp_series()
                    self._map[mine] = {
                        "upto": upto,
                        "b": {str(k): s.to_yjs() for k, s in sorted(buckets.items())},
                    }
                # The record kept holds every other one of the group: they can go.
                keep = mine if upto > start else (best.key if best is not None else None)
                for record in parsed.records.get(group, []):
                    if record.key != keep:
                        del self._map[record.key]
                for seq, (key, _) in parsed.readings.get(group, {}).items():
                    if seq < upto:
                        del self._map[key]
        return rolled

    def _expired(self, parsed: _Parsed, now: int) -> set[str]:
        """Keys of uncovered readings that retention does not keep."""
        by_source: dict[str, list[tuple[str, Reading]]] = defaultdict(list)
        for group in parsed.groups():
            for item in parsed.raw(group).values():
                by_source[group[1]].append(item)
        expired = set()
        for items in by_source.values():
            items.sort(key=lambda item: _order(item[1]), reverse=True)
            for rank, (key, reading) in enumerate(items):
                too_old = self.max_age_ms is not None and reading.t < now - self.max_age_ms
                too_many = self.max_count is not None and rank >= self.max_count
                if too_old or too_many:
                    expired.add(key)
        return expired

    def _stamp_series(self) -> None:
        self._stamp()
        if BUCKET_KEY not in self._map:
            self._map[BUCKET_KEY] = self._configured_bucket or DEFAULT_BUCKET_MS

    # -- reading -----------------------------------------------------------------------

    def readings(self, source: str | None = None) -> list[Reading]:
        """Readings not rolled up, in time order (ties: source, writer, seq)."""
        parsed = self._parse()
        found = [
            reading
            for group in parsed.groups()
            if source is None or group[1] == source
            for _, reading in parsed.raw(group).values()
        ]
        return sorted(found, key=_order)

    def sources(self) -> list[str]:
        return sorted({source for _, source in self._parse().groups()})

    def rollups(self, source: str | None = None) -> list[Rollup]:
        """Summaries of the rolled-up readings, per source and bucket."""
        return self._summaries(self._parse(), source, include_raw=False)

    def summarize(self, source: str | None = None) -> list[Rollup]:
        """Summaries of everything (rollups and remaining readings), per source and bucket."""
        return self._summaries(self._parse(), source, include_raw=True)

    def _summaries(self, parsed: _Parsed, source: str | None, *, include_raw: bool) -> list[Rollup]:
        width = self._width(parsed)
        totals: dict[str, dict[int, Summary]] = defaultdict(dict)
        for group in parsed.groups():
            if source is not None and group[1] != source:
                continue
            buckets = totals[group[1]]
            best = parsed.best(group)
            if best is not None:
                for start, summary in _rebucket(best.buckets, width).items():
                    add_into(buckets, start, summary)
            if include_raw:
                for _, (_, reading) in sorted(parsed.raw(group).items()):
                    add_into(buckets, _bucket(reading.t, width), Summary.of(reading.value))
        return [
            Rollup(name, start, start + width, summary)
            for name, buckets in sorted(totals.items())
            for start, summary in sorted(buckets.items())
        ]

    def to_py(self) -> dict[str, list[dict[str, Any]]]:
        """Readings and rollups as plain data."""
        return {
            "readings": [asdict(reading) for reading in self.readings()],
            "rollups": [asdict(rollup) for rollup in self.rollups()],
        }

    def observe(self, callback: Callable[[SeriesChanged], None]) -> Unsubscribe:
        """Call `callback` when readings are appended or rolled up, or rollups change."""

        def state(entries: dict[str, Any]) -> tuple[set[Reading], list[Rollup]]:
            parsed = self._parse(entries)
            raw = {
                reading for group in parsed.groups() for _, reading in parsed.raw(group).values()
            }
            return raw, self._summaries(parsed, None, include_raw=False)

        def report(
            old: tuple[set[Reading], list[Rollup]], new: tuple[set[Reading], list[Rollup]]
        ) -> None:
            appended = sorted(new[0] - old[0], key=_order)
            removed = sorted(old[0] - new[0], key=_order)
            if appended or removed or old[1] != new[1]:
                callback(SeriesChanged(appended, removed, old[1] != new[1]))

        return self._observe_state(state, report)

    def _parse(self, entries: dict[str, Any] | None = None) -> _Parsed:
        parsed = _Parsed()
        for key, value in (self._entries() if entries is None else entries).items():
            if key == BUCKET_KEY:
                parsed.bucket = read_int(value, "series bucket")
                continue
            kind = key.partition(":")[0]
            if kind == "r":
                reading = _reading(key, value)
                group = (reading.writer, reading.source)
                parsed.readings[group][reading.seq] = (key, reading)
            elif kind == "u":
                writer, roller, source = _split(key, 3)
                parsed.records[(int(writer), source)].append(_record(key, int(roller), value))
            elif kind == "n":
                _split(key, 2)
                read_int(value, key)
            else:
                raise LayoutError(f"unknown series entry {key!r}")
        return parsed


def _bucket(t: int, width: int) -> int:
    return t // width * width


def _rebucket(buckets: dict[int, Summary], width: int) -> dict[int, Summary]:
    """Record buckets in buckets of `width`: the identity unless two replicas first wrote
    the series concurrently with different widths (then counts stay exact, times coarsen)."""
    rebucketed: dict[int, Summary] = {}
    for start, summary in sorted(buckets.items()):
        add_into(rebucketed, _bucket(start, width), summary)
    return rebucketed


def _order(reading: Reading) -> tuple[int, str, int, int]:
    return (reading.t, reading.source, reading.writer, reading.seq)


def _split(key: str, parts: int) -> list[str]:
    """`key` without its kind prefix, as `parts` fields (the last, the source, may hold ':');
    the leading ones must be client ids or sequence numbers."""
    fields = key.split(":", parts)[1:]
    if len(fields) != parts or not fields[-1] or not all(f.isdigit() for f in fields[:-1]):
        raise LayoutError(f"malformed series key {key!r}")
    return fields


def _reading(key: str, value: Any) -> Reading:
    writer, seq, source = _split(key, 3)
    if not isinstance(value, dict):
        raise LayoutError(f"series reading {key!r} is {value!r}, not {{'t': ms, 'v': number}}")
    return Reading(
        source,
        read_int(value.get("t"), f"{key} t"),
        read_number(value.get("v"), f"{key} v"),
        int(writer),
        int(seq),
    )


def _record(key: str, roller: int, value: Any) -> _Record:
    if not isinstance(value, dict) or not isinstance(value.get("b"), dict):
        raise LayoutError(f"series rollup {key!r} is {value!r}, not {{'upto': n, 'b': {{...}}}}")
    buckets = {}
    for start, stored in value["b"].items():
        if not start.lstrip("-").isdigit():
            raise LayoutError(f"series rollup {key!r}: bucket {start!r} is not a time")
        buckets[int(start)] = Summary.from_yjs(stored, f"{key} bucket {start}")
    return _Record(key, roller, read_int(value.get("upto"), f"{key} upto"), buckets)
