"""The starboard: ``db.starboard``.

A guild's starboard (:class:`~botdata.models.Starboard`) names the channel, the emoji and the
number of stars a message needs. Each starred message has one
:class:`~botdata.models.StarboardMessage` row (its star count and, once posted, its copy on the
starboard) and one :class:`~botdata.models.StarboardStar` row per member who starred it.

Counting
    :meth:`StarboardManager.add_star` inserts the star with ``INSERT ... ON CONFLICT DO
    NOTHING`` (the ``(message, user_id)`` unique constraint makes a second star by the same member
    a no-op) and, only when a row was inserted, bumps the count with ``UPDATE ... SET stars =
    stars + 1 ... RETURNING``, both in one transaction. :meth:`StarboardManager.remove_star`
    mirrors it with ``DELETE ... RETURNING`` and ``stars - 1``. There is no read-modify-write:
    concurrent callers in any number of processes each see a distinct count.

Decisions
    Each call returns a :class:`~botdata.schemas.StarDecision` telling the bot what to do with the
    copy on the starboard. Decisions are made from the count the caller's own update returned,
    under the row lock of that update:

    - ``POST``: there is no copy and this star made the count reach the threshold. Exactly one
      caller sees each crossing, so concurrent stars never post twice. The caller posts the copy
      and records it with :meth:`StarboardManager.set_copy` (which returns the current count, in
      case stars arrived while posting). If posting fails, the next crossing posts again.
    - ``UPDATE``: there is a copy and the count (still at or above the threshold) changed.
    - ``REMOVE``: there is a copy and the count is below the threshold. The copy's record is
      cleared in the same transaction, so exactly one caller is told to delete it.
    - ``NOTHING``: otherwise (also for a repeated star, a self-star, an unknown message).

Stars on the copy
    A star added to (or removed from) a message that is some entry's starboard copy counts for
    the original message. A star by the original author on the copy is a self-star.

The guild's starboard settings are cached (hot layer, then the shared cache) for
``GUILD_CONFIG_TTL`` seconds and dropped in every process on change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import get_connection
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from botdata.errors import (
    InvalidFlagError,
    InvalidStarboardEmojiError,
    InvalidStarThresholdError,
    StarboardCopyConflictError,
    StarboardMessageNotFoundError,
    StarboardNotConfiguredError,
)
from botdata.managers.base import Manager
from botdata.managers.checks import OptionalSnowflake, Snowflake, checked, excerpt, text
from botdata.managers.guilds import insert_guild_rows
from botdata.managers.sql import columns, fetch
from botdata.models import Starboard, StarboardMessage
from botdata.schemas import StarAction, StarboardMessageSchema, StarboardSchema, StarDecision

CONFIG_KEY = "starboard"
_EMOJI_LENGTH = 64
_MAX_THRESHOLD = 2**31 - 1


class StarboardManager(Manager):
    """Starboard settings, star counting and copy bookkeeping. Reached as ``db.starboard``."""

    # Settings ----------------------------------------------------------------------------------

    @checked
    async def configure(
        self,
        guild_id: Snowflake,
        *,
        channel_id: Snowflake,
        emoji: str = "\u2b50",
        threshold: int = 3,
        allow_self_star: bool = False,
    ) -> StarboardSchema:
        """Create or replace the guild's starboard settings (an atomic upsert), creating the
        guild row if needed; the cached settings are dropped in every process.

        Existing entries keep their counts; a new threshold applies from the next star.
        Returns the settings. Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad
        guild or channel id, :class:`~botdata.errors.InvalidStarboardEmojiError`,
        :class:`~botdata.errors.UnstorableTextError` (an emoji with a NUL or a surrogate),
        :class:`~botdata.errors.InvalidStarThresholdError` and
        :class:`~botdata.errors.InvalidFlagError` for bad settings. Nothing is written when it
        raises.
        """
        text(emoji, "emoji")
        if not (
            isinstance(emoji, str)
            and 1 <= len(emoji) <= _EMOJI_LENGTH
            and not any(c.isspace() for c in emoji)
        ):
            raise InvalidStarboardEmojiError(
                f"emoji must be 1-{_EMOJI_LENGTH} characters without whitespace, "
                f"not {excerpt(emoji)}"
            )
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, int)
            or not 1 <= threshold <= _MAX_THRESHOLD
        ):
            raise InvalidStarThresholdError(
                f"threshold must be an int from 1 to {_MAX_THRESHOLD}, not {excerpt(threshold)}"
            )
        if not isinstance(allow_self_star, bool):
            raise InvalidFlagError(
                f"allow_self_star must be a bool, not {excerpt(allow_self_star)}"
            )
        row = Starboard(
            guild_id=guild_id,
            channel_id=channel_id,
            emoji=emoji,
            threshold=threshold,
            allow_self_star=allow_self_star,
        )
        async with in_transaction() as conn:
            await insert_guild_rows(guild_id, conn)
            await Starboard.bulk_create(
                [row],
                on_conflict=["guild_id"],
                update_fields=["channel_id", "emoji", "threshold", "allow_self_star", "updated_at"],
                using_db=conn,
            )
            saved = await Starboard.get(guild_id=guild_id, using_db=conn)
        await self.cache.invalidate(self._key(guild_id))
        return StarboardSchema.model_validate(saved)

    @checked
    async def get(self, guild_id: Snowflake) -> StarboardSchema | None:
        """The guild's starboard settings (cached), or None when it has no starboard.

        Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """

        async def load() -> StarboardSchema | None:
            row = await Starboard.get_or_none(guild_id=guild_id)
            return None if row is None else StarboardSchema.model_validate(row)

        return await self.cache.get_or_load(
            self._key(guild_id),
            load,
            self.settings.GUILD_CONFIG_TTL,
            hot=True,
            model=StarboardSchema,
        )

    @checked
    async def remove(self, guild_id: Snowflake) -> bool:
        """Turn the guild's starboard off: delete its settings and every entry and star, in one
        transaction; the cached settings are dropped in every process.

        Copies already posted stay in Discord (read them first with :meth:`get_message` if
        they should go). Returns whether the guild had a starboard. Raises
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """
        async with in_transaction() as conn:
            removed = await Starboard.filter(guild_id=guild_id).using_db(conn).delete()
            await StarboardMessage.filter(guild_id=guild_id).using_db(conn).delete()
        await self.cache.invalidate(self._key(guild_id))
        return removed > 0

    # Stars -------------------------------------------------------------------------------------

    @checked
    async def add_star(
        self,
        guild_id: Snowflake,
        *,
        message_id: Snowflake,
        channel_id: Snowflake,
        author_id: Snowflake,
        user_id: Snowflake,
    ) -> StarDecision:
        """Record ``user_id``'s star on a message (or on its starboard copy) and decide what to
        do with the copy.

        ``message_id``/``channel_id``/``author_id`` describe the reacted-to message. A second star
        by the same member is a no-op (``NOTHING``), as is a self-star unless the starboard allows
        them. Atomic and safe with any number of concurrent callers (see the module docstring).
        Returns the :class:`~botdata.schemas.StarDecision`. Raises
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad id and
        :class:`~botdata.errors.StarboardNotConfiguredError` when the guild has no starboard.
        """
        config = await self._config(guild_id)
        now = self.db.clock.now()
        default = get_connection("default")
        copied = await self._entry(default, guild_id, message_id, copy=True)
        author = author_id if copied is None else copied["author_id"]
        if user_id == author and not config.allow_self_star:
            current = copied or await self._entry(default, guild_id, message_id)
            return _nothing(current, message_id, channel_id)
        try:
            async with in_transaction() as conn:
                # Each transaction starts with a write, so that SQLite takes its write lock at
                # once (a read first makes the lock upgrade fail under contention between
                # processes).
                entry: dict[str, Any] | None
                if copied is None:
                    entry = await self._upsert_entry(
                        conn, guild_id, message_id, channel_id, author_id, now
                    )
                else:
                    entry = await self._touch(conn, copied["id"], now)
                    if entry is None:  # the entry was removed meanwhile
                        return _nothing(None, message_id, channel_id)
                inserted = await self._sql(
                    conn,
                    "INSERT INTO starboard_stars (message_id, user_id, created_at) "
                    "VALUES ($1, $2, $3) ON CONFLICT (message_id, user_id) DO NOTHING RETURNING id",
                    [entry["id"], user_id, now],
                )
                if not inserted:
                    return _nothing(entry, message_id, channel_id)
                return await self._count(conn, entry["id"], +1, config.threshold, now)
        except IntegrityError:
            # The guild (and so its starboard) was deleted since its settings were cached.
            await self.cache.invalidate(self._key(guild_id))
            raise StarboardNotConfiguredError(f"guild {guild_id} has no starboard") from None

    @checked
    async def remove_star(
        self,
        guild_id: Snowflake,
        *,
        message_id: Snowflake,
        channel_id: Snowflake,
        user_id: Snowflake,
    ) -> StarDecision:
        """Take back ``user_id``'s star from a message (or from its starboard copy) and decide
        what to do with the copy.

        ``message_id``/``channel_id`` describe the reacted-to message (what a raw reaction-remove
        event carries). Removing a star that was never counted is a no-op (``NOTHING``). Atomic,
        like :meth:`add_star`. Returns the :class:`~botdata.schemas.StarDecision`. Raises
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad id and
        :class:`~botdata.errors.StarboardNotConfiguredError` when the guild has no starboard.
        """
        config = await self._config(guild_id)
        now = self.db.clock.now()
        default = get_connection("default")
        entry = await self._entry(default, guild_id, message_id, copy=True) or await self._entry(
            default, guild_id, message_id
        )
        if entry is None:
            return _nothing(None, message_id, channel_id)
        async with in_transaction() as conn:
            deleted = await self._sql(
                conn,
                "DELETE FROM starboard_stars WHERE message_id = $1 AND user_id = $2 RETURNING id",
                [entry["id"], user_id],
            )
            if not deleted:
                current = await self._entry(conn, guild_id, entry["message_id"])
                return _nothing(current, message_id, channel_id)
            return await self._count(conn, entry["id"], -1, config.threshold, now)

    # Copies ------------------------------------------------------------------------------------

    @checked
    async def set_copy(
        self, guild_id: Snowflake, message_id: Snowflake, starboard_message_id: OptionalSnowflake
    ) -> StarboardMessageSchema:
        """Record (or, with None, clear) the copy of starred message ``message_id`` posted on the
        starboard.

        Returns the entry with its current count: if it differs from what the copy shows, edit
        the copy. Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id,
        :class:`~botdata.errors.StarboardMessageNotFoundError` when the message has no entry and
        :class:`~botdata.errors.StarboardCopyConflictError` when ``starboard_message_id`` is the
        copy of another message.
        """
        now = self.db.clock.now()
        try:
            async with in_transaction() as conn:
                updated = await (
                    StarboardMessage.filter(guild_id=guild_id, message_id=message_id)
                    .using_db(conn)
                    .update(starboard_message_id=starboard_message_id, updated_at=now)
                )
                row = await StarboardMessage.get_or_none(
                    guild_id=guild_id, message_id=message_id, using_db=conn
                )
        except IntegrityError:
            raise StarboardCopyConflictError(
                f"message {starboard_message_id} is already the starboard copy of another message"
            ) from None
        if not updated or row is None:
            raise StarboardMessageNotFoundError(
                f"guild {guild_id} has no starboard entry for message {message_id}"
            )
        return StarboardMessageSchema.model_validate(row)

    @checked
    async def get_message(
        self, guild_id: Snowflake, message_id: Snowflake
    ) -> StarboardMessageSchema | None:
        """The starboard entry of a message, found by the original's id or by its copy's id;
        None when nobody starred it.

        Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """
        row = await StarboardMessage.get_or_none(
            guild_id=guild_id, starboard_message_id=message_id
        ) or await StarboardMessage.get_or_none(guild_id=guild_id, message_id=message_id)
        return None if row is None else StarboardMessageSchema.model_validate(row)

    # Internals ---------------------------------------------------------------------------------

    def _key(self, guild_id: int) -> str:
        return self.cache.key(CONFIG_KEY, guild_id=guild_id)

    async def _config(self, guild_id: int) -> StarboardSchema:
        config = await self.get(guild_id)
        if config is None:
            raise StarboardNotConfiguredError(f"guild {guild_id} has no starboard")
        return config

    async def _sql(
        self, conn: BaseDBAsyncClient, query: str, values: list[Any]
    ) -> list[dict[str, Any]]:
        return await fetch(conn, self.db.dialect, query, values)

    async def _entry(
        self, conn: BaseDBAsyncClient, guild_id: int, message_id: int, *, copy: bool = False
    ) -> dict[str, Any] | None:
        """The entry of original message ``message_id`` (with ``copy``: the entry whose
        starboard copy is ``message_id``), if any."""
        column = "starboard_message_id" if copy else "message_id"
        rows = await self._sql(
            conn,
            f"SELECT {columns(StarboardMessage)} FROM starboard_messages "
            f"WHERE guild_id = $1 AND {column} = $2",
            [guild_id, message_id],
        )
        return rows[0] if rows else None

    async def _touch(
        self, conn: BaseDBAsyncClient, entry_id: int, now: datetime
    ) -> dict[str, Any] | None:
        """The entry ``entry_id``, locked for this transaction (None if it is gone)."""
        rows = await self._sql(
            conn,
            "UPDATE starboard_messages SET updated_at = $2 WHERE id = $1 "
            f"RETURNING {columns(StarboardMessage)}",
            [entry_id, now],
        )
        return rows[0] if rows else None

    async def _upsert_entry(
        self,
        conn: BaseDBAsyncClient,
        guild_id: int,
        message_id: int,
        channel_id: int,
        author_id: int,
        now: datetime,
    ) -> dict[str, Any]:
        """The entry of ``message_id``, created with no stars if missing (one statement)."""
        rows = await self._sql(
            conn,
            "INSERT INTO starboard_messages "
            "(guild_id, message_id, channel_id, author_id, stars, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4, 0, $5, $5) "
            "ON CONFLICT (guild_id, message_id) DO UPDATE SET updated_at = excluded.updated_at "
            f"RETURNING {columns(StarboardMessage)}",
            [guild_id, message_id, channel_id, author_id, now],
        )
        return rows[0]

    async def _count(
        self, conn: BaseDBAsyncClient, entry_id: int, change: int, threshold: int, now: datetime
    ) -> StarDecision:
        """Apply ``change`` (+1/-1) to the entry's count atomically and decide on its copy."""
        rows = await self._sql(
            conn,
            f"UPDATE starboard_messages SET stars = stars + $2, updated_at = $3 WHERE id = $1 "
            f"RETURNING {columns(StarboardMessage)}",
            [entry_id, change, now],
        )
        entry = rows[0]
        after: int = entry["stars"]
        copy: int | None = entry["starboard_message_id"]
        if copy is not None:
            action = StarAction.UPDATE if after >= threshold else StarAction.REMOVE
        elif after - change < threshold <= after:
            action = StarAction.POST
        else:
            action = StarAction.NOTHING
        if action is StarAction.REMOVE:
            # Under the row lock of the update above: no other caller saw this copy since.
            await self._sql(
                conn,
                "UPDATE starboard_messages SET starboard_message_id = NULL WHERE id = $1",
                [entry_id],
            )
        return StarDecision(
            action=action,
            stars=after,
            message_id=entry["message_id"],
            channel_id=entry["channel_id"],
            starboard_message_id=copy,
        )


def _nothing(entry: dict[str, Any] | None, message_id: int, channel_id: int) -> StarDecision:
    """A ``NOTHING`` decision reporting the entry's current state (no entry: 0 stars)."""
    if entry is None:
        return StarDecision(
            action=StarAction.NOTHING,
            stars=0,
            message_id=message_id,
            channel_id=channel_id,
            starboard_message_id=None,
        )
    return StarDecision(
        action=StarAction.NOTHING,
        stars=entry["stars"],
        message_id=entry["message_id"],
        channel_id=entry["channel_id"],
        starboard_message_id=entry["starboard_message_id"],
    )
