"""botdata.clock: the ManualClock tests move by hand, and the handle's settable clock that the
managers, the reminder dispatcher and the cache read."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

import botdata
from botdata import Clock, ManualClock
from botdata.errors import ClockNotSettledError, InvalidClockStepError, InvalidReminderTimeError
from botdata.models import Reminder
from botdata.schemas import ReminderSchema

START = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
GUILD = 100_000_000_000_000_001
USER = 200_000_000_000_000_001
CHANNEL = 400_000_000_000_000_001


async def sleeper(clock: Clock, name: str, seconds: float, log: list[tuple[str, datetime]]) -> None:
    """Sleep ``seconds`` on ``clock`` twice, logging each wake-up with the clock's time."""
    for _ in range(2):
        await clock.sleep(seconds)
        log.append((name, clock.now()))


async def test_sleepers_wake_in_deadline_order_and_advance_returns_once_they_sleep_again():
    clock = ManualClock(START)
    log: list[tuple[str, datetime]] = []
    tasks = [
        asyncio.create_task(sleeper(clock, "ten", 10, log)),
        asyncio.create_task(sleeper(clock, "five", 5, log)),
        asyncio.create_task(sleeper(clock, "hour", 3600, log)),
    ]
    await asyncio.sleep(0)  # each goes to sleep
    await clock.advance(seconds=4)
    assert log == []
    await clock.advance(timedelta(seconds=7))
    later = START + timedelta(seconds=11)
    assert log == [("five", later), ("ten", later)]  # in deadline order, not start order
    assert clock.now() == later
    # Each sleeps again from the new time: at most one wake-up per advance.
    await clock.advance(seconds=4)
    assert log == [("five", later), ("ten", later)]
    await clock.advance(seconds=1)
    assert log[2:] == [("five", later + timedelta(seconds=5))]
    assert tasks[1].done()  # slept twice: ended, which settles too
    assert not tasks[2].done()
    await clock.advance(hours=1)
    assert [name for name, _ in log] == ["five", "ten", "five", "ten", "hour"]
    tasks[2].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_advance_lets_a_task_woken_early_finish_before_moving_time():
    clock = ManualClock(START)
    seen: list[datetime] = []
    go = asyncio.Event()

    async def loop() -> None:
        with pytest.raises(asyncio.CancelledError):
            await clock.sleep(3600)
        await go.wait()
        seen.append(clock.now())
        await clock.sleep(3600)

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    task.cancel()  # woken early (as the dispatcher is by a new reminder)
    await asyncio.sleep(0)

    async def release() -> None:
        await asyncio.sleep(0.05)
        go.set()

    releasing = asyncio.create_task(release())
    await clock.advance(minutes=5)
    assert seen == [START]  # its pass ran before the time moved
    await releasing
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_woken_task_that_never_sleeps_again_fails_advance_within_the_bound():
    clock = ManualClock(START)
    clock.settle_timeout = 0.2
    forever = asyncio.Event()

    async def stuck() -> None:
        await clock.sleep(60)
        await forever.wait()

    task = asyncio.create_task(stuck(), name="stuck-task")
    await asyncio.sleep(0)
    with pytest.raises(ClockNotSettledError, match="stuck-task"):
        await clock.advance(minutes=1)
    assert clock.now() == START + timedelta(minutes=1)
    forever.set()
    await task
    await clock.advance(minutes=1)  # ended: nothing to wait for


@pytest.mark.parametrize(
    ("delta", "parts"),
    [
        (None, {}),
        (timedelta(seconds=-1), {}),
        (None, {"minutes": -5}),
        (timedelta(seconds=1), {"seconds": 1}),
        (None, {"fortnights": 1}),
        (None, {"days": 10**9}),
        (5, {}),
    ],
)
async def test_advance_rejects_what_is_not_a_step_forward(delta, parts):
    clock = ManualClock(START)
    with pytest.raises(InvalidClockStepError):
        await clock.advance(delta, **parts)
    assert clock.now() == START


