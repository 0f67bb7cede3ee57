"""Levels: XP per message, ranks and leaderboards: ``db.levels``.

Granting XP (every message of every member: the hottest write path)
    :meth:`LevelManager.grant_message_xp` reads the guild's :class:`LevelSettings` and its set
    of XP-blacklisted members from the in-process hot cache (no round trip once warm), then
    claims the member's cooldown in the cache (``cache.claim``: atomic across processes with
    Redis). The cache remembers each cooldown it claimed, or found claimed by another process
    (the claim answers with the time left), until it ends: a member on cooldown costs no
    round trip at all, Redis or database. A granted message costs ONE statement::

        INSERT INTO levels ... ON CONFLICT (guild_id, member_id) DO UPDATE
            SET xp = levels.xp + EXCLUDED.xp, ... WHERE NOT levels.blacklisted
            AND (levels.last_message_at IS NULL OR levels.last_message_at <= <now - cooldown>)
            RETURNING xp, level

    The database is the arbiter: the ``WHERE`` keeps the cooldown and the blacklist exact even
    when the cache was lost or Redis is down, and totals are never read-modified-written.
    A guild without a ``guilds`` row is created on the first foreign-key failure (then the
    statement is retried). Only when the level changes does a second statement store it.

    Level-ups are derived from the XP interval this message added, ``[xp - gained, xp)``.
    Atomic increments make those intervals disjoint, so each level threshold is crossed by
    exactly one message: a level-up (and its rewards) is reported once, even with concurrent
    grants. Levels are computed from XP with the guild's curve (:mod:`botdata.managers.xp`);
    the ``level`` column follows the XP at every write and the read methods compute the level
    from XP, so they agree after a change of the curve multiplier.

Ranks (1-based, by XP descending, ties by member id ascending)
    With Redis, each guild has a sorted set of its members' totals: ``ZREVRANK`` is O(log n)
    (about 0.25 ms a rank among 1,000,000 members on loopback). Members are stored as
    ``MAX_SNOWFLAKE - member_id`` zero-padded, so Redis's reverse lexicographic order of equal
    scores is ascending member id: the database's tie order. The set is built from the
    database by the first rank or leaderboard call that finds it missing (keyset pages of
    ``BUILD_PAGE`` rows under a cache lock, about 5 s per million members; meanwhile other
    callers use the database). The set holds a marker member: scored below any XP while the
    set is being built, re-scored above any XP (position 0) when it is complete; a set whose
    first member is not the marker so scored is incomplete and never used. The build creates the set
    (marker alone, expiring with the lock) before it reads the first page, and every write of
    a total goes to the set only when it exists (``zadd(..., only_existing=True)``, one
    script: one more Redis round trip per granted message): guilds where nobody asked for a
    rank get no set, and every set carries a TTL. A grant committed after its member's page
    was read still reaches the set, as the set existed before the read. Grants write the
    absolute total with ``ZADD GT``: totals only grow there, so concurrent grants whose writes
    reach Redis out of order keep the latest total, and a total missed earlier is repaired by
    the member's next message. Admin operations (set, reset) overwrite. The set expires
    ``XP_LEADERBOARD_TTL`` seconds after it was built, which bounds the staleness left by
    writes lost while Redis was unreachable (or by an admin operation racing a grant of the
    same member), and is rebuilt on the next call. A build writes only while the set holds its
    own marker score (``zadd(guard=...)``): a reset or an erasure (which clears the whole
    cache, the build's lock included) deletes the set, and the rows the build read before that
    are never written, not even to the set of a later build. What remains is a grant whose
    total reaches a set rebuilt after an erasure of its member that committed after the grant:
    the member is back in the set until its TTL. That takes an erasure and a whole rebuild
    within one grant's Redis round trip.

    Without Redis (the in-process cache is not shared between processes) and as the fallback,
    the database counts the members above with the ``(guild_id, xp)`` index: an index range
    count (covering on SQLite, an Index Only Scan on PostgreSQL), no table scan, but
    O(members above): 10-80 ms for the last of 1,000,000 members.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, Final, TypeVar

from tortoise.connection import get_connection
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from botdata.cache.member_sets import cached_member_ids
from botdata.errors import (
    InvalidLevelError,
    InvalidPageError,
    InvalidTimestampError,
    InvalidXPError,
)
from botdata.managers import checks
from botdata.managers.base import Manager
from botdata.managers.checks import MAX_PAGE, Snowflake, aware, checked, excerpt, shifted, snowflake
from botdata.managers.sql import columns, ensure_guild, fetch
from botdata.managers.xp import MAX_LEVEL, MAX_XP, LevelSettings, level_for_xp, level_threshold
from botdata.models import Levels
from botdata.models.base import MAX_SNOWFLAKE
from botdata.schemas import LeaderboardEntrySchema, LevelsSchema, XPGrantSchema

if TYPE_CHECKING:
    from botdata.clock import Clock
    from botdata.database import Database

T = TypeVar("T")

#: The dynamic setting (module, key) holding a guild's :class:`LevelSettings`.
SETTINGS_MODULE: Final = "levels"
SETTINGS_KEY: Final = "settings"
DEFAULT_SETTINGS: Final = LevelSettings()

# Cache key names (per guild).
BLACKLIST_KEY: Final = "xp_blacklist"
COOLDOWN_KEY: Final = "xp_cooldown"
RANK_KEY: Final = "xp_rank"

#: Member of every rank set: at position 0 (scored above any XP) once the set is complete, at
#: the bottom while it is being built, scored ``-1 - n`` with a random ``n`` of that build's own.
RANK_MARKER: Final = "complete"
_MARKER_SCORE: Final = float(2**60)
#: The first member of a complete rank set, with its score (``zrevrange(key, 0, 0)``).
_COMPLETE: Final = [(RANK_MARKER, _MARKER_SCORE)]
#: Rows read (and written to the sorted set) per step when building a rank set.
BUILD_PAGE: Final = 5_000
#: Seconds the lock of a rank set build lasts at most.
BUILD_LOCK_TTL: Final = 120.0

_GRANT = """
INSERT INTO levels (guild_id, member_id, xp, level, blacklisted, last_message_at,
                    created_at, updated_at)
