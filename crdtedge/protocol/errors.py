"""The single exception type of the protocol layer."""

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
