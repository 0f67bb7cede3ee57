"""Cache fills racing invalidations, with several OS processes hammering the same keys.

A reader that loaded a value from the database before a concurrent update must never store it
in the shared cache after that update's invalidation (it would be served stale to every
process until its TTL), and a process's read right after its own write must include it. Each
worker opens its own botdata handle on the session database (and Redis on that backend).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import botdata
from tests.support import REDIS_URL, run_processes

pytestmark = pytest.mark.slow  # several OS processes against one database and Redis

WORKERS = 4
GUILD = 330_000_000_000_000_001
USERS = (430_000_000_000_000_001, 430_000_000_000_000_002)
MOD = 530_000_000_000_000_001

#: Start together: wait until every worker has reached the barrier ``name``.
BARRIER = """
    async def barrier(name):
        path = os.path.join(os.environ["BARRIER"], name)
        os.makedirs(path, exist_ok=True)
        open(os.path.join(path, os.environ["WORKER"]), "w").close()
        deadline = time.monotonic() + 120
        while len(os.listdir(path)) < int(os.environ["WORKERS"]):
            assert time.monotonic() < deadline, "barrier " + name
            await asyncio.sleep(0.01)
"""

CONFIG_WORKER = (
    """
    import asyncio, json, os, time
    import redis.asyncio
    import botdata
    from botdata.managers.guilds import CONFIG_KEY
    """
    + BARRIER
    + """
    def number(prefix):
        return 0 if prefix is None else int(prefix[1:])

    async def main():
        db = await botdata.connect(database_url=os.environ["URL"], redis_url=os.environ["REDIS"],
                                   CACHE_PREFIX=os.environ["PREFIX"], REDIS_TIMEOUT=5,
                                   DATABASE_POOL_TIMEOUT=30, DATABASE_LOCK_TIMEOUT=30)
        marks = redis.asyncio.Redis.from_url(os.environ["REDIS"])
        worker, guilds = int(os.environ["WORKER"]), json.loads(os.environ["GUILDS"])
        mine = guilds[worker]
        keys = {g: db.cache.key(CONFIG_KEY, guild_id=g) for g in guilds}
        mark = os.environ["PREFIX"] + ":written:"  # under the prefix: cleared with it
        problems, counts = [], {"writes": 0, "reads": 0}
        await barrier("start")
        stop = time.monotonic() + float(os.environ["SECONDS"])

        async def writer():
            n = 0
            while time.monotonic() < stop:
                n += 1
                await db.guilds.update_config(mine, prefix=f"v{n}")
                seen = (await db.guilds.config(mine)).prefix
                if seen != f"v{n}":
                    problems.append(["own write not read back", mine, n, seen])
                await marks.set(mark + str(mine), n)
                counts["writes"] += 1

        async def reader():
            while time.monotonic() < stop:
                for g in guilds:
                    # A write known to have completed before this read started.
                    written = int(await marks.get(mark + str(g)) or 0)
                    await db.guilds.config(g)
                    shared = await db.cache.get_json(keys[g])
                    if shared is not None and number(shared["prefix"]) < written:
                        problems.append(["stale shared copy", g, written, shared["prefix"]])
                    counts["reads"] += 1

        await asyncio.gather(writer(), *(reader() for _ in range(3)))
        await barrier("written")
        final = {g: int(await marks.get(mark + str(g)) or 0) for g in guilds}
        # Every process converges on the last values (other processes' hot layers hear of the
        # last invalidations within a second), not after the TTL.
        deadline = time.monotonic() + 3
        seen = {}
        while time.monotonic() < deadline:
            seen = {g: number((await db.guilds.config(g)).prefix) for g in guilds}
            if seen == final:
                break
            await asyncio.sleep(0.05)
        if seen != final:
            problems.append(["did not converge", final, seen])
        await marks.aclose()
        await db.close()
        print(json.dumps({"problems": problems, **counts}))

    asyncio.run(main())
