"""The cache interface the managers use. Two backends implement it: Redis and in-process.

Keys are built with :meth:`Cache.key`, which adds the configured prefix and, for guild data, a
Redis Cluster hash tag (``{g:<guild_id>}``) so one guild's keys share a slot. Pub/sub channel
names are prefixed by the cache itself. :meth:`Cache.invalidate_guild` drops every cached copy
of one guild's rows (whatever manager cached them) without knowing their names.

Every operation is best-effort: a backend that cannot answer (Redis down, refusing or slow)
behaves as an empty cache within a short timeout, and the managers fall back to the database.
Cooldowns (:meth:`Cache.claim`), locks (:meth:`Cache.set_if_absent`) and rate limits keep
working per process meanwhile.

Values are stored as JSON (see :mod:`botdata.cache.codec`): what :meth:`Cache.get_json`
returns is a fresh copy. The hot layer (:meth:`Cache.hot_get`, ``get_or_load(hot=True)``)
returns shared Python objects: treat them as read-only (the schemas are frozen).

Fills never outlive an invalidation. :meth:`Cache.get_or_load` reads a key and, when it is
missing, leaves a lease in it in the same step (one round trip, one key: a script on Redis);
it loads the value from the database and stores it only if the key still holds its own lease
(again one round trip, one key). An invalidation deletes the key, lease included, so a value
read from the database before a concurrent update is never stored after that update's
invalidation, in this process or any other; a reader that finds another reader's lease loads
the value for itself and stores nothing there. The hot layer has its own rule (the epoch, see
:mod:`botdata.cache.hot`): a value is kept there, stored in the backend or not, only if no
invalidation reached this process while it was being loaded; and :meth:`Cache.invalidate`
drops this process's hot entries once the backend's delete is done (other processes drop
theirs when its announcement arrives, sent after the delete), so a value read from the
backend just before the delete is not kept.

Concurrent invalidations share their round trips: :meth:`Cache.invalidate` hands its keys to a
:class:`~botdata.coalesce.Coalescer`, which sends the keys of the callers that arrive while
one invalidation is in flight together in the next.

TTLs kept in this process (the hot layer, the in-process store) are read from
:attr:`Cache.clock` (``time.monotonic``); tests replace it to move time by hand.
"""

from __future__ import annotations

import itertools
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Collection, Mapping
from time import monotonic
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from pydantic import BaseModel

from botdata.cache import codec
from botdata.cache.hot import MISSING, Clock, HotLayer
from botdata.coalesce import Coalescer

if TYPE_CHECKING:
    from botdata.config import Settings

#: What a loader called on a cache miss returns (its result is cached).
T = TypeVar("T")
#: Called with each message published on a subscribed channel.
Handler = Callable[[str], Awaitable[None]]

#: Seconds a lease lives at most: a reader that takes longer to load (or died) stores nothing,
#: and until then the other readers of the key load it themselves.
LEASE_TTL: Final = 5.0


