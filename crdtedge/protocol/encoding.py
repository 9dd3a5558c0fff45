"""lib0 primitives (varuint, varbytes, varstring) with strict bounds checks.

y-protocols frames are built from three lib0 encodings: an unsigned LEB128
varuint, a byte string prefixed by its varuint length, and a UTF-8 string
prefixed by its varuint *byte* length. Frames come from untrusted peers, so the
reader checks every length against the bytes that are actually left and turns
every failure into a :class:`ProtocolError` that names the field and offset.
"""

from __future__ import annotations

from .errors import ProtocolError

MAX_VARUINT = (1 << 64) - 1
"""Largest value a varuint may carry; lib0 itself stops at 2**53 (JS numbers)."""

_MAX_VARUINT_BYTES = 10  # ceil(64 / 7)


def write_varuint(value: int) -> bytes:
    """Encode ``value`` as a minimal LEB128 varuint."""
    if value < 0 or value > MAX_VARUINT:
        raise ValueError(f"varuint out of range 0..2**64-1: {value}")
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def write_varbytes(data: bytes) -> bytes:
    """Encode ``data`` prefixed by its length (lib0 ``writeVarUint8Array``)."""
    return write_varuint(len(data)) + data


def write_varstring(text: str) -> bytes:
    """Encode ``text`` as UTF-8 prefixed by its byte length (lib0 ``writeVarString``)."""
    return write_varbytes(text.encode("utf-8"))


class Reader:
    """A cursor over ``data[pos:end]`` that never reads past ``end``.

    Offsets in errors are absolute offsets into ``data`` (the whole frame), even
    for readers over a sub-range such as the awareness payload.
    """

    __slots__ = ("_data", "_end", "_pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self._data = data
        self._pos = pos
        self._end = len(data) if end is None else end

    @property
    def pos(self) -> int:
        """Absolute offset of the next unread byte."""
        return self._pos

    @property
    def remaining(self) -> int:
        """How many bytes are left before ``end``."""
        return self._end - self._pos

    def read_varuint(self, what: str) -> int:
        """Read a varuint; reject truncation, > 64 bits and non-minimal encodings."""
        data, pos, end = self._data, self._pos, self._end
        if pos < end and data[pos] < 0x80:  # fast path: one byte
            self._pos = pos + 1
            return data[pos]
        start = pos
        value = 0
        shift = 0
        while True:
            if pos >= end:
                raise ProtocolError(f"truncated frame: {what} varuint is cut off", start)
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                if byte == 0:  # only reachable after a continuation byte
                    raise ProtocolError(f"overlong (non-minimal) varuint for {what}", start)
                break
            shift += 7
            if pos - start >= _MAX_VARUINT_BYTES:
                raise ProtocolError(
                    f"{what} varuint is longer than {_MAX_VARUINT_BYTES} bytes", start
                )
        if value > MAX_VARUINT:
            raise ProtocolError(f"{what} varuint exceeds 64 bits", start)
        self._pos = pos
        return value

    def read_bytes(self, length: int, what: str) -> bytes:
        """Read exactly ``length`` bytes."""
        if length > self._end - self._pos:
            raise ProtocolError(
                f"truncated frame: {what} needs {length} bytes, only {self.remaining} left",
                self._pos,
            )
        start = self._pos
        self._pos = start + length
        return self._data[start : self._pos]

    def read_varbytes(self, what: str) -> bytes:
        """Read a length-prefixed byte string."""
        return self.read_bytes(self.read_varuint(f"{what} length"), what)

    def skip_varbytes(self, what: str) -> tuple[int, int]:
        """Skip a length-prefixed byte string and return its absolute ``(start, end)``."""
        length = self.read_varuint(f"{what} length")
        if length > self._end - self._pos:
            raise ProtocolError(
                f"truncated frame: {what} needs {length} bytes, only {self.remaining} left",
                self._pos,
            )
        start = self._pos
        self._pos = start + length
        return start, self._pos

    def read_varstring(self, what: str) -> str:
        """Read a length-prefixed UTF-8 string; invalid UTF-8 is an error, as in lib0."""
        raw = self.read_varbytes(what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(
                f"{what} is not valid UTF-8 ({exc.reason})", self._pos - len(raw) + exc.start
            ) from None
