"""Helpers shared by the tests: service checks, scratch databases, running other processes."""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import redis

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("BOTDATA_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BOTDATA_TEST_REDIS", "redis://127.0.0.1:6379/0")


def services_problem() -> str | None:
    """Why the PostgreSQL + Redis backend cannot run, or None when both answer."""
    try:
        asyncio.run(_ping_postgres())
    except Exception as exc:
        return f"PostgreSQL at {ADMIN_URL} does not answer ({exc.__class__.__name__}: {exc})"
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2).ping()
    except Exception as exc:
        return f"Redis at {REDIS_URL} does not answer ({exc.__class__.__name__}: {exc})"
    return None


async def _ping_postgres() -> None:
    conn = await asyncpg.connect(ADMIN_URL, timeout=3)
    await conn.close()


def postgres_url(name: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def create_postgres_database(name: str) -> str:
    """Create an empty PostgreSQL database; return its URL."""

    async def create() -> None:
        conn = await asyncpg.connect(ADMIN_URL)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return postgres_url(name)


def drop_postgres_database(name: str) -> None:
    async def drop() -> None:
        conn = await asyncpg.connect(ADMIN_URL)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def aerich(*args: str, database_url: str, config: str | None = None) -> subprocess.CompletedProcess:
    """Run the ``aerich`` command line at the repository root against ``database_url``."""
    command = [sys.executable, "-m", "aerich"]
    if config:
        command += ["-c", config]
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [*command, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def migrate(database_url: str) -> None:
    """Bring ``database_url`` to the latest migration with ``aerich upgrade``."""
    done = aerich("upgrade", database_url=database_url)
    if done.returncode != 0:
        raise RuntimeError(f"aerich upgrade failed:\n{done.stdout}\n{done.stderr}")


def table_names() -> list[str]:
    """botdata's tables (not Aerich's)."""
    from botdata.models import __models__

    return [model._meta.db_table for model in __models__]


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], within: float = 5.0, every: float = 0.02
) -> bool:
    """Whether ``check()`` (awaited when it returns an awaitable) holds within ``within``
    seconds, trying every ``every`` seconds: for a condition that another task or process
    brings about, so a test waits as long as it takes and no longer."""
    deadline = time.monotonic() + within
    while True:
        done = check()
        if inspect.isawaitable(done):
            done = await done
        if done:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every)


def run_python(
    code: str, *, env: dict[str, str] | None = None, timeout: float = 120, cwd: Path = ROOT
) -> str:
    """Run ``code`` in a new Python process in ``cwd`` (the repository root); return its stdout.

    Raises AssertionError with the output when the process fails.
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"process failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def run_processes(
    code: str, count: int, *, env: dict[str, str] | None = None, timeout: float = 180
) -> list[str]:
    """Start ``count`` Python processes running ``code`` at once; return their stdouts.

    Each process gets ``WORKER`` (0..count-1) in its environment.
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)],
            cwd=ROOT,
            env={**os.environ, **(env or {}), "WORKER": str(i)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, f"worker failed:\n{out}\n{err}"
        outputs.append(out)
    return outputs
