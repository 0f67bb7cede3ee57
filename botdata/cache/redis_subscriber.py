"""The Redis cache's subscriber: one pub/sub connection per cache, kept open in the background.

It listens to the invalidation channel (announcements of the keys other processes dropped) and
to the channels of :meth:`~botdata.cache.base.Cache.subscribe`. Only while it is in do the
invalidations of other processes reach this process, so the hot layer is on only then: it is
switched off (emptied) whenever the subscriber loses its connection (or fails its health
check: a ``PING`` it sends when an outage is declared, or after :data:`HEARTBEAT` seconds of
silence, unanswered for :data:`PING_ANSWER` seconds), and on again (empty) when it is back.
"""

from __future__ import annotations

import asyncio
import json
import logging
from asyncio import timeout as timeout_after
from collections.abc import Callable
from typing import Any, Final

from redis import exceptions as redis_errors
from redis.asyncio.client import PubSub

from botdata.cache.base import Handler
from botdata.cache.redis_link import FAILURES, RETRY_INTERVAL, TIMEOUTS, RedisLink

log = logging.getLogger("botdata.cache")

#: Seconds of silence after which the subscriber pings Redis.
HEARTBEAT: Final = 5.0
#: Seconds the subscriber waits for the answer to its PING before it reconnects (a half-open
#: or hung connection would otherwise go unnoticed).
PING_ANSWER: Final = 2.0


class Subscriber:
    """Listens on ``invalidations`` and the subscribed channels through ``link``.

    ``on_connected(bool)`` is called when the subscriber gets in (True) or loses its
    connection (False); ``on_invalidation(announced)`` with each invalidation announcement
    (a dict, or None when it could not be read) made by another cache than ``cache_id``.
    """

    def __init__(
        self,
        link: RedisLink,
        invalidations: str,
        cache_id: str,
        *,
        on_connected: Callable[[bool], None],
        on_invalidation: Callable[[dict[str, Any] | None], None],
    ) -> None:
        self._link = link
        self._invalidations = invalidations
        self._id = cache_id
        self._on_connected = on_connected
        self._on_invalidation = on_invalidation
        self._handlers: dict[str, list[Handler]] = {}
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self._pubsub: PubSub | None = None
        # Set when an outage is declared: the subscriber checks its own connection.
        self._probe = False
        self._ready = asyncio.Event()
        #: The task running the subscriber (see :meth:`start`).
        self.task: asyncio.Task[None] | None = None

    async def start(self, name: str) -> None:
        """Start the subscriber task (called ``name``); return once it is in, or has failed
        once (Redis down), or after four times ``REDIS_TIMEOUT``."""
        self.task = asyncio.create_task(self._listen(), name=name)
        try:
            async with timeout_after(self._link.timeout * 4):
                await self._ready.wait()
        except TimeoutError:
            pass  # slow Redis: the subscriber keeps trying in the background

    def probe(self) -> None:
        """Have the subscriber check its connection (an outage was declared)."""
        self._probe = True

    async def subscribe(self, name: str, handler: Handler) -> None:
        """Call ``await handler(message)`` (in a task of its own) for each message on channel
        ``name``. Returns once Redis confirmed the subscription, or after ``REDIS_TIMEOUT``
        (then it starts when Redis answers, or when the subscriber reconnects)."""
        handlers = self._handlers.setdefault(name, [])
        handlers.append(handler)
        pubsub = self._pubsub
        if len(handlers) > 1 or pubsub is None:
            return  # already subscribed, or the subscriber subscribes when it (re)connects
        confirmed = self._confirmations.setdefault(name, asyncio.get_running_loop().create_future())
        struck = self._link.struck
        try:
            async with timeout_after(self._link.timeout):
                await pubsub.subscribe(name)
                await confirmed
        except TIMEOUTS as exc:
            self._link.timed_out(exc, struck)
        except FAILURES as exc:
            self._link.mark_down(exc)
        finally:
            self._confirmations.pop(name, None)

    async def _listen(self) -> None:
        """Run the subscriber until cancelled, reconnecting after failures."""
        while True:
            try:
                await self._listen_once()
            except (*TIMEOUTS, *FAILURES) as exc:
                self._link.mark_down(exc)
            except Exception:
                log.exception("botdata cache: the Redis subscriber failed; restarting it")
            finally:
                self._on_connected(False)
                self._ready.set()
            await asyncio.sleep(RETRY_INTERVAL)

    async def _listen_once(self) -> None:
        pubsub = self._link.redis.pubsub()
        timeout, clock = self._link.timeout, self._link.clock
        try:
            channels = {self._invalidations, *self._handlers}
            async with timeout_after(timeout):
                await pubsub.subscribe(*channels)
            # From here subscribe() subscribes on this connection itself; catch up with the
            # channels it added meanwhile.
            self._pubsub = pubsub
            added = set(self._handlers) - channels
            if added:
                async with timeout_after(timeout):
                    await pubsub.subscribe(*added)
            self._probe = False
            heard = clock()
            pinged: float | None = None  # when the unanswered PING was sent
            while True:
                wait = RETRY_INTERVAL
                if pinged is not None:
                    wait = min(wait, max(0.0, pinged + PING_ANSWER - clock()))
                message = await pubsub.get_message(timeout=wait)
                now = clock()
                if message is not None:
                    heard, pinged = now, None
                    self._on_message(message)
                elif pinged is not None:
                    if now - pinged >= PING_ANSWER:
                        raise redis_errors.ConnectionError("no answer to the subscriber's PING")
                elif self._probe or now - heard > HEARTBEAT:
                    self._probe = False
                    async with timeout_after(timeout):
                        await pubsub.ping()
                    pinged = now
        finally:
            self._pubsub = None
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        channel = message["channel"].decode() if message["channel"] is not None else None
        if kind == "subscribe" and channel == self._invalidations:
            # In: everything published from now on reaches us; what came before may be lost.
            self._link.mark_up()
            self._on_connected(True)
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
                announced = None
            elif announced.get("by") == self._id:
                return  # our own: applied here when it was made
            self._on_invalidation(announced)
        elif kind == "message" and channel is not None:
            text = message["data"].decode()
            for handler in self._handlers.get(channel, ()):
                self._link.start(self._deliver(handler, channel, text))

    async def _deliver(self, handler: Handler, channel: str, message: str) -> None:
        try:
            await handler(message)
        except Exception:
            log.exception("botdata cache: handler of channel %r failed", channel)