def test_a_manual_clock_starts_aware_in_utc_and_stands_still():
    with pytest.raises(InvalidClockStepError):
        ManualClock(datetime(2030, 1, 1))  # naive
    paris = timezone(timedelta(hours=1))
    clock = ManualClock(datetime(2030, 1, 1, 13, 0, tzinfo=paris))
    assert clock.now() == START
    assert clock.now().tzinfo == timezone.utc
    assert clock.monotonic() == clock.monotonic()
    assert ManualClock().now().tzinfo == timezone.utc


async def test_a_cancelled_sleeper_is_forgotten():
    clock = ManualClock(START)
    log: list[tuple[str, datetime]] = []
    task = asyncio.create_task(sleeper(clock, "gone", 5, log))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await clock.advance(seconds=10)
    assert log == []
    assert not clock._sleeps


async def test_sleepers_of_the_real_clock_move_to_a_manual_one_with_their_time_left():
    real, manual = Clock(), ManualClock(START)
    current = [real]  # what a loop on a handle reads: db.clock, at each sleep
    woke: list[datetime] = []

    async def loop() -> None:
        while True:
            await current[0].sleep(600)
            woke.append(current[0].now())

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    real.move_sleepers(manual)
    current[0] = manual
    await manual.advance(minutes=9)
    assert woke == []
    await manual.advance(minutes=1, seconds=1)
    assert woke == [START + timedelta(minutes=10, seconds=1)]
    # Back to the real clock: a sleep moved there keeps its time left (600 s) and no more.
    await manual.advance(minutes=9, seconds=59)
    manual.move_sleepers(real)
    current[0] = real
    assert not manual._sleeps
    (moved,) = real._sleeps
    assert 0 < moved.deadline - real.monotonic() <= 1
    await asyncio.wait_for(_until(lambda: len(woke) == 2), 3)
    assert woke[1].year == datetime.now(timezone.utc).year
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _until(condition) -> None:
    while not condition():  # noqa: ASYNC110
        await asyncio.sleep(0.01)


# On the handle (both backends) -----------------------------------------------------------------


async def test_db_clock_is_read_by_the_managers_and_the_cache_and_restored(botdata_db):
    before = botdata_db.clock
    assert isinstance(before, Clock)
    assert not isinstance(before, ManualClock)
    with pytest.raises(TypeError):
        botdata_db.clock = datetime.now  # type: ignore[assignment]
    manual = ManualClock(START)
    botdata_db.clock = manual
    try:
        assert botdata_db.cache.clock() == manual.monotonic()
        # Due in five minutes by the handle's clock: in 2030, so in the future for the manager.
        reminder = await botdata_db.reminders.create(
            GUILD, USER, CHANNEL, "clock", START + timedelta(minutes=5)
        )
        assert reminder.due_at == START + timedelta(minutes=5)
        await manual.advance(minutes=5)
        with pytest.raises(InvalidReminderTimeError):  # now due: not in the future any more
            await botdata_db.reminders.create(
                GUILD, USER, CHANNEL, "late", START + timedelta(minutes=5)
            )
        assert botdata_db.cache.clock() == manual.monotonic()
    finally:
        botdata_db.clock = before
    assert botdata_db.clock is before
    assert abs(botdata_db.cache.clock() - before.monotonic()) < 60


async def test_a_reminder_due_in_five_minutes_is_delivered_by_advance(botdata_db, botdata_clock):
    delivered: list[tuple[ReminderSchema, datetime]] = []

    async def deliver(reminder: ReminderSchema) -> None:
        delivered.append((reminder, botdata_clock.now()))

    start = botdata_clock.now()
    await botdata_db.reminders.start(deliver)
    try:
        reminder = await botdata_db.reminders.create(
            GUILD, USER, CHANNEL, "in five", start + timedelta(minutes=5)
        )
        await botdata_clock.advance(minutes=4, seconds=59)
        assert delivered == []
        assert (await Reminder.get(id=reminder.id)).sent_at is None
        await botdata_clock.advance(seconds=1)
        assert [(r.id, at) for r, at in delivered] == [(reminder.id, start + timedelta(minutes=5))]
        row = await Reminder.get(id=reminder.id)
        assert row.sent_at == start + timedelta(minutes=5)  # marked with the clock's time
    finally:
        await botdata_db.reminders.stop()
    assert botdata.ManualClock is ManualClock
