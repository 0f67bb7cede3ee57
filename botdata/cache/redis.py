"""The Redis cache (``redis.asyncio``), used when ``REDIS_URL`` is set.

Shared by every process of the bot. Each process keeps a small hot layer in front of Redis and
a background subscriber on ``<prefix>:invalidate``: :meth:`Cache.invalidate` deletes the keys
and publishes them there in one round trip, so every other process drops them from its hot
layer.

Redis being down, refusing or slow never blocks the bot: every call is bounded by
``REDIS_TIMEOUT`` (waiting for a connection included) and then behaves as a miss or a no-op
(cooldowns, locks and rate limits switch to an in-process store). One slow call is only that:
a loaded event loop or a burst makes single calls late without anything being wrong with
Redis. Redis is declared unavailable when a connection fails (refused, reset, closed), when
:data:`STRIKES` calls in a row time out, each started after the previous one had timed out
with no answer in between (a ``PING`` is sent after the first as a health check), or when the
subscriber loses its connection. While unavailable, Redis is tried again at most once per
:data:`RETRY_INTERVAL`; the outage is logged once when it starts and once when it ends.

The hot layer is only used while the subscriber is connected, because only then do the
invalidations of other processes reach it. It is emptied whenever the subscriber loses its
connection (or fails its health check: a ``PING`` it sends when an outage is declared, or
after :data:`HEARTBEAT` seconds of silence, unanswered for :data:`PING_ANSWER` seconds), as
invalidations may have been missed; it starts empty again when the subscriber is back.

Invalidations and clears are never dropped silently. One that Redis does not get (slow,
paused, down) is owed: every later call of this process applies what is owed first (a call
that cannot gets a miss, so this process never reads what it dropped), and a background task
retries every :data:`SETTLE_INTERVAL` seconds (at most once per :data:`RETRY_INTERVAL` while
Redis is down) until Redis has it. :meth:`RedisCache.clear` says whether it is done or owed.
Too many owed keys for ``CACHE_MAX_ENTRIES`` become an owed clear.

The per-message calls (cooldown claims, rank writes) and the reads and fills of
:meth:`~botdata.cache.base.Cache.get_or_load` (see its leases in :mod:`botdata.cache.base`)
are Lua scripts on one key each; those made during one turn of the event loop are sent
together in one pipeline.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sys
import uuid
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping, Sequence
from time import monotonic
from typing import TYPE_CHECKING, Any, Final, TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline, PubSub
from redis.asyncio.connection import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from botdata.cache.base import LEASE_TTL, Cache, Handler
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
#: Seconds between background attempts to apply owed invalidations.
SETTLE_INTERVAL: Final = 0.25
#: Seconds of silence after which the subscriber pings Redis.
HEARTBEAT: Final = 5.0
#: Seconds the subscriber waits for the answer to its PING before it reconnects (a half-open
#: or hung connection would otherwise go unnoticed).
PING_ANSWER: Final = 2.0
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
#: Invalidation of every key (instead of a list of keys).
EVERYTHING: Final = "*"
#: Calls in flight per cache; more wait their turn, first come first served (the subscriber
#: has a connection of its own). redis-py's BlockingConnectionPool is not fair: with 64
#: callers a few waited longer than REDIS_TIMEOUT for one of its 16 connections.
POOL_SIZE: Final = 16
#: Extra seconds a call may take per item (member, key, KiB) beyond the first: packing a
#: 10,000-member ZADD takes tens of milliseconds in Python, which is not Redis being slow.
ITEM_ALLOWANCE: Final = 50e-6
#: Keys or members per command: big writes are split so that Redis answers each part quickly
#: (a 50,000-member ZADD alone can take longer than a short timeout).
BATCH: Final = 1000

#: Claim a key (``SET NX PX``); the remaining milliseconds (``PTTL``) when it is taken.
_CLAIM_SCRIPT: Final = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return -3 end
return redis.call('PTTL', KEYS[1])
"""
#: ``_CLAIM_SCRIPT``'s answer when it claimed the key.
_CLAIMED: Final = -3
#: ``ZADD [GT] KEYS[1] score member...`` (then ``PEXPIRE`` unless ARGV[2] is 0) only when the
#: set exists and, unless ARGV[3] is empty, holds member ARGV[3] with score ARGV[4]. ARGV: 1 for
#: GT else 0, milliseconds or 0, guard member, guard score, then score, member pairs.
_ZADD_EXISTING_SCRIPT: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[3] ~= '' and tonumber(redis.call('ZSCORE', KEYS[1], ARGV[3])) ~= tonumber(ARGV[4]) then
    return 0
