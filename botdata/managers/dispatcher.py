"""The reminder dispatcher: one task per process hands due reminders to a callback.

How it works (``db.reminders.start(callback)`` runs it):

1. Claim: one statement marks up to :data:`BATCH` due, unclaimed reminders as taken by this
   process until ``now + REMINDER_CLAIM_LEASE`` and returns them (PostgreSQL: ``FOR UPDATE SKIP
   LOCKED``, so dispatchers in several processes take disjoint batches; SQLite: the statement
   holds the database write lock). Each reminder is therefore delivered by one process.
2. Deliver: the callbacks of a batch run concurrently; then the delivered reminders are marked
   sent with one statement. A callback that raises leaves its reminder unsent: ``attempts``
   goes up and the claim is extended by a backoff (``REMINDER_RETRY_DELAY`` doubled per
   earlier failure, at most an hour), after which any dispatcher retries it. A process that
   dies holding claims loses them when the lease ends (a reminder whose callback had already
   run by then is delivered again: at least once, never lost).
3. Sleep until the next reminder is due (or a claim ends), found through the ``(sent_at,
   due_at)`` index, never by scanning the table; at most ``REMINDER_RECHECK_INTERVAL`` seconds.
   A reminder created sooner wakes it early: in this process through an event, in others
   through the cache's pub/sub channel :data:`WAKE_CHANNEL`.

Reminders that came due while no dispatcher ran are claimed by the first pass after start-up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from tortoise import Tortoise
from tortoise.expressions import F

from botdata.errors import DispatcherRunningError
from botdata.managers.numbering import fetch
from botdata.models import Reminder
from botdata.schemas import ReminderSchema

if TYPE_CHECKING:
    from botdata.database import Database

log = logging.getLogger("botdata.reminders")

#: What the dispatcher calls with each due reminder.
Callback = Callable[[ReminderSchema], Awaitable[None]]

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
_COLUMNS = "id, guild_id, user_id, channel_id, content, due_at, sent_at, attempts, created_at"

#: Claims due reminders; $1 the lease's end, $2 now, $3 the batch size.
CLAIM_SQL = {
    "postgres": (
        "UPDATE reminders SET claimed_until = $1 WHERE id IN ("
        "SELECT id FROM reminders WHERE sent_at IS NULL AND due_at <= $2 "
        "AND (claimed_until IS NULL OR claimed_until <= $2) "
        "ORDER BY sent_at, due_at LIMIT $3 FOR UPDATE SKIP LOCKED) "
        f"RETURNING {_COLUMNS}"
    ),
    "sqlite": (
        "UPDATE reminders SET claimed_until = $1 WHERE id IN ("
        "SELECT id FROM reminders WHERE sent_at IS NULL AND due_at <= $2 "
        "AND (claimed_until IS NULL OR claimed_until <= $2) "
        "ORDER BY sent_at, due_at LIMIT $3) "
        f"RETURNING {_COLUMNS}"
    ),
}

#: When a pass may find work next ($1 now): the end of the soonest claim on a due reminder
#: (``retry_at``; only due reminders are ever claimed) and the soonest future due time.
NEXT_WAKE_SQL = (
    "SELECT (SELECT MIN(COALESCE(claimed_until, due_at)) FROM reminders "
    "WHERE sent_at IS NULL AND due_at <= $1) AS retry_at, "
    "(SELECT due_at FROM reminders WHERE sent_at IS NULL AND due_at > $1 "
    "ORDER BY sent_at, due_at LIMIT 1) AS next_due"
)


def reminder_schema(row: dict[str, Any]) -> ReminderSchema:
    """A reminder from a raw row (SQLite returns timestamps as text)."""
    fields = Reminder._meta.fields_map
    return ReminderSchema.model_validate(
        {column: fields[column].to_python_value(value) for column, value in row.items()}
    )


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class ReminderDispatcher:
    """Delivers due reminders of every guild to a callback; one per :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._callback: Callback | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._wake_at: datetime | None = None
        self._stopping = False
        self._subscribed = False

    @property
    def running(self) -> bool:
        """Whether the dispatcher task is running."""
        return self._task is not None and not self._task.done()

    async def start(self, callback: Callback) -> None:
        """Start delivering: ``await callback(reminder)`` for each reminder when it is due.

        Raises :class:`~botdata.errors.DispatcherRunningError` when already running,
        :class:`TypeError` when ``callback`` is not callable.
        """
        if self.running:
            raise DispatcherRunningError("the reminder dispatcher is running already")
        if not callable(callback):
            raise TypeError(f"callback must be an async function, not {callback!r}")
        if not self._subscribed:
            await self.db.cache.subscribe(WAKE_CHANNEL, self._on_wake_message)
            self._subscribed = True
        self._callback = callback
        self._stopping = False
        self._wake_at = None
        self._task = asyncio.create_task(self._run(), name="botdata-reminder-dispatcher")

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop the dispatcher; harmless when it is not running.

        Callbacks in progress get ``grace`` seconds to finish; then they are cancelled and
        their reminders released for any dispatcher. Returns when the task has ended.
        """
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except asyncio.TimeoutError:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    def notify(self, due_at: datetime) -> None:
        """A reminder due at ``due_at`` was created: wake the dispatcher if that is sooner."""
        if self.running and (self._wake_at is None or due_at < self._wake_at):
            self._wake.set()

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
        while not self._stopping:
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
        now = _utcnow()
        claimed = await self._claim(now)
        if claimed:
            await self._deliver_batch(claimed)
            return
        rows = await fetch(
            Tortoise.get_connection("default"), self.db.dialect, NEXT_WAKE_SQL, [now]
        )
        recheck = now + timedelta(seconds=self.db.settings.REMINDER_RECHECK_INTERVAL)
        due_at = Reminder._meta.fields_map["due_at"]
        times = [
            due_at.to_python_value(value)
            for value in rows[0].values()
            if value is not None
        ]
        self._wake_at = min([*times, recheck])
        await self._sleep((self._wake_at - _utcnow()).total_seconds())

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds`` or until woken (a sooner reminder, ``stop()``)."""
        with suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(seconds, _MIN_SLEEP))

    async def _claim(self, now: datetime) -> list[ReminderSchema]:
        lease = timedelta(seconds=self.db.settings.REMINDER_CLAIM_LEASE)
        rows = await fetch(
            Tortoise.get_connection("default"),
            self.db.dialect,
            CLAIM_SQL[self.db.dialect],
            [now + lease, now, BATCH],
        )
        return sorted((reminder_schema(row) for row in rows), key=lambda r: (r.due_at, r.id))

    async def _deliver_batch(self, claimed: list[ReminderSchema]) -> None:
        """Run the callbacks of a batch concurrently, then mark the delivered ones sent with
        one statement (also when stopped midway)."""
        delivered: list[int] = []
        try:
            outcomes = await asyncio.gather(
                *(self._deliver(reminder, delivered) for reminder in claimed),
                return_exceptions=True,
            )
        finally:
            if delivered:
                now = _utcnow()
                await Reminder.filter(id__in=delivered).update(
                    sent_at=now, claimed_until=None, updated_at=now
                )
        for reminder, outcome in zip(claimed, outcomes, strict=True):
            if isinstance(outcome, Exception):
                log.error(
                    "botdata: recording the failed delivery of reminder %d failed",
                    reminder.id,
                    exc_info=outcome,
                )

    async def _deliver(self, reminder: ReminderSchema, delivered: list[int]) -> None:
        """Hand ``reminder`` to the callback; on success add its id to ``delivered``."""
        assert self._callback is not None
        try:
            await self._callback(reminder)
        except asyncio.CancelledError:
            # Stopped mid-delivery: let any dispatcher take it at once (no failure counted).
            await Reminder.filter(id=reminder.id, sent_at=None).update(claimed_until=None)
            raise
        except Exception:
            log.exception("botdata: delivering reminder %d failed; it will be retried", reminder.id)
            await self._retry_later(reminder)
        else:
            delivered.append(reminder.id)

    async def _retry_later(self, reminder: ReminderSchema) -> None:
        delay = min(
            self.db.settings.REMINDER_RETRY_DELAY * 2.0 ** min(reminder.attempts, 32),
            MAX_RETRY_DELAY,
        )
        now = _utcnow()
        await Reminder.filter(id=reminder.id, sent_at=None).update(
            attempts=F("attempts") + 1,
            claimed_until=now + timedelta(seconds=delay),
            updated_at=now,
        )
