"""The reminder dispatcher: one task per handle hands due reminders to delivery targets.

How it works (``db.reminders.start(callback)`` runs it):

1. Claim: one statement marks up to :data:`BATCH` due, unclaimed reminders as taken by this
   process until ``now + REMINDER_CLAIM_LEASE`` and returns them (the claim/lease cycle of
   :mod:`botdata.managers.claims`: PostgreSQL ``FOR UPDATE SKIP LOCKED``, so dispatchers in
   several processes take disjoint batches; SQLite: the statement holds the database write
   lock). Each reminder is therefore delivered by one process.
2. Deliver: the callbacks of a batch run concurrently; each reminder is marked sent as soon as
   its callback returns (an ``UPDATE`` at once; the reminders delivered while one is in flight
   share the next, :mod:`botdata.coalesce`). A callback that raises leaves its reminder
   unsent: ``attempts`` goes up and the claim is extended by a backoff
   (``REMINDER_RETRY_DELAY`` doubled per earlier failure, at most an hour), after which any
   dispatcher retries it. A process that dies holding claims loses them when the lease ends,
   and another dispatcher delivers them: at least once, never lost (see the bound below).
3. Sleep until the next reminder is due (or a claim ends), found through the ``(sent_at,
   due_at)`` index, never by scanning the table; at most ``REMINDER_RECHECK_INTERVAL`` seconds.
   A reminder created sooner wakes it early: in this process through an event, in others
   through the cache's pub/sub channel :data:`WAKE_CHANNEL`.

Reminders that came due while no dispatcher ran are claimed by the first pass after start-up.

Delivery targets
    Several callbacks can share one handle's dispatcher, e.g. two bots in one process on one
    :class:`~botdata.database.Database` (each bot's reminders cog starts one). Each is a target
    with an optional ``accepts(guild_id) -> bool`` saying which guilds it delivers (a bot: the
    guilds it sees). A reminder goes to the first target, in the order they started, that
    accepts its guild; when none does, to the first target (the fallback: it may still reach
    the channel through Discord's API, or the member by DM). ``stop(callback)`` removes one
    target (its running callbacks get the grace, then are cancelled and their reminders
    released); the dispatcher runs while a target is left and stops with the last.

Duplicates after a crash (the remaining bound)
    A reminder is delivered again only when its process dies (SIGKILL, power loss) after the
    callback delivered it and before its ``UPDATE ... sent_at`` committed: another dispatcher
    takes it when the lease ends. So one crash repeats at most the reminders whose callbacks
    were running at that moment, at most :data:`BATCH`, and in practice only those between a
    delivery and the commit of its mark (at most two ``UPDATE`` round trips: the one in flight
    and its own). Measured by
    ``test_a_killed_dispatcher_repeats_only_deliveries_it_had_not_recorded``: a dispatcher
    SIGKILLed after 15 of 30 staggered deliveries caused 0 or 1 repeats per kill on both
    backends (marking once per batch had repeated all 15). A callback can close that gap with an
    idempotent delivery keyed by the reminder's id: the reminders cog sends each message with
    the reminder's id as Discord ``nonce`` and ``enforce_nonce``, so Discord drops a repeat that
    comes within its nonce window (a few minutes; the default lease is one).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from tortoise import Tortoise
from tortoise.expressions import F

from botdata.coalesce import Coalescer
from botdata.errors import DispatcherRunningError
from botdata.managers.claims import ClaimQueue
from botdata.managers.sql import fetch
from botdata.models import Reminder
from botdata.schemas import ReminderSchema

if TYPE_CHECKING:
    from botdata.database import Database

log = logging.getLogger("botdata.reminders")

#: What the dispatcher calls with each due reminder.
Callback = Callable[[ReminderSchema], Awaitable[None]]
#: Whether a delivery target delivers the reminders of a guild: ``accepts(guild_id)``.
Accepts = Callable[[int], bool]

#: Pub/sub channel (of the cache) announcing a new reminder's due time to every process.
WAKE_CHANNEL = "reminders:due"
#: Reminders claimed (and delivered concurrently) at a time.
BATCH = 100
#: Longest wait before a failed delivery is retried, in seconds.
MAX_RETRY_DELAY = 3600.0
#: Seconds ``stop()`` lets running callbacks finish before cancelling them.
STOP_GRACE = 10.0
# Shortest sleep between passes (a pass that found work runs the next one at once).
_MIN_SLEEP = 0.01

#: Due, unsent reminders (claimed through the index on ``(sent_at, due_at)``).
REMINDERS: ClaimQueue[ReminderSchema] = ClaimQueue(
    Reminder,
    ReminderSchema,
    due="sent_at IS NULL AND due_at <= $1",
    order=("due_at", "id"),
    pending={"sent_at__isnull": True},
    done="sent_at",
)

#: When a pass may find work next ($1 now): the end of the soonest claim on a due reminder
#: (``retry_at``; only due reminders are ever claimed) and the soonest future due time.
NEXT_WAKE_SQL = (
    "SELECT (SELECT MIN(COALESCE(claimed_until, due_at)) FROM reminders "
    "WHERE sent_at IS NULL AND due_at <= $1) AS retry_at, "
    "(SELECT due_at FROM reminders WHERE sent_at IS NULL AND due_at > $1 "
    "ORDER BY sent_at, due_at LIMIT 1) AS next_due"
)


@dataclass(eq=False)
class _Target:
    """A callback delivering reminders, the guilds it accepts and its running deliveries."""

    callback: Callback
    accepts: Accepts | None
    deliveries: set[asyncio.Task[None]] = field(default_factory=set)

    def takes(self, guild_id: int) -> bool:
        """Whether it accepts the guild; a failing ``accepts`` (logged) means no."""
        if self.accepts is None:
            return True
        try:
            return bool(self.accepts(guild_id))
        except Exception:
            log.exception("botdata: the accepts() of reminder callback %r failed", self.callback)
            return False


class ReminderDispatcher:
    """Delivers due reminders of every guild to its targets; one per :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._targets: list[_Target] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        # The dispatcher task while it sleeps on the clock (a wake cancels that sleep).
        self._sleeper: asyncio.Task[None] | None = None
        self._wake_at: datetime | None = None
        self._subscribed = False
        # Delivered reminders are marked sent at once, those delivered together in one UPDATE.
        self._sent: Coalescer[int] = Coalescer(self._mark_sent)

    @property
    def running(self) -> bool:
        """Whether the dispatcher task is running."""
        return self._task is not None and not self._task.done()

    async def start(self, callback: Callback, accepts: Accepts | None = None) -> None:
        """Add a delivery target: ``await callback(reminder)`` for each due reminder of a guild
        ``accepts`` accepts (None: every guild), as the module docstring describes; the
        dispatcher starts with the first target.

        Raises :class:`~botdata.errors.DispatcherRunningError` when ``callback`` is a target
        already, :class:`TypeError` when ``callback`` or ``accepts`` is not callable.
        """
        if not callable(callback):
            raise TypeError(f"callback must be an async function, not {callback!r}")
        if accepts is not None and not callable(accepts):
            raise TypeError(f"accepts must be a function of a guild id, not {accepts!r}")
        if any(target.callback == callback for target in self._targets):
            raise DispatcherRunningError(f"{callback!r} is delivering reminders already")
        self._targets.append(_Target(callback, accepts))
        if self.running:
            return
        if not self._subscribed:
            await self.db.cache.subscribe(WAKE_CHANNEL, self._on_wake_message)
            self._subscribed = True
        self._wake_at = None
        self._task = asyncio.create_task(self._run(), name="botdata-reminder-dispatcher")
        self.db.clock.drive(self._task)

    async def stop(self, callback: Callback | None = None, grace: float = STOP_GRACE) -> None:
        """Remove the target ``callback`` (None: every target); harmless when it is none.

        The dispatcher stops with its last target. Callbacks in progress of the removed
        targets get ``grace`` seconds to finish; then they are cancelled and their reminders
        released for any dispatcher. Returns when they have ended (and the task, if stopped).
        """
        removed = [t for t in self._targets if callback is None or t.callback == callback]
        self._targets = [t for t in self._targets if t not in removed]
        if self._targets:
            await _finish((task for t in removed for task in t.deliveries), grace)
            return
        task, self._task = self._task, None
        if task is None:
            return
        self._wake_up()  # the task ends after its pass: it is no longer self._task
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except TimeoutError:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    def notify(self, due_at: datetime) -> None:
        """A reminder due at ``due_at`` was created: wake the dispatcher if that is sooner."""
        if self.running and (self._wake_at is None or due_at < self._wake_at):
            self._wake_up()

    def _wake_up(self) -> None:
        """End the dispatcher's sleep now (or, mid-pass, the next one before it starts)."""
        self._wake.set()
        if self._sleeper is not None:  # cancelled once: _sleep() takes back one cancellation
            self._sleeper.cancel()
            self._sleeper = None

    async def _on_wake_message(self, message: str) -> None:
        try:
            due_at = datetime.fromisoformat(message)
        except ValueError:
            return
        if due_at.utcoffset() is not None:
            self.notify(due_at)

    # The loop -----------------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while self._task is asyncio.current_task():
            try:
                await self._pass()
                failures = 0
            except Exception:
                failures += 1
                log.exception("botdata: reminder dispatcher pass failed (%d in a row)", failures)
                await self._sleep(min(2.0**failures, self.db.settings.REMINDER_RECHECK_INTERVAL))

    async def _pass(self) -> None:
        """Deliver what is due now, or sleep until something may be."""
        self._wake.clear()
        now = self.db.clock.now()
        claimed = await self._claim(now)
        if claimed:
            await self._deliver_batch(claimed)
            return
        rows = await fetch(
            Tortoise.get_connection("default"), self.db.dialect, NEXT_WAKE_SQL, [now]
        )
        recheck = now + timedelta(seconds=self.db.settings.REMINDER_RECHECK_INTERVAL)
        due_at = Reminder._meta.fields_map["due_at"]
        times = [due_at.to_python_value(value) for value in rows[0].values() if value is not None]
        self._wake_at = min([*times, recheck])
        await self._sleep((self._wake_at - self.db.clock.now()).total_seconds())

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the handle's clock or until woken (a sooner reminder,
        ``stop()``): :meth:`_wake_up` cancels the sleep, and that cancellation ends here."""
        if self._wake.is_set():
            return
        task = asyncio.current_task()
        assert task is not None
        cancelling = task.cancelling()
        self._sleeper = task
        try:
            await self.db.clock.sleep(max(seconds, _MIN_SLEEP))
        except asyncio.CancelledError:
            # Woken (the event is set) and not also cancelled from outside: carry on.
            if not self._wake.is_set() or task.uncancel() > cancelling:
                raise
        finally:
            self._sleeper = None

    async def _claim(self, now: datetime) -> list[ReminderSchema]:
        lease = timedelta(seconds=self.db.settings.REMINDER_CLAIM_LEASE)
        return await REMINDERS.claim(self.db.dialect, now, now + lease, BATCH)

    def _target(self, guild_id: int) -> _Target:
        """The target delivering the guild's reminders (there is one: the caller checked)."""
        return next((t for t in self._targets if t.takes(guild_id)), self._targets[0])

    async def _deliver_batch(self, claimed: list[ReminderSchema]) -> None:
        """Run the callbacks of a batch concurrently, each reminder going to its target."""
        if not self._targets:  # the last target left since the claim
            await REMINDERS.release(id__in=[r.id for r in claimed])
            return
        deliveries = []
        for reminder in claimed:
            target = self._target(reminder.guild_id)
            delivery = asyncio.create_task(self._deliver(target.callback, reminder))
            target.deliveries.add(delivery)
            delivery.add_done_callback(target.deliveries.discard)
            deliveries.append(delivery)
        outcomes = await asyncio.gather(*deliveries, return_exceptions=True)
        for reminder, outcome in zip(claimed, outcomes, strict=True):
            if isinstance(outcome, Exception):
                log.error(
                    "botdata: recording the outcome of reminder %d failed (it is delivered "
                    "again when its claim ends)",
                    reminder.id,
                    exc_info=outcome,
                )

    async def _deliver(self, callback: Callback, reminder: ReminderSchema) -> None:
        """Hand ``reminder`` to ``callback``; mark it sent as soon as the callback returns."""
        try:
            await callback(reminder)
        except asyncio.CancelledError:
            # Stopped mid-delivery: let any dispatcher take it at once (no failure counted).
            await REMINDERS.release(id=reminder.id)
            raise
        except Exception:
            log.exception("botdata: delivering reminder %d failed; it will be retried", reminder.id)
            await self._retry_later(reminder)
        else:
            await self._sent.add(reminder.id)  # shielded: a stop arriving now keeps the mark

    async def _mark_sent(self, ids: set[int]) -> None:
        await REMINDERS.complete(self.db.clock.now(), id__in=ids)

    async def _retry_later(self, reminder: ReminderSchema) -> None:
        delay = min(
            self.db.settings.REMINDER_RETRY_DELAY * 2.0 ** min(reminder.attempts, 32),
            MAX_RETRY_DELAY,
        )
        await REMINDERS.release(
            retry_at=self.db.clock.now() + timedelta(seconds=delay),
            values={"attempts": F("attempts") + 1},
            id=reminder.id,
        )


async def _finish(deliveries: Iterable[asyncio.Task[None]], grace: float) -> None:
    """Let ``deliveries`` run for ``grace`` seconds, then cancel those still running; returns
    when all have ended (a cancelled delivery releases its reminder)."""
    running = set(deliveries)
    if not running:
        return
    _, late = await asyncio.wait(running, timeout=grace)
    for delivery in late:
        delivery.cancel()
    await asyncio.gather(*running, return_exceptions=True)
