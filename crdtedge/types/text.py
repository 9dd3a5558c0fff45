"""`Text`: collaborative text indexed by Python `str` positions.

pycrdt's Text counts UTF-8 bytes (and JS Yjs counts UTF-16 code units); this wrapper takes
and reports code points, like `str`. Converting needs the current string, which pycrdt
builds by walking every block; so the wrapper keeps a mirror of what it needs (the length,
and the content unless it is all ASCII), valid while the document's state vector and the
text's UTF-8 length are what they were after our last read or edit: any insert, local or
remote, moves the state vector, and a change that only deletes shortens the text. (Not
quite any: see "Text" in docs/types.md for the one out-of-order case pycrdt hides.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from difflib import SequenceMatcher
from typing import Any, Self

import pycrdt

from .binding import Container, Unsubscribe, resolve, subscribe
from .jsonvalue import check_json

#: `replace()` diffs character by character while len(old) * len(new) of the part that
#: differs stays under this; beyond it, that part is replaced whole.
DIFF_LIMIT = 4_000_000


@dataclass(frozen=True)
class TextChanged:
    """A change as a Yjs-style delta in `str` units: `{"retain": n}`, `{"insert": s}` and
    `{"delete": n}` entries (retain and insert may carry `"attributes"`), and the text after."""

    delta: list[dict[str, Any]]
    text: str


@dataclass(frozen=True)
class _Mirror:
    """What we know of the text while the document is at `key` (state vector, UTF-8 length)."""

    key: tuple[bytes, int]
    length: int  # in code points
    text: str | None  # the content: always known unless it is all ASCII

    @property
    def ascii(self) -> bool:
        return self.length == self.key[1]

    def offset(self, index: int) -> int:
        """The UTF-8 offset of code point `index`."""
        return index if self.text is None or self.ascii else len(self.text[:index].encode())

    def span(self, index: int, length: int) -> int:
        """The UTF-8 length of `length` code points from `index`."""
        return self.offset(index + length) - self.offset(index)


class Text:
    """Collaborative text (a Y.Text) with Python `str` indices and formatting.

    Merge rule (Yjs): concurrent inserts are all kept, in an order every replica agrees
    on; a delete removes exactly the characters it saw; a formatting attribute on a
    character is last-writer-wins.
    """

    def __init__(self, container: Container, name: str) -> None:
        self._attach(resolve(container, name, pycrdt.Text))

    @classmethod
    def _bind(cls, ytext: pycrdt.Text) -> Self:
        bound = cls.__new__(cls)
        bound._attach(ytext)
        return bound

    @classmethod
    def _prelim(cls) -> pycrdt.Text:
        return pycrdt.Text()

    def _attach(self, ytext: pycrdt.Text) -> None:
        self._text = ytext
        self._mirror: _Mirror | None = None

    @property
    def shared(self) -> pycrdt.Text:
        """The underlying Y.Text."""
        return self._text

    # -- reading -----------------------------------------------------------------------

    def __str__(self) -> str:
        with self._text.doc.transaction():
            mirror = self._view()
            if mirror.text is None:
                mirror = self._mirror = replace(mirror, text=str(self._text))
            assert mirror.text is not None
            return mirror.text

    def __len__(self) -> int:
        with self._text.doc.transaction():
            return self._view().length

    def __repr__(self) -> str:
        return f"Text({str(self)!r})"

    def to_py(self) -> str:
        return str(self)

    def _fill(self, initial: str, where: str) -> None:
        self.insert(0, initial)

    def to_delta(self) -> list[dict[str, Any]]:
        """The content as Yjs-style runs: `[{"insert": "abc", "attributes": {...}}, ...]`."""
        return [
            {"insert": content} if attrs is None else {"insert": content, "attributes": attrs}
            for content, attrs in self._text.diff()
        ]

    # -- editing -----------------------------------------------------------------------

    def insert(self, index: int, value: str, attrs: dict[str, Any] | None = None) -> None:
        """Insert `value` before position `index` (`len(text)` appends), optionally formatted."""
        _check_utf8(value)
        attrs = None if attrs is None else check_json(attrs, "Text attributes")
        with self._text.doc.transaction():
            mirror = self._view()
            _check_range(index, 0, mirror.length)
            self._text.insert(mirror.offset(index), value, attrs)
            self._edited(mirror, index, index, value)

    def delete(self, index: int, length: int = 1) -> None:
        """Delete `length` characters from position `index`."""
        with self._text.doc.transaction():
            mirror = self._view()
            _check_range(index, length, mirror.length)
            if length:
                start = mirror.offset(index)
                del self._text[start : start + mirror.span(index, length)]
                self._edited(mirror, index, index + length, "")

    def format(self, start: int, end: int, attrs: dict[str, Any]) -> None:
        """Set formatting attributes on `[start, end)`; a None value removes one."""
        attrs = check_json(attrs, "Text attributes")
        with self._text.doc.transaction():
            mirror = self._view()
            _check_range(start, end - start, mirror.length)
            if end > start:
                first = mirror.offset(start)
                self._text.format(first, first + mirror.span(start, end - start), attrs)
                self._edited(mirror, start, start, "")

    def replace(self, new: str) -> None:
        """Make the text `new` with a character diff: only what differs is deleted and
        inserted, so concurrent edits and formatting elsewhere survive the merge."""
        _check_utf8(new)
        with self._text.doc.transaction():
            for i1, i2, j1, j2 in reversed(_diff(str(self), new)):
                if i2 > i1:
                    self.delete(i1, i2 - i1)
                if j2 > j1:
                    self.insert(i1, new[j1:j2])

    def clear(self) -> None:
        with self._text.doc.transaction():
            self.delete(0, len(self))

    def observe(self, callback: Callable[[TextChanged], None]) -> Unsubscribe:
        """Call `callback` with every change (local or remote), in `str` units."""
        before = [str(self).encode()]

        def handler(event: Any) -> None:
            delta = _to_str_units(event.delta, before[0])
            after = str(self)
            before[0] = after.encode()
            callback(TextChanged(delta, after))

        return subscribe(self._text, handler)

    # -- the mirror --------------------------------------------------------------------

    def _key(self) -> tuple[bytes, int]:
        return (self._text.doc.get_state(), len(self._text))

    def _view(self) -> _Mirror:
        with self._text.doc.transaction() as txn:
            if isinstance(txn, pycrdt.ReadTransaction):
                # In an observer callback pycrdt cannot tell the state vector: no caching.
                text = str(self._text)
                return _Mirror((b"", len(self._text)), len(text), text)
            key = self._key()
            if self._mirror is None or self._mirror.key != key:
                text = str(self._text)
                self._mirror = _Mirror(key, len(text), None if text.isascii() else text)
            return self._mirror

    def _edited(self, mirror: _Mirror, start: int, end: int, value: str) -> None:
        """Update the mirror after we replaced `[start, end)` with `value`."""
        if mirror.ascii and value.isascii():
            length = mirror.length - (end - start) + len(value)
            self._mirror = _Mirror(self._key(), length, None)
        elif mirror.text is not None:
            text = mirror.text[:start] + value + mirror.text[end:]
            self._mirror = _Mirror(self._key(), len(text), text)
        else:  # ASCII so far and no copy kept: read the new content when next needed
            self._mirror = None


def _check_utf8(value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"Text content must be a str, got {type(value).__name__}")
    if value.isascii():
        return
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise ValueError(f"Text content must be valid Unicode: {exc}") from None


def _check_range(index: int, length: int, size: int) -> None:
    if not isinstance(index, int) or not isinstance(length, int):
        raise TypeError("Text positions and lengths must be ints")
    if index < 0 or length < 0 or index + length > size:
        raise IndexError(f"range [{index}, {index + length}) is outside the text (0..{size})")


def _diff(old: str, new: str) -> list[tuple[int, int, int, int]]:
    """Edits turning `old` into `new`: (old start, old end, new start, new end), ascending."""
    prefix = 0
    limit = min(len(old), len(new))
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    a, b = old[prefix : len(old) - suffix], new[prefix : len(new) - suffix]
    if not a and not b:
        return []
    if len(a) * len(b) > DIFF_LIMIT:
        return [(prefix, prefix + len(a), prefix, prefix + len(b))]
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    return [
        (prefix + i1, prefix + i2, prefix + j1, prefix + j2)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    ]


def _to_str_units(delta: list[dict[str, Any]], before: bytes) -> list[dict[str, Any]]:
    """A pycrdt text delta (UTF-8 byte counts over the old text) in code points."""
    converted = []
    position = 0
    for op in delta:
        entry = dict(op)
        for kind in ("retain", "delete"):
            if kind in op:
                span = before[position : position + op[kind]]
                position += op[kind]
                entry[kind] = len(span.decode())
        converted.append(entry)
    return converted
