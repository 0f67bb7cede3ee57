"""The in-process cache: used when no ``REDIS_URL`` is set (nothing is shared between processes).

Another process using the same database (a dashboard, a script, a second bot process) changes
rows behind this cache's back. :meth:`MemoryCache.follow` keeps up: the handle of a SQLite
database makes the cache check SQLite's change counter (``PRAGMA data_version``, which moves
when another connection commits) every :data:`WATCH_INTERVAL` seconds, and when it moved the
cache drops every copy of database rows it holds (values, sorted sets, the hot layer), so
changes made elsewhere are seen within about that time. Cooldown claims, rate-limit counters
and locks are kept: they are this process's own. Pub/sub stays within the process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from time import monotonic
from typing import TYPE_CHECKING, Final

from botdata.cache.base import LEASE_TTL, Cache, Handler
from botdata.cache.hot import Clock
from botdata.cache.store import MemoryStore, check_ttl

if TYPE_CHECKING:
    from botdata.config import Settings

log = logging.getLogger("botdata.cache")

#: Seconds between two checks of the database's change counter (see MemoryCache.follow).
WATCH_INTERVAL: Final = 1.0


class MemoryCache(Cache):
    """:class:`~botdata.cache.base.Cache` in this process: bounded (``CACHE_MAX_ENTRIES``,
    least recently used evicted), with TTLs, sorted sets and in-process pub/sub."""

    def __init__(self, settings: Settings, clock: Clock = monotonic) -> None:
        super().__init__(settings, clock)
        self._store = MemoryStore(settings.CACHE_MAX_ENTRIES, clock)
        self._handlers: dict[str, list[Handler]] = {}
        self._watcher: asyncio.Task[None] | None = None

    def _set_clock(self, clock: Clock) -> None:
        self._store.clock = clock

    def follow(
        self, version: Callable[[], Awaitable[int]], interval: float = WATCH_INTERVAL
    ) -> None:
        """Keep up with changes other processes make to the database until :meth:`close`:
        every ``interval`` seconds ``await version()`` (a counter that moves when another
        process commits), and when its answer changed (or could not be read) drop every
        cached copy of database rows: what ``get_or_load`` stored, sorted sets, the hot layer.
        Claims, rate-limit counters, locks and ``set_json`` values stay. Call it once, from the
        event loop.
        """
        self._watcher = asyncio.create_task(
            self._watch(version, interval), name=f"botdata cache watcher {self.prefix}"
        )

    async def _watch(self, version: Callable[[], Awaitable[int]], interval: float) -> None:
        seen: int | None = None
        failing = False
        while True:
            try:
                current: int | None = await version()
            except Exception as exc:  # unknown (the database busy or gone): taken as changed
                if not failing:
                    log.warning(
                        "botdata cache: cannot read the database's change counter "
                        "(%s); dropping the cached copies until it can",
                        exc,
                    )
                current, failing = None, True
            else:
                failing = False
            if current is None or current != seen:
                # Also on the first round: what was cached before it may predate a change.
                self._store.drop_derived()
                self._hot.clear()
            seen = current
            await asyncio.sleep(interval)

    async def invalidate(self, *keys: str) -> None:
        """Drop ``keys`` from the store and the hot layer, at once: in this process an
        invalidation is no round trip, so there is nothing to group (see
        :meth:`Cache.invalidate <botdata.cache.base.Cache.invalidate>`)."""
        await self._invalidate_now(keys)

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
        guard: tuple[str, float] | None = None,
    ) -> None:
        """Set the score of each member; with ``ttl`` the whole set expires after it.

        ``higher_only``: an existing member's score is only ever raised (Redis ``ZADD GT``),
        so writes of growing totals that arrive out of order keep the highest.
        ``only_existing``: nothing is written when the set does not exist. ``guard`` (member,
        score): nothing is written unless the set holds that member with that score.
        """
        check_ttl(ttl)
        members = self._store.sorted_set(key)
        if guard is not None and (members is None or members.get(guard[0]) != guard[1]):
            return
        if members is None:
            if only_existing:
                return
            members = {}
            self._store.set(key, members, None, derived=True)
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
            self._store.set(key, members, None, derived=True)
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

    async def clear(self) -> bool:
        """Remove every key and empty the hot layer. Returns True (always done)."""
        self._store.clear()
        self._hot.clear()
        return True

    async def close(self) -> None:
        """Stop following the database (see :meth:`follow`). Calling it twice is harmless."""
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None

    async def _get_raw(self, key: str) -> bytes | None:
        return self._store.get(key)

    async def _set_raw(self, key: str, raw: bytes, ttl: float | None) -> None:
        check_ttl(ttl)
        self._store.set(key, raw, ttl)

    async def _get_or_lease(self, key: str, lease: bytes) -> bytes | None:
        raw = self._store.get(key)
        if raw is None:
            self._store.set(key, lease, LEASE_TTL, derived=True)
        return raw

    async def _fill(self, key: str, lease: bytes, raw: bytes, ttl: float) -> bool:
        check_ttl(ttl)
        if self._store.get(key) != lease:
            return False
        self._store.set(key, raw, ttl, derived=True)
        return True

    async def _forget(self, keys: Collection[str]) -> None:
        self._store.delete(keys)

    async def _forget_guild(self, guild_id: int) -> None:
        self._store.drop_derived(self._guild_space(guild_id) + ":")