class Cache(ABC):
    """What botdata needs from a cache. Values are JSON-serialisable unless noted."""

    def __init__(self, settings: Settings, clock: Clock = monotonic) -> None:
        self.prefix = settings.CACHE_PREFIX
        self._clock = clock
        self._hot = HotLayer(settings.CACHE_MAX_ENTRIES, settings.HOT_CACHE_TTL, clock)
        # Leases are this prefix and a number: unique across processes.
        self._lease_prefix = codec.LEASE + uuid.uuid4().hex.encode() + b":"
        self._leases = itertools.count()
        self._invalidations: Coalescer[str] = Coalescer(self._invalidate_now)

    @property
    def clock(self) -> Clock:
        """What this cache reads the time from for the TTLs it keeps in this process (the hot
        layer, in-process entries, Redis retry delays): ``time.monotonic`` unless replaced.
        Setting it reaches every part of the cache. Redis keeps the TTLs of its keys itself."""
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self._clock = clock
        self._hot.clock = clock
        self._set_clock(clock)

    @abstractmethod
    def _set_clock(self, clock: Clock) -> None:
        """Give ``clock`` to the backend's own parts (see :attr:`clock`)."""

    def key(self, *parts: object, guild_id: int | None = None) -> str:
        """``prefix[:{g:<guild_id>}]:part:part...``: the one way keys are built."""
        joined = ":".join(map(str, parts))
        if guild_id is None:
            return f"{self.prefix}:{joined}"
        return f"{self._guild_space(guild_id)}:{joined}"

    def _guild_space(self, guild_id: int) -> str:
        """``prefix:{g:<guild_id>}``: what every key of the guild starts with (followed by
        ``:``). Not a key built by :meth:`key`: the Redis cache keeps its index of the guild's
        keys there."""
        return f"{self.prefix}:{{g:{guild_id}}}"

    def _channel(self, name: str) -> str:
        """The backend's name of pub/sub channel ``name`` (prefixed like the keys)."""
        return f"{self.prefix}:channel:{name}"

    # JSON values -------------------------------------------------------------------------
    async def get_json(self, key: str) -> Any | None:
        """The value stored at ``key``, or None (missing, expired, being filled by
        :meth:`get_or_load` or backend unavailable)."""
        raw = await self._get_raw(key)
        return None if raw is None or codec.is_lease(raw) else codec.load(raw)

    async def set_json(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` at ``key`` for ``ttl`` seconds (forever if None).

        Raises :class:`pydantic_core.PydanticSerializationError` when ``value`` is not JSON
        (pydantic models and datetimes are accepted and come back as dicts and strings).
        """
        await self._set_raw(key, codec.dump(value), ttl)

    @abstractmethod
    async def delete(self, *keys: str) -> None:
        """Remove ``keys`` (missing ones are ignored). Does not touch the hot layer.

        Best effort, for claims and locks: lost when the backend does not answer. Copies of
        database rows are dropped with :meth:`invalidate`, which is never lost.
        """

    @abstractmethod
    async def set_if_absent(self, key: str, value: str, ttl: float) -> bool:
        """Store ``value`` for ``ttl`` seconds only if ``key`` is absent (cooldowns, locks).

        Returns True if stored, False if the key already exists. While Redis is unreachable
        this holds per process.
        """

    @abstractmethod
    async def claim(self, key: str, ttl: float) -> float | None:
        """Claim ``key`` for ``ttl`` seconds (a cooldown): None when this call claimed it, else
        the seconds its current claim has left (``math.inf`` for a key without expiry).

        Atomic across processes, in one round trip. A claim is never released early except
        by :meth:`delete`, :meth:`invalidate` or :meth:`clear`: once this process claimed the
        key or saw it claimed, it may answer later claims itself until that claim ends
        (a delete made by another process is then seen only after the deadline). While Redis
        is unreachable this holds per process. Raises
        :class:`~botdata.errors.ValidationError` unless ``ttl`` > 0.
        """

    @abstractmethod
    async def check_rate_limit(self, key: str, limit: int, window: float) -> bool:
        """Count one call against ``key``; True when the caller is over ``limit`` per ``window``.

        Fixed window: the first call starts a ``window``-second window in which the first
        ``limit`` calls get False and every later one True. Atomic in one round trip, exact
        with many concurrent callers and processes (per process while Redis is unreachable).
        """

    # Sorted sets (leaderboards) --------------------------------------------------------------
    @abstractmethod
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
        ``only_existing``: write only when the set exists (checked atomically with the
        write), so updates never create a partial set. ``guard`` (member, score): write only
        while the set holds that member with exactly that score (checked atomically too), so
        a writer that marked a set as its own writes nothing once the set was deleted or
        another writer marked it. Raises :class:`~botdata.errors.ValidationError` unless
        ``ttl`` is None or > 0.
        """

    @abstractmethod
    async def zincrby(self, key: str, member: str, amount: float) -> float | None:
        """Add ``amount`` to ``member``'s score (from 0); the new score (None if unavailable)."""

    @abstractmethod
    async def zrevrank(self, key: str, member: str) -> int | None:
        """0-based rank of ``member`` by descending score, or None (absent or unavailable).

        Equal scores rank in reverse member order, as in Redis.
        """

    @abstractmethod
    async def zrevrange(self, key: str, start: int, stop: int) -> list[tuple[str, float]]:
        """Members ``start..stop`` (inclusive, negative counts from the end) by descending
        score, with their scores; empty when the set is missing or unavailable."""

    @abstractmethod
    async def zrem(self, key: str, *members: str) -> None:
        """Remove members from the sorted set (missing ones are ignored)."""

    # Pub/sub -----------------------------------------------------------------------------
    @abstractmethod
    async def publish(self, channel: str, message: str) -> None:
        """Send ``message`` to every subscriber of ``channel`` (in every process sharing the
        backend). Lost when the backend is unavailable."""

    @abstractmethod
    async def subscribe(self, channel: str, handler: Handler) -> None:
        """Call ``await handler(message)`` for each message published on ``channel``.

        Returns once the subscription is active (or, with Redis unreachable, once it is
        registered: it becomes active when Redis is back). A handler's exceptions are logged.
        """

    # Hot in-process layer --------------------------------------------------------------------
    def hot_get(self, key: str) -> Any | None:
        """Synchronous lookup in the in-process hot layer; None on a miss.

        Only ``get_or_load(..., hot=True)`` fills that layer. The value is shared: read-only.
        """
        value = self._hot.get(key)
        return None if value is MISSING else value

    async def get_or_load(
        self,
        key: str,
        loader: Callable[[], Awaitable[T]],
        ttl: float,
        *,
        hot: bool = False,
        model: type[BaseModel] | None = None,
    ) -> T:
        """Return the cached value of ``key``, or ``await loader()`` and cache it for ``ttl``.

        ``model``: the loader returns that pydantic model (or a list of them, or None); it is
        stored as JSON and rebuilt on a hit. Otherwise the value must be JSON-serialisable
        (None is cached too). With ``hot=True`` the value is also kept, as the Python object,
        in the in-process hot layer (at most ``HOT_CACHE_TTL`` seconds), so a hit costs a
        dict lookup. With the backend unavailable this is ``await loader()``.

        A value loaded while :meth:`invalidate` runs (here, or in another process) is returned
        but not cached: see the module docstring. Raises what ``loader`` raises.
        """
        if hot:
            hit = self._hot.get(key)
            if hit is not MISSING:
                return cast(T, hit)
        epoch = self._hot.epoch
        lease = self._lease_prefix + str(next(self._leases)).encode()
        raw = await self._get_or_lease(key, lease)
        value: T
        if raw is not None and not codec.is_lease(raw):
            value = cast(T, codec.load(raw, model))
        else:
            value = await loader()
            if raw is None:  # our lease (unless an invalidation removed it since)
                await self._fill(key, lease, codec.dump(value), ttl)
        if hot:  # fresh as of the epoch, filled or not: the epoch rule decides
            self._hot.put(key, value, ttl, epoch)
        return value

    async def invalidate(self, *keys: str) -> None:
        """Drop ``keys`` here, in the shared backend and in every other process's hot layer.

        Call it after the database change is committed. Other processes drop the keys from
        their hot layer when the announcement reaches them (well under a second). When the
        shared backend does not answer, the invalidation is owed: applied before this cache's
        next call to the backend (so this process reads nothing it dropped) and retried in
        the background until it succeeds.

        Returns once the keys are dropped (or owed). Concurrent calls share round trips:
        keys given while an invalidation is in flight are sent together by the next one. A
        cancelled caller's keys are dropped all the same.
        """
        if keys:
            await self._invalidations.add(*keys)

    async def _invalidate_now(self, keys: Collection[str]) -> None:
        """One invalidation of ``keys`` (those of every caller waiting for it)."""
        try:
            await self._forget(keys)
        finally:
            # After the delete, not before: a reader of this process that read the old value
            # from the backend meanwhile may have put it in the hot layer; it goes now, and
            # the epoch moves past every load that started before.
            self._hot.drop(keys)

    async def invalidate_guild(self, guild_id: int) -> None:
        """Drop every cached copy of guild ``guild_id``'s rows (the keys built with
        ``guild_id=``: what :meth:`get_or_load` stored and its leases, sorted sets) here, in
        the shared backend and in every other process's hot layer; for when the guild's rows
        all changed at once (the guild was removed).

        Claims, locks, rate-limit counters and :meth:`set_json` values of the guild stay:
        they are not copies of rows and end with their TTL. Owed like :meth:`invalidate` when
        the shared backend does not answer. Costs no scan of the keyspace (the Redis cache
        keeps an index of each guild's keys).
        """
        try:
            await self._forget_guild(guild_id)
        finally:
            self._hot.drop_prefix(self._guild_space(guild_id) + ":")

    # Lifecycle ---------------------------------------------------------------------------
    @abstractmethod
    async def clear(self) -> bool:
        """Remove every key under this cache's prefix and empty every hot layer.

        Returns True when done. False when the shared backend did not answer: the clear is
        then owed like an invalidation (see :meth:`invalidate`); this process's hot layer is
        empty already, other processes may serve cached copies until it is applied.
        """

    @abstractmethod
    async def close(self) -> None:
        """Stop background tasks and close connections. Calling it twice is harmless."""

    # Backend primitives ----------------------------------------------------------------------
    @abstractmethod
    async def _get_raw(self, key: str) -> bytes | None:
        """The JSON (or lease) stored at ``key``, or None (missing, expired or backend
        unavailable)."""

    @abstractmethod
    async def _get_or_lease(self, key: str, lease: bytes) -> bytes | None:
        """What ``key`` holds (JSON, or another reader's lease); when it holds nothing, store
        ``lease`` there for :data:`LEASE_TTL` seconds and return None. Atomic, one round trip.
        None as well when the backend is unavailable."""

    @abstractmethod
    async def _fill(self, key: str, lease: bytes, raw: bytes, ttl: float) -> bool:
        """Store JSON ``raw`` at ``key`` for ``ttl`` seconds if ``key`` still holds ``lease``.
        Atomic, one round trip. Returns whether it was stored."""

    @abstractmethod
    async def _set_raw(self, key: str, raw: bytes, ttl: float | None) -> None:
        """Store JSON ``raw`` at ``key`` for ``ttl`` seconds (forever if None)."""

    @abstractmethod
    async def _forget(self, keys: Collection[str]) -> None:
        """Delete ``keys`` from the shared store and tell the other processes to drop them."""

    @abstractmethod
    async def _forget_guild(self, guild_id: int) -> None:
        """Delete the guild's cached copies of rows from the shared store (see
        :meth:`invalidate_guild`) and tell the other processes to drop theirs."""
