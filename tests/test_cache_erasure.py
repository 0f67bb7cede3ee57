"""Erasing a member clears the cache, also when Redis is paused during the erasure.

The paused case runs in a worker process with a handle of its own on the session's PostgreSQL
database and a ``redis-server`` started for the test (the shared Redis is never paused).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

import botdata
from botdata.models import AccessType, PermissionType
from tests.support import run_python
from tests.test_cache_outage import RedisServer, redis_server  # noqa: F401 (a fixture)

GUILD = 340_000_000_000_000_001
RESET_GUILD = 340_000_000_000_000_002
MEMBER = 440_000_000_000_000_001
OTHER = 440_000_000_000_000_002

BEFORE = {
    "leaderboard": [MEMBER, OTHER],
    "rank": 1,
    "afk": [MEMBER],
    "rules": [[MEMBER, "Member"]],
}
#: The rule about the member is a moderation record: kept, without the member's name.
AFTER = {"leaderboard": [OTHER], "rank": None, "afk": [], "rules": [[MEMBER, None]]}


async def give(db: botdata.Database) -> None:
    """Levels (the rank set is built by the first read), an AFK status and an access rule
    naming the member."""
    await db.levels.set_xp(GUILD, MEMBER, 500)
    await db.levels.set_xp(GUILD, OTHER, 100)
    await db.afk.set(GUILD, MEMBER, nickname="member")
    await db.permissions.add_rule(
        GUILD,
        access=AccessType.BLACKLIST,
        target_type=PermissionType.MEMBER,
        target_id=MEMBER,
        command="rank",
        target_name="Member",
    )


async def seen(db: botdata.Database) -> dict[str, Any]:
    """The member's data as the managers show it (from their caches wherever they cache)."""
    return {
        "leaderboard": [entry.member_id for entry in await db.levels.leaderboard(GUILD)],
        "rank": await db.levels.rank(GUILD, MEMBER),
        "afk": sorted(await db.afk.get_many(GUILD, [MEMBER, OTHER])),
        "rules": [[rule.target_id, rule.target_name] for rule in await db.permissions.rules(GUILD)],
    }


async def test_erasure_drops_the_member_from_ranks_and_cached_values(
    botdata_db: botdata.Database,
) -> None:
    await give(botdata_db)
    assert await seen(botdata_db) == BEFORE  # rank set built, values cached
    summary = await botdata_db.privacy.erase_user(MEMBER)
    assert summary.cache_cleared is True
    assert await seen(botdata_db) == AFTER


PAUSED_WORKER = """
    import asyncio, json, os, signal, time
    import redis
    import botdata
    from botdata.managers.levels import RANK_KEY
    from tests.test_cache_erasure import GUILD, MEMBER, OTHER, RESET_GUILD, give, seen

    async def while_paused(db, pid, call, *, noticed=False):
        os.kill(pid, signal.SIGSTOP)
        try:
            if noticed:  # two calls time out: the outage is declared, calls are not even sent
                for _ in range(2):
                    await db.cache.get_json(db.cache.key("probe"))
            return await call
        finally:
            os.kill(pid, signal.SIGCONT)

    async def back(db, client):
        # Once this process reaches Redis again (what it owes first), reads go through it.
        probe, deadline = db.cache.key("probe"), time.monotonic() + 5
        client.delete(probe)
        while client.get(probe) is None and time.monotonic() < deadline:
            await db.cache.set_json(probe, 1)
            await asyncio.sleep(0.05)
        return client.get(probe) is not None

    async def board(db, guild):
        return [entry.member_id for entry in await db.levels.leaderboard(guild)]

    async def main():
        db = await botdata.connect(database_url=os.environ["URL"], redis_url=os.environ["REDIS"],
                                   CACHE_PREFIX=os.environ["PREFIX"], REDIS_TIMEOUT=0.25)
        client = redis.Redis.from_url(os.environ["REDIS"], socket_timeout=3)
        pid, out = int(os.environ["REDIS_PID"]), {}
        try:
            await db.levels.set_xp(RESET_GUILD, OTHER, 50)
            out["reset: before"] = await board(db, RESET_GUILD)
            await while_paused(db, pid, db.levels.reset(RESET_GUILD), noticed=True)
            out["reset: redis back"] = await back(db, client)
            out["reset: after"] = await board(db, RESET_GUILD)

            await give(db)
            out["before"] = await seen(db)
            out["rank set built"] = client.exists(db.cache.key(RANK_KEY, guild_id=GUILD)) == 1
            summary = await while_paused(db, pid, db.privacy.erase_user(MEMBER))
            out["cache_cleared"] = summary.cache_cleared
            out["right after"] = await seen(db)
            out["redis back"] = await back(db, client)
            out["through redis"] = await seen(db)
        finally:
            client.close()
            await db.close()
        print(json.dumps(out))

    asyncio.run(main())
"""


@pytest.mark.parametrize("botdata_backend", ["postgres"], indirect=True, scope="session")
async def test_erasure_while_redis_is_paused_leaves_nothing_cached(
    botdata_db: botdata.Database,
    botdata_database_url: str,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    """Redis is paused (SIGSTOP) during ``erase_user``: the summary says the cache part is
    still queued; once Redis answers, the very next reads (rank set, cached AFK members,
    cached access rules) do not show the member, with no TTL to wait for. A guild's XP reset
    made while Redis is paused and known to be (its invalidation is not even sent) does not
    leave the old rank set behind either."""
    assert redis_server.process is not None
    env = {
        "URL": botdata_database_url,
        "REDIS": redis_server.url,
        "REDIS_PID": str(redis_server.process.pid),
        "PREFIX": f"erasure-{uuid.uuid4().hex[:8]}",
    }
    out = json.loads((await asyncio.to_thread(run_python, PAUSED_WORKER, env=env)).splitlines()[-1])
    assert out["reset: before"] == [OTHER]
    assert out["reset: redis back"] is True
    assert out["reset: after"] == []
    assert out["before"] == BEFORE
    assert out["rank set built"] is True
    assert out["cache_cleared"] is False
    assert out["right after"] == AFTER
    assert out["redis back"] is True
    assert out["through redis"] == AFTER
