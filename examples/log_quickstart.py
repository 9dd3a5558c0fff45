"""Record a document's edits in an update log, then read them back after a "restart".

Run: python examples/log_quickstart.py [DIRECTORY]
"""

from __future__ import annotations

import sys
import tempfile
from typing import Any

import pycrdt

from crdtedge.content import to_python
from crdtedge.log import LogStore


def main(directory: str) -> None:
    with LogStore(directory) as store:
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        with store.checkout("line-3/press") as log:
            doc.observe(lambda event: log.append(event.update))  # write-ahead: log first
            readings = doc.get("readings", type=pycrdt.Array)
            for celsius in (21.5, 21.7, 22.0):
                readings.append(celsius)
            log.sync()  # everything so far is on disk
    with LogStore(directory) as store, store.checkout("line-3/press") as log:
        print(to_python(log.read_state()))  # {'readings': [21.5, 21.7, 22.0]}
        print(store.list(), log.stats().records)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="crdtedge-"))
