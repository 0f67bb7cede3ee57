"""PostgreSQL pool: a connection goes back to the pool without an open transaction.

botdata replaces asyncpg's session reset on release (one more query per release) with nothing;
asyncpg still rolls back a transaction left open, which is what this checks.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from tortoise import Tortoise

import botdata
from botdata.models import Guild

GUILD = 100_000_000_000_000_001


@pytest.mark.parametrize("botdata_backend", ["postgres"], indirect=True, scope="session")
async def test_a_connection_released_inside_a_transaction_is_rolled_back(
    botdata_db: botdata.Database,
) -> None:
    client = Tortoise.get_connection("default")
    now = datetime.now(timezone.utc)
    async with client.acquire_connection() as connection:
        transaction = connection.transaction()
        await transaction.start()
        await connection.execute(
            "INSERT INTO guilds (id, created_at, updated_at, joined_at, case_count, note_count) "
            "VALUES ($1, $2, $2, $2, 0, 0)",
            GUILD,
            now,
        )
        pid = connection.get_server_pid()
    # Released with the transaction open: rolled back (the query may run on that connection).
    rows = await client.execute_query_dict(
        "SELECT state FROM pg_stat_activity WHERE pid = $1", [pid]
    )
    assert [row["state"] for row in rows] in (["idle"], ["active"])
    assert not await Guild.exists(id=GUILD)
