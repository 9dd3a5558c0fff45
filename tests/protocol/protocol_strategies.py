"""Hypothesis strategies for y-protocols messages, shared by the protocol tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from crdtedge.protocol import (
    MAX_VARUINT,
    MESSAGE_CRDTEDGE,
    AuthDenied,
    AwarenessEntry,
    AwarenessUpdate,
    Message,
    QueryAwareness,
    StoredHello,
    StoredUpTo,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    UnknownMessage,
)

varuints = st.one_of(
    st.integers(0, 300), st.integers(0, 2**32), st.integers(0, MAX_VARUINT), st.just(MAX_VARUINT)
)

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)

states: st.SearchStrategy[dict[str, Any] | None] = st.none() | st.dictionaries(
    st.text(max_size=8), json_values, max_size=5
)

awareness_entries = st.builds(AwarenessEntry, varuints, varuints, states)

messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(SyncStep1, st.binary(max_size=40)),
    st.builds(SyncStep2, st.binary(max_size=200)),
    st.builds(SyncUpdate, st.binary(max_size=200)),
    st.builds(AwarenessUpdate, st.lists(awareness_entries, max_size=5).map(tuple)),
    st.builds(AuthDenied, st.text(max_size=30)),
    st.just(QueryAwareness()),
    st.builds(StoredHello, varuints),
    st.builds(StoredUpTo, st.binary(max_size=40)),
    st.builds(
        UnknownMessage,
        st.integers(4, MAX_VARUINT).filter(lambda t: t != MESSAGE_CRDTEDGE),
        st.binary(max_size=40),
    ),
)
