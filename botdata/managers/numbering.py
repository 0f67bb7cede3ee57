"""Per-guild numbers (cases, notes), and raw SQL on both dialects (:func:`fetch`).

A number is taken with one statement that creates the guild's row when it is missing and bumps
its counter otherwise (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``). Run inside the
transaction that inserts the numbered row: on PostgreSQL the row lock of the upsert makes other
creators of the same guild wait until commit, on SQLite the database write lock does; a failed
insert rolls the bump back. So numbers are contiguous from 1, with no gaps and no duplicates,
across any number of tasks and processes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Literal

from tortoise.backends.base.client import BaseDBAsyncClient

#: The guild counter of each kind of numbered row.
Counter = Literal["case_count", "note_count"]

_PLACEHOLDER = re.compile(r"\$(\d+)")


def dialect_sql(query: str, dialect: str) -> str:
    """``query`` written with ``$1``-style placeholders, in the form ``dialect`` expects.

    SQLite takes numbered ``?1`` placeholders, so one text (and one argument list, where a
    number may repeat) serves both backends.
    """
    return query if dialect == "postgres" else _PLACEHOLDER.sub(r"?\1", query)


async def fetch(
    conn: BaseDBAsyncClient, dialect: str, query: str, values: Sequence[Any]
) -> list[dict[str, Any]]:
    """Run ``query`` (``$n`` placeholders) on ``conn``; the rows it returns, as dicts."""
    return await conn.execute_query_dict(dialect_sql(query, dialect), list(values))


_GUILD_COLUMNS = "id, created_at, updated_at, joined_at, case_count, note_count"


async def next_number(
    conn: BaseDBAsyncClient, dialect: str, guild_id: int, counter: Counter
) -> int:
    """Bump ``guilds.<counter>`` of ``guild_id`` (creating the guild row if missing).

    ``conn`` must be the transaction that also writes the numbered row. Returns the new number.
    """
    first = {"case_count": "1, 0", "note_count": "0, 1"}[counter]
    rows = await fetch(
        conn,
        dialect,
        f"INSERT INTO guilds ({_GUILD_COLUMNS}) VALUES ($1, $2, $2, $2, {first}) "
        f"ON CONFLICT (id) DO UPDATE SET {counter} = guilds.{counter} + 1, updated_at = $2 "
        f"RETURNING {counter}",
        [guild_id, datetime.now(timezone.utc)],
    )
    return int(rows[0][counter])


async def ensure_guild(conn: BaseDBAsyncClient, dialect: str, guild_id: int) -> None:
    """Create the row of ``guild_id`` unless it exists (for rows that reference the guild)."""
    await fetch(
        conn,
        dialect,
        f"INSERT INTO guilds ({_GUILD_COLUMNS}) VALUES ($1, $2, $2, $2, 0, 0) "
        "ON CONFLICT (id) DO NOTHING",
        [guild_id, datetime.now(timezone.utc)],
    )
