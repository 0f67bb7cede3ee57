"""The claim/lease cycle (botdata.managers.claims) on both backends, through the reminders' and
the AFK statuses' queues: one that marks completed rows done, one that deletes them."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

import botdata
from botdata.managers.afk import EXPIRIES as AFK_EXPIRIES
from botdata.managers.dispatcher import REMINDERS
from botdata.managers.sql import columns
from botdata.models import AFK, Reminder
from botdata.schemas import ReminderSchema

GUILD = 120_000_000_000_000_001
USER = 220_000_000_000_000_001
CHANNEL = 420_000_000_000_000_001
LEASE = timedelta(minutes=1)


async def reminders(db: botdata.Database, due: list[datetime]) -> list[int]:
    """Pending reminders due at ``due``; their ids."""
    await db.guilds.ensure(GUILD)
    fields = {"guild_id": GUILD, "user_id": USER, "channel_id": CHANNEL, "content": "c"}
    made = [await Reminder.create(**fields, due_at=d) for d in due]
    return [reminder.id for reminder in made]


async def claim(db: botdata.Database, now: datetime, limit: int = 100) -> list[int]:
    return [r.id for r in await REMINDERS.claim(db.dialect, now, now + LEASE, limit)]


async def test_claimed_rows_are_not_claimed_again_until_released_or_the_lease_ends(
    botdata_db: botdata.Database,
) -> None:
    now = datetime.now(timezone.utc)
    first, second, third, future = await reminders(
        botdata_db, [now - timedelta(seconds=3), now - timedelta(seconds=2), now, now + LEASE * 10]
    )
    assert await claim(botdata_db, now, limit=2) == [first, second]  # oldest first, up to the limit
    assert await claim(botdata_db, now) == [third]
    assert await claim(botdata_db, now) == []  # every due row is claimed
    assert await claim(botdata_db, now + LEASE / 2) == []  # the leases run
    # Released: claimable again at once.
    assert await REMINDERS.release(id=second) == 1
    assert await REMINDERS.release(id=second) == 0  # no claim left to give up
    assert await claim(botdata_db, now) == [second]
    # Released until a retry time: claimable again from then.
    retry_at = now + LEASE / 2
    assert await REMINDERS.release(retry_at=retry_at, id=third) == 1
    assert await claim(botdata_db, retry_at - timedelta(seconds=1)) == []
    assert await claim(botdata_db, retry_at) == [third]
    # A lease that ran out (its claimer died): claimable again, once.
    assert await claim(botdata_db, now + LEASE) == [first, second]
    assert await claim(botdata_db, now + LEASE) == []
    assert future not in await claim(botdata_db, now + LEASE * 9)


async def test_completed_rows_are_marked_done_and_never_claimed_again(
    botdata_db: botdata.Database,
) -> None:
    now = datetime.now(timezone.utc)
    [done, failed] = await reminders(botdata_db, [now, now])
    assert await claim(botdata_db, now) == [done, failed]
    assert await REMINDERS.complete(now, id=done) == 1
    assert await REMINDERS.complete(now, id=done) == 0  # no longer pending
    row = await Reminder.get(id=done)
    assert (row.sent_at, row.claimed_until) == (now, None)
    assert await REMINDERS.release(id=done) == 0  # a completed row cannot be released
    assert await REMINDERS.release(values={"attempts": 1}, id=failed) == 1
    assert (await Reminder.get(id=failed)).attempts == 1
    later = now + LEASE * 100
    assert await claim(botdata_db, later) == [failed]
    assert await REMINDERS.complete(later, id__in=[done, failed]) == 1
    assert await claim(botdata_db, later + LEASE * 100) == []


async def test_a_deleting_queue_removes_completed_rows(botdata_db: botdata.Database) -> None:
    now = datetime.now(timezone.utc)
    await botdata_db.afk.set(GUILD, USER, nickname="n", until=now + timedelta(seconds=1))
    later = now + LEASE
    [claimed] = await AFK_EXPIRIES.claim(botdata_db.dialect, later, later + LEASE, 10)
    assert claimed.member_id == USER
    assert await AFK.filter(member_id=USER).exists()  # claiming deletes nothing
    assert await AFK_EXPIRIES.complete(later, member_id=USER) == 1
    assert not await AFK.exists()
    assert await AFK_EXPIRIES.claim(botdata_db.dialect, later, later + LEASE, 10) == []


async def test_concurrent_claimers_take_disjoint_rows(botdata_db: botdata.Database) -> None:
    now = datetime.now(timezone.utc)
    ids = await reminders(botdata_db, [now - timedelta(seconds=i) for i in range(60)])
    batches = await asyncio.gather(*(claim(botdata_db, now, limit=7) for _ in range(12)))
    claimed = [i for batch in batches for i in batch]
    assert sorted(claimed) == sorted(ids)  # every row, each once


async def test_columns_come_from_the_model() -> None:
    assert columns(Reminder, ReminderSchema) == ", ".join(
        f'"{name}"' for name in ReminderSchema.model_fields
    )
    assert '"claimed_until"' in columns(Reminder)
    assert '"guild_id"' in columns(AFK)  # a foreign key's column
    with pytest.raises(ValueError, match="not columns"):
        columns(AFK, ReminderSchema)
