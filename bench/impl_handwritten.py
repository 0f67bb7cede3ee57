"""(b) Handwritten: raw asyncpg + redis-py doing the minimum correct work, on botdata's schema.

What it does, exactly:

1. Message: ``SELECT prefix`` of the guild (no in-process cache: the minimum correct code reads
   it every time), ``SELECT ... FROM afk WHERE guild_id = $1 AND member_id = ANY($2)`` for the
   author and the mentions, Redis ``SET key 1 NX EX 60`` for the cooldown, and when it was
   set one ``INSERT ... ON CONFLICT (guild_id, member_id) DO UPDATE SET xp = levels.xp + ...
   WHERE NOT levels.blacklisted RETURNING xp, level``; an ``UPDATE`` of the level only when it
   changed. XP 15-25 and the 60 s cooldown are constants (no per-guild level settings).
2. Case: one statement, ``WITH g AS (INSERT INTO guilds ... ON CONFLICT DO UPDATE SET
   case_count = guilds.case_count + 1 RETURNING ...) INSERT INTO cases ... SELECT ... FROM g``.
3. History: ``SELECT ... FROM cases WHERE guild_id = $1 AND user_id = $2 ORDER BY number DESC
   LIMIT 25`` (no cache: cold and warm are the same query).
4. Rank: ``count(*)`` of the members above (the ``(guild_id, xp)`` index); top 10: ``ORDER BY
   xp DESC LIMIT 10``.
5. Dispatcher: claim up to 100 due reminders (``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE
   SKIP LOCKED) RETURNING``), deliver them, mark them sent in one ``UPDATE``; when nothing is
   due, sleep until ``min(due_at)`` of the pending ones (at most 30 s).
6. Prefix: the ``SELECT`` of step 1.

Pool: asyncpg, 10 connections (botdata's default ``DATABASE_POOL_MAX``); redis-py's default pool.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Sequence
from contextlib import suppress
from datetime import datetime, timedelta

import asyncpg
import redis.asyncio as redis

from bench import data
from bench.impl_base import Deliver, Implementation
from bench.services import REDIS_URL, migrate

DEFAULT_PREFIX = "$"
POOL_SIZE = 10
RECHECK_S = 30.0
CLAIM_LEASE = timedelta(seconds=60)

_PREFIX = "SELECT prefix FROM guild_configs WHERE guild_id = $1"
_AFK = (
    "SELECT member_id, reason, until FROM afk WHERE guild_id = $1 AND member_id = ANY($2::bigint[])"
)
_GRANT = """
INSERT INTO levels (guild_id, member_id, xp, level, blacklisted, last_message_at,
                    created_at, updated_at)
VALUES ($1, $2, $3, 0, FALSE, $4, $4, $4)
ON CONFLICT (guild_id, member_id) DO UPDATE SET
    xp = levels.xp + EXCLUDED.xp,
    last_message_at = EXCLUDED.last_message_at,
    updated_at = EXCLUDED.updated_at
WHERE NOT levels.blacklisted
RETURNING xp, level
"""
_LEVEL = "UPDATE levels SET level = $3 WHERE guild_id = $1 AND member_id = $2 AND xp = $4"
_CASE = """
WITH g AS (
    INSERT INTO guilds (id, created_at, updated_at, joined_at, case_count, note_count)
    VALUES ($1, $5, $5, $5, 1, 0)
    ON CONFLICT (id) DO UPDATE SET case_count = guilds.case_count + 1, updated_at = $5
    RETURNING id, case_count
)
INSERT INTO cases (guild_id, number, type, reason, user_id, moderator_id, user_roles, active,
                   created_by, updated_by, created_at, updated_at)
SELECT g.id, g.case_count, 'WARN', $4, $2, $3, '[]'::jsonb, TRUE, $3, $3, $5, $5 FROM g
RETURNING id, number
"""
_HISTORY = """
SELECT id, number, type, reason, user_id, moderator_id, active, expires_at, created_at
FROM cases WHERE guild_id = $1 AND user_id = $2 ORDER BY number DESC LIMIT 25
"""
_RANK = """
SELECT 1 + (SELECT count(*) FROM levels o WHERE o.guild_id = m.guild_id AND o.xp > m.xp)
FROM levels m WHERE m.guild_id = $1 AND m.member_id = $2
"""
_TOP = "SELECT member_id, xp FROM levels WHERE guild_id = $1 ORDER BY xp DESC LIMIT 10"
_CLAIM = """
UPDATE reminders SET claimed_until = $1 WHERE id IN (
    SELECT id FROM reminders WHERE sent_at IS NULL AND due_at <= $2
    AND (claimed_until IS NULL OR claimed_until <= $2)
    ORDER BY sent_at, due_at LIMIT 100 FOR UPDATE SKIP LOCKED)