VALUES ($1, $2, $3, 0, FALSE, $4, $4, $4)
ON CONFLICT (guild_id, member_id) DO UPDATE SET
    xp = levels.xp + EXCLUDED.xp,
    last_message_at = CASE
        WHEN levels.last_message_at IS NULL
          OR levels.last_message_at < EXCLUDED.last_message_at
        THEN EXCLUDED.last_message_at ELSE levels.last_message_at END,
    updated_at = EXCLUDED.updated_at
WHERE NOT levels.blacklisted{cooldown}
RETURNING xp, level
"""
_GRANT_COOLDOWN = " AND (levels.last_message_at IS NULL OR levels.last_message_at <= $5)"

# Store the level of a total unless a concurrent grant changed the total since (that grant
# stores the level of its own total).
_SYNC_LEVEL = """
UPDATE levels SET level = $3, updated_at = $5
WHERE guild_id = $1 AND member_id = $2 AND xp = $4
"""

_SET_XP = """
INSERT INTO levels (guild_id, member_id, xp, level, blacklisted, created_at, updated_at)
VALUES ($1, $2, $3, $4, FALSE, $5, $5)
ON CONFLICT (guild_id, member_id) DO UPDATE SET
    xp = EXCLUDED.xp, level = EXCLUDED.level, updated_at = EXCLUDED.updated_at
RETURNING {row}
"""

_BLACKLIST = """
INSERT INTO levels (guild_id, member_id, xp, level, blacklisted, created_at, updated_at)
VALUES ($1, $2, 0, 0, TRUE, $3, $3)
ON CONFLICT (guild_id, member_id) DO UPDATE SET
    blacklisted = TRUE, updated_at = EXCLUDED.updated_at
