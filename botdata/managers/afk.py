"""AFK members: ``db.afk``.

A member is AFK in a guild while a row exists for them (at most one per guild and member).

The per-message read path is :meth:`AFKManager.get_many`: a message mentioning ten members asks
about all of them at once. Each guild's set of AFK member ids is cached in the in-process hot
layer (loaded once, dropped in every process by ``cache.invalidate`` whenever a row is set or
removed), so when none of the mentioned members is AFK, the common answer, the call costs no
database query and no Redis round trip. Otherwise one query fetches the AFK rows among them.

Rows whose ``until`` has passed count as not AFK. Ending them is the claim/lease cycle of
:mod:`botdata.managers.claims`: :meth:`AFKManager.claim_expired` hands each expired status to one
process for a lease, which restores the nickname and then calls
:meth:`AFKManager.complete_expiry` (the row is deleted) or, when the restore failed,
:meth:`AFKManager.release` (the row stays and is claimed again). A process that dies holding
claims loses them when the lease ends. Setting a new status on the row voids a claim on the old
one: completing that claim deletes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from botdata.cache.member_sets import cached_member_ids
from botdata.errors import (
    InvalidAFKExpiryError,
    InvalidAFKNicknameError,
    InvalidAFKReasonError,
    InvalidExpiryError,
    InvalidFlagError,
    InvalidPageError,
    InvalidTimestampError,
)
from botdata.managers.base import Manager
from botdata.managers.checks import Snowflake, aware, checked, excerpt, shifted, snowflake, text
from botdata.managers.claims import ClaimQueue
from botdata.managers.sql import columns, ensure_guild, fetch
from botdata.models import AFK
from botdata.schemas import AFKSchema

if TYPE_CHECKING:
    from botdata.database import Database

#: Cache key name of a guild's set of AFK member ids.
AFK_MEMBERS_KEY = "afk_members"
MAX_REASON = 500
MAX_NICKNAME = 100
#: Most rows one :meth:`AFKManager.claim_expired` call removes.
MAX_CLAIM = 1000

#: How long a claim of :meth:`AFKManager.claim_expired` keeps other claimers off a status.
DEFAULT_LEASE = timedelta(minutes=5)

# $1..$8 the columns of a status; a new status voids any claim on the old one. {returning}: the
# columns of AFKSchema.
_UPSERT = """
INSERT INTO afk (
    guild_id, member_id, nickname, reason, since, until, enforced, permanent,
    created_at, updated_at
)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $5, $5)
ON CONFLICT (guild_id, member_id) DO UPDATE SET
    nickname = EXCLUDED.nickname,
    reason = EXCLUDED.reason,
    since = EXCLUDED.since,
    until = EXCLUDED.until,
    enforced = EXCLUDED.enforced,
    permanent = EXCLUDED.permanent,
    updated_at = EXCLUDED.updated_at,
    claimed_until = NULL
