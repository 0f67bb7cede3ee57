"""Records a test starts from, made through botdata's managers (so every rule and cache
invalidation applies), with made-up ids where the test does not care which.

``from botdata.testing.factories import guild_with_config, cases, levelled_member``.
"""

from __future__ import annotations

import itertools
from typing import Any

import botdata
from botdata.models import CaseType
from botdata.schemas import CaseSchema, GuildConfigSchema, LevelsSchema

# Valid snowflakes (after Discord's epoch, far below 2**63), distinct within a process.
_ids = itertools.count(900_000_000_000_000_001)


def new_id() -> int:
    """A Discord-like id no other call of this process returns."""
    return next(_ids)


async def guild_with_config(
    db: botdata.Database, guild_id: int | None = None, **config: Any
) -> GuildConfigSchema:
    """A guild (a new id unless given) with ``config``'s fields set (``prefix="?"``,
    ``mod_log_id=...``: the names of :meth:`botdata.managers.guilds.GuildManager.update_config`).

    Returns the guild's configuration. Raises what ``update_config`` raises for a bad field.
    """
    return await db.guilds.update_config(guild_id if guild_id is not None else new_id(), **config)


async def cases(
    db: botdata.Database,
    guild_id: int,
    count: int = 1,
    *,
    user_id: int | None = None,
    moderator_id: int | None = None,
    case_type: CaseType | str = CaseType.WARN,
    reason: str = "test case",
) -> list[CaseSchema]:
    """``count`` cases in ``guild_id`` against ``user_id`` (one new id for all of them unless
    given) by ``moderator_id`` (likewise), numbered in order.

    Returns the cases, oldest first. Raises what :meth:`db.cases.create` raises.
    """
    user = user_id if user_id is not None else new_id()
    moderator = moderator_id if moderator_id is not None else new_id()
    return [
        await db.cases.create(guild_id, user, moderator, case_type, reason) for _ in range(count)
    ]


async def levelled_member(
    db: botdata.Database, guild_id: int, level: int, member_id: int | None = None
) -> LevelsSchema:
    """A member (a new id unless given) at the start of ``level`` on the guild's XP curve.

    Returns the member's levels row. Raises what :meth:`db.levels.set_level` raises.
    """
    return await db.levels.set_level(
        guild_id, member_id if member_id is not None else new_id(), level
    )
