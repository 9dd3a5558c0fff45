"""The single exception type of the protocol layer, and how to recognise a pycrdt panic."""

from __future__ import annotations


class ProtocolError(ValueError):
    """A peer sent bytes that do not form a valid message.

    Decoding raises only this type, so a connection handler needs exactly one
    ``except`` clause to tell "this peer is misbehaving" apart from our own bugs.
    ``offset`` is the byte offset in the frame where the problem was found, if known.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        if offset is not None:
            message = f"{message} (at byte offset {offset})"
        super().__init__(message)
        self.offset = offset


def is_pycrdt_panic(exc: BaseException) -> bool:
    """Whether `exc` is a Rust panic inside pycrdt: pyo3 raises it as `PanicException`,
    a `BaseException` (not importable by name), which `except Exception` lets through."""
    return type(exc).__name__ == "PanicException"
