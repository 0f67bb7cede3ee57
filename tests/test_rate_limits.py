"""db.rate_limits: COMMAND_RATE_LIMIT commands per member per window, then refused."""

from __future__ import annotations

import asyncio

import pytest

import botdata
from botdata.errors import InvalidSnowflakeError

MEMBER = 300_000_000_000_000_001
OTHER = 300_000_000_000_000_002


async def test_the_limit_holds_under_concurrent_commands(botdata_db: botdata.Database) -> None:
    limit = botdata_db.settings.COMMAND_RATE_LIMIT
    over = await asyncio.gather(*(botdata_db.rate_limits.hit(MEMBER) for _ in range(limit * 3)))
    assert over.count(False) == limit
    assert await botdata_db.rate_limits.hit(OTHER) is False  # counted per member
    assert await botdata_db.rate_limits.hit(MEMBER, scope="export") is False  # and per scope


async def test_a_bad_member_id_is_refused(botdata_db: botdata.Database) -> None:
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.rate_limits.hit(12)
