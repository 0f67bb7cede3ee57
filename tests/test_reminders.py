"""db.reminders: creation with a per-member cap, listing, cancelling, and the dispatcher in this
process (delivery, wake-ups, retries, stopping, and index use with 100,000 pending reminders)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from tortoise import Tortoise

from botdata.errors import (
    DispatcherRunningError,
    InvalidReminderContentError,
    InvalidReminderTimeError,
    InvalidSnowflakeError,
    ReminderLimitError,
    ReminderNotFoundError,
    ReminderPermissionError,
)
from botdata.managers.dispatcher import NEXT_WAKE_SQL, REMINDERS
from botdata.managers.sql import dialect_sql
from botdata.models import Guild, Reminder
from botdata.schemas import ReminderSchema
from botdata.testing.support import eventually

# Timers and wake-ups deliver a reminder within a few event-loop turns. The bound only has to
# tell that apart from the fallback re-check (60 s in these tests): it is no performance target.
PROMPT = 5.0

GUILD = 100_000_000_000_000_001
OTHER_GUILD = 100_000_000_000_000_002
USER = 200_000_000_000_000_001
OTHER_USER = 200_000_000_000_000_002
CHANNEL = 400_000_000_000_000_001
# Members of the bulk-inserted reminders: BULK_USER + 0, 1, 2...
BULK_USER = 500_000_000_000_000_000

INSERT = (
    "INSERT INTO reminders (guild_id, user_id, channel_id, content, due_at, attempts, "
    "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $6)"
)


def soon(seconds: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


async def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of ``guilds`` and ``reminders``."""
    return {
        "guilds": await Guild.all().order_by("id").values(),
        "reminders": await Reminder.all().order_by("id").values(),
    }


async def bulk_insert(db, rows: list[tuple[int, datetime]]) -> None:
    """Insert pending reminders of GUILD, ``(user_id, due_at)`` each, with one executemany."""
    await db.guilds.ensure(GUILD)
    now = datetime.now(timezone.utc)
    await Tortoise.get_connection("default").execute_many(
        dialect_sql(INSERT, db.dialect),
        [[GUILD, user, CHANNEL, f"bulk {i}", due, now] for i, (user, due) in enumerate(rows)],
    )


class Recorder:
    """A dispatcher callback that records each delivery and how late it came."""

    def __init__(self) -> None:
        self.delivered: list[ReminderSchema] = []
        self.lateness: list[float] = []
        self.changed = asyncio.Event()

    async def __call__(self, reminder: ReminderSchema) -> None:
        self.lateness.append((datetime.now(timezone.utc) - reminder.due_at).total_seconds())
        self.delivered.append(reminder)
        self.changed.set()

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        """Wait until ``count`` reminders were delivered."""

        async def reached() -> None:
            while len(self.delivered) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(reached(), timeout)


@pytest.fixture
async def recorder(botdata_db, monkeypatch):
    """A :class:`Recorder`; the dispatcher re-checks only every 60 s and stops after the test."""
    monkeypatch.setattr(botdata_db.settings, "REMINDER_RECHECK_INTERVAL", 60.0)
    yield Recorder()
    await botdata_db.reminders.stop()


# Creating, listing, cancelling ------------------------------------------------------------------


async def test_create_stores_utc_and_creates_the_guild(botdata_db):
    due = (datetime.now(timezone.utc) + timedelta(hours=2)).astimezone(timezone(timedelta(hours=2)))
    reminder = await botdata_db.reminders.create(GUILD, USER, CHANNEL, "stretch", due)
    assert (reminder.guild_id, reminder.user_id, reminder.channel_id) == (GUILD, USER, CHANNEL)
    assert (reminder.content, reminder.sent_at, reminder.attempts) == ("stretch", None, 0)
    assert reminder.due_at == due
    assert reminder.due_at.utcoffset() == timedelta(0)
    assert await Guild.exists(id=GUILD)
    row = await Reminder.get(id=reminder.id)
    assert row.due_at == due
    assert row.claimed_until is None
    assert await botdata_db.reminders.pending(GUILD, USER) == [reminder]


