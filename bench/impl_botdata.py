"""(a) botdata: its managers, as a bot would call them.

1. Message: ``db.guilds.prefix``, ``db.afk.get_many`` (author + mentions),
   ``db.levels.grant_message_xp``.
2. Case: ``db.cases.create(..., CaseType.WARN, ...)``.
3. History: ``db.cases.for_user`` (first page, 25); cold = after ``db.cache.clear()``.
4. Rank: ``db.levels.rank``; top 10: ``db.levels.leaderboard(limit=10)``.
5. Dispatcher: ``db.reminders.start(callback)`` / ``db.reminders.stop()``.
6. Prefix: ``db.guilds.prefix``.

Settings: the defaults (pool of 10 connections), Redis cache with this run's key prefix.
Data is loaded with COPY straight into botdata's tables (as the handwritten baseline does), so
every cache starts empty.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime

import asyncpg

import botdata
from bench import data
from bench.impl_base import Deliver, Implementation
from bench.services import REDIS_URL, migrate
from botdata.models import CaseType
from botdata.schemas import ReminderSchema


class _OutageCounter(logging.Handler):
    """Counts the cache's "Redis is unavailable" warnings (and keeps them off the console)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "unavailable" in record.getMessage():
            self.count += 1


class Botdata(Implementation):
    """botdata's managers over PostgreSQL + Redis."""

    key = "a"

    async def open(self) -> None:
        """``aerich upgrade``, then ``botdata.connect``."""
        await migrate(self.resources.url)
        self.db = await botdata.connect(
            database_url=self.resources.url,
            redis_url=REDIS_URL,
            CACHE_PREFIX=self.resources.key_prefix,
        )
        self._outages = _OutageCounter()
        cache_log = logging.getLogger("botdata.cache")
        cache_log.addHandler(self._outages)
        cache_log.propagate = False

    def describe(self) -> str:
        """The settings that shape the numbers (environment variables override them)."""
        s = self.db.settings
        return (
            f"pool {s.DATABASE_POOL_MIN}-{s.DATABASE_POOL_MAX} connections, "
            f"REDIS_TIMEOUT={s.REDIS_TIMEOUT} s, HOT_CACHE_TTL={s.HOT_CACHE_TTL} s, "
            f"CACHE_MAX_ENTRIES={s.CACHE_MAX_ENTRIES}"
        )

    def incidents(self) -> list[str]:
        """How often the cache declared Redis unavailable (a failed connection, or calls
        slower than REDIS_TIMEOUT twice in a row)."""
        count, self._outages.count = self._outages.count, 0
        if not count:
            return []
        return [
            f"botdata's cache declared Redis unavailable {count:,} times (a failed connection, "
            f"or calls slower than REDIS_TIMEOUT={self.db.settings.REDIS_TIMEOUT} s twice in a "
            "row); meanwhile reads go to the database until Redis answers again."
        ]

    async def close(self) -> None:
        """``db.close()`` (stops the dispatcher too)."""
        await self.db.close()

    async def _raw(self) -> asyncpg.Connection:
        """A plain asyncpg connection for loading data (not measured)."""
        return await asyncpg.connect(self.resources.url)

    # 1 -----------------------------------------------------------------------------------------

    async def load_pipeline(self, pipeline: data.PipelineData) -> None:
        """COPY into botdata's tables."""
        conn = await self._raw()
        try:
            await data.load_pipeline(conn, pipeline)
        finally:
            await conn.close()

    async def handle_message(self, message: data.Message) -> None:
        """prefix, AFK check, XP grant."""
        guild_id, author = message.guild_id, message.author_id
        await self.db.guilds.prefix(guild_id)
        await self.db.afk.get_many(guild_id, (author, *message.mentions))
        grant = await self.db.levels.grant_message_xp(
            guild_id, author, channel_id=message.channel_id
        )
        if grant is not None:
            self.granted += 1

    # 2 -----------------------------------------------------------------------------------------

    async def load_case_guilds(self, guilds: Sequence[int]) -> None:
        """COPY the guild rows."""
        conn = await self._raw()
        try:
            await data.load_case_guilds(conn, guilds)
        finally:
            await conn.close()

    async def create_case(self, guild_id: int, user_id: int, moderator_id: int) -> None:
        """``db.cases.create``."""
        await self.db.cases.create(guild_id, user_id, moderator_id, CaseType.WARN, "benchmark")

    async def case_numbers(self, guilds: Sequence[int]) -> dict[int, list[int]]:
        """From ``cases``."""
        conn = await self._raw()
        try:
            return await data.case_numbers(conn, "cases", "guild_id", "number", guilds)
        finally:
            await conn.close()

    # 3 -----------------------------------------------------------------------------------------

    async def load_history(self, history: data.HistoryData) -> None:
        """COPY the cases."""
        conn = await self._raw()
        try:
            await data.load_history(conn, history)
        finally:
            await conn.close()

    async def forget_cached_cases(self) -> None:
        """``db.cache.clear()``: every key of this run's prefix and the hot layer."""
        await self.db.cache.clear()

    async def user_cases(self, guild_id: int, user_id: int) -> int:
        """``db.cases.for_user``."""
        return len(await self.db.cases.for_user(guild_id, user_id))

    # 4 -----------------------------------------------------------------------------------------

    async def load_leaderboard(self, rows: Iterable[tuple[int, int, int]]) -> None:
        """COPY the XP rows, VACUUM ANALYZE."""
        conn = await self._raw()
        try:
            await data.load_leaderboard(conn, rows)
        finally:
            await conn.close()

    async def rank(self, guild_id: int, member_id: int) -> int:
        """``db.levels.rank``."""
        found = await self.db.levels.rank(guild_id, member_id)
        assert found is not None
        return found

    async def top10(self, guild_id: int) -> list[tuple[int, int]]:
        """``db.levels.leaderboard(limit=10)``."""
        page = await self.db.levels.leaderboard(guild_id, limit=10)
        return [(entry.member_id, entry.xp) for entry in page]

    # 5 -----------------------------------------------------------------------------------------

    async def load_reminders(self, rows: Sequence[data.ReminderRow], base: datetime) -> None:
        """COPY the reminders (before the dispatcher starts, so it sees them)."""
        conn = await self._raw()
        try:
            await data.load_reminders(conn, rows, base)
        finally:
            await conn.close()

    async def start_dispatcher(self, deliver: Deliver) -> None:
        """``db.reminders.start`` with a callback that records the delivery."""

        async def callback(reminder: ReminderSchema) -> None:
            deliver(reminder.id, reminder.due_at)

        await self.db.reminders.start(callback)

    async def stop_dispatcher(self) -> None:
        """``db.reminders.stop``."""
        await self.db.reminders.stop()

    # 6 -----------------------------------------------------------------------------------------

    async def prefix(self, guild_id: int) -> str:
        """``db.guilds.prefix``."""
        return await self.db.guilds.prefix(guild_id)

    def prefix_lookup(self) -> Callable[[int], Awaitable[str]]:
        """``db.guilds.prefix`` itself."""
        return self.db.guilds.prefix