end
if ARGV[1] == '1' then
    redis.call('ZADD', KEYS[1], 'GT', unpack(ARGV, 5))
else
    redis.call('ZADD', KEYS[1], unpack(ARGV, 5))
end
if ARGV[2] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
"""

#: ``GET``; when the key is missing, ``SET`` lease ARGV[1] for ARGV[2] milliseconds instead.
#: The value (or another reader's lease), or nil when the lease was stored.
_GET_OR_LEASE_SCRIPT: Final = """
local value = redis.call('GET', KEYS[1])
if value then return value end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""
#: ``SET`` ARGV[2] for ARGV[3] milliseconds only while the key holds lease ARGV[1]; 1 if set.
_FILL_SCRIPT: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

_FAILED: Final[Any] = object()


async def in_batches(
    r: Redis, items: Sequence[str], queue: Callable[[Pipeline, Sequence[str]], object]
) -> None:
    """Queue ``queue(pipe, part)`` for each BATCH ``items`` and send them in one round trip."""
    async with r.pipeline(transaction=False) as pipe:
        for start in range(0, len(items), BATCH):
            queue(pipe, items[start : start + BATCH])
        await pipe.execute()


#: A script call: the script, its key, its arguments.
_Call = tuple[AsyncScript, str, list[Any]]


