"""Ranks among 1,000,000 members of one guild: correct (ties included) and without a table
scan. With Redis (the postgres backend) ranks come from a sorted set, O(log n); the database's
rank query (the backend without Redis, and the fallback) counts over the ``(guild_id, xp)``
index."""

from __future__ import annotations

import functools
import random
from datetime import datetime, timezone

import pytest
from tortoise.connection import get_connection

import botdata
from botdata.managers.levels import RANK_KEY, RANK_MARKER, RANK_SQL
from botdata.managers.sql import dialect_sql, ensure_guild, fetch

pytestmark = pytest.mark.slow  # a million rows per backend

GUILD = 330_000_000_000_000_001
BASE = 430_000_000_000_000_000
COUNT = 1_000_000
# Member BASE + i (i = 1..COUNT) has (i * STRIDE) % MODULO XP: about ten members per total.
STRIDE = 7919
MODULO = 100_003

_COLUMNS = "guild_id, member_id, xp, level, blacklisted, created_at, updated_at"
FILL = {
    "postgres": f"""
        INSERT INTO levels ({_COLUMNS})
        SELECT $1::bigint, $2::bigint + i, (i * {STRIDE}) % {MODULO}, 0, FALSE, $3, $3
        FROM generate_series(1::bigint, {COUNT}) AS i
    """,
    "sqlite": f"""
        INSERT INTO levels ({_COLUMNS})
        WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {COUNT})
        SELECT $1, $2 + i, (i * {STRIDE}) % {MODULO}, 0, FALSE, $3, $3 FROM seq
    """,
}


def xp_of(member_id: int) -> int:
    return (member_id - BASE) * STRIDE % MODULO


@functools.cache
def expected_ranks() -> dict[int, int]:
    """Every member's rank by XP descending, then member id ascending, computed here."""
    order = sorted(range(1, COUNT + 1), key=lambda i: (-((i * STRIDE) % MODULO), i))
    return {BASE + i: position for position, i in enumerate(order, start=1)}


async def database_plan(db: botdata.Database, member_id: int) -> list[str]:
    """The plan of the database's rank query, one line per step."""
    connection = get_connection("default")
    if db.dialect == "postgres":
        rows = await connection.execute_query_dict("EXPLAIN " + RANK_SQL, [GUILD, member_id])
        return [row["QUERY PLAN"] for row in rows]
    query = "EXPLAIN QUERY PLAN " + dialect_sql(RANK_SQL, "sqlite")
    return [row["detail"] for row in await connection.execute_query_dict(query, [GUILD, member_id])]


async def test_rank_among_a_million_members(botdata_db: botdata.Database) -> None:
    connection = get_connection("default")
    await ensure_guild(connection, botdata_db.dialect, GUILD, botdata_db.clock.now())
    await fetch(
        connection,
        botdata_db.dialect,
        FILL[botdata_db.dialect],
        [GUILD, BASE, datetime.now(timezone.utc)],
    )
    # What autovacuum does in production (PostgreSQL's plans depend on statistics).
    analyse = "VACUUM ANALYZE levels" if botdata_db.dialect == "postgres" else "ANALYZE"
    await connection.execute_script(analyse)

    expected = expected_ranks()
    by_rank = {rank: member_id for member_id, rank in expected.items()}
    top, bottom = by_rank[1], by_rank[COUNT]
    # A tie: every member with the middle member's XP, which rank by ascending id.
    middle = by_rank[COUNT // 2]
    tied = sorted(m for m in expected if xp_of(m) == xp_of(middle))
    assert len(tied) >= 5
    first = expected[tied[0]]
    assert [expected[m] for m in tied] == list(range(first, first + len(tied)))
    chosen = [top, bottom, *tied, *random.Random(7).sample(sorted(expected), 20)]

    # The database's rank query: right answers, and an index range count, no table scan.
    plan = await database_plan(botdata_db, bottom)
    text = "\n".join(plan)
    if botdata_db.dialect == "postgres":
        assert "Index Only Scan" in text, text
        assert "Seq Scan" not in text, text
    else:
        assert any("USING COVERING INDEX" in step for step in plan), text
        assert not any(step.startswith("SCAN") for step in plan), text
    for member_id in (top, bottom, *tied):
        rows = await fetch(connection, botdata_db.dialect, RANK_SQL, [GUILD, member_id])
        assert int(rows[0]["rank"]) == expected[member_id]

    # db.levels.rank: from the sorted set with Redis (built by the first call), else the query.
    for member_id in chosen:
        assert await botdata_db.levels.rank(GUILD, member_id) == expected[member_id]
    assert await botdata_db.levels.rank(GUILD, BASE) is None  # no row
    board = await botdata_db.levels.leaderboard(GUILD, limit=5, offset=COUNT - 3)
    last = range(COUNT - 2, COUNT + 1)
    assert [(e.rank, e.member_id) for e in board] == [(r, by_rank[r]) for r in last]
    if botdata_db.settings.REDIS_URL is not None:
        key = botdata_db.cache.key(RANK_KEY, guild_id=GUILD)
        assert [m for m, _ in await botdata_db.cache.zrevrange(key, 0, 0)] == [RANK_MARKER]
        # Served from the sorted set now: still right for members anywhere in the ranking.
        for member_id in random.Random(11).sample(sorted(expected), 300):
            assert await botdata_db.levels.rank(GUILD, member_id) == expected[member_id]
