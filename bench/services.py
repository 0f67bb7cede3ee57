"""The PostgreSQL databases and Redis key prefixes a run uses, and their removal afterwards.

Every implementation gets its own fresh database (``bench_<run>_<impl>``) and its own Redis key
prefix on db 0; both are removed when the run ends, whether it succeeded or not.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import redis.asyncio as redis

ROOT = Path(__file__).resolve().parent.parent
#: An account that may create databases (the tests use the same variable names' defaults).
ADMIN_URL = os.environ.get("BOTDATA_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BOTDATA_BENCH_REDIS", "redis://127.0.0.1:6379/0")


def database_url(name: str) -> str:
    """The URL of database ``name`` on the admin URL's server."""
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


async def create_database(name: str) -> str:
    """Create the empty database ``name`` (dropping a leftover of that name); return its URL."""
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database_url(name)


async def drop_database(name: str) -> None:
    """Drop the database ``name`` (closing its connections) if it exists."""
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def migrate(url: str) -> None:
    """Build botdata's schema in ``url`` with ``aerich upgrade`` (run at the repository root).

    Raises RuntimeError with aerich's output when it fails.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aerich",
        "upgrade",
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"aerich upgrade failed:\n{output.decode(errors='replace')}")


async def delete_keys(prefix: str) -> int:
    """Delete every Redis key starting with ``prefix``; return how many were deleted."""
    client = redis.Redis.from_url(REDIS_URL)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await client.unlink(*batch)
    finally:
        await client.aclose()
    return deleted


@dataclass(frozen=True)
class Resources:
    """The database and Redis prefix of one implementation in this run."""

    impl: str
    database: str
    url: str
    key_prefix: str


def resources_for(run_id: str, impl: str) -> Resources:
    """Names for implementation ``impl`` ("a", "b", "c") of run ``run_id``."""
    database = f"bench_{run_id}_{impl}"
    return Resources(impl, database, database_url(database), f"bench_{run_id}_{impl}")
