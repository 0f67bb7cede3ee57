"""The Redis cache's connection to Redis: bounded calls, outage tracking, owed invalidations.

Every call is bounded by ``REDIS_TIMEOUT`` (waiting for a connection included) and then answers
a default (a miss or a no-op). One slow call is only that: a loaded event loop or a burst makes
single calls late without anything being wrong with Redis. Redis is declared unavailable when a
connection fails (refused, reset, closed), when :data:`STRIKES` calls in a row time out, each
started after the previous one had timed out with no answer in between (a ``PING`` is sent
after the first as a health check), or when the subscriber loses its connection. While
unavailable, Redis is tried again at most once per :data:`RETRY_INTERVAL`; the outage is
logged once when it starts and once when it ends.

Invalidations and clears are never dropped silently. One that Redis does not get (slow,
paused, down) is owed: every later call applies what is owed first (a call that cannot
answers its default, so this process never reads what it dropped), and a background task
retries every :data:`SETTLE_INTERVAL` seconds (at most once per :data:`RETRY_INTERVAL` while
Redis is down) until Redis has it. More owed keys and guilds than ``CACHE_MAX_ENTRIES``
become an owed clear.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import timeout as timeout_after
from collections.abc import Awaitable, Callable, Collection, Coroutine
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.connection import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from botdata.cache.hot import Clock
from botdata.schema import redact_url

log = logging.getLogger("botdata.cache")

T = TypeVar("T")

#: Seconds between attempts to reach Redis after a failure.
RETRY_INTERVAL: Final = 1.0
#: Seconds between background attempts to apply owed invalidations.
SETTLE_INTERVAL: Final = 0.25
#: Timeouts in a row (none overlapping the previous one, no answer in between) that declare
#: Redis unavailable.
STRIKES: Final = 2
#: What a slow Redis (or a saturated client) raises: a miss for that call, a strike.
TIMEOUTS: Final = (
    redis_errors.TimeoutError,
    TimeoutError,
    asyncio.TimeoutError,  # not TimeoutError before Python 3.11
)
#: What an unreachable or refusing Redis raises: an outage. (After TIMEOUTS: TimeoutError is
#: an OSError.)
FAILURES: Final = (redis_errors.ConnectionError, OSError)
#: Calls in flight per cache; more wait their turn, first come first served (the subscriber
#: has a connection of its own). redis-py's BlockingConnectionPool is not fair: with 64
#: callers a few waited longer than REDIS_TIMEOUT for one of its 16 connections.
POOL_SIZE: Final = 16
#: Extra seconds a call may take per item (member, key, KiB) beyond the first: packing a
#: 10,000-member ZADD takes tens of milliseconds in Python, which is not Redis being slow.
ITEM_ALLOWANCE: Final = 50e-6


@dataclass
class Owed:
    """Invalidations Redis did not get: keys, guilds (see ``Cache.invalidate_guild``), or
    ``everything`` (a clear, which covers the others)."""

    keys: set[str] = field(default_factory=set)
    guilds: set[int] = field(default_factory=set)
    everything: bool = False

    def __bool__(self) -> bool:
        return self.everything or bool(self.keys) or bool(self.guilds)


#: Applies owed invalidations on Redis, bounding each of its commands itself; raises what
#: redis-py raises when Redis does not take them.
Payer = Callable[[Redis, Owed], Awaitable[None]]


class RedisLink:
    """One cache's connection pool to Redis, with the outage state and the owed invalidations.

    ``pay`` applies owed invalidations; ``on_down`` and ``on_up`` are called when an outage
    is declared and when it ends.
    """

    def __init__(
        self,
        url: str,
        timeout: float,
        *,
        max_owed: int,
        pay: Payer,
        on_down: Callable[[], None],
        on_up: Callable[[], None],
        clock: Clock,
    ) -> None:
        #: The URL with its password hidden, for logs.
        self.url = redact_url(url)
        self.timeout = timeout
        self.clock = clock
        # No socket timeout: every call is bounded by one asyncio timeout of ours (see call),
        # which also covers the wait for a connection. redis-py's socket timeout would add a
        # task per command sent and a timeout per reply read, for no extra safety. One retry,
        # on a new connection, when a connection fails: pooled connections are stale after
        # Redis restarted, which is not an outage.
        pool = ConnectionPool.from_url(
            url, socket_timeout=None, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 1)
        )
        self.redis: Redis = Redis.from_pool(pool)
        # The pool opens a connection per concurrent call: this bounds them (fairly).
        self._slots = asyncio.Semaphore(POOL_SIZE)
        self._pay_owed = pay
        self._on_down = on_down
        self._on_up = on_up
        self._max_owed = max_owed
        #: Whether calls are refused (see :meth:`close`).
        self.closed = False
        #: Whether an outage is declared.
        self.down = False
        self._retry_at = 0.0
        #: Timeouts counted so far: tells whether a call started after one (see timed_out).
        self.struck = 0
        # Timeouts in a row, and whether a health check is in flight.
        self._strikes = 0
        self._checking = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._owed = Owed()
        # The attempt to apply what is owed in flight, and the task retrying it.
        self._settling: asyncio.Task[bool] | None = None
        self._settler: asyncio.Task[None] | None = None

    # Calls -------------------------------------------------------------------------------
    async def run(
        self, op: Callable[[Redis], Awaitable[T]], default: T, *, items: int | None = 1
    ) -> T:
        """``await op(redis)``, or ``default`` when Redis does not answer in time or is
        unavailable, or when the invalidations owed (applied first) cannot be applied.

        Bounded by ``REDIS_TIMEOUT`` plus :data:`ITEM_ALLOWANCE` per item beyond the first,
        waiting for a connection included (``items=None``: ``op`` bounds each of its commands
        itself, for calls whose number of commands is not known in advance).
        """
        if not self.reachable():
            return default
        if self.owes() and not await self.settle():
            return default
        return await self._call(op, default, items=items)

    async def _call(
        self, op: Callable[[Redis], Awaitable[T]], default: T, *, items: int | None
    ) -> T:
        """:meth:`run` without the owed invalidations (the call that applies them)."""
        if self.closed:
            return default
        struck = self.struck
        try:
            if items is None:
                async with self._slots:
                    result = await op(self.redis)
            else:
                async with timeout_after(self.budget(items)), self._slots:
                    result = await op(self.redis)
        except TIMEOUTS as exc:
            self.timed_out(exc, struck)
            return default
        except FAILURES as exc:
            self.mark_down(exc)
            return default
        if self.down or self._strikes:
            self._strikes = 0
            self.mark_up()
        return result

    def budget(self, items: int) -> float:
        """Seconds a call of ``items`` items may take."""
        return self.timeout + (items - 1) * ITEM_ALLOWANCE

    def start(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``work`` in a task that :meth:`close` cancels."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # Availability ------------------------------------------------------------------------
    def reachable(self) -> bool:
        """Whether to call Redis now: not closed, and not down (or due for a retry)."""
        return not self.closed and (not self.down or self._retry_due())

    def _retry_due(self) -> bool:
        """While Redis is down: whether to try it now (at most once per RETRY_INTERVAL)."""
        now = self.clock()
        if now < self._retry_at:
            return False
        self._retry_at = now + RETRY_INTERVAL
        return True

    def timed_out(self, exc: BaseException, struck: int) -> None:
        """A call started when ``struck`` timeouts had been counted timed out.

        It counts as a strike only when no other timeout was counted since it started
        (calls stuck behind the same delay are one incident). The first strike sends a PING
        as a health check; :data:`STRIKES` in a row, with no answer in between, declare the
        outage.
        """
        if self.down or self.closed or struck != self.struck:
            return
        self.struck += 1
        self._strikes += 1
        if self._strikes >= STRIKES:
            self.mark_down(exc)
        elif not self._checking:
            self._checking = True
            self.start(self._health_check())

    async def _health_check(self) -> None:
        try:
            await self.run(lambda r: r.ping(), None)
        finally:
            self._checking = False

    def mark_down(self, exc: BaseException) -> None:
        """Declare an outage (``exc``: what showed it), unless one is declared."""
        if self.down:
            return
        self.down = True
        self._retry_at = self.clock() + RETRY_INTERVAL
        log.warning(
            "botdata cache: Redis at %s is unavailable (%s); using the database, "
            "in-process cooldowns and rate limits until it is back",
            self.url,
            exc.__class__.__name__ + (f": {exc}" if str(exc) else ""),
        )
        self._on_down()

    def mark_up(self) -> None:
        """End the outage, if one is declared."""
        if not self.down:
            return
        self.down = False
        self._strikes = 0
        log.info("botdata cache: Redis at %s is back", self.url)
        self._on_up()

    # Owed invalidations ------------------------------------------------------------------
    def owes(self) -> bool:
        """Whether invalidations are owed, or being applied."""
        return bool(self._owed) or self._settling is not None

    def owe(
        self, keys: Collection[str] = (), guilds: Collection[int] = (), *, everything: bool = False
    ) -> None:
        """Remember invalidations Redis did not get (``everything``: a clear) and make sure
        the background task retries them."""
        owed = self._owed
        size = len(owed.keys) + len(owed.guilds) + len(keys) + len(guilds)
        if everything or size > self._max_owed:
            owed.everything = True  # covers every key, in bounded memory
            owed.keys.clear()
            owed.guilds.clear()
        elif not owed.everything:
            owed.keys.update(keys)
            owed.guilds.update(guilds)
        if self._settler is None and not self.closed:
            self._settler = self.start(self._settle_in_background())

    async def settle(self) -> bool:
        """Apply what is owed, joining the attempt in flight if there is one. Returns True
        when nothing is owed any more, False when Redis did not take it (still owed)."""
        while self.owes():
            if self._settling is None:
                self._settling = self.start(self._pay())
            # Shielded: a cancelled caller must not cancel the attempt the others wait for.
            if not await asyncio.shield(self._settling):
                return False
        return True

    async def _pay(self) -> bool:
        """One attempt at what is owed; what fails is owed again. True if it all went."""
        owed, self._owed = self._owed, Owed()
        failed = object()
        try:
            answer = await self._call(lambda r: self._pay_owed(r, owed), failed, items=None)
        finally:
            self._settling = None
        if answer is failed:
            self.owe(owed.keys, owed.guilds, everything=owed.everything)
            return False
        return True

    async def _settle_in_background(self) -> None:
        """Retry what is owed until it is applied (a call of this process may apply it first)."""
        try:
            while self.owes():
                await asyncio.sleep(SETTLE_INTERVAL)
                if self.reachable():
                    await self.settle()
        finally:
            self._settler = None

    # Lifecycle ---------------------------------------------------------------------------
    async def close(self, *others: asyncio.Task[Any]) -> None:
        """Refuse further calls, cancel the background tasks (and ``others``), close the
        connections. Logs a warning when invalidations are still owed."""
        self.closed = True
        if self.owes():
            log.warning(
                "botdata cache: closing with invalidations Redis at %s did not get; other "
                "processes may serve the values they dropped until their TTL",
                self.url,
            )
        tasks = [*self._tasks, *others]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.redis.aclose()
