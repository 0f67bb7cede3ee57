"""The hot layer: a small in-process map of Python objects with a TTL and an LRU bound.

It sits in front of the shared backend for the hottest reads (guild config, prefix,
permissions): a hit is one dict lookup, no await, no JSON. Entries live at most
``HOT_CACHE_TTL`` seconds; invalidation (local, or announced by another process) drops them
sooner.

:attr:`HotLayer.epoch` grows on every drop or clear. A caller that loads a value captures the
epoch first and stores the value only if no invalidation happened meanwhile, so a value read
before an invalidation is never kept after it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from time import monotonic
from typing import Any, Final

#: What the caches read the time from: seconds, only ever growing (``time.monotonic``). Tests
#: give the caches one they move by hand instead of sleeping through TTLs.
Clock = Callable[[], float]


class _Missing:
    """Type of :data:`MISSING`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


#: Returned by lookups that found nothing (None is a value that can be cached).
MISSING: Final = _Missing()


class HotLayer:
    """A bounded, expiring map of Python objects (not copied: store immutable values)."""

    def __init__(self, max_entries: int, max_ttl: float, clock: Clock = monotonic) -> None:
        self.max_entries = max_entries
        self.max_ttl = max_ttl
        #: Where the TTLs are read from.
        self.clock = clock
        #: False while the layer cannot be kept coherent (shared backend unreachable).
        self.enabled = True
        #: Grows on every drop and clear; see the module docstring.
        self.epoch = 0
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Any:
        """The value at ``key``, or :data:`MISSING` when absent or expired."""
        entry = self._entries.get(key)
        if entry is None:
            return MISSING
        if entry[0] <= self.clock():
            del self._entries[key]
            return MISSING
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: str, value: Any, ttl: float, epoch: int) -> None:
        """Keep ``value`` for ``min(ttl, max_ttl)`` seconds, evicting the least recently used.

        Nothing is stored when the layer is disabled or ``epoch`` (captured before the value
        was read) is no longer current: an invalidation happened while it was being loaded.
        """
        if not self.enabled or epoch != self.epoch:
            return
        self._entries[key] = (self.clock() + min(ttl, self.max_ttl), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def drop(self, keys: Iterable[str]) -> None:
        """Forget ``keys`` (missing ones are ignored) and advance the epoch."""
        self.epoch += 1
        for key in keys:
            self._entries.pop(key, None)

    def drop_prefix(self, prefix: str) -> None:
        """Forget every key starting with ``prefix`` and advance the epoch. Looks at every
        entry (at most ``max_entries``): for rare drops, such as a guild's."""
        self.epoch += 1
        for key in [key for key in self._entries if key.startswith(prefix)]:
            del self._entries[key]

    def clear(self) -> None:
        """Forget everything and advance the epoch."""
        self.epoch += 1
        self._entries.clear()

    def set_enabled(self, enabled: bool) -> None:
        """Turn the layer on or off; either way it starts empty (its contents may be stale)."""
        self.enabled = enabled
        self.clear()