async def test_pending_lists_a_members_unsent_reminders_soonest_first(botdata_db):
    later = await botdata_db.reminders.create(GUILD, USER, CHANNEL, "later", soon(7200))
    first = await botdata_db.reminders.create(GUILD, USER, CHANNEL, "first", soon(60))
    sent = await botdata_db.reminders.create(GUILD, USER, CHANNEL, "sent", soon(30))
    await Reminder.filter(id=sent.id).update(sent_at=datetime.now(timezone.utc))
    await botdata_db.reminders.create(GUILD, OTHER_USER, CHANNEL, "someone else", soon(60))
    await botdata_db.reminders.create(OTHER_GUILD, USER, CHANNEL, "other guild", soon(60))
    assert [r.id for r in await botdata_db.reminders.pending(GUILD, USER)] == [first.id, later.id]
    assert await botdata_db.reminders.pending(GUILD, 200_000_000_000_000_009) == []
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.reminders.pending(GUILD, 12)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((GUILD, USER, CHANNEL, "", "future"), InvalidReminderContentError),
        ((GUILD, USER, CHANNEL, " \n ", "future"), InvalidReminderContentError),
        ((GUILD, USER, CHANNEL, "x" * 2001, "future"), InvalidReminderContentError),
        ((GUILD, USER, CHANNEL, None, "future"), InvalidReminderContentError),
        ((GUILD, USER, CHANNEL, "c", "past"), InvalidReminderTimeError),
        ((GUILD, USER, CHANNEL, "c", "naive"), InvalidReminderTimeError),
        ((GUILD, USER, CHANNEL, "c", "text"), InvalidReminderTimeError),
        ((GUILD, USER, CHANNEL, "c", None), InvalidReminderTimeError),
        ((0, USER, CHANNEL, "c", "future"), InvalidSnowflakeError),
        ((GUILD, "200000000000000001", CHANNEL, "c", "future"), InvalidSnowflakeError),
        ((GUILD, USER, 1 << 64, "c", "future"), InvalidSnowflakeError),
    ],
)
async def test_create_rejects_bad_input_and_writes_nothing(botdata_db, args, error):
    times = {
        "future": soon(3600),
        "past": soon(-1),
        "naive": datetime.now() + timedelta(hours=1),
        "text": "tomorrow",
        None: None,
    }
    *head, due = args
    before = await snapshot()
    with pytest.raises(error):
        await botdata_db.reminders.create(*head, times[due])
    assert await snapshot() == before


async def test_longest_content_is_accepted(botdata_db):
    reminder = await botdata_db.reminders.create(GUILD, USER, CHANNEL, "x" * 2000, soon(60))
    assert len(reminder.content) == 2000


async def test_cap_counts_a_members_pending_reminders_per_guild(botdata_db, monkeypatch):
    monkeypatch.setattr(botdata_db.settings, "REMINDER_MAX_PER_USER", 3)
    made = [
        await botdata_db.reminders.create(GUILD, USER, CHANNEL, f"r{i}", soon(60)) for i in range(3)
    ]
    before = await snapshot()
    with pytest.raises(ReminderLimitError):
        await botdata_db.reminders.create(GUILD, USER, CHANNEL, "one too many", soon(60))
    assert await snapshot() == before
    await botdata_db.reminders.create(GUILD, OTHER_USER, CHANNEL, "other member", soon(60))
    await botdata_db.reminders.create(OTHER_GUILD, USER, CHANNEL, "other guild", soon(60))
    await botdata_db.reminders.cancel(GUILD, made[0].id, user_id=USER)
    await botdata_db.reminders.create(GUILD, USER, CHANNEL, "room again", soon(60))
    # Sent reminders do not count.
    await Reminder.filter(id=made[1].id).update(sent_at=datetime.now(timezone.utc))
    await botdata_db.reminders.create(GUILD, USER, CHANNEL, "and again", soon(60))
    assert len(await botdata_db.reminders.pending(GUILD, USER)) == 3