RETURNING id, guild_id, user_id, channel_id, content, due_at
"""
_SENT = (
    "UPDATE reminders SET sent_at = $2, claimed_until = NULL, updated_at = $2 WHERE id = ANY($1)"
)
_NEXT = "SELECT min(due_at) FROM reminders WHERE sent_at IS NULL"


class Handwritten(Implementation):
    """Raw asyncpg + redis-py, minimum correct work."""

    key = "b"

    def describe(self) -> str:
        """Pool sizes."""
        return f"asyncpg pool {POOL_SIZE} connections, redis-py default pool, no timeouts"

    async def open(self) -> None:
        """Migrate botdata's schema (the tables match) and open the pools."""
        await migrate(self.resources.url)
        self.pool: asyncpg.Pool = await asyncpg.create_pool(
            self.resources.url, min_size=POOL_SIZE, max_size=POOL_SIZE
        )
        self.redis = redis.Redis.from_url(REDIS_URL)
        self.rng = random.Random(7)
        self._dispatcher: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def close(self) -> None:
        """Close the pools."""
        await self.stop_dispatcher()
        await self.pool.close()
        await self.redis.aclose()

    # 1 -----------------------------------------------------------------------------------------

    async def load_pipeline(self, pipeline: data.PipelineData) -> None:
        """COPY into botdata's schema."""
        async with self.pool.acquire() as conn:
            await data.load_pipeline(conn, pipeline)

    async def handle_message(self, message: data.Message) -> None:
        """Four round trips (three to PostgreSQL, one to Redis); five on a level change."""
        guild_id, author = message.guild_id, message.author_id
        await self.prefix(guild_id)
        await self.pool.fetch(_AFK, guild_id, [author, *message.mentions])
        key = f"{self.resources.key_prefix}:xp_cooldown:{guild_id}:{author}"
        if not await self.redis.set(key, 1, nx=True, ex=int(data.XP_COOLDOWN)):
            return
        now = data.utcnow()
        gained = self.rng.randint(data.XP_MIN, data.XP_MAX)
        row = await self.pool.fetchrow(_GRANT, guild_id, author, gained, now)
        if row is None:  # blacklisted
            return
        self.granted += 1
        level = data.level_of(row["xp"])
        if level != row["level"]:
            await self.pool.execute(_LEVEL, guild_id, author, level, row["xp"])

    # 2 -----------------------------------------------------------------------------------------

    async def load_case_guilds(self, guilds: Sequence[int]) -> None:
        """COPY the guild rows."""
        async with self.pool.acquire() as conn:
            await data.load_case_guilds(conn, guilds)

    async def create_case(self, guild_id: int, user_id: int, moderator_id: int) -> None:
        """One statement: bump the counter and insert the case."""
        await self.pool.fetchrow(_CASE, guild_id, user_id, moderator_id, "benchmark", data.utcnow())

    async def case_numbers(self, guilds: Sequence[int]) -> dict[int, list[int]]:
        """From ``cases``."""
        async with self.pool.acquire() as conn:
            return await data.case_numbers(conn, "cases", "guild_id", "number", guilds)

    # 3 -----------------------------------------------------------------------------------------

    async def load_history(self, history: data.HistoryData) -> None:
        """COPY the cases."""
        async with self.pool.acquire() as conn:
            await data.load_history(conn, history)

    async def forget_cached_cases(self) -> None:
        """No cache."""

    async def user_cases(self, guild_id: int, user_id: int) -> int:
        """One query."""
        return len(await self.pool.fetch(_HISTORY, guild_id, user_id))

    # 4 -----------------------------------------------------------------------------------------

    async def load_leaderboard(self, rows: Iterable[tuple[int, int, int]]) -> None:
        """COPY the XP rows."""
        async with self.pool.acquire() as conn:
            await data.load_leaderboard(conn, rows)

    async def rank(self, guild_id: int, member_id: int) -> int:
        """A count over the ``(guild_id, xp)`` index."""
        return await self.pool.fetchval(_RANK, guild_id, member_id)

    async def top10(self, guild_id: int) -> list[tuple[int, int]]:
        """An index scan, 10 rows."""
        return [(r["member_id"], r["xp"]) for r in await self.pool.fetch(_TOP, guild_id)]

    # 5 -----------------------------------------------------------------------------------------

    async def load_reminders(self, rows: Sequence[data.ReminderRow], base: datetime) -> None:
        """COPY the reminders."""
        async with self.pool.acquire() as conn:
            await data.load_reminders(conn, rows, base)

    async def start_dispatcher(self, deliver: Deliver) -> None:
        """Start the claim / deliver / sleep loop."""
        self._stop.clear()
        self._dispatcher = asyncio.create_task(self._dispatch(deliver))

    async def stop_dispatcher(self) -> None:
        """Stop the loop."""
        task, self._dispatcher = self._dispatcher, None
        if task is not None:
            self._stop.set()
            await task

    async def _dispatch(self, deliver: Deliver) -> None:
        while not self._stop.is_set():
            now = data.utcnow()
            rows = await self.pool.fetch(_CLAIM, now + CLAIM_LEASE, now)
            if rows:
                for row in rows:
                    deliver(row["id"], row["due_at"])
                await self.pool.execute(_SENT, [row["id"] for row in rows], data.utcnow())
                continue
            next_due = await self.pool.fetchval(_NEXT)
            delay = RECHECK_S
            if next_due is not None:
                delay = min(RECHECK_S, (next_due - data.utcnow()).total_seconds())
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), max(delay, 0.001))

    # 6 -----------------------------------------------------------------------------------------

    async def prefix(self, guild_id: int) -> str:
        """One query per call."""
        return await self.pool.fetchval(_PREFIX, guild_id) or DEFAULT_PREFIX