"""
)

CASES_WORKER = (
    """
    import asyncio, json, os, time
    import botdata
    from botdata.models import CaseType
    """
    + BARRIER
    + """
    async def main():
        # Generous waits: four processes hammer one database on two cores; this is about what
        # the reads return, not about how long they wait.
        db = await botdata.connect(database_url=os.environ["URL"],
                                   redis_url=os.environ.get("REDIS") or None,
                                   CACHE_PREFIX=os.environ["PREFIX"], REDIS_TIMEOUT=5,
                                   DATABASE_POOL_TIMEOUT=30, DATABASE_LOCK_TIMEOUT=30)
        worker, users = os.environ["WORKER"], json.loads(os.environ["USERS"])
        guild, mod = int(os.environ["GUILD"]), int(os.environ["MOD"])
        rounds = int(os.environ["ROUNDS"])
        problems, checked = [], [0]
        done = asyncio.Event()
        await barrier("start")

        async def creator(task):
            for i in range(rounds):
                user = users[i % len(users)]
                reason = f"{worker}-{task}-{i}"
                case = await db.cases.create(guild, user, mod, CaseType.WARN, reason)
                seen = [c.number for c in await db.cases.for_user(guild, user)]
                if case.number not in seen:
                    problems.append([user, case.number, seen[:5]])
                checked[0] += 1

        async def reader():
            while not done.is_set():
                for user in users:
                    await db.cases.for_user(guild, user)
                await asyncio.sleep(0)

        readers = [asyncio.create_task(reader()) for _ in range(2)]
        try:
            await asyncio.gather(*(creator(task) for task in range(2)))
        finally:  # a failure ends the worker (and the test) instead of hanging it
            done.set()
            await asyncio.gather(*readers, return_exceptions=True)
            await db.close()
        print(json.dumps({"problems": problems, "checked": checked[0]}))

    asyncio.run(main())
"""
)


def _env(database_url: str, barrier: Path, prefix: str, **extra: object) -> dict[str, str]:
    values = {
        "URL": database_url,
        "BARRIER": barrier,
        "PREFIX": prefix,
        "WORKERS": WORKERS,
        **extra,
    }
    return {key: str(value) for key, value in values.items()}


def _results(outputs: list[str]) -> list[dict]:
    return [json.loads(out.splitlines()[-1]) for out in outputs]


def _summary(results: list[dict]) -> str:
    """How many problems each worker saw, and its first ones."""
    return "; ".join(
        f"worker {i}: {len(r['problems'])} problems, first {r['problems'][:3]}"
        for i, r in enumerate(results)
    )


@pytest.mark.parametrize("botdata_backend", ["postgres"], indirect=True, scope="session")
async def test_no_fill_that_raced_an_update_lands_in_the_shared_cache(
    botdata_db: botdata.Database, botdata_database_url: str, tmp_path: Path
) -> None:
    """Four processes each update their guild's prefix in a loop (and read it back at once)
    while three reader tasks per process read every guild's configuration (filling the shared
    cache after every invalidation). A shared copy older than a write known to have completed
    before the read is a fill that raced that write's invalidation; it would be served until
    the TTL. At the end every process, and this one, reads the last values.

    Needs Redis: without it each process has a cache of its own (see test_cache_other_process).
    """
    guilds = [GUILD + i for i in range(WORKERS)]
    env = _env(
        botdata_database_url,
        tmp_path,
        botdata_db.settings.CACHE_PREFIX,
        REDIS=REDIS_URL,
        GUILDS=json.dumps(guilds),
        SECONDS=6,
    )
    results = _results(run_processes(CONFIG_WORKER, WORKERS, env=env))
    assert [r["problems"] for r in results] == [[]] * WORKERS, _summary(results)
    assert all(r["writes"] >= 20 and r["reads"] >= 100 for r in results), results
    prefix = botdata_db.settings.CACHE_PREFIX
    written = {g: await botdata_db.cache.get_json(f"{prefix}:written:{g}") for g in guilds}
    assert {g: (await botdata_db.guilds.config(g)).prefix for g in guilds} == {
        g: f"v{n}" for g, n in written.items()
    }


async def test_a_process_reads_its_own_new_case_right_after_creating_it(
    botdata_db: botdata.Database, botdata_backend: str, botdata_database_url: str, tmp_path: Path
) -> None:
    """Read-your-writes: in four processes, two tasks each create cases for two shared members
    and read the member's history right after each create, while two more tasks per process
    keep reading those histories (fills racing the creates' invalidations)."""
    rounds = 100 if botdata_backend == "postgres" else 25
    env = _env(
        botdata_database_url,
        tmp_path,
        botdata_db.settings.CACHE_PREFIX,
        REDIS=REDIS_URL if botdata_backend == "postgres" else "",
        USERS=json.dumps(USERS),
        GUILD=GUILD,
        MOD=MOD,
        ROUNDS=rounds,
    )
    results = _results(run_processes(CASES_WORKER, WORKERS, env=env))
    assert [r["problems"] for r in results] == [[]] * WORKERS, _summary(results)
    assert sum(r["checked"] for r in results) == WORKERS * 2 * rounds
    total = len(await botdata_db.cases.search(GUILD, limit=100, user_id=USERS[0]))
    assert total == min(100, WORKERS * rounds)