async def test_cap_holds_with_concurrent_creates(botdata_db, monkeypatch):
    monkeypatch.setattr(botdata_db.settings, "REMINDER_MAX_PER_USER", 5)
    outcomes = await asyncio.gather(
        *(botdata_db.reminders.create(GUILD, USER, CHANNEL, f"r{i}", soon(60)) for i in range(30)),
        return_exceptions=True,
    )
    assert sum(isinstance(o, ReminderSchema) for o in outcomes) == 5
    assert sum(isinstance(o, ReminderLimitError) for o in outcomes) == 25
    assert await Reminder.filter(guild_id=GUILD, user_id=USER).count() == 5


async def test_default_cap_is_25(botdata_db):
    assert botdata_db.settings.REMINDER_MAX_PER_USER == 25
    for i in range(25):
        await botdata_db.reminders.create(GUILD, USER, CHANNEL, f"r{i}", soon(60))
    with pytest.raises(ReminderLimitError):
        await botdata_db.reminders.create(GUILD, USER, CHANNEL, "26th", soon(60))


async def test_cancel_own_pending_reminders_only(botdata_db):
    mine = await botdata_db.reminders.create(GUILD, USER, CHANNEL, "mine", soon(60))
    theirs = await botdata_db.reminders.create(GUILD, OTHER_USER, CHANNEL, "theirs", soon(60))
    sent = await botdata_db.reminders.create(GUILD, USER, CHANNEL, "sent", soon(60))
    await Reminder.filter(id=sent.id).update(sent_at=datetime.now(timezone.utc))
    before = await snapshot()
    with pytest.raises(ReminderPermissionError):
        await botdata_db.reminders.cancel(GUILD, theirs.id, user_id=USER)
    with pytest.raises(ReminderNotFoundError):
        await botdata_db.reminders.cancel(GUILD, sent.id, user_id=USER)
    with pytest.raises(ReminderNotFoundError):
        await botdata_db.reminders.cancel(OTHER_GUILD, mine.id, user_id=USER)
    for bad_id in (999_999, 0, -1, "1", None, True):
        with pytest.raises(ReminderNotFoundError):
            await botdata_db.reminders.cancel(GUILD, bad_id, user_id=USER)
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.reminders.cancel(GUILD, mine.id, user_id=3)
    assert await snapshot() == before
    cancelled = await botdata_db.reminders.cancel(GUILD, mine.id, user_id=USER)
    assert cancelled == mine
    assert not await Reminder.exists(id=mine.id)
    with pytest.raises(ReminderNotFoundError):
        await botdata_db.reminders.cancel(GUILD, mine.id, user_id=USER)


# The dispatcher -------------------------------------------------------------------------------


async def test_due_reminder_is_delivered_promptly_and_marked_sent(botdata_db, recorder):
    reminder = await botdata_db.reminders.create(GUILD, USER, CHANNEL, "now-ish", soon(0.4))
    later = await botdata_db.reminders.create(GUILD, USER, CHANNEL, "later", soon(3600))
    await botdata_db.reminders.start(recorder)
    assert botdata_db.reminders.running
    await recorder.wait_for(1)
    assert [r.id for r in recorder.delivered] == [reminder.id]
    assert recorder.delivered[0].content == "now-ish"
    assert 0 <= recorder.lateness[0] < PROMPT
    assert await eventually(Reminder.filter(id=reminder.id, sent_at__isnull=False).exists)
    row = await Reminder.get(id=reminder.id)
    assert row.claimed_until is None
    assert row.attempts == 0
    assert [r.id for r in await botdata_db.reminders.pending(GUILD, USER)] == [later.id]


