"""The few file-system moves the log needs to survive a power cut at any instant."""

from __future__ import annotations

import os

fdatasync = getattr(os, "fdatasync", os.fsync)


def fsync_dir(directory: str) -> None:
    """Make a rename or a new file in `directory` itself durable."""
    fd = os.open(directory or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """os.write may write less than asked (signals, full disks); loop until done."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def replace_atomically(path: str, data: bytes) -> None:
    """Write `data` to a temporary file, make it durable, then rename it over `path`.

    A crash leaves either the old file or the new one, never a mix.
    """
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(path))


def read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
