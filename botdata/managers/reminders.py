"""Reminders: messages to deliver to a member at a given time: ``db.reminders``.

A member may have ``REMINDER_MAX_PER_USER`` pending reminders per guild. The cap holds with any
number of concurrent creators in any number of processes: the count and the insert run in one
transaction that first takes a lock of that member (PostgreSQL: a transaction advisory lock;
SQLite: the database write lock, taken by the transaction's first statement, an insert).

Delivery is the dispatcher's job (:mod:`botdata.managers.dispatcher`): ``await
db.reminders.start(callback)`` once per process, or once per bot when several bots share the
handle (each with the guilds it accepts); ``db.close()`` stops it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from tortoise.transactions import in_transaction

from botdata.errors import (
    InvalidReminderContentError,
    InvalidReminderTimeError,
    ReminderLimitError,
    ReminderNotFoundError,
    ReminderPermissionError,
)
from botdata.managers import checks
from botdata.managers.base import Manager
from botdata.managers.checks import Snowflake, checked
from botdata.managers.dispatcher import (
    STOP_GRACE,
    WAKE_CHANNEL,
    Accepts,
    Callback,
    ReminderDispatcher,
)
from botdata.managers.sql import ensure_guild, fetch
from botdata.models import Reminder
from botdata.schemas import ReminderSchema

if TYPE_CHECKING:
    from botdata.database import Database

#: Longest reminder content.
MAX_CONTENT = 2000


class ReminderManager(Manager):
    """Members' reminders and their dispatcher. Reached as ``db.reminders``."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._dispatcher = ReminderDispatcher(db)
        db.on_close.append(self.stop)

    @checked
    async def create(
        self,
        guild_id: Snowflake,
        user_id: Snowflake,
        channel_id: Snowflake,
        content: str,
        due_at: datetime,
    ) -> ReminderSchema:
        """Remind ``user_id`` of ``content`` in ``channel_id`` at ``due_at``.

        ``due_at`` is a timezone-aware time in the future (stored in UTC). The guild's row is
        created if missing. Running dispatchers (in every process) are woken if it is due
        sooner than what they wait for. Returns the new reminder.
        Raises :class:`~botdata.errors.ReminderLimitError` when the member has
        ``REMINDER_MAX_PER_USER`` pending reminders in the guild,
        :class:`~botdata.errors.InvalidReminderTimeError` for a naive or past ``due_at`` (or
        one beyond the year 9999 in UTC), :class:`~botdata.errors.InvalidReminderContentError`
        for content that is not 1-2000 characters with some non-blank text,
        :class:`~botdata.errors.UnstorableTextError` for content with a NUL or a surrogate,
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """
        checks.text(content, "reminder content")
        if not isinstance(content, str) or not content.strip() or len(content) > MAX_CONTENT:
            raise InvalidReminderContentError(
                f"reminder content must be 1-{MAX_CONTENT} characters with some non-blank text"
            )
        due_at = checks.aware(due_at, "due_at", InvalidReminderTimeError)
        if due_at <= self.db.clock.now():
            raise InvalidReminderTimeError(f"due_at {due_at.isoformat()} is not in the future")
        cap = self.settings.REMINDER_MAX_PER_USER
        async with in_transaction() as conn:
            # On SQLite this first write takes the database lock until commit.
            await ensure_guild(conn, self.db.dialect, guild_id, self.db.clock.now())
            if self.db.dialect == "postgres":
                await fetch(
                    conn,
                    self.db.dialect,
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    [f"botdata:reminders:{guild_id}:{user_id}"],
                )
            pending = (
                await Reminder.filter(guild_id=guild_id, user_id=user_id, sent_at=None)
                .using_db(conn)
                .count()
            )
            if pending >= cap:
                raise ReminderLimitError(f"the member has {cap} pending reminders already")
            reminder = await Reminder.create(
                guild_id=guild_id,
                user_id=user_id,
                channel_id=channel_id,
                content=content,
                due_at=due_at,
                using_db=conn,
            )
        self._dispatcher.notify(due_at)
        await self.cache.publish(WAKE_CHANNEL, due_at.isoformat())
        return ReminderSchema.model_validate(reminder)

    @checked
    async def pending(self, guild_id: Snowflake, user_id: Snowflake) -> list[ReminderSchema]:
        """The member's reminders in the guild that are not sent yet, soonest first.

        Returns at most ``REMINDER_MAX_PER_USER`` of them (the cap keeps the list short).
        Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """
        rows = await Reminder.filter(guild_id=guild_id, user_id=user_id, sent_at=None).order_by(
            "due_at", "id"
        )
        return [ReminderSchema.model_validate(row) for row in rows]

    @checked
    async def cancel(
        self, guild_id: Snowflake, reminder_id: int, *, user_id: Snowflake
    ) -> ReminderSchema:
        """Delete the pending reminder ``reminder_id`` of ``user_id`` in the guild.

        Returns the cancelled reminder. Raises :class:`~botdata.errors.ReminderNotFoundError`
        when the guild has no such pending reminder (also for an id no reminder can have:
        anything but an int from 1 to 2**63 - 1),
        :class:`~botdata.errors.ReminderPermissionError` when it is another member's,
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """
        if checks.row_id(reminder_id) is None:
            raise ReminderNotFoundError(f"no pending reminder {checks.excerpt(reminder_id)}")
        reminder = await Reminder.get_or_none(id=reminder_id, guild_id=guild_id, sent_at=None)
        if reminder is None:
            raise ReminderNotFoundError(f"no pending reminder {reminder_id} in this guild")
        if reminder.user_id != user_id:
            raise ReminderPermissionError("members may cancel only their own reminders")
        # Guarded: a reminder sent meanwhile stays (and is reported as not pending).
        if not await Reminder.filter(id=reminder_id, sent_at=None).delete():
            raise ReminderNotFoundError(f"reminder {reminder_id} was sent meanwhile")
        return ReminderSchema.model_validate(reminder)

    # Dispatching ---------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether this handle's dispatcher is running."""
        return self._dispatcher.running

    async def start(self, callback: Callback, *, accepts: Accepts | None = None) -> None:
        """Deliver due reminders to ``callback``: ``await callback(reminder)``, starting this
        handle's dispatcher if it is not running.

        ``accepts(guild_id)`` (optional) says which guilds' reminders ``callback`` delivers:
        with several callbacks (two bots on one handle) each reminder goes to the first that
        accepts its guild, else to the first started. Each reminder is handed to one callback
        in one process, then marked sent; a callback that raises means a retry later (see
        :mod:`botdata.managers.dispatcher`). Reminders that came due while no dispatcher ran
        are delivered at once. Raises :class:`~botdata.errors.DispatcherRunningError` when
        ``callback`` delivers already, :class:`TypeError` when ``callback`` or ``accepts`` is
        not callable.
        """
        await self._dispatcher.start(callback, accepts)

    async def stop(self, callback: Callback | None = None, *, grace: float = STOP_GRACE) -> None:
        """Stop delivering to ``callback`` (None: to every callback; ``db.close()`` does that);
        harmless when it does not deliver. The dispatcher stops with its last callback.

        Running callbacks of the stopped ones get ``grace`` seconds to finish; then they are
        cancelled and their reminders left for the next dispatcher (not counted as failures).
        Returns when they have ended.
        """
        await self._dispatcher.stop(callback, grace)
