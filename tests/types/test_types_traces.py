"""Real editing traces replayed through `Text` with their code-point positions."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pycrdt
import pytest

from crdtedge.types import Text

ROOT = Path(__file__).parents[2]
TRACES = {
    "seph-blog1": ROOT / "tests" / "types" / "data" / "seph-blog1.json.gz",
    "automerge-paper": ROOT / "benchmarks" / "data" / "automerge-paper.json.gz",
}


@pytest.mark.parametrize("name", sorted(TRACES))
def test_replaying_a_trace_gives_its_end_content(name: str) -> None:
    with gzip.open(TRACES[name]) as file:
        trace = json.load(file)
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = Text(doc, "trace")
    text.insert(0, trace["startContent"])
    non_ascii_seen = False
    for txn in trace["txns"]:
        for position, deleted, inserted in txn["patches"]:
            if deleted:
                text.delete(position, deleted)
            if inserted:
                text.insert(position, inserted)
                non_ascii_seen = non_ascii_seen or not inserted.isascii()
    assert non_ascii_seen == (name == "seph-blog1")
    assert str(text) == trace["endContent"]
    assert str(doc.get("trace", type=pycrdt.Text)) == trace["endContent"]  # pycrdt's own view
    assert len(text) == len(trace["endContent"])
