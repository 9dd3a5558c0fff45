"""`LocalReplica` bookkeeping: what counts as not yet stored upstream."""

from __future__ import annotations

from pathlib import Path

import pycrdt

from crdtedge.local_replica import LocalReplica
from crdtedge.log import UpdateLog


def test_each_local_change_stays_unflushed_until_the_relay_stores_its_clock(
    tmp_path: Path,
) -> None:
    with UpdateLog(tmp_path / "doc.ylog") as log:
        replica = LocalReplica(log)
        text = replica.doc.get("t", type=pycrdt.Text)
        text.insert(0, "abc")  # clocks 0-2
        text.insert(3, "de")  # clocks 3-4
        assert replica.unflushed == 2
        replica.stored({replica.client_id: 3})  # only the first change is stored
        assert replica.unflushed == 1
        replica.stored({replica.client_id: 5})
        assert replica.unflushed == 0
        replica.close()
