"""Helpers of the hostile-input tests: hostile values, a seeded guild, whole-database snapshots."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel
from tortoise.queryset import QuerySet

import botdata
from botdata.managers.checks import MAX_JSON_DEPTH, MAX_JSON_SIZE
from botdata.models import AccessType, CaseType, PermissionType, __models__

GUILD = 100_000_000_000_000_001
OTHER_GUILD = 100_000_000_000_000_002
USER = 200_000_000_000_000_001
OTHER_USER = 200_000_000_000_000_002
MOD = 300_000_000_000_000_001
CHANNEL = 400_000_000_000_000_001
ROLE = 500_000_000_000_000_001
MESSAGE = 600_000_000_000_000_001
COPY = 600_000_000_000_000_002

NUL = "be\x00fore"
SURROGATE = "a\ud800b"
MEGABYTE = "x" * 1_000_000
#: Refusal messages stay short whatever the value (they quote at most an excerpt).
MESSAGE_LIMIT = 500
#: Aware times whose UTC form is outside datetime's range, and the range's ends.
PAST_MAX = datetime.max.replace(tzinfo=timezone(timedelta(hours=-5)))
BEFORE_MIN = datetime.min.replace(tzinfo=timezone(timedelta(hours=5)))
UTC_MAX = datetime.max.replace(tzinfo=timezone.utc)
UTC_MIN = datetime.min.replace(tzinfo=timezone.utc)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def deep(levels: int) -> Any:
    """A JSON value: ``levels`` dicts nested in each other (built without recursion)."""
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def soon() -> datetime:
    return datetime.now(timezone.utc) + timedelta(hours=1)


@dataclass
class Seeded:
    """What :func:`seed` made that calls need: ids the database chose, the session token."""

    rule_id: int
    reminder_id: int
    token: str


async def seed(db: botdata.Database) -> Seeded:
    """A guild with a row in every table, so hostile calls meet real rows."""
    await db.guilds.update_config(GUILD, prefix="!")
    await db.guilds.set_setting(GUILD, "mod", "key", {"a": [1, "b"]})
    await db.case_types.create(GUILD, "custom", display_name="Custom")
    await db.cases.create(GUILD, USER, MOD, CaseType.WARN, "warned", metadata={"k": "v"})
    await db.cases.create(GUILD, USER, MOD, CaseType.TEMPBAN, "out", duration=timedelta(hours=1))
    await db.notes.add(GUILD, USER, MOD, "a note")
    await db.snippets.create(GUILD, "rules", "be nice", author_id=USER)
    await db.snippets.add_alias(GUILD, "rules", "r", actor_id=USER, is_moderator=False)
    reminder = await db.reminders.create(GUILD, USER, CHANNEL, "remind me", soon())
    await db.afk.set(GUILD, USER, nickname="nick", reason="away")
    await db.levels.set_xp(GUILD, USER, 100)
    await db.starboard.configure(GUILD, channel_id=CHANNEL)
    await db.starboard.add_star(
        GUILD, message_id=MESSAGE, channel_id=CHANNEL, author_id=USER, user_id=MOD
    )
    rule = await db.permissions.add_rule(
        GUILD,
        access=AccessType.BLACKLIST,
        target_type=PermissionType.MEMBER,
        target_id=USER,
        command="ban",
    )
    await db.web.upsert_user(USER, "user")
    token = await db.web.create_session(USER)
    await db.web.grant_guild(USER, GUILD, 3)
    return Seeded(rule_id=rule.id, reminder_id=reminder.id, token=token)


async def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of every table (soft-deleted ones included)."""

    async def rows(model: type[Any]) -> list[dict[str, Any]]:
        return await QuerySet(model).order_by(model._meta.db_pk_column).values()

    tables = await asyncio.gather(*(rows(model) for model in __models__))
    return {model._meta.db_table: table for model, table in zip(__models__, tables, strict=True)}


def stored_problems(tables: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Unstorable text and oversized JSON in the rows (none may ever be stored)."""
    problems = []
    for table, rows in tables.items():
        for row in rows:
            for column, value in row.items():
                if isinstance(value, (dict, list)):
                    size = len(json.dumps(value, separators=(",", ":")))
                    if size > MAX_JSON_SIZE:
                        problems.append(f"{table}.{column}: {size} bytes of JSON")
                stack = [(value, 0)]
                while stack:
                    item, depth = stack.pop()
                    if isinstance(item, str) and _UNSTORABLE.search(item):
                        problems.append(f"{table}.{column}: unstorable text {item[:20]!r}")
                    elif isinstance(item, (dict, list)):
                        if depth >= MAX_JSON_DEPTH:
                            problems.append(f"{table}.{column}: JSON deeper than the bound")
                            break
                        items = [*item.keys(), *item.values()] if isinstance(item, dict) else item
                        stack.extend((child, depth + 1) for child in items)
    return problems


class Free(BaseModel):
    """A registered settings model that takes any JSON (what it dumps is checked too)."""

    data: Any


async def free_setting(db: botdata.Database, value: Any) -> Any:
    db.guilds.register_settings("free", "data", Free)
    return await db.guilds.set_setting(GUILD, "free", "data", {"data": value})
