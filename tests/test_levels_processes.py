"""db.levels across OS processes sharing the session database (and Redis on that backend)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tortoise.connection import get_connection

import botdata
from botdata.managers.levels import RANK_SQL
from botdata.managers.sql import fetch
from botdata.managers.xp import LevelSettings, level_for_xp
from botdata.models import Levels
from tests.support import REDIS_URL, run_processes

pytestmark = pytest.mark.slow  # several OS processes against one database

GUILD = 320_000_000_000_000_001
SHARED = 420_000_000_000_000_000
WORKERS = 4
GRANTS = 50

WORKER = """
    import asyncio, json, os, time
    import botdata

    GUILD, SHARED = {guild}, {shared}

    async def main():
        db = await botdata.connect(database_url=os.environ["URL"],
                                   redis_url=os.environ.get("REDIS") or None,
                                   CACHE_PREFIX=os.environ["PREFIX"])
        worker = int(os.environ["WORKER"])
        # Barrier: start granting once every worker is connected.
        barrier = os.environ["BARRIER"]
        open(os.path.join(barrier, str(worker)), "w").close()
        deadline = time.monotonic() + 60
        while len(os.listdir(barrier)) < {workers} and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        own = SHARED + 1 + worker
        grants = []
        try:
            for i in range({grants}):
                member = SHARED if i % 2 else own
                grant = await db.levels.grant_message_xp(GUILD, member)
                grants.append(None if grant is None else grant.model_dump())
        finally:
            await db.close()
        print(json.dumps(grants))

    asyncio.run(main())
"""


def run_workers(
    db: botdata.Database, database_url: str, backend: str, barrier: Path
) -> list[dict[str, Any] | None]:
    env = {
        "BARRIER": str(barrier),
        "URL": database_url,
        "REDIS": REDIS_URL if backend == "postgres" else "",
        "PREFIX": db.settings.CACHE_PREFIX,
    }
    code = WORKER.format(guild=GUILD, shared=SHARED, grants=GRANTS, workers=WORKERS)
    outputs = run_processes(code, WORKERS, env=env)
    return [grant for out in outputs for grant in json.loads(out.strip().splitlines()[-1])]


async def test_totals_are_exact_under_concurrent_grants(
    botdata_db: botdata.Database, botdata_database_url: str, botdata_backend: str, tmp_path: Path
) -> None:
    """4 processes x 50 messages (no cooldown), half to one shared member: every total equals
    the sum of the gains returned, each level-up is reported once, ranks agree."""
    rewards = {level: 620_000_000_000_000_000 + level for level in range(1, 30)}
    await botdata_db.levels.configure(GUILD, LevelSettings(cooldown=0, role_rewards=rewards))
    assert await botdata_db.levels.rank(GUILD, SHARED) is None  # builds the (empty) rank set
    grants = run_workers(botdata_db, botdata_database_url, botdata_backend, tmp_path)
    assert len(grants) == WORKERS * GRANTS
    assert all(grant is not None for grant in grants)
    gains: dict[int, int] = {}
    for grant in grants:
        gains[grant["member_id"]] = gains.get(grant["member_id"], 0) + grant["gained"]
    rows = {r.member_id: r for r in await Levels.filter(guild_id=GUILD)}
    assert {m: r.xp for m, r in rows.items()} == gains
    assert len(gains) == WORKERS + 1
    shared_total = rows[SHARED].xp
    assert rows[SHARED].level == level_for_xp(shared_total)
    # The shared member's level-ups: each level reached exactly once across the processes.
    shared = [g for g in grants if g["member_id"] == SHARED]
    ups = sorted(lvl for g in shared for lvl in range(g["previous_level"] + 1, g["level"] + 1))
    assert ups == list(range(1, level_for_xp(shared_total) + 1))
    given = sorted(role for g in shared for role in g["rewards_due"])
    assert given == [rewards[lvl] for lvl in ups]
    # Ranks (from Redis on that backend) match the database's count and the totals.
    board = await botdata_db.levels.leaderboard(GUILD, limit=10)
    assert [(e.member_id, e.xp) for e in board] == sorted(
        gains.items(), key=lambda item: (-item[1], item[0])
    )
    for member_id in gains:
        assert await botdata_db.levels.rank(GUILD, member_id) == await fetch_rank(
            botdata_db, member_id
        )


async def test_cooldown_holds_across_processes(
    botdata_db: botdata.Database, botdata_database_url: str, botdata_backend: str, tmp_path: Path
) -> None:
    """With the default 60 s cooldown, 4 processes x 50 messages of the same two members
    within a few seconds: each member is rewarded exactly once."""
    grants = run_workers(botdata_db, botdata_database_url, botdata_backend, tmp_path)
    granted = [g for g in grants if g is not None]
    assert sorted(g["member_id"] for g in granted if g["member_id"] == SHARED) == [SHARED]
    assert len(granted) == 1 + WORKERS  # the shared member once, each worker's own once
    rows = {r.member_id: r.xp for r in await Levels.filter(guild_id=GUILD)}
    assert rows == {g["member_id"]: g["gained"] for g in granted}


async def fetch_rank(db: botdata.Database, member_id: int) -> int:
    rows = await fetch(get_connection("default"), db.dialect, RANK_SQL, [GUILD, member_id])
    return int(rows[0]["rank"])
