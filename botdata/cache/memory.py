"""The in-process cache: used when no ``REDIS_URL`` is set (one process, nothing to share)."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from botdata.cache.base import Cache, Handler
from botdata.cache.store import MemoryStore, check_ttl

if TYPE_CHECKING:
    from botdata.config import Settings

log = logging.getLogger("botdata.cache")


class MemoryCache(Cache):
    """:class:`~botdata.cache.base.Cache` in this process: bounded (``CACHE_MAX_ENTRIES``,
    least recently used evicted), with TTLs, sorted sets and in-process pub/sub."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._store = MemoryStore(settings.CACHE_MAX_ENTRIES)
        self._handlers: dict[str, list[Handler]] = {}

    async def delete(self, *keys: str) -> None:
        """Remove ``keys`` (missing ones are ignored). Does not touch the hot layer."""
        self._store.delete(keys)

    async def set_if_absent(self, key: str, value: str, ttl: float) -> bool:
        """Store ``value`` for ``ttl`` seconds only if ``key`` is absent; True if stored.

        Raises :class:`~botdata.errors.ValidationError` unless ``ttl`` > 0.
        """
        check_ttl(ttl)
        return self._store.set_if_absent(key, value, ttl)

    async def claim(self, key: str, ttl: float) -> float | None:
        """Claim ``key`` for ``ttl`` seconds: None when claimed now, else the seconds the
        current claim has left. Raises :class:`~botdata.errors.ValidationError` unless
        ``ttl`` > 0.
        """
        check_ttl(ttl)
        return self._store.claim(key, ttl)

    async def check_rate_limit(self, key: str, limit: int, window: float) -> bool:
        """Count one call; True when over ``limit`` in the current ``window``-second window.

        Raises :class:`~botdata.errors.ValidationError` unless ``window`` > 0.
        """
        check_ttl(window, "window")
        return self._store.hit(key, limit, window)

    async def zadd(
        self,
        key: str,
        scores: Mapping[str, float],
        ttl: float | None = None,
        *,
        higher_only: bool = False,
        only_existing: bool = False,
    ) -> None:
        """Set the score of each member; with ``ttl`` the whole set expires after it.

        ``higher_only``: an existing member's score is only ever raised (Redis ``ZADD GT``),
        so writes of growing totals that arrive out of order keep the highest.
        ``only_existing``: nothing is written when the set does not exist.
        """
        check_ttl(ttl)
        members = self._store.sorted_set(key)
        if members is None:
            if only_existing:
                return
            members = {}
            self._store.set(key, members, None)
        for member, score in scores.items():
            if not higher_only or float(score) > members.get(member, float("-inf")):
                members[member] = float(score)
        if ttl is not None:
            self._store.expire(key, ttl)

    async def zincrby(self, key: str, member: str, amount: float) -> float:
        """Add ``amount`` to ``member``'s score (from 0); the new score."""
        members = self._store.sorted_set(key)
        if members is None:
            members = {}
            self._store.set(key, members, None)
        score = members[member] = members.get(member, 0.0) + amount
        return score

    async def zrevrank(self, key: str, member: str) -> int | None:
        """0-based rank of ``member`` by descending score (ties: reverse member order)."""
        members = self._store.sorted_set(key) or {}
        if member not in members:
            return None
        mine = (members[member], member)
        return sum(1 for other, score in members.items() if (score, other) > mine)

    async def zrevrange(self, key: str, start: int, stop: int) -> list[tuple[str, float]]:
        """Members ``start..stop`` (inclusive, negative from the end) by descending score."""
        members = self._store.sorted_set(key) or {}
        count = len(members)
        start, stop = (start + count if start < 0 else start), (stop + count if stop < 0 else stop)
        start = max(start, 0)
        if start > stop or start >= count:
            return []
        ranked = sorted(members.items(), key=lambda item: (item[1], item[0]), reverse=True)
        return ranked[start : stop + 1]

    async def zrem(self, key: str, *members: str) -> None:
        """Remove members from the sorted set (missing ones are ignored)."""
        scores = self._store.sorted_set(key)
        if scores is None:
            return
        for member in members:
            scores.pop(member, None)
        if not scores:
            self._store.delete([key])

    async def publish(self, channel: str, message: str) -> None:
        """Call every handler subscribed to ``channel`` with ``message``, in order."""
        for handler in list(self._handlers.get(self._channel(channel), ())):
            try:
                await handler(message)
            except Exception:
                log.exception("botdata cache: handler of channel %r failed", channel)

    async def subscribe(self, channel: str, handler: Handler) -> None:
        """Call ``await handler(message)`` for each message published on ``channel``."""
        self._handlers.setdefault(self._channel(channel), []).append(handler)

    async def clear(self) -> None:
        """Remove every key and empty the hot layer."""
        self._store.clear()
        self._hot.clear()

    async def close(self) -> None:
        """Nothing to release (the in-process cache holds no connection)."""

    async def _get_raw(self, key: str) -> bytes | None:
        return self._store.get(key)

    async def _set_raw(self, key: str, raw: bytes, ttl: float | None) -> None:
        check_ttl(ttl)
        self._store.set(key, raw, ttl)

    async def _forget(self, keys: Collection[str]) -> None:
        self._store.delete(keys)
