"""`Set`: an add-wins observed-remove set of JSON values."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .binding import MapType, Unsubscribe, own_clock
from .jsonvalue import JSONValue, canonical, check_json, from_yjs


@dataclass(frozen=True)
class SetChanged:
    """Values that joined or left the set in one transaction (sorted by identity)."""

    added: list[Any]
    removed: list[Any]


class Set(MapType):
    """An add-wins observed-remove set (OR-set) of JSON values.

    Merge rule: every `add` stores the value under a fresh tag (`"<client id>:<clock>"`);
    `remove` deletes only the tags it has seen. A value is a member while any tag holds
    it, so an add concurrent with a remove of the same value wins. Values are identified
    by content: 1 and 1.0 are the same value, as are objects with the same entries.
    """

    TYPE = "set"

    def add(self, value: JSONValue) -> None:
        """Add `value` (again): a fresh tag replaces the tags of it seen here."""
        stored = check_json(value, "Set value")
        identity = canonical(stored)
        with self._transaction():
            entries = self._stamp()
            tag = f"{self._doc.client_id}:{own_clock(self._doc)}"
            self._delete_tags(entries, identity)
            self._map[tag] = stored

    def discard(self, value: JSONValue) -> None:
        """Remove `value` if present: deletes every tag of it seen here."""
        identity = canonical(check_json(value, "Set value"))
        with self._transaction():
            self._delete_tags(self._stamp(), identity)

    def remove(self, value: JSONValue) -> None:
        """Remove `value`; `KeyError` if it is not a member here."""
        identity = canonical(check_json(value, "Set value"))
        with self._transaction():
            if not self._delete_tags(self._stamp(), identity):
                raise KeyError(value)

    def clear(self) -> None:
        """Remove every value seen here (concurrent adds survive)."""
        with self._transaction():
            for tag in self._stamp():
                del self._map[tag]

    def values(self) -> list[Any]:
        """The members, sorted by identity (a stable order on every replica)."""
        return list(_members(self._entries()).values())

    def to_py(self) -> list[Any]:
        return self.values()

    def _fill(self, initial: Iterable[JSONValue], where: str) -> None:
        values = [check_json(value, where) for value in initial]
        with self._transaction():
            for value in values:
                self.add(value)

    def __contains__(self, value: object) -> bool:
        return canonical(check_json(value, "Set value")) in _members(self._entries())

    def __iter__(self) -> Iterator[Any]:
        return iter(self.values())

    def __len__(self) -> int:
        return len(_members(self._entries()))

    def observe(self, callback: Callable[[SetChanged], None]) -> Unsubscribe:
        """Call `callback` whenever values join or leave the set."""

        def report(old: dict[str, Any], new: dict[str, Any]) -> None:
            added = [value for key, value in new.items() if key not in old]
            removed = [value for key, value in old.items() if key not in new]
            if added or removed:
                callback(SetChanged(added=added, removed=removed))

        return self._observe_state(_members, report)

    def _delete_tags(self, entries: dict[str, Any], identity: str) -> int:
        tags = [tag for tag, stored in entries.items() if canonical(stored) == identity]
        for tag in tags:
            del self._map[tag]
        return len(tags)


def _members(entries: dict[str, Any]) -> dict[str, Any]:
    members = {canonical(stored): from_yjs(stored) for stored in entries.values()}
    return dict(sorted(members.items()))
