from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pypeer import RelayHandle, running_relay

from crdtedge.relay import RelayConfig


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[RelayHandle]:
    config = RelayConfig(idle_unload_seconds=0.3, housekeeping_seconds=0.1)
    async with running_relay(tmp_path / "data", config=config) as handle:
        yield handle
