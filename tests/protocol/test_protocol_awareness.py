"""AwarenessState: y-protocols clock rules, late joiners, disconnects and expiry."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from crdtedge.protocol import (
    AwarenessEntry,
    AwarenessState,
    AwarenessUpdate,
    decode,
)


def update(*entries: tuple[int, int, dict[str, Any] | None]) -> AwarenessUpdate:
    return AwarenessUpdate(tuple(AwarenessEntry(*entry) for entry in entries))


def entries_of(frame: bytes | None) -> list[tuple[int, int, dict[str, Any] | None]]:
    assert frame is not None
    message = decode(frame)
    assert isinstance(message, AwarenessUpdate)
    return [(e.client_id, e.clock, e.state) for e in message.entries]


def test_late_joiner_gets_all_present_states() -> None:
    room = AwarenessState()
    assert room.encode_all() is None
    room.apply(update((1, 1, {"name": "a"})), now=0.0)
    room.apply(update((2, 4, {"name": "b"})), now=1.0)
    room.apply(update((3, 1, {"name": "c"}), (3, 2, None)), now=2.0)
    assert sorted(entries_of(room.encode_all())) == [(1, 1, {"name": "a"}), (2, 4, {"name": "b"})]
    assert len(room) == 2 and 3 not in room and 1 in room
    assert room.states() == {1: {"name": "a"}, 2: {"name": "b"}}


def test_change_reports_added_updated_removed() -> None:
    reg = AwarenessState()
    change = reg.apply(update((1, 1, {"x": 1}), (2, 1, {"y": 1})), now=0.0)
    assert (change.added, change.updated, change.removed) == ((1, 2), (), ())
    assert change.changed and change.reply is None
    assert entries_of(change.frame) == [(1, 1, {"x": 1}), (2, 1, {"y": 1})]

    change = reg.apply(update((1, 2, {"x": 2}), (2, 2, {"y": 1})), now=1.0)
    assert (change.added, change.updated, change.removed) == ((), (1,), ())
    # A clock-only renewal is not a change, but it is still forwarded.
    assert entries_of(change.frame) == [(1, 2, {"x": 2}), (2, 2, {"y": 1})]

    change = reg.apply(update((2, 3, None)), now=2.0)
    assert (change.added, change.updated, change.removed) == ((), (), (2,))
    # Reappearing after removal is reported as added (y-protocols says "updated").
    change = reg.apply(update((2, 4, {"y": 9})), now=3.0)
    assert change.added == (2,)


def test_stale_and_equal_clocks_are_ignored() -> None:
    reg = AwarenessState()
    reg.apply(update((1, 5, {"v": 5})), now=0.0)
    stale = reg.apply(update((1, 4, {"v": 4}), (1, 5, {"v": "same clock"}), (1, 3, None)), now=1.0)
    assert stale.frame is None and not stale.changed
    assert reg.get(1) == {"v": 5} and reg.clock(1) == 5


def test_equal_clock_null_removes() -> None:
    reg = AwarenessState()
    reg.apply(update((1, 5, {"v": 5})), now=0.0)
    change = reg.apply(update((1, 5, None)), now=1.0)
    assert change.removed == (1,)
    assert reg.get(1) is None and reg.clock(1) == 5
    # Repeating it changes nothing and is not forwarded again.
    assert reg.apply(update((1, 5, None)), now=2.0).frame is None
    # A state at the removal's clock stays stale; a newer one comes back.
    assert reg.apply(update((1, 5, {"v": "old"})), now=3.0).frame is None
    assert reg.apply(update((1, 6, {"v": 6})), now=3.0).added == (1,)


def test_unknown_client_is_accepted_at_clock_zero() -> None:
    reg = AwarenessState()
    assert reg.apply(update((9, 0, {})), now=0.0).added == (9,)
    assert reg.get(9) == {}


def test_remove_on_disconnect_keeps_the_clock_and_removes_on_peers() -> None:
    relay, peer = AwarenessState(), AwarenessState()
    hello = update((1, 3, {"name": "a"}), (2, 7, {"name": "b"}))
    relay.apply(hello, now=0.0)
    peer.apply(hello, now=0.0)

    frame = relay.remove([1, 99], now=5.0)
    assert entries_of(frame) == [(1, 3, None)]  # unknown id 99 skipped
    assert relay.get(1) is None and relay.get(2) == {"name": "b"}

    message = decode(frame)
    assert isinstance(message, AwarenessUpdate)
    change = peer.apply(message, now=5.0)
    assert change.removed == (1,)
    assert peer.states() == {2: {"name": "b"}}
    # The client's next renewal (clock + 1) is accepted when it comes back.
    assert relay.apply(update((1, 4, {"name": "a"})), now=6.0).added == (1,)
    # Removing twice still yields a valid (harmless) announcement.
    relay.remove([2], now=7.0)
    assert entries_of(relay.remove([2], now=8.0)) == [(2, 7, None)]
    assert entries_of(AwarenessState().remove([5], now=0.0)) == []


def test_expiry_removes_states_not_renewed_in_time() -> None:
    reg = AwarenessState()
    reg.apply(update((1, 1, {"a": 1}), (2, 1, {"b": 1})), now=0.0)
    reg.apply(update((2, 2, {"b": 1})), now=20.0)  # renewal
    local = reg.set_local(3, {"me": True}, now=0.0)
    assert entries_of(local) == [(3, 1, {"me": True})]

    assert reg.expire(now=29.9) is None
    assert entries_of(reg.expire(now=30.0)) == [(1, 1, None)]
    assert reg.states() == {2: {"b": 1}, 3: {"me": True}}
    assert entries_of(reg.expire(now=50.0, timeout=30.0)) == [(2, 2, None)]
    assert reg.states() == {3: {"me": True}}  # local states never expire here


def test_tombstones_are_forgotten_after_ttl() -> None:
    reg = AwarenessState(tombstone_ttl=100.0)
    reg.apply(update((1, 5, {"a": 1}), (1, 6, None)), now=0.0)
    reg.expire(now=99.0)
    assert reg.clock(1) == 6  # still guards against stale states
    assert reg.apply(update((1, 5, {"a": "stale"})), now=99.0).frame is None
    reg.expire(now=100.0)
    assert reg.clock(1) is None


def test_local_state_clock_increments_and_withdrawal() -> None:
    reg = AwarenessState()
    assert entries_of(reg.set_local(7, {"n": 1}, now=0.0)) == [(7, 1, {"n": 1})]
    assert entries_of(reg.set_local(7, {"n": 2}, now=1.0)) == [(7, 2, {"n": 2})]
    assert entries_of(reg.set_local(7, None, now=2.0)) == [(7, 3, None)]
    assert 7 not in reg and reg.encode_all() is None
    assert entries_of(reg.remove([7], now=3.0)) == [(7, 3, None)]  # nothing left to bump


def test_remote_cannot_remove_local_state() -> None:
    reg = AwarenessState()
    reg.set_local(7, {"n": 1}, now=0.0)
    reg.set_local(7, {"n": 1}, now=1.0)  # clock 2
    change = reg.apply(update((7, 2, None)), now=2.0)
    assert reg.get(7) == {"n": 1}
    assert not change.changed
    assert entries_of(change.reply) == [(7, 3, {"n": 1})]
    assert change.frame == change.reply
    # Removing our own client ourselves bumps the clock, as y-protocols does.
    assert entries_of(reg.remove([7], now=3.0)) == [(7, 4, None)]


def test_renew_local_after_half_the_timeout() -> None:
    reg = AwarenessState()
    reg.set_local(7, {"n": 1}, now=0.0)
    assert reg.renew_local(now=14.9) is None
    assert entries_of(reg.renew_local(now=15.0)) == [(7, 2, {"n": 1})]
    assert reg.renew_local(now=20.0) is None
    reg.set_local(7, None, now=21.0)
    assert reg.renew_local(now=100.0) is None


def test_encode_selected_clients() -> None:
    reg = AwarenessState()
    reg.apply(update((1, 1, {"a": 1}), (2, 1, {"b": 1}), (2, 2, None)), now=0.0)
    assert entries_of(reg.encode([2, 1, 3])) == [(2, 2, None), (1, 1, {"a": 1})]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 4), st.integers(0, 6), st.booleans()), min_size=1, max_size=25
    ),
    st.randoms(use_true_random=False),
)
def test_apply_order_does_not_matter(raw: list[tuple[int, int, bool]], rng: random.Random) -> None:
    """With one state per (client, clock), every delivery order converges (null wins ties)."""
    entries = [
        AwarenessEntry(cid, clock, None if removed else {"c": cid, "k": clock})
        for cid, clock, removed in raw
    ]
    shuffled = entries[:]
    rng.shuffle(shuffled)
    first, second = AwarenessState(), AwarenessState()
    for entry in entries:
        first.apply(AwarenessUpdate((entry,)), now=0.0)
    second.apply(AwarenessUpdate(tuple(shuffled)), now=0.0)
    assert first.states() == second.states()
    expected: dict[int, dict[str, Any]] = {}
    for cid in {e.client_id for e in entries}:
        top = max(e.clock for e in entries if e.client_id == cid)
        if not any(e.client_id == cid and e.clock == top and e.state is None for e in entries):
            expected[cid] = {"c": cid, "k": top}
    assert first.states() == expected
