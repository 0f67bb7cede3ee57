"""(c) Seed-style: the seed document's design as written, on its own stack (SQLModel +
SQLAlchemy async + asyncpg; the ``bench`` extra).

Its ``DatabaseManager`` (``create_async_engine`` with default pool settings, an
``async_sessionmaker(expire_on_commit=False)``, ``get_session()`` committing on exit), its
``CacheService`` (redis-py, JSON values) and its controller pattern: every call opens a session,
reads the row, changes it in Python, and commits.

What it does, exactly:

1. Message: the guild's ``GuildConfig`` read from the database (every message), the AFK rows of
   the author and the mentions (a second session), and the XP grant: read the ``Levels`` row,
   skip it if ``last_message`` is within the 60 s cooldown, else add 15-25 XP, recompute the
   level, set ``last_message`` and commit (a third session); then
   ``CacheService.update_xp_leaderboard`` (``ZADD`` + ``EXPIRE``).
2. Case: read the ``Guild`` row, ``case_count += 1``, ``Case.create`` with that number (commit,
   refresh), then delete the member's cached cases. The seed's ``create_case`` sets no number
   at all; the read-modify-write of ``Guild.case_count`` is the numbering its model implies,
   and it races (no lock, no unique constraint): the numbering check reports what it gives.
3. History: ``get_user_cases``: the cached JSON list from Redis, else every case of the member
   ordered by ``created_at DESC`` (no limit), cached 1800 s.
4. Rank: read the member's row, count the rows with more XP (a session per call); top 10:
   ``ORDER BY xp DESC LIMIT 10``. The seed only writes its Redis leaderboard (on XP changes,
   expiring after an hour) and never reads it, so it cannot answer from it.
5. Dispatcher: the seed has none. This one polls every second for unsent reminders whose time
   has passed (the seed's table has no index for that), and marks each one sent through a
   controller call (own session: read, set ``reminder_sent``, commit).
6. Prefix: ``session.get(GuildConfig, guild_id)`` per call.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import redis.asyncio as redis
from sqlalchemy import QueuePool, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel, col

from bench import data
from bench.impl_base import Deliver, Implementation
from bench.seed_models import AFK, Case, CaseType, Guild, GuildConfig, Levels, Reminder
from bench.services import REDIS_URL

DEFAULT_PREFIX = "$"
POLL_S = 1.0
USER_CASES_TTL = 1800
XP_LEADERBOARD_TTL = 3600


class DatabaseManager:
    """The seed's ``DatabaseManager`` (async branch)."""

    def __init__(self, database_url: str, echo: bool = False) -> None:
        self.engine = create_async_engine(database_url, echo=echo)
        self.async_session_factory = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )

    @asynccontextmanager
    async def get_session(self) -> AsyncIterator[AsyncSession]:
        """A session committed on exit, rolled back on error."""
        async with self.async_session_factory() as session:
            try:
                yield session
                await session.commit()
            except Exception:
                await session.rollback()
                raise