async def test_a_sooner_reminder_wakes_a_sleeping_dispatcher(botdata_db, recorder):
    await botdata_db.reminders.create(GUILD, USER, CHANNEL, "in an hour", soon(3600))
    await botdata_db.reminders.start(recorder)
    await asyncio.sleep(0.3)  # the dispatcher now sleeps until the recheck, a minute away
    sooner = await botdata_db.reminders.create(GUILD, OTHER_USER, CHANNEL, "sooner", soon(0.3))
    await recorder.wait_for(1, timeout=3)
    assert [r.id for r in recorder.delivered] == [sooner.id]
    assert recorder.lateness[0] < PROMPT


async def test_reminders_due_while_stopped_go_out_at_start(botdata_db, recorder):
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    await bulk_insert(botdata_db, [(USER, past + timedelta(milliseconds=10 * i)) for i in range(3)])
    overdue = await Reminder.all().order_by("due_at").values_list("id", flat=True)
    started = time.monotonic()
    await botdata_db.reminders.start(recorder)
    await recorder.wait_for(3)
    assert time.monotonic() - started < PROMPT
    assert [r.id for r in recorder.delivered] == overdue


async def test_a_failing_callback_is_retried_later_and_delivered_once(botdata_db, botdata_clock):
    calls: list[tuple[int, int, datetime]] = []

    async def flaky(reminder: ReminderSchema) -> None:
        calls.append((reminder.id, reminder.attempts, botdata_clock.now()))
        if len(calls) == 1:
            raise RuntimeError("Discord is down")

    start = botdata_clock.now()
    retry = timedelta(seconds=botdata_db.settings.REMINDER_RETRY_DELAY)
    reminder = await botdata_db.reminders.create(
        GUILD, USER, CHANNEL, "retry me", start + timedelta(1)
    )
    await botdata_db.reminders.start(flaky)
    try:
        await botdata_clock.advance(days=1)
        assert calls == [(reminder.id, 0, start + timedelta(1))]
        await botdata_clock.advance(retry - timedelta(seconds=1))  # the backoff is not over
        assert len(calls) == 1
        await botdata_clock.advance(seconds=1)
        assert calls[1] == (reminder.id, 1, start + timedelta(1) + retry)
        await botdata_clock.advance(hours=2)  # delivered: never again
        assert len(calls) == 2
    finally:
        await botdata_db.reminders.stop()
    row = await Reminder.get(id=reminder.id)
    assert row.sent_at == start + timedelta(1) + retry
    assert row.attempts == 1


async def test_more_due_reminders_than_a_batch_are_each_delivered_once(botdata_db, recorder):
    past = datetime.now(timezone.utc) - timedelta(minutes=5)
    await bulk_insert(
        botdata_db, [(BULK_USER + i % 7, past + timedelta(seconds=i)) for i in range(250)]
    )
    await botdata_db.reminders.start(recorder)
    await recorder.wait_for(250, timeout=15)
    await asyncio.sleep(0.2)
    ids = [r.id for r in recorder.delivered]
    assert len(ids) == len(set(ids)) == 250
    assert not await Reminder.filter(sent_at=None).exists()


