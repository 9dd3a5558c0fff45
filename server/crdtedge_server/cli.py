"""`crdtedge serve`: parse options, set up structured logging, run until signalled."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from crdtedge.log import LogError

from .app import run
from .config import ConfigError, parse


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = parse(argv)
    except ConfigError as exc:
        sys.stderr.write(f"crdtedge serve: error: {exc}\n")
        return 2
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
        stream=sys.stderr,
    )
    if config.log_level.lower() != "debug":  # one line per handshake is noise at info
        logging.getLogger("websockets").setLevel(logging.WARNING)
    try:
        asyncio.run(run(config))
    except (OSError, LogError) as exc:
        sys.stderr.write(f"crdtedge serve: error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