class CacheService:
    """The seed's ``CacheService`` (plus the generic get/set/delete its controller calls)."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self.redis = redis.from_url(redis_url, decode_responses=True)
        self.prefix = prefix

    async def get(self, key: str) -> Any | None:
        """The JSON value at ``key``, or None."""
        raw = await self.redis.get(f"{self.prefix}:{key}")
        return json.loads(raw) if raw else None

    async def set(self, key: str, value: Any, ttl: int) -> None:
        """Store ``value`` as JSON for ``ttl`` seconds."""
        await self.redis.setex(f"{self.prefix}:{key}", ttl, json.dumps(value))

    async def delete(self, key: str) -> None:
        """Remove ``key``."""
        await self.redis.delete(f"{self.prefix}:{key}")

    async def update_xp_leaderboard(self, guild_id: int, user_id: int, xp: float) -> None:
        """Update XP leaderboard (two round trips, as the seed)."""
        key = f"{self.prefix}:xp_leaderboard:{guild_id}"
        await self.redis.zadd(key, {str(user_id): xp})
        await self.redis.expire(key, XP_LEADERBOARD_TTL)


class Seed(Implementation):
    """The seed's design on SQLModel + SQLAlchemy async."""

    key = "c"

    def describe(self) -> str:
        """The engine's pool."""
        pool = self.db.engine.pool
        size = pool.size() if isinstance(pool, QueuePool) else "?"
        return f"SQLAlchemy {type(pool).__name__} size {size} + overflow 10 (defaults)"

    async def open(self) -> None:
        """``SQLModel.metadata.create_all`` (the seed's ``create_tables``) and connect."""
        url = self.resources.url.replace("postgres://", "postgresql+asyncpg://", 1)
        self.db = DatabaseManager(url)
        async with self.db.engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all)
        self.cache = CacheService(REDIS_URL, self.resources.key_prefix)
        self.rng = random.Random(7)
        self._dispatcher: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def close(self) -> None:
        """Dispose of the engine, close Redis."""
        await self.stop_dispatcher()
        await self.db.engine.dispose()
        await self.cache.redis.aclose()

    async def _raw(self) -> asyncpg.Connection:
        """A plain asyncpg connection for loading data (not measured)."""
        return await asyncpg.connect(self.resources.url)

    # 1 -----------------------------------------------------------------------------------------

    async def load_pipeline(self, pipeline: data.PipelineData) -> None:
        """COPY into the seed's tables."""
        now = data.utcnow()
        conn = await self._raw()
        try:
            await self._guilds(conn, pipeline.guilds, now)
            await conn.copy_records_to_table(
                "guildconfig",
                columns=["guild_id", "prefix", "created_at", "is_deleted"],
                records=[(g, pipeline.prefixes.get(g), now, False) for g in pipeline.guilds],
            )
            await conn.copy_records_to_table(
                "afk",
                columns=[
                    "member_id",
                    "guild_id",
                    "nickname",
                    "reason",
                    "since",
                    "enforced",
                    "perm_afk",
                    "created_at",
                    "is_deleted",
                ],
                records=[
                    (m, g, "away", "benchmark", now, True, True, now, False)
                    for g, m in pipeline.afk
                ],
            )
            await self._levels(conn, pipeline.levels, now)
        finally:
            await conn.close()

    async def handle_message(self, message: data.Message) -> None:
        """Three sessions (config, AFK, XP read-modify-write) and two Redis calls on a grant."""
        await self.prefix(message.guild_id)
        members = [message.author_id, *message.mentions]
        async with self.db.get_session() as session:
            result = await session.execute(
                select(AFK).where(
                    col(AFK.guild_id) == message.guild_id, col(AFK.member_id).in_(members)
                )
            )
            result.scalars().all()
        xp = await self._grant_xp(message.guild_id, message.author_id)
        if xp is not None:
            self.granted += 1
            await self.cache.update_xp_leaderboard(message.guild_id, message.author_id, xp)

    async def _grant_xp(self, guild_id: int, member_id: int) -> float | None:
        now = data.utcnow()
        async with self.db.get_session() as session:
            row = await session.get(Levels, (member_id, guild_id))
            if row is None:
                row = Levels(member_id=member_id, guild_id=guild_id, last_message=now)
                session.add(row)
            elif row.blacklisted or now - row.last_message < timedelta(seconds=data.XP_COOLDOWN):
                return None
            row.xp += self.rng.randint(data.XP_MIN, data.XP_MAX)
            row.level = data.level_of(int(row.xp))
            row.last_message = now
            row.updated_at = now
            return row.xp

    # 2 -----------------------------------------------------------------------------------------

    async def load_case_guilds(self, guilds: Sequence[int]) -> None:
        """COPY the guild rows."""
        conn = await self._raw()
        try:
            await self._guilds(conn, guilds, data.utcnow())
        finally:
            await conn.close()

    async def create_case(self, guild_id: int, user_id: int, moderator_id: int) -> None:
        """Read the guild, bump its counter in Python, create the case (commit), forget the
        member's cached cases."""
        async with self.db.get_session() as session:
            guild = await session.get(Guild, guild_id)
            assert guild is not None
            guild.case_count += 1
            case = Case(
                case_type=CaseType.WARN,
                case_reason="benchmark",
                case_user_id=user_id,
                case_moderator_id=moderator_id,
                guild_id=guild_id,
                case_number=guild.case_count,
                created_by=moderator_id,
            )
            session.add(case)  # the seed's CRUDMixin.create: add, commit, refresh
            await session.commit()
            await session.refresh(case)
        await self.cache.delete(f"user_cases:{guild_id}:{user_id}")

    async def case_numbers(self, guilds: Sequence[int]) -> dict[int, list[int]]:
        """From the seed's ``case`` table."""
        conn = await self._raw()
        try:
            return await data.case_numbers(conn, "case", "guild_id", "case_number", guilds)
        finally:
            await conn.close()

    # 3 -----------------------------------------------------------------------------------------

    async def load_history(self, history: data.HistoryData) -> None:
        """COPY the cases."""
        now = data.utcnow()
        conn = await self._raw()
        try:
            await self._guilds(conn, [history.guild_id], now)
            await conn.execute(
                "UPDATE guild SET case_count = $2 WHERE guild_id = $1",
                history.guild_id,
                len(history.cases),
            )
            await conn.copy_records_to_table(
                "case",
                columns=[
                    "guild_id",
                    "case_number",
                    "case_type",
                    "case_reason",
                    "case_user_id",
                    "case_moderator_id",
                    "case_user_roles",
                    "case_status",
                    "created_by",
                    "created_at",
                    "is_deleted",
                ],
                records=[
                    (
                        history.guild_id,
                        n,
                        "WARN",
                        f"benchmark case {n}",
                        user,
                        mod,
                        [],
                        True,
                        mod,
                        at,
                        False,
                    )
                    for n, user, mod, at in history.cases
                ],
            )
            await conn.execute('ANALYZE "case"')
        finally:
            await conn.close()

    async def forget_cached_cases(self) -> None:
        """Delete the cached case lists."""
        await self._delete_matching(f"{self.cache.prefix}:user_cases:*")

    async def user_cases(self, guild_id: int, user_id: int) -> int:
        """The seed's ``get_user_cases``."""
        key = f"user_cases:{guild_id}:{user_id}"
        cached = await self.cache.get(key)
        if cached:
            return len([Case.model_validate(case) for case in cached])
        async with self.db.get_session() as session:
            result = await session.execute(
                select(Case)
                .where(col(Case.guild_id) == guild_id, col(Case.case_user_id) == user_id)
                .order_by(col(Case.created_at).desc())
            )
            cases = list(result.scalars().all())
        await self.cache.set(key, [case.model_dump(mode="json") for case in cases], USER_CASES_TTL)
        return len(cases)

    # 4 -----------------------------------------------------------------------------------------

    async def load_leaderboard(self, rows: Iterable[tuple[int, int, int]]) -> None:
        """COPY the XP rows, VACUUM ANALYZE."""
        conn = await self._raw()
        try:
            await self._guilds(conn, [data.LEADERBOARD_GUILD], data.utcnow())
            await self._levels(conn, rows, data.utcnow())
            await conn.execute("VACUUM ANALYZE levels")
        finally:
            await conn.close()

    async def rank(self, guild_id: int, member_id: int) -> int:
        """Read the member's row, count the rows above it."""
        async with self.db.get_session() as session:
            row = await session.get(Levels, (member_id, guild_id))
            assert row is not None
            above = await session.scalar(
                select(func.count())
                .select_from(Levels)
                .where(col(Levels.guild_id) == guild_id, col(Levels.xp) > row.xp)
            )
        return int(above or 0) + 1

    async def top10(self, guild_id: int) -> list[tuple[int, int]]:
        """The 10 rows with most XP, as ORM objects."""
        async with self.db.get_session() as session:
            result = await session.execute(
                select(Levels)
                .where(col(Levels.guild_id) == guild_id)
                .order_by(col(Levels.xp).desc())
                .limit(10)
            )
            return [(row.member_id, int(row.xp)) for row in result.scalars().all()]

    # 5 -----------------------------------------------------------------------------------------

    async def load_reminders(self, rows: Sequence[data.ReminderRow], base: datetime) -> None:
        """COPY the reminders."""
        now = data.utcnow()
        conn = await self._raw()
        try:
            guilds = sorted({row.guild_id for row in rows})
            await conn.executemany(
                "INSERT INTO guild (guild_id, created_at, is_deleted, case_count) "
                "VALUES ($1, $2, FALSE, 0) ON CONFLICT DO NOTHING",
                [(g, now) for g in guilds],
            )
            await conn.copy_records_to_table(
                "reminder",
                columns=[
                    "guild_id",
                    "reminder_user_id",
                    "reminder_channel_id",
                    "reminder_content",
                    "reminder_expires_at",
                    "reminder_sent",
                    "created_at",
                    "is_deleted",
                ],
                records=[
                    (
                        r.guild_id,
                        r.user_id,
                        r.channel_id,
                        r.content,
                        base + timedelta(seconds=r.due_in),
                        False,
                        now,
                        False,
                    )
                    for r in rows
                ],
            )
            await conn.execute("ANALYZE reminder")
        finally:
            await conn.close()

    async def start_dispatcher(self, deliver: Deliver) -> None:
        """Start the 1 s polling loop."""
        self._stop.clear()
        self._dispatcher = asyncio.create_task(self._poll(deliver))

    async def stop_dispatcher(self) -> None:
        """Stop the loop."""
        task, self._dispatcher = self._dispatcher, None
        if task is not None:
            self._stop.set()
            await task

    async def _poll(self, deliver: Deliver) -> None:
        while not self._stop.is_set():
            async with self.db.get_session() as session:
                result = await session.execute(
                    select(Reminder)
                    .where(
                        col(Reminder.reminder_sent) == False,  # noqa: E712 (SQL expression)
                        col(Reminder.reminder_expires_at) <= data.utcnow(),
                    )
                    .order_by(col(Reminder.reminder_expires_at))
                )
                due = list(result.scalars().all())
            for reminder in due:
                assert reminder.reminder_id is not None  # a stored row has its key
                deliver(reminder.reminder_id, reminder.reminder_expires_at)
                await self._mark_sent(reminder.reminder_id)
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), POLL_S)

    async def _mark_sent(self, reminder_id: int) -> None:
        async with self.db.get_session() as session:
            reminder = await session.get(Reminder, reminder_id)
            assert reminder is not None
            reminder.reminder_sent = True
            reminder.updated_at = data.utcnow()

    # 6 -----------------------------------------------------------------------------------------

    async def prefix(self, guild_id: int) -> str:
        """The guild config from the database, every call."""
        async with self.db.get_session() as session:
            config = await session.get(GuildConfig, guild_id)
        return (config.prefix if config else None) or DEFAULT_PREFIX

    # Loading helpers ---------------------------------------------------------------------------

    @staticmethod
    async def _guilds(conn: asyncpg.Connection, guilds: Sequence[int], now: datetime) -> None:
        await conn.copy_records_to_table(
            "guild",
            columns=["guild_id", "guild_joined_at", "case_count", "created_at", "is_deleted"],
            records=[(g, now, 0, now, False) for g in guilds],
        )

    @staticmethod
    async def _levels(
        conn: asyncpg.Connection, rows: Iterable[tuple[int, int, int]], now: datetime
    ) -> None:
        long_ago = now - timedelta(days=1)
        await conn.copy_records_to_table(
            "levels",
            columns=[
                "member_id",
                "guild_id",
                "xp",
                "level",
                "blacklisted",
                "last_message",
                "created_at",
                "is_deleted",
            ],
            records=(
                (m, g, float(xp), data.level_of(xp), False, long_ago, now, False)
                for g, m, xp in rows
            ),
        )
        await conn.execute("ANALYZE levels")

    async def _delete_matching(self, pattern: str) -> None:
        keys = [key async for key in self.cache.redis.scan_iter(match=pattern, count=1000)]
        for start in range(0, len(keys), 500):
            await self.cache.redis.unlink(*keys[start : start + 500])