async def test_100k_pending_reminders_use_the_index_and_a_due_one_is_prompt(botdata_db, recorder):
    later = datetime.now(timezone.utc) + timedelta(days=1)
    await bulk_insert(
        botdata_db, [(BULK_USER + i % 1000, later + timedelta(seconds=i)) for i in range(100_000)]
    )
    conn = Tortoise.get_connection("default")
    now = datetime.now(timezone.utc)
    if botdata_db.dialect == "postgres":
        await conn.execute_script("ANALYZE reminders")
        explain = "EXPLAIN "
    else:
        await conn.execute_script("ANALYZE")
        explain = "EXPLAIN QUERY PLAN "
    for query, args in (
        (NEXT_WAKE_SQL, [now]),
        (REMINDERS.claim_sql(botdata_db.dialect), [now, now + timedelta(minutes=1), 100]),
    ):
        rows = await conn.execute_query_dict(dialect_sql(explain + query, botdata_db.dialect), args)
        plan = [
            str(next(iter(row.values())) if botdata_db.dialect == "postgres" else row["detail"])
            for row in rows
        ]
        text = "\n".join(plan)
        if botdata_db.dialect == "postgres":
            assert "Seq Scan" not in text, text
            assert "Index" in text, text
        else:
            scans = [line for line in plan if "reminders" in line]
            assert scans, text
            assert all(" USING " in line for line in scans), text
            assert any("INDEX idx_reminders_sent_at" in line for line in scans), text
    reminder = await botdata_db.reminders.create(GUILD, OTHER_USER, CHANNEL, "the one", soon(0.5))
    await botdata_db.reminders.start(recorder)
    await recorder.wait_for(1)
    await asyncio.sleep(0.3)
    assert [r.id for r in recorder.delivered] == [reminder.id]
    assert recorder.lateness[0] < PROMPT


async def test_start_twice_or_without_a_callable_and_stop(botdata_db, recorder):
    with pytest.raises(TypeError):
        await botdata_db.reminders.start("not a function")
    assert not botdata_db.reminders.running
    await botdata_db.reminders.start(recorder)
    with pytest.raises(DispatcherRunningError):
        await botdata_db.reminders.start(recorder)
    await botdata_db.reminders.stop()
    assert not botdata_db.reminders.running
    await botdata_db.reminders.stop()  # harmless when stopped
    await botdata_db.reminders.create(GUILD, USER, CHANNEL, "nobody listens", soon(0.1))
    await asyncio.sleep(0.4)
    assert recorder.delivered == []
    # It can start again, and then delivers what came due meanwhile.
    await botdata_db.reminders.start(recorder)
    await recorder.wait_for(1)


async def test_stop_lets_a_running_callback_finish(botdata_db):
    started, finished = asyncio.Event(), asyncio.Event()

    async def slow(reminder: ReminderSchema) -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.set()

    reminder = await botdata_db.reminders.create(GUILD, USER, CHANNEL, "slow", soon(0.1))
    await botdata_db.reminders.start(slow)
    try:
        await asyncio.wait_for(started.wait(), 3)
    finally:
        await botdata_db.reminders.stop()
    assert finished.is_set()
    assert not botdata_db.reminders.running
    assert (await Reminder.get(id=reminder.id)).sent_at is not None


async def test_stop_cancels_a_hanging_callback_after_the_grace_and_keeps_its_reminder(
    botdata_db, recorder
):
    hanging = asyncio.Event()

    async def hang(reminder: ReminderSchema) -> None:
        hanging.set()
        await asyncio.sleep(3600)

    reminder = await botdata_db.reminders.create(GUILD, USER, CHANNEL, "hangs", soon(0.1))
    await botdata_db.reminders.start(hang)
    await asyncio.wait_for(hanging.wait(), 3)
    started = time.monotonic()
    await botdata_db.reminders.stop(grace=0.2)
    assert time.monotonic() - started < PROMPT
    assert not botdata_db.reminders.running
    row = await Reminder.get(id=reminder.id)
    assert (row.sent_at, row.claimed_until, row.attempts) == (None, None, 0)
    # Released, not lost: the next dispatcher delivers it at once.
    await botdata_db.reminders.start(recorder)
    await recorder.wait_for(1)
    assert [r.id for r in recorder.delivered] == [reminder.id]


