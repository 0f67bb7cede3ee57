"""The services the PostgreSQL + Redis backend needs: where they are, whether they answer,
scratch databases on them, and emptying a database between tests.

PostgreSQL is reached at ``$BOTDATA_TEST_POSTGRES`` (an account that may create databases,
default ``postgres://postgres@127.0.0.1:5432/postgres``), Redis at ``$BOTDATA_TEST_REDIS``
(default ``redis://127.0.0.1:6379/0``); the plugin's ``--botdata-postgres`` and
``--botdata-redis`` options set those variables for the run (and the processes it starts).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import asyncpg
import redis
from tortoise import Tortoise
from tortoise.fields.relational import RelationalField
from tortoise.models import Model

import botdata

#: The environment variables naming the services, and their defaults.
POSTGRES_ENV = "BOTDATA_TEST_POSTGRES"
REDIS_ENV = "BOTDATA_TEST_REDIS"
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def admin_url() -> str:
    """The PostgreSQL account's URL (``$BOTDATA_TEST_POSTGRES`` or the default)."""
    return os.environ.get(POSTGRES_ENV, DEFAULT_POSTGRES)


def redis_url() -> str:
    """Redis' URL (``$BOTDATA_TEST_REDIS`` or the default)."""
    return os.environ.get(REDIS_ENV, DEFAULT_REDIS)


def services_problem() -> str | None:
    """Why the PostgreSQL + Redis backend cannot run, or None when both answer."""
    try:
        asyncio.run(_ping_postgres())
    except Exception as exc:
        return f"PostgreSQL at {admin_url()} does not answer ({exc.__class__.__name__}: {exc})"
    try:
        client = redis.Redis.from_url(redis_url(), socket_timeout=2, socket_connect_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:
        return f"Redis at {redis_url()} does not answer ({exc.__class__.__name__}: {exc})"
    return None


async def _ping_postgres() -> None:
    conn = await asyncpg.connect(admin_url(), timeout=3)
    await conn.close()


def postgres_url(name: str) -> str:
    """The URL of the database ``name`` on the PostgreSQL server of :func:`admin_url`."""
    return admin_url().rsplit("/", 1)[0] + "/" + name


def create_postgres_database(name: str) -> str:
    """Create an empty PostgreSQL database; return its URL. Raises asyncpg's errors."""

    async def create() -> None:
        conn = await asyncpg.connect(admin_url())
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return postgres_url(name)


def drop_postgres_database(name: str) -> None:
    """Drop the PostgreSQL database ``name`` if it exists (its connections are ended)."""

    async def drop() -> None:
        conn = await asyncpg.connect(admin_url())
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


_MIGRATE = """
import asyncio, sys
from aerich import Command
from botdata.config import load_settings
from botdata.schema import APP, MIGRATIONS_LOCATION, tortoise_config

async def main():
    config = tortoise_config(load_settings(DATABASE_URL=sys.argv[1]))
    command = Command(tortoise_config=config, app=APP, location=MIGRATIONS_LOCATION)
    await command.init()
    try:
        await command.upgrade(run_in_transaction=True)
    finally:
        await command.aclose()

asyncio.run(main())
"""


def migrate(database_url: str) -> None:
    """Bring ``database_url`` to botdata's latest migration (Aerich's upgrade, in a process of
    its own: Tortoise's state stays out of the test process). Works from a checkout and from an
    installed wheel. Raises RuntimeError with the output when the upgrade fails."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_MIGRATE), database_url],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"migrating {database_url} failed:\n{done.stdout}\n{done.stderr}")


async def reset(db: botdata.Database) -> None:
    """Delete every row of botdata's tables and restart their ids (the migration record stays).

    On PostgreSQL, ``DELETE`` (children first) and ``ALTER SEQUENCE ... RESTART`` in one script:
    a test leaves a few rows, and ``TRUNCATE`` of every table took 0.2-0.3 s each time (new
    files for each table and index) against about 5 ms for this.
    """
    conn = Tortoise.get_connection("default")
    tables = tables_children_first()
    if db.dialect == "postgres":
        sequences = await _postgres_sequences(tables)
        await conn.execute_script(
            "".join(f'DELETE FROM "{t}";' for t in tables)
            + "".join(f'ALTER SEQUENCE "{s}" RESTART;' for s in sequences)
        )
    else:
        await conn.execute_script(
            "PRAGMA foreign_keys = OFF;"
            + "".join(f'DELETE FROM "{t}";' for t in tables)
            + "DELETE FROM sqlite_sequence; PRAGMA foreign_keys = ON;"
        )


def tables_children_first() -> list[str]:
    """botdata's tables, each before the tables its foreign keys point to."""
    from botdata.models import __models__

    ordered: list[str] = []

    def visit(model: type[Model]) -> None:
        table = model._meta.db_table
        if table in ordered:
            return
        for name in model._meta.fk_fields | model._meta.o2o_fields:
            field = model._meta.fields_map[name]
            assert isinstance(field, RelationalField)
            visit(field.related_model)
        ordered.append(table)

    for model in __models__:
        visit(model)
    return ordered[::-1]


_sequences: list[str] = []


async def _postgres_sequences(tables: list[str]) -> list[str]:
    """The sequences of ``tables``' generated ids (looked up once per process)."""
    if not _sequences:
        rows = await Tortoise.get_connection("default").execute_query_dict(
            "SELECT s.relname AS name FROM pg_class s"
            " JOIN pg_depend d ON d.objid = s.oid JOIN pg_class t ON t.oid = d.refobjid"
            " WHERE s.relkind = 'S' AND t.relname = ANY($1::text[])",
            [tables],
        )
        _sequences.extend(str(row["name"]) for row in rows)
    return _sequences
