"""db.guilds.ensure() from several OS processes at once for the same new guilds (both backends)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

import botdata
from botdata.models import Guild, GuildConfig
from tests.support import run_processes

pytestmark = pytest.mark.slow  # several OS processes against one database

WORKERS = 4
GUILDS = [(1 << 40) + n for n in range(25)]


async def test_ensure_from_several_processes(
    botdata_db: botdata.Database, botdata_database_url: str, tmp_path: Path
) -> None:
    # Each worker connects, waits until every worker is connected (a file barrier), then
    # ensures the same new guilds in the same order, so the inserts collide.
    code = f"""
        import asyncio, json, os, pathlib, time
        import botdata

        GUILDS = {GUILDS!r}
        BARRIER = pathlib.Path({str(tmp_path)!r})

        async def main():
            db = await botdata.connect(database_url={botdata_database_url!r}, redis_url="")
            try:
                (BARRIER / ("ready-" + os.environ["WORKER"])).touch()
                deadline = time.monotonic() + 60
                while len(list(BARRIER.glob("ready-*"))) < {WORKERS}:
                    assert time.monotonic() < deadline, "other workers did not start"
                    await asyncio.sleep(0.005)
                joined = {{}}
                for guild_id in GUILDS:
                    guild = await db.guilds.ensure(guild_id)
                    assert guild.id == guild_id
                    joined[guild_id] = guild.joined_at.isoformat()
                print(json.dumps(joined))
            finally:
                await db.close()

        asyncio.run(main())
    """
    outputs = await asyncio.to_thread(run_processes, code, WORKERS)

    assert await Guild.all().count() == len(GUILDS)
    assert await GuildConfig.all().count() == len(GUILDS)
    assert sorted(await GuildConfig.all().values_list("guild_id", flat=True)) == GUILDS
    # every process got the one row that exists
    rows = {g.id: g.joined_at for g in await Guild.all()}
    for output in outputs:
        joined = json.loads(output.strip().splitlines()[-1])
        assert {int(k): v for k, v in joined.items()} == {
            guild_id: at.isoformat() for guild_id, at in rows.items()
        }