async def evaluate(r: Redis, calls: Sequence[_Call]) -> list[Any]:
    """Run script ``calls`` in one pipeline (EVALSHA; scripts Redis lost, after a restart,
    are loaded and their calls run again). The answers, errors in place."""
    async with r.pipeline(transaction=False) as pipe:
        for script, key, args in calls:
            pipe.evalsha(script.sha, 1, key, *args)
        answers: list[Any] = await pipe.execute(raise_on_error=False)
    missing = [i for i, answer in enumerate(answers) if isinstance(answer, NoScriptError)]
    for script in {calls[i][0] for i in missing}:
        script.sha = await r.script_load(script.script)
    for i in missing:
        script, key, args = calls[i]
        try:
            answers[i] = await r.evalsha(script.sha, 1, key, *args)
        except redis_errors.ResponseError as exc:
            answers[i] = exc
    return answers


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
        # No socket timeout: every call is bounded by one asyncio timeout of ours (see _run),
        # which also covers the wait for a connection. redis-py's socket timeout would add a
        # task per command sent and a timeout per reply read, for no extra safety. One retry,
        # on a new connection, when a connection fails: pooled connections are stale after
        # Redis restarted, which is not an outage.
        pool = ConnectionPool.from_url(
            settings.REDIS_URL,
            socket_timeout=None,
            socket_connect_timeout=settings.REDIS_TIMEOUT,
            retry=Retry(NoBackoff(), 1),
        )
        self._redis: Redis = Redis.from_pool(pool)
        # The pool opens a connection per concurrent call: this bounds them (fairly).
        self._slots = asyncio.Semaphore(POOL_SIZE)
        self._claim_script = self._redis.register_script(_CLAIM_SCRIPT)
        self._zadd_existing_script = self._redis.register_script(_ZADD_EXISTING_SCRIPT)
        self._get_or_lease_script = self._redis.register_script(_GET_OR_LEASE_SCRIPT)
        self._fill_script = self._redis.register_script(_FILL_SCRIPT)
        # Script calls of this turn of the event loop (with their size in items), waiting to
        # be sent (see _eval).
        self._queued: list[tuple[_Call, int, asyncio.Future[Any]]] = []
        self._fallback = MemoryStore(settings.CACHE_MAX_ENTRIES)
        # Claims this process made or saw (see claim): key -> True until the claim ends.
        self._claimed = MemoryStore(settings.CACHE_MAX_ENTRIES)
        self._invalidations = f"{self.prefix}:invalidate"
        self._id = uuid.uuid4().hex
        # Hot layer off until the subscriber is in.
        self._hot.set_enabled(False)
        self._down = False
        self._retry_at = 0.0
        # Timeouts in a row, and a count of them that tells whether a call started after one.
        self._strikes = 0
        self._struck = 0
        self._checking = False
        # Set when an outage is declared: the subscriber checks its own connection.
        self._probe = False
        self._closed = False
        self._subscribed = False
        self._pubsub: PubSub | None = None
        self._ready = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._handlers: dict[str, list[Handler]] = {}
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # Invalidations Redis did not get (see the module docstring): keys, or everything.
        self._owed: set[str] = set()
        self._owed_everything = False
        # The attempt to apply them in flight, and the task retrying them.
        self._settling: asyncio.Task[bool] | None = None
        self._settler: asyncio.Task[None] | None = None

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
        """Remove ``keys`` (missing ones are ignored). Does not touch the hot layer.

        Best effort, for claims and locks: lost when the backend does not answer. Copies of
        database rows are dropped with :meth:`invalidate`, which is never lost.
        """
        if keys:
            self._claimed.delete(keys)
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
        answer = await self._eval(self._claim_script, key, [milliseconds(ttl)])
        if answer is _FAILED:
            return self._fallback.claim(key, ttl)
        if answer == _CLAIMED:
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
        only_existing: bool = False,
        guard: tuple[str, float] | None = None,
    ) -> None:
        """Set the score of each member; with ``ttl`` the whole set expires after it.

        ``higher_only``: an existing member's score is only ever raised (Redis ``ZADD GT``),
        so writes of growing totals that arrive out of order keep the highest.
        ``only_existing``: nothing is written when the set does not exist; ``guard`` (member,
        score): nothing is written unless the set holds that member with that score (a script
        checks and writes atomically). One round trip. Raises
        :class:`~botdata.errors.ValidationError` unless ``ttl`` is None or > 0.
        """
        check_ttl(ttl)
        if not scores:
            return
        members = list(scores.items())
        parts = [members[start : start + BATCH] for start in range(0, len(members), BATCH)]
        if only_existing or guard is not None:
            guarded = ["", ""] if guard is None else [guard[0], repr(float(guard[1]))]
            flags = [1 if higher_only else 0, 0 if ttl is None else milliseconds(ttl), *guarded]
            calls = [
                (self._zadd_existing_script, key, flags + [x for m, v in part for x in (v, m)])
                for part in parts
            ]
            if len(calls) == 1:
                await self._eval(*calls[0])
            else:
                await self._run(lambda r: evaluate(r, calls), None, items=len(members))
            return

        async def add(r: Redis) -> None:
            async with r.pipeline(transaction=False) as pipe:
                for part in parts:
                    pipe.zadd(key, dict(part), gt=higher_only)
                if ttl is not None:
                    pipe.pexpire(key, milliseconds(ttl))
                await pipe.execute()

        await self._run(add, None, items=len(members))

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
        (then it starts when Redis answers, or when the subscriber reconnects)."""
        name = self._channel(channel)
        handlers = self._handlers.setdefault(name, [])
        handlers.append(handler)
        pubsub = self._pubsub
        if len(handlers) > 1 or pubsub is None:
            return  # already subscribed, or the subscriber subscribes when it (re)connects
        confirmed = self._confirmations.setdefault(name, asyncio.get_running_loop().create_future())
        struck = self._struck
        try:
            async with timeout_after(self.timeout):
                await pubsub.subscribe(name)
                await confirmed
        except TIMEOUTS as exc:
            self._timed_out(exc, struck)
        except FAILURES as exc:
            self._mark_down(exc)
        finally:
            self._confirmations.pop(name, None)

    # Lifecycle ---------------------------------------------------------------------------
    async def clear(self) -> bool:
        """Remove every key under the prefix (SCAN + UNLINK) and empty every hot layer.

        Returns True when done; False when Redis did not answer: the clear is then owed (see
        the module docstring), and this process's hot layer is empty already.
        """
        self._hot.clear()
        self._claimed.clear()
        self._fallback.clear()
        self._owe(everything=True)
        return self._reachable() and await self._settle()

    async def close(self) -> None:
        """Stop the subscriber and its handler tasks, close the connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owes():
            log.warning(
                "botdata cache: closing with invalidations Redis at %s did not get; other "
                "processes may serve the values they dropped until their TTL",
                self.url,
            )
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
        self._claimed.delete((key,))
        px = None if ttl is None else milliseconds(ttl)
        await self._run(lambda r: r.set(key, raw, px=px), None, items=len(raw) // 1024 + 1)

    async def _get_or_lease(self, key: str, lease: bytes) -> bytes | None:
        answer = await self._eval(self._get_or_lease_script, key, [lease, milliseconds(LEASE_TTL)])
        return None if answer is _FAILED else answer

    async def _fill(self, key: str, lease: bytes, raw: bytes, ttl: float) -> bool:
        check_ttl(ttl)
        args = [lease, raw, milliseconds(ttl)]
        return await self._eval(self._fill_script, key, args, items=len(raw) // 1024 + 1) == 1

    async def _forget(self, keys: Collection[str]) -> None:
        if not keys:
            return
        self._claimed.delete(keys)
        listed = list(keys)
        if await self._run(lambda r: self._drop(r, listed), _FAILED, items=len(listed)) is _FAILED:
            self._owe(listed)

    async def _drop(self, r: Redis, keys: list[str]) -> None:
        """Delete ``keys`` and announce it, in one round trip."""
        async with r.pipeline(transaction=False) as pipe:
            for start in range(0, len(keys), BATCH):
                pipe.delete(*keys[start : start + BATCH])
            # After the deletes (one connection's commands run in order).
            pipe.publish(self._invalidations, self._announcement(keys))
            await pipe.execute()

    async def _unlink_all(self, r: Redis) -> None:
        """Delete every key under the prefix and announce it; each command is bounded (there
        may be more keys than one command should take)."""
        cursor = 0
        while True:
            async with timeout_after(self.timeout):
                cursor, keys = await r.scan(cursor, match=f"{self.prefix}:*", count=BATCH)
            if keys:
                async with timeout_after(self.timeout + len(keys) * ITEM_ALLOWANCE):
                    await r.unlink(*keys)
            if not cursor:
                break
        async with timeout_after(self.timeout):
            await r.publish(self._invalidations, self._announcement(EVERYTHING))

    # Owed invalidations ------------------------------------------------------------------
    def _owes(self) -> bool:
        """Whether invalidations are owed, or being applied."""
        return self._owed_everything or bool(self._owed) or self._settling is not None

    def _owe(self, keys: Collection[str] = (), *, everything: bool = False) -> None:
        """Remember invalidations Redis did not get (``everything``: a clear) and make sure
        the background task retries them."""
        if everything or len(self._owed) + len(keys) > self._fallback.max_entries:
            self._owed_everything = True  # covers every key, in bounded memory
            self._owed.clear()
        elif not self._owed_everything:
            self._owed.update(keys)
        if self._settler is None and not self._closed:
            self._settler = self._start(self._settle_in_background())

    async def _settle(self) -> bool:
        """Apply what is owed, joining the attempt in flight if there is one. Returns True
        when nothing is owed any more, False when Redis did not take it (still owed)."""
        while self._owes():
            if self._settling is None:
                self._settling = self._start(self._pay())
            # Shielded: a cancelled caller must not cancel the attempt the others wait for.
            if not await asyncio.shield(self._settling):
                return False
        return True

    async def _pay(self) -> bool:
        """One attempt at what is owed; what fails is owed again. True if it all went."""
        everything, keys = self._owed_everything, list(self._owed)
        self._owed_everything, self._owed = False, set()
        try:
            if everything:
                answer = await self._call(self._unlink_all, _FAILED, items=None)
            else:
                answer = await self._call(lambda r: self._drop(r, keys), _FAILED, items=len(keys))
        finally:
            self._settling = None
        if answer is _FAILED:
            self._owe(keys, everything=everything)
            return False
        return True

    async def _settle_in_background(self) -> None:
        """Retry what is owed until it is applied (a call of this process may apply it first)."""
        try:
            while self._owes():
                await asyncio.sleep(SETTLE_INTERVAL)
                if self._reachable():
                    await self._settle()
        finally:
            self._settler = None

    def _start(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``work`` in a task that :meth:`close` cancels."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # Scripts -----------------------------------------------------------------------------
    async def _eval(self, script: AsyncScript, key: str, args: list[Any], *, items: int = 1) -> Any:
        """``script`` on ``key`` with ``args`` (``items``: its size, as for :meth:`_run`): its
        answer, or ``_FAILED`` (Redis unavailable or slow). Raises what the script raises (a
        key of another type).

        Sent in one pipeline with the other script calls made during this turn of the event
        loop (the first of them sends them all): under load, the claims, rank writes and
        cache reads of messages handled together share one round trip.
        """
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queued.append(((script, key, args), items, future))
        if len(self._queued) > 1:
            return await future  # the first call of this turn sends it
        queued: list[tuple[_Call, int, asyncio.Future[Any]]] | None = None
        answers: list[Any] | None = None
        try:
            await asyncio.sleep(0)  # the other calls of this turn join
            queued, self._queued = self._queued, []
            calls = [call for call, _, _ in queued]
            size = sum(size for _, size, _ in queued)
            answers = await self._run(lambda r: evaluate(r, calls), None, items=size)
        finally:
            if queued is None:  # cancelled before sending: the others get a miss
                queued, self._queued = self._queued, []
            for index, (_, _, waiting) in enumerate(queued):
                answer = _FAILED if answers is None else answers[index]
                if waiting.done():
                    pass
                elif isinstance(answer, Exception):
                    waiting.set_exception(answer)
                else:
                    waiting.set_result(answer)
        return future.result()

    def _announcement(self, keys: list[str] | str) -> str:
        """The invalidation message of ``keys`` (a list, or EVERYTHING), signed by this cache
        (it applies its own invalidations when it makes them, not again when they echo)."""
        return json.dumps({"by": self._id, "keys": keys})

    # Availability ------------------------------------------------------------------------
    async def _run(
        self, op: Callable[[Redis], Awaitable[T]], default: T, *, items: int | None = 1
    ) -> T:
        """``await op(redis)``, or ``default`` when Redis does not answer in time or is
        unavailable, or when the invalidations owed (applied first) cannot be applied.

        Bounded by ``REDIS_TIMEOUT`` plus :data:`ITEM_ALLOWANCE` per item beyond the first,
        waiting for a connection included (``items=None``: ``op`` bounds each of its commands
        itself, for calls whose number of commands is not known in advance).
        """
        if not self._reachable():
            return default
        if self._owes() and not await self._settle():
            return default
        return await self._call(op, default, items=items)

    async def _call(
        self, op: Callable[[Redis], Awaitable[T]], default: T, *, items: int | None
    ) -> T:
        """:meth:`_run` without the owed invalidations (the call that applies them)."""
        if self._closed:
            return default
        struck = self._struck
        try:
            if items is None:
                async with self._slots:
                    result = await op(self._redis)
            else:
                budget = self.timeout + (items - 1) * ITEM_ALLOWANCE
                async with timeout_after(budget), self._slots:
                    result = await op(self._redis)
        except TIMEOUTS as exc:
            self._timed_out(exc, struck)
            return default
        except FAILURES as exc:
            self._mark_down(exc)
            return default
        if self._down or self._strikes:
            self._answered()
        return result

    def _reachable(self) -> bool:
        """Whether to call Redis now: not closed, and not down (or due for a retry)."""
        return not self._closed and (not self._down or self._retry_due())

    def _retry_due(self) -> bool:
        """While Redis is down: whether to try it now (at most once per RETRY_INTERVAL)."""
        now = monotonic()
        if now < self._retry_at:
            return False
        self._retry_at = now + RETRY_INTERVAL
        return True

    def _timed_out(self, exc: BaseException, struck: int) -> None:
        """A call started when ``struck`` timeouts had been counted timed out.

        It counts as a strike only when no other timeout was counted since it started
        (calls stuck behind the same delay are one incident). The first strike sends a PING
        as a health check; :data:`STRIKES` in a row, with no answer in between, declare the
        outage.
        """
        if self._down or self._closed or struck != self._struck:
            return
        self._struck += 1
        self._strikes += 1
        if self._strikes >= STRIKES:
            self._mark_down(exc)
        elif not self._checking:
            self._checking = True
            self._start(self._health_check())

    async def _health_check(self) -> None:
        try:
            await self._run(lambda r: r.ping(), None)
        finally:
            self._checking = False

    def _answered(self) -> None:
        """Redis answered: no strike stands; end the outage."""
        self._strikes = 0
        self._mark_up()

    def _mark_down(self, exc: BaseException) -> None:
        if self._down:
            return
        self._down = True
        self._retry_at = monotonic() + RETRY_INTERVAL
        self._probe = True
        log.warning(
            "botdata cache: Redis at %s is unavailable (%s); using the database, "
            "in-process cooldowns and rate limits until it is back",
            self.url,
            exc.__class__.__name__ + (f": {exc}" if str(exc) else ""),
        )

    def _mark_up(self) -> None:
        if not self._down:
            return
        self._down = False
        self._strikes = 0
        log.info("botdata cache: Redis at %s is back", self.url)
        self._fallback.clear()

    def _update_hot(self) -> None:
        """The hot layer is on only while the subscriber is in (and starts empty)."""
        if self._subscribed != self._hot.enabled:
            self._hot.set_enabled(self._subscribed)
            self._claimed.clear()

    # Subscriber --------------------------------------------------------------------------
    async def _listen(self) -> None:
        """Run the subscriber until cancelled, reconnecting after failures."""
        while True:
            try:
                await self._listen_once()
            except (*TIMEOUTS, *FAILURES) as exc:
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
            self._probe = False
            heard = monotonic()
            pinged: float | None = None  # when the unanswered PING was sent
            while True:
                wait = RETRY_INTERVAL
                if pinged is not None:
                    wait = min(wait, max(0.0, pinged + PING_ANSWER - monotonic()))
                message = await pubsub.get_message(timeout=wait)
                now = monotonic()
                if message is not None:
                    heard, pinged = now, None
                    await self._on_message(message)
                elif pinged is not None:
                    if now - pinged >= PING_ANSWER:
                        raise redis_errors.ConnectionError("no answer to the subscriber's PING")
                elif self._probe or now - heard > HEARTBEAT:
                    self._probe = False
                    async with timeout_after(self.timeout):
                        await pubsub.ping()
                    pinged = now
        finally:
            self._pubsub = None
            await pubsub.aclose()

    async def _on_message(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        channel = message["channel"].decode() if message["channel"] is not None else None
        if kind == "subscribe" and channel == self._invalidations:
            # In: everything published from now on reaches us; what came before may be lost.
            self._subscribed = True
            self._mark_up()
            self._update_hot()
            self._ready.set()
        elif kind == "subscribe" and channel is not None:
            confirmed = self._confirmations.pop(channel, None)
            if confirmed is not None and not confirmed.done():
                confirmed.set_result(None)
        elif kind == "message" and channel == self._invalidations:
            try:
                announced = json.loads(message["data"])
            except ValueError:
                announced = None
            if not isinstance(announced, dict):
                log.warning("botdata cache: bad invalidation message %r", message["data"])
                announced = {"keys": EVERYTHING}
            if announced.get("by") == self._id:
                return  # our own: applied here when it was made
            keys = announced.get("keys")
            if isinstance(keys, list):
                dropped = [str(key) for key in keys]
                self._hot.drop(dropped)
                self._claimed.delete(dropped)
            else:
                self._hot.clear()
                self._claimed.clear()
        elif kind == "message" and channel is not None:
            text = message["data"].decode()
            for handler in self._handlers.get(channel, ()):
                self._start(self._deliver(handler, channel, text))

    async def _deliver(self, handler: Handler, channel: str, message: str) -> None:
        try:
            await handler(message)
        except Exception:
            log.exception("botdata cache: handler of channel %r failed", channel)
