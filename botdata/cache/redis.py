"""The Redis cache (``redis.asyncio``), used when ``REDIS_URL`` is set.

Shared by every process of the bot. Each process keeps a small hot layer in front of Redis and
a background subscriber on ``<prefix>:invalidate``: :meth:`Cache.invalidate` deletes the keys
and publishes them there in one round trip, so every other process drops them from its hot
layer. :meth:`RedisCache.invalidate_guild` empties the guild's index of keys (see
:mod:`botdata.cache.redis_commands`) and announces the guild the same way.

:class:`RedisCache` is composed of three parts, each in its module:

- :mod:`botdata.cache.redis_link`: the connection, every call bounded by ``REDIS_TIMEOUT``,
  outages (declared, retried, logged) and the invalidations Redis did not get (owed, applied
  before the next call, retried in the background);
- :mod:`botdata.cache.redis_subscriber`: the pub/sub connection, which hears other processes'
  invalidations (the hot layer is on only while it is in) and delivers subscribed messages;
- :mod:`botdata.cache.redis_commands`: the Lua scripts and how their calls are batched.

Redis being down, refusing or slow never blocks the bot: a call then behaves as a miss or a
no-op (cooldowns, locks and rate limits switch to an in-process store).
:meth:`RedisCache.clear` says whether it is done or owed.

The per-message calls (cooldown claims, rank writes) and the reads and fills of
:meth:`~botdata.cache.base.Cache.get_or_load` (see its leases in :mod:`botdata.cache.base`)
are Lua scripts on one key each (and its guild's index); those made during one turn of the
event loop are sent together in one pipeline.
"""

from __future__ import annotations

import json
import math
import uuid
from asyncio import timeout as timeout_after
from collections.abc import Collection, Mapping, Sequence
from time import monotonic
from typing import TYPE_CHECKING, Any, Final, cast

from redis.asyncio import Redis

from botdata.cache.base import LEASE_TTL, Cache, Handler
from botdata.cache.hot import Clock
from botdata.cache.redis_commands import (
    BATCH,
    CLAIM_SCRIPT,
    CLAIMED,
    DROP_INDEXED_SCRIPT,
    FILL_SCRIPT,
    GET_OR_LEASE_SCRIPT,
    INDEX_SCRIPT,
    ZADD_EXISTING_SCRIPT,
    ScriptBatches,
    evaluate,
    in_batches,
    milliseconds,
)
from botdata.cache.redis_link import Owed, RedisLink
from botdata.cache.redis_subscriber import Subscriber
from botdata.cache.store import MemoryStore, check_ttl
from botdata.errors import ConfigurationError

if TYPE_CHECKING:
    from botdata.config import Settings

#: Invalidation of every key (instead of a list of keys).
EVERYTHING: Final = "*"

_FAILED: Final[Any] = object()