RETURNING {row}
"""

_UNBLACKLIST = """
UPDATE levels SET blacklisted = FALSE, updated_at = $3
WHERE guild_id = $1 AND member_id = $2 RETURNING {row}
"""


@cache
def _returning_row(query: str) -> str:
    """``query`` returning the columns of :class:`LevelsSchema` (read from the model's metadata,
    so once Tortoise is initialised)."""
    return query.format(row=columns(Levels, LevelsSchema))


#: 1-based rank of member ``$2`` in guild ``$1`` (no row: no result). Each count is a range
#: of the ``(guild_id, xp)`` index; the second counts the ties ranked first (lower ids).
RANK_SQL: Final = """
SELECT 1
    + (SELECT count(*) FROM levels o WHERE o.guild_id = m.guild_id AND o.xp > m.xp)
    + (SELECT count(*) FROM levels o
       WHERE o.guild_id = m.guild_id AND o.xp = m.xp AND o.member_id < m.member_id) AS rank
FROM levels m WHERE m.guild_id = $1 AND m.member_id = $2
"""

_LEADERBOARD = """
SELECT member_id, xp FROM levels WHERE guild_id = $1
ORDER BY xp DESC, member_id ASC LIMIT $2 OFFSET $3
"""

_BUILD_PAGE = """
SELECT member_id, xp FROM levels WHERE guild_id = $1 AND member_id > $2
ORDER BY member_id LIMIT $3
"""


def _encode(member_id: int) -> str:
    """A member id as a sorted-set member: equal scores order by ascending member id."""
    return f"{MAX_SNOWFLAKE - member_id:019d}"


def _decode(member: str) -> int:
    return MAX_SNOWFLAKE - int(member)


def _utc(now: datetime | None, clock: Clock) -> datetime:
    if now is None:
        return clock.now()
    return aware(now, "now", InvalidTimestampError)


def _check_int(value: object, name: str, high: int, error: type[Exception]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise error(f"{name} must be an int from 0 to {high}, not {excerpt(value)}")
    return value


class LevelManager(Manager):
    """XP, levels, ranks and leaderboards. Reached as ``db.levels``.

    Registers :class:`LevelSettings` as the model of the dynamic setting ``levels.settings``
    (needs ``db.guilds``).
    """

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        db.guilds.register_settings(SETTINGS_MODULE, SETTINGS_KEY, LevelSettings)
        # The in-process cache is not shared between processes: ranks come from the database.
        self._ranked_in_cache = self.settings.REDIS_URL is not None
        self._blacklist_key = self.guild_keys(BLACKLIST_KEY)
        self._cooldown_keys = self.guild_keys(COOLDOWN_KEY)
        self._rank_key = self.guild_keys(RANK_KEY)
        self._grant_sql = {
            cooldown: _GRANT.format(cooldown=_GRANT_COOLDOWN if cooldown else "")
            for cooldown in (False, True)
        }

    # Settings ----------------------------------------------------------------------------------

    async def settings_for(self, guild_id: int) -> LevelSettings:
        """The guild's level settings (the defaults when it has none), from the hot cache.

        Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id and
        :class:`~botdata.errors.InvalidSettingValueError` when the stored value no longer
        matches :class:`LevelSettings`.
        """
        found: LevelSettings = await self.db.guilds.get_setting(
            guild_id, SETTINGS_MODULE, SETTINGS_KEY, DEFAULT_SETTINGS
        )
        return found

    async def configure(
        self,
        guild_id: int,
        settings: LevelSettings | dict[str, Any],
        *,
        updated_by: int | None = None,
    ) -> LevelSettings:
        """Replace the guild's level settings (validated first; every process sees the change).

        Totals keep their XP; levels follow the new curve. Returns the stored settings.
        Raises :class:`~botdata.errors.InvalidSettingValueError` when ``settings`` is not valid
        :class:`LevelSettings` data, :class:`~botdata.errors.InvalidSnowflakeError` for a bad
        guild or ``updated_by`` id. Nothing is written then.
        """
        stored: LevelSettings = await self.db.guilds.set_setting(
            guild_id, SETTINGS_MODULE, SETTINGS_KEY, settings, updated_by=updated_by
        )
        return stored

    # XP ----------------------------------------------------------------------------------------

    async def grant_message_xp(
        self,
        guild_id: int,
        member_id: int,
        *,
        role_ids: Iterable[int] = (),
        channel_id: int | None = None,
        now: datetime | None = None,
    ) -> XPGrantSchema | None:
        """Give the member the XP of one message (sent at ``now``, default: the current time).

        XP is drawn from the guild's ``xp_min..xp_max`` and multiplied by the highest role
        multiplier among ``role_ids``. Returns what changed (gain, total, level, whether this
        message levelled up, reward roles to give / take), or None when no XP applies: the
        member is on cooldown (a message rewarded less than ``cooldown`` seconds before
        ``now``), blacklisted, in a no-XP channel, has a no-XP role, or the gain rounds to 0.
        Creates the guild row if missing. At most one database statement (two on a level
        change); none for a member on cooldown, nor any Redis round trip once this process
        claimed or saw that cooldown.

        Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad guild, member, role or
        channel id and :class:`~botdata.errors.InvalidTimestampError` for a naive ``now`` (or
        one whose cooldown would start before the year 1, or beyond the year 9999 in UTC).
        Nothing is written then.
        """
        # Checked inline, not with @checked: a member on cooldown is answered from memory.
        snowflake(guild_id, "guild_id")
        snowflake(member_id, "member_id")
        roles = frozenset(snowflake(role_id, "role_ids") for role_id in role_ids)
        if channel_id is not None:
            snowflake(channel_id, "channel_id")
        now = _utc(now, self.db.clock)
        settings = await self.settings_for(guild_id)
        if channel_id in settings.no_xp_channel_ids or roles & settings.no_xp_role_ids:
            return None
        if member_id in await self._blacklisted(guild_id):
            return None
        drawn = random.randint(settings.xp_min, settings.xp_max)
        gained = round(drawn * settings.multiplier_for(roles))
        if gained <= 0:
            return None
        cooldown = settings.cooldown
        values: list[Any] = [guild_id, member_id, gained, now]
        if cooldown:  # rewarded messages at or before this time are out of the cooldown
            values.append(shifted(now, -timedelta(seconds=cooldown), "now", InvalidTimestampError))
        key = self._cooldown_keys(guild_id, member_id)
        if cooldown and not await self._claim_cooldown(key, now.timestamp(), cooldown):
            return None
        row = await self._add_xp(guild_id, self._grant_sql[bool(cooldown)], values)
        if row is None:
            # The database saw a rewarded message within the cooldown (the cache had lost it)
            # or a blacklisting: drop the claim so it does not outlast the real cooldown.
            if cooldown:
                await self.cache.delete(key)
            return None
        xp, stored_level = int(row["xp"]), int(row["level"])
        multiplier = settings.curve_multiplier
        level = level_for_xp(xp, multiplier)
        previous = level_for_xp(xp - gained, multiplier)
        if level != stored_level:
            await fetch(
                get_connection("default"),
                self.db.dialect,
                _SYNC_LEVEL,
                [guild_id, member_id, level, xp, now],
            )
        if self._ranked_in_cache:  # totals only grow here: keep the highest if writes cross
            await self.cache.zadd(
                self._rank_key(guild_id),
                {_encode(member_id): xp},
                higher_only=True,
                only_existing=True,
            )
        give, take = settings.reward_changes(previous, level)
        return XPGrantSchema(
            guild_id=guild_id,
            member_id=member_id,
            gained=gained,
            xp=xp,
            level=level,
            previous_level=previous,
            levelled_up=level > previous,
            rewards_due=give,
            rewards_revoked=take,
        )

    @checked
    async def get(self, guild_id: Snowflake, member_id: Snowflake) -> LevelsSchema | None:
        """The member's XP row (level computed from XP with the guild's curve), or None when
        they have none. Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id."""
        row = await Levels.get_or_none(guild_id=guild_id, member_id=member_id)
        if row is None:
            return None
        return await self._schema(LevelsSchema.model_validate(row))

    @checked
    async def set_xp(self, guild_id: Snowflake, member_id: Snowflake, xp: int) -> LevelsSchema:
        """Set the member's total XP (their level follows). Creates the row (and the guild
        row) if missing. Returns the row.

        Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id and
        :class:`~botdata.errors.InvalidXPError` unless ``xp`` is an int from 0 to 2**53 - 1.
        Nothing is written then.
        """
        _check_int(xp, "xp", MAX_XP, InvalidXPError)
        return await self._set_total(guild_id, member_id, xp)

    @checked
    async def set_level(
        self, guild_id: Snowflake, member_id: Snowflake, level: int
    ) -> LevelsSchema:
        """Set the member's level: their XP becomes that level's threshold on the guild's
        curve. Creates the row (and the guild row) if missing. Returns the row.

        Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id and
        :class:`~botdata.errors.InvalidLevelError` unless ``level`` is an int from 0 to
        :data:`~botdata.managers.xp.MAX_LEVEL`. Nothing is written then.
        """
        _check_int(level, "level", MAX_LEVEL, InvalidLevelError)
        settings = await self.settings_for(guild_id)
        return await self._set_total(
            guild_id, member_id, level_threshold(level, settings.curve_multiplier)
        )

    @checked
    async def reset(self, guild_id: Snowflake, member_id: int | None = None) -> int:
        """Reset the XP of one member, or of the whole guild when ``member_id`` is None.

        Rows are deleted, except blacklisted members' (their XP and level become 0, so the
        blacklist stays). One transaction. Returns how many members were reset.
        Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """
        members = {"guild_id": guild_id}
        if member_id is not None:
            members["member_id"] = snowflake(member_id, "member_id")
        rows = Levels.filter(**members)
        async with in_transaction() as connection:
            deleted = await rows.filter(blacklisted=False).using_db(connection).delete()
            zeroed = (
                await rows.filter(blacklisted=True)
                .using_db(connection)
                .update(xp=0, level=0, last_message_at=None, updated_at=self.db.clock.now())
            )
        if self._ranked_in_cache:
            key = self._rank_key(guild_id)
            if member_id is None:
                await self.cache.invalidate(key)  # owed, not lost, if Redis does not answer
            elif zeroed:
                await self.cache.zadd(key, {_encode(member_id): 0}, only_existing=True)
            else:
                await self.cache.zrem(key, _encode(member_id))
        return deleted + zeroed

    # Blacklist ---------------------------------------------------------------------------------

    @checked
    async def blacklist(self, guild_id: Snowflake, member_id: Snowflake) -> LevelsSchema:
        """Stop the member from earning XP (they keep their XP and rank). Creates the row (and
        the guild row) if missing. Returns the row. Raises
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad id."""
        values = [guild_id, member_id, self.db.clock.now()]
        async with in_transaction() as connection:
            await ensure_guild(connection, self.db.dialect, guild_id, self.db.clock.now())
            rows = await fetch(connection, self.db.dialect, _returning_row(_BLACKLIST), values)
        await self.cache.invalidate(self._blacklist_key(guild_id))
        return await self._schema(LevelsSchema.model_validate(rows[0]))

    @checked
    async def unblacklist(self, guild_id: Snowflake, member_id: Snowflake) -> LevelsSchema | None:
        """Let the member earn XP again. Returns the row, or None when the member has none
        (then nothing is written). Raises :class:`~botdata.errors.InvalidSnowflakeError` for a
        bad id."""
        values = [guild_id, member_id, self.db.clock.now()]
        rows = await fetch(
            get_connection("default"), self.db.dialect, _returning_row(_UNBLACKLIST), values
        )
        if not rows:
            return None
        await self.cache.invalidate(self._blacklist_key(guild_id))
        return await self._schema(LevelsSchema.model_validate(rows[0]))

    # Ranks -------------------------------------------------------------------------------------

    @checked
    async def rank(self, guild_id: Snowflake, member_id: Snowflake) -> int | None:
        """The member's 1-based rank in the guild by XP (ties: lower member id first), or None
        when they have no XP row. O(log n) with Redis; an index range count otherwise.
        Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id."""
        if self._ranked_in_cache:
            member = _encode(member_id)
            found = await self._read_ranks(guild_id, lambda key: self.cache.zrevrank(key, member))
            if found:  # a complete set holds the marker at 0: the position is the 1-based rank
                return found
        rows = await fetch(
            get_connection("default"), self.db.dialect, RANK_SQL, [guild_id, member_id]
        )
        return int(rows[0]["rank"]) if rows else None

    @checked
    async def leaderboard(
        self, guild_id: Snowflake, *, limit: int = 10, offset: int = 0
    ) -> list[LeaderboardEntrySchema]:
        """Members ``offset+1 .. offset+limit`` of the guild by XP (ties: lower member id first),
        with their rank and level. Empty past the end (any ``offset`` above 2**31 - 1 is).

        Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id,
        :class:`~botdata.errors.InvalidPageError` for a ``limit`` outside 1..100 and
        :class:`~botdata.errors.InvalidOffsetError` for a negative ``offset``.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidPageError(
                f"limit must be an int from 1 to {MAX_PAGE}, not {excerpt(limit)}"
            )
        if checks.offset(offset) is None:
            return []
        settings = await self.settings_for(guild_id)
        totals: list[tuple[int, int]] | None = None
        if self._ranked_in_cache:
            page = await self._read_ranks(
                guild_id, lambda key: self.cache.zrevrange(key, offset + 1, offset + limit)
            )
            if page is not None:
                totals = [(_decode(member), int(score)) for member, score in page]
        if totals is None:
            rows = await fetch(
                get_connection("default"), self.db.dialect, _LEADERBOARD, [guild_id, limit, offset]
            )
            totals = [(int(row["member_id"]), int(row["xp"])) for row in rows]
        return [
            LeaderboardEntrySchema(
                rank=offset + i + 1,
                member_id=member_id,
                xp=xp,
                level=level_for_xp(xp, settings.curve_multiplier),
            )
            for i, (member_id, xp) in enumerate(totals)
        ]

    # Internals ---------------------------------------------------------------------------------

    async def _blacklisted(self, guild_id: int) -> frozenset[int]:
        async def load() -> list[int]:
            rows = await Levels.filter(guild_id=guild_id, blacklisted=True).values("member_id")
            return [row["member_id"] for row in rows]

        return await cached_member_ids(
            self.cache, self._blacklist_key(guild_id), self.settings.GUILD_CONFIG_TTL, load
        )

    async def _claim_cooldown(self, key: str, sent: float, cooldown: float) -> bool:
        """Claim the member's cooldown for a message sent at ``sent`` (a timestamp): True when
        the message may earn XP as far as the cache knows (the database has the last word).

        The claim lives until ``sent + cooldown`` (wall clock). While it exists, a message
        sent before its end is within the cooldown. The cache remembers claims it made or saw
        until they end, so the member's further messages within the cooldown cost no round
        trip; the end is a deadline, so nothing is refused after it. A message dated after the
        end of a claim that still exists (replayed history, tests) claims anew.
        """
        ends = sent + cooldown
        wall = time.time()
        ttl = ends - wall
        if ttl <= 0:
            return True  # an old message: only the database knows
        left = await self.cache.claim(key, ttl)
        if left is None:
            return True
        # ``wall`` was read before the claim: the end is at or after wall + left.
        if sent < wall + left:
            return False
        await self.cache.set_json(key, ends, ttl)
        return True

    async def _add_xp(self, guild_id: int, query: str, values: list[Any]) -> dict[str, Any] | None:
        """Run the grant upsert; create the guild row and retry when it is missing.
        Returns the new ``xp``/stored ``level``, or None when the ``WHERE`` refused."""
        connection = get_connection("default")
        try:
            rows = await fetch(connection, self.db.dialect, query, values)
        except IntegrityError:  # the guild row is missing (the only constraint that can fail)
            async with in_transaction() as transaction:
                await ensure_guild(transaction, self.db.dialect, guild_id, self.db.clock.now())
                rows = await fetch(transaction, self.db.dialect, query, values)
        return rows[0] if rows else None

    async def _set_total(self, guild_id: int, member_id: int, xp: int) -> LevelsSchema:
        settings = await self.settings_for(guild_id)
        level = level_for_xp(xp, settings.curve_multiplier)
        values = [guild_id, member_id, xp, level, self.db.clock.now()]
        async with in_transaction() as connection:
            await ensure_guild(connection, self.db.dialect, guild_id, self.db.clock.now())
            rows = await fetch(connection, self.db.dialect, _returning_row(_SET_XP), values)
        if self._ranked_in_cache:
            await self.cache.zadd(
                self._rank_key(guild_id), {_encode(member_id): xp}, only_existing=True
            )
        return LevelsSchema.model_validate(rows[0])

    async def _schema(self, row: LevelsSchema) -> LevelsSchema:
        """``row`` with its level computed from its XP on the guild's current curve."""
        settings = await self.settings_for(row.guild_id)
        return row.model_copy(update={"level": level_for_xp(row.xp, settings.curve_multiplier)})

    async def _read_ranks(self, guild_id: int, read: Callable[[str], Awaitable[T]]) -> T | None:
        """``await read(key)`` on the guild's rank set when it is complete (building it first
        when missing); None when it is not usable (being built elsewhere, Redis unavailable)."""
        key = self._rank_key(guild_id)
        top, result = await asyncio.gather(self.cache.zrevrange(key, 0, 0), read(key))
        if top == _COMPLETE:
            return result
        if not await self._build_ranks(guild_id, key):
            return None
        # Read again the same way: the set may have been dropped meanwhile (a guild reset).
        top, result = await asyncio.gather(self.cache.zrevrange(key, 0, 0), read(key))
        return result if top == _COMPLETE else None

    async def _build_ranks(self, guild_id: int, key: str) -> bool:
        """Load the guild's totals into its rank set, then mark it complete. Returns False when
        another process is building it or Redis stopped answering (the set stays unmarked).

        The set is created first, holding only the marker below any total (incomplete): from
        then on grants write their totals to it, so a grant committed after its member's row
        was read here still lands in the set. The marker's score is this build's own, and the
        build writes only while the set holds it: once the set is deleted (a reset, a clear
        for an erasure, which also drops the lock) or rebuilt by another build, rows read
        before that are never written.
        """
        lock = self._rank_key(guild_id, "building")
        if not await self.cache.set_if_absent(lock, "1", BUILD_LOCK_TTL):
            return False
        mine = (RANK_MARKER, -1.0 - random.randrange(1, 2**40))
        try:
            await self.cache.delete(key)
            await self.cache.zadd(key, dict([mine]), ttl=BUILD_LOCK_TTL)
            connection, dialect = get_connection("default"), self.db.dialect

            def page(after: int) -> Awaitable[list[dict[str, Any]]]:
                return fetch(connection, dialect, _BUILD_PAGE, [guild_id, after, BUILD_PAGE])

            rows = await page(0)
            while rows:
                after = int(rows[-1]["member_id"])
                scores = {_encode(int(row["member_id"])): int(row["xp"]) for row in rows}
                # Read the next page while this one is written.
                rows, _ = await asyncio.gather(
                    page(after),
                    self.cache.zadd(key, scores, higher_only=True, guard=mine),
                )
                if await self.cache.zrevrank(key, _encode(after)) is None:
                    return False  # the write did not reach Redis, or the set was dropped
            await self.cache.zadd(
                key,
                {RANK_MARKER: _MARKER_SCORE},
                ttl=self.settings.XP_LEADERBOARD_TTL,
                guard=mine,
            )
            return True
        finally:
            await self.cache.delete(lock)
