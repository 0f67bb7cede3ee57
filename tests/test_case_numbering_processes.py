"""Case numbers and expiry claims with several OS processes on one database (both backends).

Each worker process opens its own botdata handle on the session database (PostgreSQL: the schema
is already there and connect() only checks it; SQLite: the same file, locked across processes)
with the in-process cache.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from botdata.managers.cases import USER_CASES_KEY
from botdata.models import CaseType, Guild
from tests.moderation_support import GUILD, MOD, USER
from tests.support import REDIS_URL, run_processes, run_python

pytestmark = pytest.mark.slow  # several OS processes against one database

PROCESSES = 4
PER_PROCESS = 25

CREATE = """
import asyncio, json, os
import botdata
from botdata.models import CaseType

async def barrier():
    # Start together: wait until every worker is connected.
    open(os.path.join(os.environ["BARRIER"], os.environ["WORKER"]), "w").close()
    while len(os.listdir(os.environ["BARRIER"])) < int(os.environ["PROCESSES"]):
        await asyncio.sleep(0.01)

async def main():
    db = await botdata.connect(database_url=os.environ["DB_URL"], redis_url="")
    try:
        await barrier()
        cases = await asyncio.gather(*(
            db.cases.create(int(os.environ["GUILD"]), int(os.environ["USER"]) + i,
                            int(os.environ["MOD"]), CaseType.WARN, f"w{os.environ['WORKER']}-{i}")
            for i in range(int(os.environ["COUNT"]))
        ))
    finally:
        await db.close()
    print(json.dumps([case.number for case in cases]))

asyncio.run(main())
"""

CLAIM = """
import asyncio, json, os
from datetime import datetime
import botdata

async def barrier():
    # Start together: wait until every worker is connected.
    open(os.path.join(os.environ["BARRIER"], os.environ["WORKER"]), "w").close()
    while len(os.listdir(os.environ["BARRIER"])) < int(os.environ["PROCESSES"]):
        await asyncio.sleep(0.01)

async def main():
    db = await botdata.connect(database_url=os.environ["DB_URL"], redis_url="")
    now = datetime.fromisoformat(os.environ["NOW"])
    claimed = []
    try:
        await barrier()
        while batch := await db.cases.claim_due(now, limit=3):
            claimed += [case.id for case in batch]
    finally:
        await db.close()
    print(json.dumps(claimed))

asyncio.run(main())
"""


def _env(database_url: str, barrier: Path, **extra: object) -> dict[str, str]:
    values = {"DB_URL": database_url, "BARRIER": barrier, "PROCESSES": PROCESSES, **extra}
    return {key: str(value) for key, value in values.items()}


async def test_processes_creating_cases_on_a_new_guild_get_1_to_n(
    botdata_db, botdata_database_url, tmp_path
):
    assert not await Guild.exists(id=GUILD)
    env = _env(botdata_database_url, tmp_path, GUILD=GUILD, USER=USER, MOD=MOD, COUNT=PER_PROCESS)
    outputs = run_processes(CREATE, PROCESSES, env=env)
    numbers = sorted(n for out in outputs for n in json.loads(out.splitlines()[-1]))
    total = PROCESSES * PER_PROCESS
    assert numbers == list(range(1, total + 1))
    assert (await Guild.get(id=GUILD)).case_count == total
    stored = await botdata_db.cases.search(GUILD, limit=100)
    assert sorted(case.number for case in stored) == list(range(1, total + 1))


async def test_processes_claiming_due_cases_never_share_one(
    botdata_db, botdata_database_url, tmp_path
):
    hour = timedelta(hours=1)
    created = [
        await botdata_db.cases.create(GUILD, USER, MOD, CaseType.TEMPBAN, f"{i}", duration=hour)
        for i in range(60)
    ]
    now = datetime.now(timezone.utc) + timedelta(days=1)
    outputs = run_processes(
        CLAIM, PROCESSES, env=_env(botdata_database_url, tmp_path, NOW=now.isoformat())
    )
    claimed = [case_id for out in outputs for case_id in json.loads(out.splitlines()[-1])]
    assert len(claimed) == len(set(claimed))
    assert sorted(claimed) == sorted(case.id for case in created)


@pytest.mark.parametrize("botdata_backend", ["postgres"], indirect=True, scope="session")
async def test_a_case_made_in_another_process_reaches_this_ones_cached_history(botdata_db):
    """Needs the shared (Redis) cache: the in-process backend shares nothing by design."""
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.WARN, "here")
    assert [c.number for c in await botdata_db.cases.for_user(GUILD, USER)] == [1]
    key = botdata_db.cache.key(USER_CASES_KEY, USER, guild_id=GUILD)
    assert botdata_db.cache.hot_get(key) is not None
    code = f"""
        import asyncio
        import botdata
        from botdata.models import CaseType

        async def main():
            db = await botdata.connect(
                database_url={botdata_db.settings.DATABASE_URL!r},
                redis_url={REDIS_URL!r},
                CACHE_PREFIX={botdata_db.settings.CACHE_PREFIX!r},
            )
            try:
                await db.cases.create({GUILD}, {USER}, {MOD}, CaseType.KICK, "there")
            finally:
                await db.close()

        asyncio.run(main())
    """
    await asyncio.to_thread(run_python, code)
    assert await botdata_db.cache.get_json(key) is None  # the shared copy is gone at once
    deadline = time.monotonic() + 1.0
    seen = await botdata_db.cases.for_user(GUILD, USER)
    while len(seen) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        seen = await botdata_db.cases.for_user(GUILD, USER)
    assert [(c.number, c.reason) for c in seen] == [(2, "there"), (1, "here")]