RETURNING {returning}
"""

_DELETE = "DELETE FROM afk WHERE guild_id = $1 AND member_id = $2 RETURNING {returning}"

#: Expired statuses (permanent ones never expire), oldest first. A status is pending while
#: claimed (a new status clears the claim); completing it deletes the row.
EXPIRIES: ClaimQueue[AFKSchema] = ClaimQueue(
    AFK,
    AFKSchema,
    due="until <= $1 AND NOT permanent",
    order=("until",),
    pending={"claimed_until__isnull": False},
)


class AFKManager(Manager):
    """AFK statuses. Reached as ``db.afk``."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._members_key = self.guild_keys(AFK_MEMBERS_KEY)

    @checked
    async def set(
        self,
        guild_id: Snowflake,
        member_id: Snowflake,
        *,
        nickname: str,
        reason: str = "",
        until: datetime | None = None,
        enforced: bool = False,
        permanent: bool = False,
    ) -> AFKSchema:
        """Mark the member AFK, replacing any AFK status they had (one atomic upsert).

        ``nickname`` is the nickname to restore when the AFK ends; ``until`` (optional, in the
        future) ends it automatically (see :meth:`claim_expired`); ``enforced``: set by a
        moderator, talking does not clear it; ``permanent``: never expires. The guild row is
        created when missing. Returns the AFK status.

        Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id,
        :class:`~botdata.errors.InvalidAFKNicknameError` /
        :class:`~botdata.errors.InvalidAFKReasonError` for text that is not a str or too long
        (100 / 500 characters), :class:`~botdata.errors.UnstorableTextError` for text with a NUL
        or a surrogate, :class:`~botdata.errors.InvalidAFKExpiryError` for an ``until`` that is
        not aware (or beyond the year 9999 in UTC), not in the future, or given with
        ``permanent``,
        :class:`~botdata.errors.InvalidFlagError` for a non-bool flag. Nothing is written then.
        """
        text(nickname, "nickname")
        text(reason, "reason")
        if not isinstance(nickname, str) or len(nickname) > MAX_NICKNAME:
            raise InvalidAFKNicknameError(
                f"nickname must be a str of at most {MAX_NICKNAME} characters, "
                f"not {excerpt(nickname)}"
            )
        if not isinstance(reason, str) or len(reason) > MAX_REASON:
            raise InvalidAFKReasonError(f"reason must be a str of at most {MAX_REASON} characters")
        for name, flag in (("enforced", enforced), ("permanent", permanent)):
            if not isinstance(flag, bool):
                raise InvalidFlagError(f"{name} must be a bool, not {excerpt(flag)}")
        now = self.db.clock.now()
        if until is not None:
            until = aware(until, "until", InvalidAFKExpiryError)
            if until <= now:
                raise InvalidAFKExpiryError(f"until ({until.isoformat()}) is not in the future")
            if permanent:
                raise InvalidAFKExpiryError("a permanent AFK cannot have an until")
        values = [guild_id, member_id, nickname, reason, now, until, enforced, permanent]
        async with in_transaction() as connection:
            await ensure_guild(connection, self.db.dialect, guild_id, self.db.clock.now())
            query = _UPSERT.format(returning=columns(AFK, AFKSchema))
            rows = await fetch(connection, self.db.dialect, query, values)
        await self.cache.invalidate(self._members_key(guild_id))
        return AFKSchema.model_validate(rows[0])

    @checked
    async def clear(self, guild_id: Snowflake, member_id: Snowflake) -> AFKSchema | None:
        """End the member's AFK (enforced or not: the caller decides who may).

        Returns the removed status (to restore the nickname), or None when the member was not
        AFK. Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """
        query = _DELETE.format(returning=columns(AFK, AFKSchema))
        rows = await fetch(get_connection("default"), self.db.dialect, query, [guild_id, member_id])
        if not rows:
            return None
        await self.cache.invalidate(self._members_key(guild_id))
        return AFKSchema.model_validate(rows[0])

    async def get(self, guild_id: int, member_id: int) -> AFKSchema | None:
        """The member's AFK status, or None when they are not AFK (or their ``until`` passed).

        Served by the cached set of AFK members: no query when the member is not AFK.
        Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """
        return (await self.get_many(guild_id, (member_id,))).get(member_id)

    async def get_many(self, guild_id: int, member_ids: Iterable[int]) -> dict[int, AFKSchema]:
        """The AFK statuses of those of ``member_ids`` who are AFK, ``{member_id: status}``.

        For a message's mentions: one lookup for all of them. When none is AFK (checked against
        the guild's cached set of AFK members) it costs no database query and, once the set
        is in this process's hot layer, no Redis round trip; otherwise one query. Rows whose
        ``until`` passed are left out. Raises :class:`~botdata.errors.InvalidSnowflakeError`
        for a bad id.
        """
        snowflake(guild_id, "guild_id")
        wanted = {snowflake(member_id, "member_ids") for member_id in member_ids}
        if not wanted:
            return {}

        async def load() -> list[int]:
            rows = await AFK.filter(guild_id=guild_id).values("member_id")
            return [row["member_id"] for row in rows]

        afk = await cached_member_ids(
            self.cache, self._members_key(guild_id), self.settings.GUILD_CONFIG_TTL, load
        )
        hits = wanted & afk
        if not hits:
            return {}
        now = self.db.clock.now()
        listed = ", ".join(f"${n}" for n in range(2, len(hits) + 2))
        rows = await fetch(
            get_connection("default"),
            self.db.dialect,
            f"SELECT {columns(AFK, AFKSchema)} FROM afk "
            f"WHERE guild_id = $1 AND member_id IN ({listed})",
            [guild_id, *hits],
        )
        statuses = (AFKSchema.model_validate(row) for row in rows)
        return {
            status.member_id: status
            for status in statuses
            if status.until is None or status.until > now
        }

    async def claim_expired(
        self, now: datetime | None = None, *, limit: int = 100, lease: timedelta = DEFAULT_LEASE
    ) -> list[AFKSchema]:
        """Claim up to ``limit`` AFK statuses whose ``until`` is at or before ``now`` (default:
        the current time) until ``now + lease``; permanent ones never expire.

        Each is claimed by one caller (several processes may claim at once), until the lease
        ends: restore the nickname, then call :meth:`complete_expiry` (the status ends), or
        :meth:`release` when the restore failed (the next claim takes it again). The statuses
        stay (not AFK, their ``until`` passed) until completed. Returns the claimed statuses,
        oldest expiry first.

        Raises :class:`~botdata.errors.InvalidTimestampError` for a naive or non-datetime
        ``now`` (or one, or ``now + lease``, beyond the year 9999 in UTC),
        :class:`~botdata.errors.InvalidExpiryError` for a ``lease`` that is not a positive
        timedelta, :class:`~botdata.errors.InvalidPageError` for a ``limit`` outside 1..1000.
        """
        now = self.db.clock.now() if now is None else aware(now, "now", InvalidTimestampError)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_CLAIM:
            raise InvalidPageError(
                f"limit must be an int from 1 to {MAX_CLAIM}, not {excerpt(limit)}"
            )
        if not isinstance(lease, timedelta) or lease <= timedelta(0):
            raise InvalidExpiryError(f"lease must be a positive timedelta, not {excerpt(lease)}")
        claimed_until = shifted(now, lease, "lease", InvalidTimestampError)
        return await EXPIRIES.claim(self.db.dialect, now, claimed_until, limit)

    @checked
    async def complete_expiry(self, guild_id: Snowflake, member_id: Snowflake) -> bool:
        """End the member's claimed, expired AFK status (its nickname was restored): the row is
        removed.

        Returns True, or False when the status is not claimed: it was completed or cleared
        already, or replaced by a new status since the claim (which stays). Raises
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """
        now = self.db.clock.now()
        if not await EXPIRIES.complete(now, guild_id=guild_id, member_id=member_id):
            return False
        await self.cache.invalidate(self._members_key(guild_id))
        return True

    @checked
    async def release(self, guild_id: Snowflake, member_id: Snowflake) -> bool:
        """Give up the claim on the member's expired AFK status (restoring the nickname failed):
        the next :meth:`claim_expired` takes it again.

        Returns True, or False when it was not claimed (completed, cleared or replaced since).
        Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """
        return bool(await EXPIRIES.release(guild_id=guild_id, member_id=member_id))