async def test_each_reminder_is_marked_sent_as_soon_as_its_callback_returns(botdata_db, recorder):
    # Not once per batch: a crash while a slow callback runs must not repeat the quick ones.
    release = asyncio.Event()

    async def deliver(reminder: ReminderSchema) -> None:
        if reminder.content == "slow":
            await release.wait()
        await recorder(reminder)

    due = soon(0.2)  # claimed in one batch
    quick = await botdata_db.reminders.create(GUILD, USER, CHANNEL, "quick", due)
    slow = await botdata_db.reminders.create(GUILD, OTHER_USER, CHANNEL, "slow", due)
    past = datetime.now(timezone.utc)
    await botdata_db.reminders.start(deliver)
    try:
        await recorder.wait_for(1)

        async def marked() -> bool:
            return await Reminder.filter(id=quick.id, sent_at__isnull=False).exists()

        deadline = time.monotonic() + PROMPT
        while not await marked() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        assert await marked(), "the quick reminder waited for the slow one of its batch"
        row = await Reminder.get(id=slow.id)
        assert row.sent_at is None
        assert row.claimed_until is not None  # claimed, in flight
        assert row.claimed_until > past
    finally:
        release.set()
        await botdata_db.reminders.stop(deliver)
    assert (await Reminder.get(id=slow.id)).sent_at is not None


async def test_several_callbacks_share_the_dispatcher_by_guild(botdata_db, monkeypatch):
    # Two bots on one handle: each takes the guilds it accepts; the first started takes the rest.
    monkeypatch.setattr(botdata_db.settings, "REMINDER_RECHECK_INTERVAL", 60.0)
    third_guild = OTHER_GUILD + 1
    first, second = Recorder(), Recorder()
    with pytest.raises(TypeError):
        await botdata_db.reminders.start(first, accepts="not a function")  # type: ignore[arg-type]
    await botdata_db.reminders.start(first, accepts=lambda guild_id: guild_id == GUILD)
    await botdata_db.reminders.start(second, accepts=lambda guild_id: guild_id == OTHER_GUILD)
    try:
        with pytest.raises(DispatcherRunningError):
            await botdata_db.reminders.start(second)
        due = soon(0.2)
        mine = await botdata_db.reminders.create(GUILD, USER, CHANNEL, "first's", due)
        theirs = await botdata_db.reminders.create(OTHER_GUILD, USER, CHANNEL, "second's", due)
        nobody = await botdata_db.reminders.create(third_guild, USER, CHANNEL, "nobody's", due)
        await first.wait_for(2)
        await second.wait_for(1)
        assert sorted(r.id for r in first.delivered) == sorted([mine.id, nobody.id])
        assert [r.id for r in second.delivered] == [theirs.id]

        # One bot leaves: the dispatcher keeps running for the other, which now takes all.
        await botdata_db.reminders.stop(first)
        assert botdata_db.reminders.running
        again = await botdata_db.reminders.create(
            GUILD, OTHER_USER, CHANNEL, "first's again", soon(0.2)
        )
        await second.wait_for(2)
        assert [r.id for r in second.delivered] == [theirs.id, again.id]
        assert len(first.delivered) == 2
    finally:
        await botdata_db.reminders.stop(second)
    assert not botdata_db.reminders.running  # the last one out stopped it
    await botdata_db.reminders.stop(second)  # harmless now


async def test_stopping_one_callback_releases_only_its_hanging_deliveries(botdata_db, recorder):
    hanging = asyncio.Event()

    async def hang(reminder: ReminderSchema) -> None:
        hanging.set()
        await asyncio.sleep(3600)

    await botdata_db.reminders.start(hang, accepts=lambda guild_id: guild_id == GUILD)
    await botdata_db.reminders.start(recorder)
    reminder = await botdata_db.reminders.create(GUILD, USER, CHANNEL, "hangs", soon(0.1))
    await asyncio.wait_for(hanging.wait(), PROMPT)
    started = time.monotonic()
    await botdata_db.reminders.stop(hang, grace=0.2)
    assert time.monotonic() - started < PROMPT
    assert botdata_db.reminders.running
    # Released, not lost or counted as a failure: the remaining callback gets it at once.
    await recorder.wait_for(1)
    assert [(r.id, r.attempts) for r in recorder.delivered] == [(reminder.id, 0)]