class RedisCache(Cache):
    """:class:`~botdata.cache.base.Cache` on Redis, shared by every process using the same
    ``REDIS_URL`` and ``CACHE_PREFIX``. Start it with :meth:`start` (``create_cache`` does)."""

    def __init__(self, settings: Settings, clock: Clock = monotonic) -> None:
        super().__init__(settings, clock)
        if settings.REDIS_URL is None:
            raise ConfigurationError("the Redis cache needs REDIS_URL")
        self._link = RedisLink(
            settings.REDIS_URL,
            settings.REDIS_TIMEOUT,
            max_owed=settings.CACHE_MAX_ENTRIES,
            pay=self._pay,
            on_down=self._on_down,
            on_up=self._on_up,
            clock=clock,
        )
        #: The URL with its password hidden.
        self.url = self._link.url
        self.timeout = settings.REDIS_TIMEOUT
        register = self._link.redis.register_script
        self._claim_script = register(CLAIM_SCRIPT)
        self._zadd_existing_script = register(ZADD_EXISTING_SCRIPT)
        self._get_or_lease_script = register(GET_OR_LEASE_SCRIPT)
        self._fill_script = register(FILL_SCRIPT)
        self._index_script = register(INDEX_SCRIPT)
        self._drop_indexed_script = register(DROP_INDEXED_SCRIPT)
        self._scripts = ScriptBatches(self._link.run, _FAILED)
        # Cooldowns, locks and rate limits while Redis is unreachable.
        self._fallback = MemoryStore(settings.CACHE_MAX_ENTRIES, clock)
        # Claims this process made or saw (see claim): key -> True until the claim ends.
        self._claimed = MemoryStore(settings.CACHE_MAX_ENTRIES, clock)
        self._guild_start = f"{self.prefix}:{{g:"
        self._id = uuid.uuid4().hex
        self._invalidation_channel = f"{self.prefix}:invalidate"
        self._subscriber = Subscriber(
            self._link,
            self._invalidation_channel,
            self._id,
            on_connected=self._on_connected,
            on_invalidation=self._on_invalidation,
        )
        # Hot layer off until the subscriber is in.
        self._hot.set_enabled(False)

    async def start(self) -> None:
        """Start the subscriber; return once it is in, or has failed once (Redis down)."""
        await self._subscriber.start(f"botdata cache {self.prefix}")

    def _set_clock(self, clock: Clock) -> None:
        self._link.clock = self._fallback.clock = self._claimed.clock = clock

    # JSON values -------------------------------------------------------------------------
    async def delete(self, *keys: str) -> None:
        """Remove ``keys`` (missing ones are ignored). Does not touch the hot layer.

        Best effort, for claims and locks: lost when the backend does not answer. Copies of
        database rows are dropped with :meth:`invalidate`, which is never lost.
        """
        if keys:
            self._claimed.delete(keys)
            await self._link.run(
                lambda r: in_batches(r, keys, lambda pipe, part: pipe.delete(*part)),
                None,
                items=len(keys),
            )

    async def set_if_absent(self, key: str, value: str, ttl: float) -> bool:
        """Store ``value`` for ``ttl`` seconds only if ``key`` is absent; True if stored.

        Per process while Redis is unreachable. Raises
        :class:`~botdata.errors.ValidationError` unless ``ttl`` > 0.
        """
        check_ttl(ttl)
        px = milliseconds(ttl)
        stored = await self._link.run(lambda r: r.set(key, value, px=px, nx=True), _FAILED)
        if stored is _FAILED:
            return self._fallback.set_if_absent(key, value, ttl)
        return bool(stored)

    async def claim(self, key: str, ttl: float) -> float | None:
        """Claim ``key`` for ``ttl`` seconds: None when claimed now, else the seconds the
        current claim has left (``math.inf`` for a key without expiry).

        One round trip (``SET NX PX``, else ``PTTL``, in a script). While the hot layer is on
        (the subscriber hears other processes' deletes and clears), this process remembers
        the claims it made or saw until they end and answers those keys itself. Per process
        while Redis is unreachable. Raises :class:`~botdata.errors.ValidationError` unless
        ``ttl`` > 0.
        """
        check_ttl(ttl)
        left = self._claimed.ttl_left(key)
        if left is not None:
            return left
        answer = await self._scripts.eval(self._claim_script, (key,), [milliseconds(ttl)])
        if answer is _FAILED:
            return self._fallback.claim(key, ttl)
        if answer == CLAIMED:
            left, remembered = None, ttl
        else:
            left = math.inf if answer < 0 else answer / 1000
            remembered = left
        if self._hot.enabled and 0 < remembered < math.inf:
            self._claimed.set(key, True, remembered)
        return left

    async def check_rate_limit(self, key: str, limit: int, window: float) -> bool:
        """Count one call; True when over ``limit`` in the current ``window``-second window.

        One MULTI/EXEC round trip (INCR, PEXPIRE NX). Per process while Redis is unreachable.
        Raises :class:`~botdata.errors.ValidationError` unless ``window`` > 0.
        """
        check_ttl(window, "window")

        async def hit(r: Redis) -> int:
            async with r.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.pexpire(key, milliseconds(window), nx=True)
                count, _ = await pipe.execute()
            return int(count)

        count = await self._link.run(hit, _FAILED)
        if count is _FAILED:
            return self._fallback.hit(key, limit, window)
        return bool(count > limit)

    # Sorted sets -------------------------------------------------------------------------
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
        ``only_existing``: nothing is written when the set does not exist; ``guard`` (member,
        score): nothing is written unless the set holds that member with that score (a script
        checks and writes atomically). One round trip (two for a new set of a guild: it is
        indexed). Raises :class:`~botdata.errors.ValidationError` unless ``ttl`` is None or
        > 0.
        """
        check_ttl(ttl)
        if not scores:
            return
        keys = self._indexed(key)
        members = list(scores.items())
        parts = [members[start : start + BATCH] for start in range(0, len(members), BATCH)]
        if only_existing or guard is not None:
            guarded: list[Any] = ["", ""] if guard is None else [guard[0], repr(float(guard[1]))]
            flags = [1 if higher_only else 0, 0 if ttl is None else milliseconds(ttl), *guarded]
            calls = [
                (self._zadd_existing_script, keys, flags + [x for m, v in part for x in (v, m)])
                for part in parts
            ]
            if len(calls) == 1:
                await self._scripts.eval(*calls[0])
            else:
                await self._link.run(lambda r: evaluate(r, calls), None, items=len(members))
            return

        async def add(r: Redis) -> None:
            async with r.pipeline(transaction=False) as pipe:
                for part in parts:
                    pipe.zadd(key, dict(part), gt=higher_only)
                if ttl is not None:
                    pipe.pexpire(key, milliseconds(ttl))
                await pipe.execute()
            if len(keys) > 1:
                await evaluate(r, [(self._index_script, keys, [])])

        await self._link.run(add, None, items=len(members))

    async def zincrby(self, key: str, member: str, amount: float) -> float | None:
        """Add ``amount`` to ``member``'s score (from 0); the new score, None if unavailable."""
        keys = self._indexed(key)

        async def increment(r: Redis) -> float:
            score: float = await r.zincrby(key, amount, member)  # type: ignore[assignment]
            if len(keys) > 1:
                await evaluate(r, [(self._index_script, keys, [])])
            return float(score)

        return await self._link.run(increment, None)

    async def zrevrank(self, key: str, member: str) -> int | None:
        """0-based rank of ``member`` by descending score, or None (absent or unavailable)."""
        rank = await self._link.run(lambda r: r.zrevrank(key, member), None)
        return None if rank is None else int(cast(int, rank))

    async def zrevrange(self, key: str, start: int, stop: int) -> list[tuple[str, float]]:
        """Members ``start..stop`` (inclusive, negative from the end) by descending score."""

        async def ranged(r: Redis) -> list[tuple[bytes, float]]:
            return cast(
                "list[tuple[bytes, float]]", await r.zrevrange(key, start, stop, withscores=True)
            )

        none: list[tuple[bytes, float]] = []
        ranked = await self._link.run(ranged, none)
        return [(member.decode(), float(score)) for member, score in ranked]

    async def zrem(self, key: str, *members: str) -> None:
        """Remove members from the sorted set (missing ones are ignored)."""
        if members:
            await self._link.run(
                lambda r: in_batches(r, members, lambda pipe, part: pipe.zrem(key, *part)),
                None,
                items=len(members),
            )

    # Pub/sub -----------------------------------------------------------------------------
    async def publish(self, channel: str, message: str) -> None:
        """Send ``message`` to the subscribers of ``channel`` in every process (lost while
        Redis is unreachable)."""
        await self._link.run(lambda r: r.publish(self._channel(channel), message), None)

    async def subscribe(self, channel: str, handler: Handler) -> None:
        """Call ``await handler(message)`` (in a task of its own) for each message on
        ``channel``. Returns once Redis confirmed the subscription, or after ``REDIS_TIMEOUT``
        (then it starts when Redis answers, or when the subscriber reconnects)."""
        await self._subscriber.subscribe(self._channel(channel), handler)

    # Lifecycle ---------------------------------------------------------------------------
    async def clear(self) -> bool:
        """Remove every key under the prefix (SCAN + UNLINK) and empty every hot layer.

        Returns True when done; False when Redis did not answer: the clear is then owed (see
        :mod:`botdata.cache.redis_link`), and this process's hot layer is empty already.
        """
        self._hot.clear()
        self._claimed.clear()
        self._fallback.clear()
        self._link.owe(everything=True)
        return self._link.reachable() and await self._link.settle()

    async def close(self) -> None:
        """Stop the subscriber and its handler tasks, close the connections. Idempotent."""
        if self._link.closed:
            return
        listener = self._subscriber.task
        await self._link.close(*([listener] if listener else []))

    # Primitives --------------------------------------------------------------------------
    def _indexed(self, key: str) -> tuple[str] | tuple[str, str]:
        """``key`` and, for a key of a guild, the guild's index (the script keys)."""
        if key.startswith(self._guild_start):
            end = key.find("}:", len(self._guild_start))
            if end > 0:
                return key, key[: end + 1]
        return (key,)

    async def _get_raw(self, key: str) -> bytes | None:
        async def get(r: Redis) -> bytes | None:
            return cast(bytes | None, await r.get(key))  # bytes: no decode_responses

        return await self._link.run(get, None)

    async def _set_raw(self, key: str, raw: bytes, ttl: float | None) -> None:
        check_ttl(ttl)
        self._claimed.delete((key,))
        px = None if ttl is None else milliseconds(ttl)
        await self._link.run(lambda r: r.set(key, raw, px=px), None, items=len(raw) // 1024 + 1)

    async def _get_or_lease(self, key: str, lease: bytes) -> bytes | None:
        args = [lease, milliseconds(LEASE_TTL)]
        answer = await self._scripts.eval(self._get_or_lease_script, self._indexed(key), args)
        return None if answer is _FAILED else cast(bytes | None, answer)

    async def _fill(self, key: str, lease: bytes, raw: bytes, ttl: float) -> bool:
        check_ttl(ttl)
        args = [lease, raw, milliseconds(ttl)]
        items = len(raw) // 1024 + 1
        answer = await self._scripts.eval(self._fill_script, self._indexed(key), args, items=items)
        return bool(answer == 1)

    async def _forget(self, keys: Collection[str]) -> None:
        if not keys:
            return
        self._claimed.delete(keys)
        listed = list(keys)
        dropped = await self._link.run(lambda r: self._drop(r, listed), _FAILED, items=len(listed))
        if dropped is _FAILED:
            self._link.owe(listed)

    async def _forget_guild(self, guild_id: int) -> None:
        dropped = await self._link.run(
            lambda r: self._drop_guilds(r, [guild_id]), _FAILED, items=None
        )
        if dropped is _FAILED:
            self._link.owe(guilds=[guild_id])

    async def _drop(self, r: Redis, keys: Sequence[str]) -> None:
        """Delete ``keys`` and announce it, in one round trip."""
        async with timeout_after(self._link.budget(len(keys))), r.pipeline(False) as pipe:
            for start in range(0, len(keys), BATCH):
                pipe.delete(*keys[start : start + BATCH])
            # After the deletes (one connection's commands run in order).
            pipe.publish(self._invalidation_channel, self._announcement(keys=list(keys)))
            await pipe.execute()

    async def _drop_guilds(self, r: Redis, guilds: Collection[int]) -> None:
        """Delete the keys the guilds' indexes list, BATCH per command and guild, then
        announce the guilds."""
        pending = [(self._guild_space(guild_id),) for guild_id in guilds]
        while pending:
            calls = [(self._drop_indexed_script, index, [BATCH]) for index in pending]
            async with timeout_after(self._link.budget(BATCH)):
                answers = await evaluate(r, calls)
            for answer in answers:
                if isinstance(answer, Exception):
                    raise answer
            pending = [
                index for index, taken in zip(pending, answers, strict=True) if taken >= BATCH
            ]
        async with timeout_after(self.timeout):
            await r.publish(self._invalidation_channel, self._announcement(guilds=list(guilds)))

    async def _unlink_all(self, r: Redis) -> None:
        """Delete every key under the prefix and announce it; each command is bounded (there
        may be more keys than one command should take)."""
        cursor = 0
        while True:
            async with timeout_after(self.timeout):
                cursor, keys = await r.scan(cursor, match=f"{self.prefix}:*", count=BATCH)
            if keys:
                async with timeout_after(self._link.budget(len(keys))):
                    await r.unlink(*keys)
            if not cursor:
                break
        async with timeout_after(self.timeout):
            await r.publish(self._invalidation_channel, self._announcement(keys=EVERYTHING))

    async def _pay(self, r: Redis, owed: Owed) -> None:
        """Apply owed invalidations (see :class:`~botdata.cache.redis_link.RedisLink`)."""
        if owed.everything:
            await self._unlink_all(r)
            return
        if owed.keys:
            await self._drop(r, list(owed.keys))
        if owed.guilds:
            await self._drop_guilds(r, owed.guilds)

    def _announcement(
        self, *, keys: list[str] | str | None = None, guilds: list[int] | None = None
    ) -> str:
        """The invalidation message of ``keys`` (a list, or EVERYTHING) and ``guilds``, signed
        by this cache (it applies its own invalidations when it makes them, not again when
        they echo)."""
        return json.dumps({"by": self._id, "keys": keys or [], "guilds": guilds or []})

    # What the parts report ---------------------------------------------------------------
    def _on_down(self) -> None:
        self._subscriber.probe()

    def _on_up(self) -> None:
        self._fallback.clear()

    def _on_connected(self, connected: bool) -> None:
        """The hot layer is on only while the subscriber is in (and starts empty)."""
        if connected != self._hot.enabled:
            self._hot.set_enabled(connected)
            self._claimed.clear()

    def _on_invalidation(self, announced: dict[str, Any] | None) -> None:
        """Apply another process's invalidation (None: unreadable, taken as everything)."""
        keys = None if announced is None else announced.get("keys")
        guilds = None if announced is None else announced.get("guilds", [])
        if not isinstance(keys, list) or not isinstance(guilds, list):
            self._hot.clear()
            self._claimed.clear()
            return
        if keys:
            dropped = [str(key) for key in keys]
            self._hot.drop(dropped)
            self._claimed.delete(dropped)
        for guild_id in guilds:
            self._hot.drop_prefix(f"{self._guild_space(guild_id)}:")
