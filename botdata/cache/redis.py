"""The Redis cache (``redis.asyncio``), used when ``REDIS_URL`` is set.

Shared by every process of the bot. Each process keeps a small hot layer in front of Redis and
a background subscriber on ``<prefix>:invalidate``: :meth:`Cache.invalidate` publishes the keys
it deletes there, so every process drops them from its hot layer.

Redis being down, refusing or slow never blocks the bot: every call is bounded by
``REDIS_TIMEOUT`` and then behaves as a miss or a no-op (cooldowns and rate limits switch to an
in-process store). After a failure Redis is tried again at most once per
:data:`RETRY_INTERVAL`; the outage is logged once when it starts and once when it ends. The
hot layer is only used while the subscriber is connected and Redis answers, and starts empty
again afterwards (invalidations may have been missed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sys
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from time import monotonic
from typing import TYPE_CHECKING, Any, Final, TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline, PubSub
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from botdata.cache.base import Cache, Handler
from botdata.cache.store import MemoryStore, check_ttl
from botdata.errors import ConfigurationError
from botdata.schema import redact_url

if sys.version_info >= (3, 11):
    from asyncio import timeout as timeout_after
else:  # redis-py depends on async-timeout there
    from async_timeout import timeout as timeout_after

if TYPE_CHECKING:
    from botdata.config import Settings

log = logging.getLogger("botdata.cache")

T = TypeVar("T")

#: Seconds between attempts to reach Redis after a failure.
RETRY_INTERVAL: Final = 1.0
#: Seconds of silence after which the subscriber pings Redis; as long again without an
#: answer and it reconnects (a half-open connection would otherwise go unnoticed).
HEARTBEAT: Final = 5.0
#: What an unreachable, refusing or slow Redis raises.
UNAVAILABLE: Final = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    OSError,
    TimeoutError,
    asyncio.TimeoutError,  # not TimeoutError before Python 3.11
)
#: Invalidation message meaning "every key".
EVERYTHING: Final = "*"
#: Connections per cache (the subscriber holds one). Small on purpose: opening a connection
#: costs far more than waiting for one, so a burst of calls on a cold pool is faster this way.
POOL_SIZE: Final = 16
#: Extra seconds a call may take per item (member, key, KiB) beyond the first: packing a
#: 10,000-member ZADD takes tens of milliseconds in Python, which is not Redis being slow.
ITEM_ALLOWANCE: Final = 50e-6
#: Keys or members per command: big writes are split so that Redis answers each part well
#: within the socket timeout (a 50,000-member ZADD alone can take longer).
BATCH: Final = 1000

_FAILED: Final[Any] = object()


async def in_batches(
    r: Redis, items: Sequence[str], queue: Callable[[Pipeline, Sequence[str]], object]
) -> None:
    """Queue ``queue(pipe, part)`` for each BATCH ``items`` and send them in one round trip."""
    async with r.pipeline(transaction=False) as pipe:
        for start in range(0, len(items), BATCH):
            queue(pipe, items[start : start + BATCH])
        await pipe.execute()


def milliseconds(seconds: float) -> int:
    """``seconds`` as whole milliseconds for PX/PEXPIRE, at least 1."""
    return max(1, math.ceil(seconds * 1000))


class RedisCache(Cache):
    """:class:`~botdata.cache.base.Cache` on Redis, shared by every process using the same
    ``REDIS_URL`` and ``CACHE_PREFIX``. Start it with :meth:`start` (``create_cache`` does)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        if settings.REDIS_URL is None:
            raise ConfigurationError("the Redis cache needs REDIS_URL")
        self.url = redact_url(settings.REDIS_URL)
        self.timeout = settings.REDIS_TIMEOUT
        # Callers beyond POOL_SIZE wait for a connection (within their timeout): a burst is
        # not an outage.
        pool = BlockingConnectionPool.from_url(
            settings.REDIS_URL,
            max_connections=POOL_SIZE,
            timeout=None,
            socket_timeout=settings.REDIS_TIMEOUT,
            socket_connect_timeout=settings.REDIS_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
        self._redis: Redis = Redis.from_pool(pool)
        self._fallback = MemoryStore(settings.CACHE_MAX_ENTRIES)
        self._invalidations = f"{self.prefix}:invalidate"
        # Hot layer off until the subscriber is in.
        self._hot.set_enabled(False)
        self._down = False
        self._retry_at = 0.0
        self._closed = False
        self._subscribed = False
        self._pubsub: PubSub | None = None
        self._ready = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._handlers: dict[str, list[Handler]] = {}
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Keys invalidated while Redis was unreachable: deleted and announced once it is back.
        self._pending: set[str] = set()

    async def start(self) -> None:
        """Start the subscriber; return once it is in, or has failed once (Redis down)."""
        self._listener = asyncio.create_task(self._listen(), name=f"botdata cache {self.prefix}")
        try:
            async with timeout_after(self.timeout * 4):
                await self._ready.wait()
        except asyncio.TimeoutError:
            pass  # slow Redis: the subscriber keeps trying in the background

    # JSON values -------------------------------------------------------------------------
    async def delete(self, *keys: str) -> None:
        """Remove ``keys`` (missing ones are ignored). Does not touch the hot layer."""
        if keys:
            await self._run(
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
        stored = await self._run(lambda r: r.set(key, value, px=px, nx=True), _FAILED)
        if stored is _FAILED:
            return self._fallback.set_if_absent(key, value, ttl)
        return bool(stored)

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

        count = await self._run(hit, _FAILED)
        if count is _FAILED:
            return self._fallback.hit(key, limit, window)
        return count > limit

    # Sorted sets -------------------------------------------------------------------------
    async def zadd(
        self,
        key: str,
        scores: Mapping[str, float],
        ttl: float | None = None,
        *,
        higher_only: bool = False,
    ) -> None:
        """Set the score of each member; with ``ttl`` the whole set expires after it.

        ``higher_only``: an existing member's score is only ever raised (Redis ``ZADD GT``),
        so writes of growing totals that arrive out of order keep the highest.
        """
        check_ttl(ttl)
        if not scores:
            return

        async def add(r: Redis) -> None:
            members = list(scores.items())
            async with r.pipeline(transaction=False) as pipe:
                for start in range(0, len(members), BATCH):
                    pipe.zadd(key, dict(members[start : start + BATCH]), gt=higher_only)
                if ttl is not None:
                    pipe.pexpire(key, milliseconds(ttl))
                await pipe.execute()

        await self._run(add, None, items=len(scores))

    async def zincrby(self, key: str, member: str, amount: float) -> float | None:
        """Add ``amount`` to ``member``'s score (from 0); the new score, None if unavailable."""
        return await self._run(lambda r: r.zincrby(key, amount, member), None)

    async def zrevrank(self, key: str, member: str) -> int | None:
        """0-based rank of ``member`` by descending score, or None (absent or unavailable)."""
        return await self._run(lambda r: r.zrevrank(key, member), None)

    async def zrevrange(self, key: str, start: int, stop: int) -> list[tuple[str, float]]:
        """Members ``start..stop`` (inclusive, negative from the end) by descending score."""
        ranked = await self._run(lambda r: r.zrevrange(key, start, stop, withscores=True), [])
        return [(member.decode(), float(score)) for member, score in ranked]

    async def zrem(self, key: str, *members: str) -> None:
        """Remove members from the sorted set (missing ones are ignored)."""
        if members:
            await self._run(
                lambda r: in_batches(r, members, lambda pipe, part: pipe.zrem(key, *part)),
                None,
                items=len(members),
            )

    # Pub/sub -----------------------------------------------------------------------------
    async def publish(self, channel: str, message: str) -> None:
        """Send ``message`` to the subscribers of ``channel`` in every process (lost while
        Redis is unreachable)."""
        await self._run(lambda r: r.publish(self._channel(channel), message), None)

    async def subscribe(self, channel: str, handler: Handler) -> None:
        """Call ``await handler(message)`` (in a task of its own) for each message on
        ``channel``. Returns once Redis confirmed the subscription, or after ``REDIS_TIMEOUT``
        (then it starts when the subscriber reconnects)."""
        name = self._channel(channel)
        handlers = self._handlers.setdefault(name, [])
        handlers.append(handler)
        pubsub = self._pubsub
        if len(handlers) > 1 or pubsub is None:
            return  # already subscribed, or the subscriber subscribes when it (re)connects
        confirmed = self._confirmations.setdefault(
            name, asyncio.get_running_loop().create_future()
        )
        try:
            async with timeout_after(self.timeout):
                await pubsub.subscribe(name)
                await confirmed
        except UNAVAILABLE as exc:
            self._mark_down(exc)
        finally:
            self._confirmations.pop(name, None)

    # Lifecycle ---------------------------------------------------------------------------
    async def clear(self) -> None:
        """Remove every key under the prefix (SCAN + UNLINK) and empty every hot layer."""
        self._hot.clear()
        self._fallback.clear()
        self._pending.clear()

        async def unlink_all(r: Redis) -> None:
            batch: list[bytes] = []
            async for key in r.scan_iter(match=f"{self.prefix}:*", count=1000):
                batch.append(key)
                if len(batch) >= BATCH:
                    await r.unlink(*batch)
                    batch.clear()
            if batch:
                await r.unlink(*batch)
            await r.publish(self._invalidations, json.dumps(EVERYTHING))

        # Deleting many keys may take longer than one command: no timeout beyond the sockets'.
        await self._run(unlink_all, None, items=None)

    async def close(self) -> None:
        """Stop the subscriber and its handler tasks, close the connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        tasks = [*self._tasks, *([self._listener] if self._listener else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._redis.aclose()

    # Primitives --------------------------------------------------------------------------
    async def _get_raw(self, key: str) -> bytes | None:
        return await self._run(lambda r: r.get(key), None)

    async def _set_raw(self, key: str, raw: bytes, ttl: float | None) -> None:
        check_ttl(ttl)
        px = None if ttl is None else milliseconds(ttl)
        await self._run(lambda r: r.set(key, raw, px=px), None, items=len(raw) // 1024 + 1)

    async def _forget(self, keys: Collection[str]) -> None:
        if not keys:
            return

        async def forget(r: Redis) -> None:
            listed = list(keys)
            async with r.pipeline(transaction=False) as pipe:
                for start in range(0, len(listed), BATCH):
                    pipe.delete(*listed[start : start + BATCH])
                # After the deletes (one connection's commands run in order).
                pipe.publish(self._invalidations, json.dumps(listed))
                await pipe.execute()

        if await self._run(forget, _FAILED, items=len(keys)) is _FAILED:
            if len(self._pending) + len(keys) > self._fallback.max_entries:
                log.warning("botdata cache: too many invalidations during the outage; some "
                            "cached values may stay stale until their TTL")
            else:
                self._pending.update(keys)

    # Availability ------------------------------------------------------------------------
    async def _run(
        self, op: Callable[[Redis], Awaitable[T]], default: T, *, items: int | None = 1
    ) -> T:
        """``await op(redis)``, or ``default`` when Redis is unavailable.

        Bounded by ``REDIS_TIMEOUT`` plus :data:`ITEM_ALLOWANCE` per item beyond the first
        (``items=None``: by the socket timeouts only, which apply to every read and write
        anyway, so a hung Redis is noticed as fast whatever the size of the call).
        """
        if not self._usable():
            return default
        try:
            if items is None:
                result = await op(self._redis)
            else:
                async with timeout_after(self.timeout + (items - 1) * ITEM_ALLOWANCE):
                    result = await op(self._redis)
        except UNAVAILABLE as exc:
            self._mark_down(exc)
            return default
        if self._down:
            await self._mark_up()
        return result

    def _usable(self) -> bool:
        """Whether to try Redis now: always when up, once per RETRY_INTERVAL when down."""
        if not self._down:
            return not self._closed
        now = monotonic()
        if now < self._retry_at or self._closed:
            return False
        self._retry_at = now + RETRY_INTERVAL
        return True

    def _mark_down(self, exc: BaseException) -> None:
        if not self._down:
            self._down = True
            self._retry_at = monotonic() + RETRY_INTERVAL
            log.warning(
                "botdata cache: Redis at %s is unavailable (%s); using the database, "
                "in-process cooldowns and rate limits until it is back",
                self.url,
                exc.__class__.__name__ + (f": {exc}" if str(exc) else ""),
            )
        self._update_hot()

    async def _mark_up(self) -> None:
        if not self._down:
            return
        self._down = False
        log.info("botdata cache: Redis at %s is back", self.url)
        self._fallback.clear()
        if self._pending:
            keys = list(self._pending)
            self._pending.clear()
            await self._forget(keys)
        self._update_hot()

    def _update_hot(self) -> None:
        """The hot layer is on only while Redis answers and the subscriber is in."""
        usable = self._subscribed and not self._down
        if usable != self._hot.enabled:
            self._hot.set_enabled(usable)

    # Subscriber --------------------------------------------------------------------------
    async def _listen(self) -> None:
        """Run the subscriber until cancelled, reconnecting after failures."""
        while True:
            try:
                await self._listen_once()
            except UNAVAILABLE as exc:
                self._mark_down(exc)
            except Exception:
                log.exception("botdata cache: the Redis subscriber failed; restarting it")
            finally:
                self._subscribed = False
                self._update_hot()
                self._ready.set()
            await asyncio.sleep(RETRY_INTERVAL)

    async def _listen_once(self) -> None:
        pubsub = self._redis.pubsub()
        try:
            channels = {self._invalidations, *self._handlers}
            async with timeout_after(self.timeout):
                await pubsub.subscribe(*channels)
            # From here subscribe() subscribes on this connection itself; catch up with the
            # channels it added meanwhile.
            self._pubsub = pubsub
            added = set(self._handlers) - channels
            if added:
                async with timeout_after(self.timeout):
                    await pubsub.subscribe(*added)
            heard = monotonic()
            pinged = False
            while True:
                message = await pubsub.get_message(timeout=RETRY_INTERVAL)
                now = monotonic()
                if message is not None:
                    heard, pinged = now, False
                    await self._on_message(message)
                elif now - heard > HEARTBEAT:
                    if pinged:
                        raise redis_errors.ConnectionError("no answer to the subscriber's PING")
                    async with timeout_after(self.timeout):
                        await pubsub.ping()
                    heard, pinged = now, True
        finally:
            self._pubsub = None
            await pubsub.aclose()

    async def _on_message(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        channel = message["channel"].decode() if message["channel"] is not None else None
        if kind == "subscribe" and channel == self._invalidations:
            # In: everything published from now on reaches us; what came before may be lost.
            self._subscribed = True
            await self._mark_up()
            self._update_hot()
            self._ready.set()
        elif kind == "subscribe" and channel is not None:
            confirmed = self._confirmations.pop(channel, None)
            if confirmed is not None and not confirmed.done():
                confirmed.set_result(None)
        elif kind == "message" and channel == self._invalidations:
            try:
                keys = json.loads(message["data"])
            except ValueError:
                log.warning("botdata cache: bad invalidation message %r", message["data"])
                keys = EVERYTHING
            if isinstance(keys, list):
                self._hot.drop(str(key) for key in keys)
            else:
                self._hot.clear()
        elif kind == "message" and channel is not None:
            text = message["data"].decode()
            for handler in self._handlers.get(channel, ()):
                task = asyncio.create_task(self._deliver(handler, channel, text))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _deliver(self, handler: Handler, channel: str, message: str) -> None:
        try:
            await handler(message)
        except Exception:
            log.exception("botdata cache: handler of channel %r failed", channel)
