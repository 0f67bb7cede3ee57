"""Database fault scenarios for tests/test_database_faults.py, each run in a process of its own.

A scenario needs a handle with settings of its own (small timeouts, a one-connection pool), and
``connect()`` allows one open handle per process, so the test runs it with :func:`run` in a new
process (``tests.support.run_python``) and reads the one JSON line it prints. Every scenario uses
the in-process cache, so that only the database is faulted.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from tortoise import Tortoise

import botdata
from botdata.errors import BotdataError, DatabaseTimeoutError, DatabaseUnavailableError
from botdata.models import Case, GuildConfig
from botdata.models.moderation import CaseType

LOCKED_GUILD = 100_000_000_000_000_001
USER = 200_000_000_000_000_001
MOD = 300_000_000_000_000_001
# Guild ids no other scenario process used (several run on one database): nothing cached,
# no rows yet.
_fresh_guilds = itertools.count(500_000_000_000_000_000 + os.getpid() * 1_000_000)

Scenario = Callable[..., Awaitable[dict[str, Any]]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(function: Scenario) -> Scenario:
    SCENARIOS[function.__name__] = function
    return function


def run(name: str, database_url: str, settings: dict[str, Any], **arguments: Any) -> None:
    """Connect to ``database_url`` with ``settings``, run scenario ``name``, print its result."""

    async def main() -> None:
        db = await botdata.connect(database_url=database_url, redis_url="", **settings)
        try:
            result = await SCENARIOS[name](db, database_url, **arguments)
        finally:
            await db.close()
        print(json.dumps(result))

    asyncio.run(main())


def describe(exc: BaseException) -> dict[str, Any]:
    """What a test asserts about an exception a caller got."""
    return {
        "type": type(exc).__name__,
        "botdata": isinstance(exc, BotdataError),
        "unavailable": isinstance(exc, DatabaseUnavailableError),
        "timeout": isinstance(exc, DatabaseTimeoutError),
        "message": str(exc),
        "cause": type(exc.__cause__).__name__ if exc.__cause__ else None,
    }


def _asyncpg_url(database_url: str) -> str:
    return database_url.split("?", 1)[0]


async def _wait_for_lock_waiters(admin: asyncpg.Connection, count: int) -> list[int]:
    """The pids of at least ``count`` backends waiting for a lock (a bounded wait)."""
    deadline = time.monotonic() + 20
    while True:
        pids = [
            row["pid"]
            for row in await admin.fetch(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ]
        if len(pids) >= count:
            return pids
        assert time.monotonic() < deadline, f"only {len(pids)} lock waiters"
        await asyncio.sleep(0.05)


async def _settle(coroutine: Awaitable[Any]) -> dict[str, Any]:
    try:
        await coroutine
    except Exception as exc:
        return describe(exc)
    return {"type": None}


# Lock, statement and pool timeouts (point 27) -------------------------------------------------


@scenario
async def lock_held_on_postgres(db: botdata.Database, url: str) -> dict[str, Any]:
    """Another connection holds the locked guild's row: 20 case creates there fail with the
    timeout error, and another guild's configuration is read meanwhile."""
    await db.guilds.ensure(LOCKED_GUILD)
    events: list[str] = []
    holder = await asyncpg.connect(_asyncpg_url(url))
    admin = await asyncpg.connect(_asyncpg_url(url))
    try:
        lock = holder.transaction()
        await lock.start()
        await holder.execute("SELECT id FROM guilds WHERE id = $1 FOR UPDATE", LOCKED_GUILD)
        creates = [
            asyncio.create_task(
                _settle(db.cases.create(LOCKED_GUILD, USER, MOD, CaseType.WARN, f"r{i}"))
            )
            for i in range(20)
        ]
        await _wait_for_lock_waiters(admin, 1)
        started = time.monotonic()
        config = await db.guilds.config(next(_fresh_guilds))
        events.append("config read")
        read_seconds = time.monotonic() - started
        outcomes = await asyncio.gather(*creates)
        events.append("creates done")
        await lock.rollback()
        events.append("lock released")
        after = await db.cases.create(LOCKED_GUILD, USER, MOD, CaseType.WARN, "after")
    finally:
        await holder.close()
        await admin.close()
    return {
        "events": events,
        "config_prefix": config.prefix,
        "read_seconds": read_seconds,
        "creates": outcomes,
        "after_number": after.number,
        "cases": await Case.filter(guild_id=LOCKED_GUILD).count(),
    }


