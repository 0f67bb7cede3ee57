"""A bounded in-process key/value store with TTLs: the data of the in-process cache.

Synchronous (one event loop makes every operation atomic). Also the fallback the Redis cache
uses for cooldowns and rate limits while Redis is unreachable.

Entries stored with ``derived=True`` are copies of database rows (cached values, their leases,
sorted sets): :meth:`MemoryStore.drop_derived` removes them all at once, when the database was
changed behind the cache's back, and leaves the claims, counters and locks alone.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from time import monotonic
from typing import Any

from botdata.cache.hot import Clock
from botdata.errors import ValidationError


def check_ttl(ttl: float | None, name: str = "ttl") -> None:
    """Raise :class:`~botdata.errors.ValidationError` unless ``ttl`` is None or > 0."""
    if ttl is not None and not ttl > 0:
        raise ValidationError(f"{name} must be > 0 seconds, got {ttl!r}")


@dataclass(slots=True)
class _Entry:
    value: Any
    #: Deadline on the store's clock, None for no expiry.
    expires_at: float | None
    #: A copy of database rows (see the module docstring).
    derived: bool = False


class MemoryStore:
    """Keys to values (bytes, str, counters, sorted sets), at most ``max_entries`` of them.

    Expired entries disappear when touched; beyond the bound the least recently used go.
    """

    def __init__(self, max_entries: int, clock: Clock = monotonic) -> None:
        self.max_entries = max_entries
        #: Where the TTLs are read from.
        self.clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return self._live(key) is not None

    def get(self, key: str) -> Any | None:
        """The value at ``key``, or None."""
        entry = self._live(key)
        return None if entry is None else entry.value

    def set(self, key: str, value: Any, ttl: float | None, *, derived: bool = False) -> None:
        """Store ``value`` at ``key`` for ``ttl`` seconds (forever if None); ``derived``: a copy
        of database rows."""
        self._entries[key] = _Entry(value, None if ttl is None else self.clock() + ttl, derived)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def expire(self, key: str, ttl: float) -> None:
        """Make ``key`` (if present) expire ``ttl`` seconds from now."""
        entry = self._live(key)
        if entry is not None:
            entry.expires_at = self.clock() + ttl

    def delete(self, keys: Iterable[str]) -> None:
        """Remove ``keys`` (missing ones are ignored)."""
        for key in keys:
            self._entries.pop(key, None)

    def set_if_absent(self, key: str, value: Any, ttl: float) -> bool:
        """Store ``value`` for ``ttl`` seconds unless ``key`` exists; True if stored."""
        if self._live(key) is not None:
            return False
        self.set(key, value, ttl)
        return True

    def ttl_left(self, key: str) -> float | None:
        """Seconds until ``key`` expires (``math.inf`` without expiry), or None when absent."""
        entry = self._live(key)
        if entry is None:
            return None
        return math.inf if entry.expires_at is None else max(0.0, entry.expires_at - self.clock())

    def claim(self, key: str, ttl: float) -> float | None:
        """Store ``key`` for ``ttl`` seconds unless it exists: None when stored, else the
        seconds it has left (see :meth:`ttl_left`)."""
        left = self.ttl_left(key)
        if left is None:
            self.set(key, True, ttl)
        return left

    def hit(self, key: str, limit: int, window: float) -> bool:
        """Count a call in ``key``'s fixed window; True when it is over ``limit``."""
        entry = self._live(key)
        if entry is None:
            self.set(key, 1, window)
            return limit < 1
        entry.value += 1
        return bool(entry.value > limit)

    def sorted_set(self, key: str) -> dict[str, float] | None:
        """The members and scores of the sorted set at ``key`` (mutable), or None."""
        entry = self._live(key)
        return None if entry is None else entry.value

    def clear(self) -> None:
        """Remove everything."""
        self._entries.clear()

    def drop_derived(self, prefix: str = "") -> None:
        """Remove the entries stored with ``derived=True`` whose key starts with ``prefix``
        (all of them by default); keep the others in their order."""
        if not prefix:
            self._entries = OrderedDict(
                (key, entry) for key, entry in self._entries.items() if not entry.derived
            )
            return
        for key in [key for key in self._entries if key.startswith(prefix)]:
            if self._entries[key].derived:
                del self._entries[key]

    def _live(self, key: str) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at is not None and entry.expires_at <= self.clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry
