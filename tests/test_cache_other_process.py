"""Changes another process makes to the database reach this process's cache within seconds.

With Redis, through its invalidations. On the embedded default (SQLite, in-process cache) the
handle checks SQLite's change counter about once a second and drops its cached copies of
database rows when another process committed (see :mod:`botdata.cache.memory`).
"""

from __future__ import annotations

import asyncio
import time

import pytest

import botdata
from botdata.cache.memory import WATCH_INTERVAL
from botdata.managers.guilds import CONFIG_KEY
from botdata.models import CaseType
from tests.support import REDIS_URL, run_python

pytestmark = pytest.mark.slow  # another OS process, and waits of about a second for its changes

GUILD = 350_000_000_000_000_001
OTHER_GUILD = 350_000_000_000_000_002
USER = 450_000_000_000_000_001
MOD = 550_000_000_000_000_001

WRITER = f"""
    import asyncio, os
    import botdata
    from botdata.models import CaseType

    async def main():
        db = await botdata.connect(database_url=os.environ["URL"],
                                   redis_url=os.environ["REDIS"] or None,
                                   CACHE_PREFIX=os.environ["PREFIX"])
        try:
            await db.guilds.update_config({GUILD}, prefix="?")
            await db.cases.create({GUILD}, {USER}, {MOD}, CaseType.KICK, "there")
        finally:
            await db.close()

    asyncio.run(main())
"""


async def test_a_prefix_and_a_case_from_another_process_are_seen_within_seconds(
    botdata_db: botdata.Database, botdata_backend: str, botdata_database_url: str
) -> None:
    """A dashboard or a script changes the prefix and adds a case while this process has both
    cached: within a few seconds this process serves the new ones. Its cooldown claims, locks
    and rate-limit counts are not reset by that."""
    await botdata_db.guilds.update_config(GUILD, prefix="!")
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.WARN, "here")
    assert await botdata_db.guilds.prefix(GUILD) == "!"
    assert [case.reason for case in await botdata_db.cases.for_user(GUILD, USER)] == ["here"]
    assert botdata_db.cache.hot_get(botdata_db.cache.key(CONFIG_KEY, guild_id=GUILD)) is not None
    claim, lock, rate = (
        botdata_db.cache.key(name, guild_id=GUILD) for name in ("claim", "lock", "rate")
    )
    assert await botdata_db.cache.claim(claim, 60) is None
    assert await botdata_db.cache.set_if_absent(lock, "1", 60) is True
    assert await botdata_db.cache.check_rate_limit(rate, 1, 60) is False

    env = {
        "URL": botdata_database_url,
        "REDIS": REDIS_URL if botdata_backend == "postgres" else "",
        "PREFIX": botdata_db.settings.CACHE_PREFIX,
    }
    await asyncio.to_thread(run_python, WRITER, env=env)
    deadline = time.monotonic() + 5
    while True:
        prefix = await botdata_db.guilds.prefix(GUILD)
        reasons = [case.reason for case in await botdata_db.cases.for_user(GUILD, USER)]
        if (prefix, reasons) == ("?", ["there", "here"]) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert (prefix, reasons) == ("?", ["there", "here"])
    assert await botdata_db.cache.claim(claim, 60) is not None
    assert await botdata_db.cache.set_if_absent(lock, "1", 60) is False
    assert await botdata_db.cache.check_rate_limit(rate, 1, 60) is True


@pytest.mark.parametrize("botdata_backend", ["sqlite"], indirect=True, scope="session")
async def test_this_process_own_commits_drop_nothing_else(botdata_db: botdata.Database) -> None:
    """SQLite's change counter does not move for this process's own commits: its writes drop
    only what they invalidate, whatever the watcher sees meanwhile."""
    # Past the watcher's next check: it has seen what earlier tests' processes committed.
    await asyncio.sleep(WATCH_INTERVAL * 1.5)
    config = await botdata_db.guilds.config(GUILD)
    for prefix in ("a", "b", "c"):
        await botdata_db.guilds.update_config(OTHER_GUILD, prefix=prefix)
        await asyncio.sleep(0.8)
    assert botdata_db.cache.hot_get(botdata_db.cache.key(CONFIG_KEY, guild_id=GUILD)) is config