@scenario
async def lock_held_on_sqlite(db: botdata.Database, url: str) -> dict[str, Any]:
    """Another connection holds the file's write lock (``BEGIN IMMEDIATE``): case creates fail
    with the timeout error instead of waiting, and write nothing."""
    holder = sqlite3.connect(url.removeprefix("sqlite://"), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        outcomes = await asyncio.gather(
            *(
                _settle(db.cases.create(LOCKED_GUILD, USER, MOD, CaseType.WARN, f"r{i}"))
                for i in range(3)
            )
        )
        seconds = time.monotonic() - started
        holder.execute("ROLLBACK")
        after = await db.cases.create(LOCKED_GUILD, USER, MOD, CaseType.WARN, "after")
    finally:
        holder.close()
    return {
        "creates": outcomes,
        "seconds": seconds,
        "after_number": after.number,
        "cases": await Case.filter(guild_id=LOCKED_GUILD).count(),
    }


@scenario
async def pool_exhausted(db: botdata.Database, url: str) -> dict[str, Any]:
    """The only connection (PostgreSQL: a pool of one; SQLite: the process's one) is taken by a
    write waiting for a lock: another guild's read fails with the timeout error in time."""
    holder_sqlite = None
    holder_pg = None
    if db.dialect == "postgres":
        await db.guilds.ensure(LOCKED_GUILD)
        holder_pg = await asyncpg.connect(_asyncpg_url(url))
        lock = holder_pg.transaction()
        await lock.start()
        await holder_pg.execute("SELECT id FROM guilds WHERE id = $1 FOR UPDATE", LOCKED_GUILD)
    else:
        holder_sqlite = sqlite3.connect(url.removeprefix("sqlite://"), isolation_level=None)
        holder_sqlite.execute("BEGIN IMMEDIATE")
    try:
        create = asyncio.create_task(
            _settle(db.cases.create(LOCKED_GUILD, USER, MOD, CaseType.WARN, "waits"))
        )
        await asyncio.sleep(0.5)  # the create has the connection and waits for the lock
        started = time.monotonic()
        read = await _settle(db.guilds.config(next(_fresh_guilds)))
        read_seconds = time.monotonic() - started
        create_done_before_release = create.done()
    finally:
        if holder_pg is not None:
            await lock.rollback()
            await holder_pg.close()
        if holder_sqlite is not None:
            holder_sqlite.execute("ROLLBACK")
            holder_sqlite.close()
    return {
        "read": read,
        "read_seconds": read_seconds,
        "create_done_before_release": create_done_before_release,
        "create": await create,
    }


@scenario
async def statement_too_long(db: botdata.Database, url: str) -> dict[str, Any]:
    """The timeouts are server settings of the pooled connections; a statement running past
    ``statement_timeout`` fails with the timeout error."""
    client = Tortoise.get_connection("default")
    _, rows = await client.execute_query(
        "SELECT current_setting('lock_timeout') AS lock, "
        "current_setting('statement_timeout') AS statement"
    )
    slow = await _settle(client.execute_query("SELECT pg_sleep(5)"))
    return {"settings": dict(rows[0]), "slow": slow}


# Dead connections (point 20), on a PostgreSQL server the test owns ---------------------------


async def _terminated_while_waiting(
    url: str, table: str, call: Awaitable[Any]
) -> tuple[dict[str, Any], bool]:
    """Run ``call`` while ``table`` is locked, terminate its backend as it waits, then unlock.

    Returns how ``call`` ended and whether the termination happened."""
    holder = await asyncpg.connect(_asyncpg_url(url))
    admin = await asyncpg.connect(_asyncpg_url(url))
    try:
        lock = holder.transaction()
        await lock.start()
        await holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        task = asyncio.create_task(_settle(call))
        [pid] = await _wait_for_lock_waiters(admin, 1)
        terminated = await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        await asyncio.sleep(0.3)  # the retry (if any) waits for the lock in turn
        await lock.rollback()
        return await task, terminated
    finally:
        await holder.close()
        await admin.close()


@scenario
async def read_loses_connection(db: botdata.Database, url: str) -> dict[str, Any]:
    """A read whose backend is terminated under it is retried on a fresh connection."""
    guild = next(_fresh_guilds)
    await db.guilds.update_config(guild, prefix="?!")
    await db.cache.clear()
    outcome, terminated = await _terminated_while_waiting(
        url, "guild_configs", db.guilds.config(guild)
    )
    prefix = (await db.guilds.config(guild)).prefix
    return {"terminated": terminated, "outcome": outcome, "prefix": prefix}


@scenario
async def write_loses_connection(db: botdata.Database, url: str) -> dict[str, Any]:
    """A write whose backend is terminated under it fails with the typed error, not retried."""
    outcome, terminated = await _terminated_while_waiting(
        url, "cases", db.cases.create(LOCKED_GUILD, USER, MOD, CaseType.WARN, "once")
    )
    return {
        "terminated": terminated,
        "outcome": outcome,
        "cases": await Case.filter(guild_id=LOCKED_GUILD).count(),
    }


@scenario
async def transaction_loses_connection(db: botdata.Database, url: str) -> dict[str, Any]:
    """A transaction whose backend is terminated under it fails with the typed error, not
    retried, and writes nothing."""
    guild = next(_fresh_guilds)
    outcome, terminated = await _terminated_while_waiting(
        url, "guild_configs", db.guilds.update_config(guild, prefix="?!")
    )
    return {
        "terminated": terminated,
        "outcome": outcome,
        "rows": await GuildConfig.filter(guild_id=guild).count(),
    }


@scenario
async def restarts_under_load(
    db: botdata.Database, url: str, restart: list[str], workers: int = 16
) -> dict[str, Any]:
    """Many concurrent reads and writes while every backend is terminated, then while the
    server restarts (``restart``: the command); then the handle must work again. Each failure
    is recorded with the phase its call started in and the phase it failed in."""
    guilds = [LOCKED_GUILD + i for i in range(8)]
    for guild in guilds:
        await db.cases.create(guild, USER, MOD, CaseType.WARN, "first")
    phase = "before"
    done: Counter[str] = Counter()
    failures: list[dict[str, Any]] = []
    stop = asyncio.Event()

    async def one(operation: str, guild: int) -> None:
        if operation == "create":
            await db.cases.create(guild, USER, MOD, CaseType.WARN, "load")
        elif operation == "get":
            await db.cases.get(guild, 1)
        elif operation == "search":
            await db.cases.search(guild, limit=5)
        else:
            await db.guilds.config(next(_fresh_guilds))

    async def worker() -> None:
        while not stop.is_set():
            operation = random.choice(("create", "get", "search", "config"))
            at = phase
            try:
                await one(operation, random.choice(guilds))
            except Exception as exc:
                failures.append(
                    {"phase": at, "ended": phase, "operation": operation, **describe(exc)}
                )
                await asyncio.sleep(0.01)
            else:
                done[at] += 1

    retries = _RetryCounter()
    logging.getLogger("botdata.backends.postgres").addHandler(retries)
    admin = await asyncpg.connect(_asyncpg_url(url))
    tasks = [asyncio.create_task(worker()) for _ in range(workers)]
    try:
        await asyncio.sleep(0.5)
        phase = "terminate"
        terminated = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        await asyncio.sleep(1.0)
        phase = "restart"
        process = await asyncio.create_subprocess_exec(
            *restart, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        restarted = await process.wait() == 0
        phase = "after"
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await admin.close()
    # The handle works again: a bounded wait for the first success, then every call succeeds.
    deadline = time.monotonic() + 15
    while True:
        try:
            await db.cases.get(guilds[0], 1)
            break
        except DatabaseUnavailableError:
            assert time.monotonic() < deadline, "the handle did not recover"
            await asyncio.sleep(0.1)
    for guild in guilds:
        for operation in ("create", "get", "search", "config"):
            await one(operation, guild)
    return {
        "terminated": terminated,
        "restarted": restarted,
        "done": done,
        "failures": failures,
        "retried_reads": retries.count,
    }


class _RetryCounter(logging.Handler):
    """Counts the client's "retrying once" warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
