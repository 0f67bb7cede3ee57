"""Reminder dispatchers in several OS processes on one database (both backends).

Each child process opens its own botdata handle on the session database (SQLite: the same file,
locked across processes, with the in-process cache; PostgreSQL: with Redis and the parent's
cache prefix, so pub/sub reaches it), runs ``db.reminders`` and prints one JSON line per event.
Every child ends with ``db.close()``, which must stop its dispatcher cleanly (but the one
:func:`test_a_killed_dispatcher_repeats_only_deliveries_it_had_not_recorded` kills).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from tortoise import Tortoise

from botdata.managers.sql import dialect_sql
from botdata.models import Reminder
from tests.support import REDIS_URL, ROOT

pytestmark = pytest.mark.slow  # several OS processes against one database

GUILD = 100_000_000_000_000_001
USER = 200_000_000_000_000_001
CHANNEL = 400_000_000_000_000_001

CHILD = """
import asyncio, json, os, time
from datetime import datetime, timezone
import botdata
from botdata.models import Reminder

def emit(**event):
    print(json.dumps(event), flush=True)

def record(line):
    with open(os.environ["RECORD"], "a") as log:
        log.write(line + "\\n")

async def wait_until(check, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not await check():
        await asyncio.sleep(0.05)

async def barrier():
    # Go on together: wait until every worker got here.
    folder = os.environ["BARRIER"]
    open(os.path.join(folder, os.environ["WORKER"]), "w").close()
    while len(os.listdir(folder)) < int(os.environ["WORKERS"]):
        await asyncio.sleep(0.01)

async def main():
    mode = os.environ["MODE"]
    db = await botdata.connect(
        database_url=os.environ["DB_URL"], redis_url=os.environ["REDIS"],
        CACHE_PREFIX=os.environ["PREFIX"], **json.loads(os.environ["SETTINGS"]),
    )
    delivered, started = [], asyncio.Event()

    async def deliver(reminder):
        started.set()
        late = (datetime.now(timezone.utc) - reminder.due_at).total_seconds()
        if mode == "record":
            # Deliveries finish one by one, SPACING seconds apart (content: the rank), each
            # written to the RECORD file (as a message reaches Discord) before returning.
            record(f"start {reminder.id}")
            await asyncio.sleep(int(reminder.content) * float(os.environ["SPACING"]))
            record(f"sent {reminder.id}")
            return
        if mode == "fail":
            emit(failed=reminder.id)
            raise RuntimeError("refused on purpose")
        if mode == "slow":
            await asyncio.sleep(0.5)
        delivered.append(reminder.id)
        emit(delivered=reminder.id, late=late, attempts=reminder.attempts)

    async def none_pending():
        return not await Reminder.filter(sent_at=None).exists()

    async def failed_once():
        return await Reminder.filter(attempts__gte=1).exists()

    async def delivered_one():
        return bool(delivered)

    async def callback_started():
        return started.is_set()

    try:
        if mode == "create":
            await barrier()
            outcomes = await asyncio.gather(*(
                db.reminders.create(int(os.environ["GUILD"]), int(os.environ["USER"]),
                                    int(os.environ["CHANNEL"]), f"r{i}",
                                    datetime.fromisoformat(os.environ["DUE"]))
                for i in range(int(os.environ["COUNT"]))
            ), return_exceptions=True)
            emit(created=[o.id for o in outcomes if not isinstance(o, BaseException)],
                 refused=[type(o).__name__ for o in outcomes if isinstance(o, BaseException)])
            return
        await db.reminders.start(deliver)
        emit(ready=True)
        until = {"deliver": none_pending, "fail": failed_once, "one": delivered_one,
                 "slow": callback_started, "record": none_pending}[mode]
        await wait_until(until)
    finally:
        await db.close()
        emit(closed=True, running=db.reminders.running)

asyncio.run(main())
"""


class Child:
    """A child process running :data:`CHILD`."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.read: list[str] = []

    @classmethod
    async def start(
        cls,
        db,
        database_url: str,
        barrier: Path,
        mode: str,
        worker: int = 0,
        workers: int = 1,
        settings: dict[str, Any] | None = None,
        **extra: object,
    ) -> Child:
        env = {
            **os.environ,
            "MODE": mode,
            "DB_URL": database_url,
            "REDIS": REDIS_URL if db.dialect == "postgres" else "",
            "PREFIX": db.settings.CACHE_PREFIX,
            "SETTINGS": json.dumps(settings or {}),
            "BARRIER": str(barrier),
            "WORKER": str(worker),
            "WORKERS": str(workers),
            **{key: str(value) for key, value in extra.items()},
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            textwrap.dedent(CHILD),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def ready(self, timeout: float = 30) -> None:
        """Wait until the child's dispatcher runs."""

        async def read_until_ready() -> None:
            assert self.process.stdout is not None
            while line := (await self.process.stdout.readline()).decode():
                self.read.append(line)
                if line.startswith('{"ready"'):
                    return
            raise AssertionError(f"the child ended before its dispatcher ran: {self.read}")

        await asyncio.wait_for(read_until_ready(), timeout)

    async def events(self, *, clean: bool = True, timeout: float = 40) -> list[dict[str, Any]]:
        """The child's events once it exited; asserts it succeeded and closed its handle
        cleanly (with ``clean``: nothing on stderr, no task left pending)."""
        out, err = await asyncio.wait_for(self.process.communicate(), timeout)
        stdout, stderr = "".join(self.read) + out.decode(), err.decode()
        assert self.process.returncode == 0, f"child failed:\n{stdout}\n{stderr}"
        events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
        assert events[-1] == {"closed": True, "running": False}, stdout
        assert "Task was destroyed" not in stderr, stderr
        if clean:
            assert stderr.strip() == "", stderr
        return events


def soon(seconds: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


def delivered(events: list[dict[str, Any]]) -> list[int]:
    return [event["delivered"] for event in events if "delivered" in event]


async def test_two_processes_deliver_each_reminder_exactly_once(
    botdata_db, botdata_database_url, tmp_path
):
    # 300 reminders due at one instant (claimed in batches of 100 by both dispatchers at
    # once) and 20 created through the API with due times spread over a second.
    await botdata_db.guilds.ensure(GUILD)
    now = datetime.now(timezone.utc)
    at_once = soon(3)
    await Tortoise.get_connection("default").execute_many(
        dialect_sql(
            "INSERT INTO reminders (guild_id, user_id, channel_id, content, due_at, attempts, "
            "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $6)",
            botdata_db.dialect,
        ),
        [[GUILD, USER + 100 + i % 20, CHANNEL, f"bulk {i}", at_once, now] for i in range(300)],
    )
    spread = [
        await botdata_db.reminders.create(GUILD, USER + i % 4, CHANNEL, f"r{i}", soon(2 + i / 20))
        for i in range(20)
    ]
    children = [
        await Child.start(
            botdata_db, botdata_database_url, tmp_path, "deliver", worker=i, workers=2
        )
        for i in range(2)
    ]
    per_child = [delivered(await child.events()) for child in children]
    ids = [reminder_id for got in per_child for reminder_id in got]
    expected = [r.id for r in await Reminder.all()]
    assert len(expected) == 320
    assert {r.id for r in spread} <= set(expected)
    assert len(ids) == len(set(ids)), "a reminder was delivered twice"
    assert sorted(ids) == sorted(expected)
    assert not await Reminder.filter(sent_at=None).exists()
    assert not await Reminder.filter(attempts__gt=0).exists()


async def test_a_reminder_due_while_no_dispatcher_ran_goes_out_at_start(
    botdata_db, botdata_database_url, tmp_path
):
    reminder = await botdata_db.reminders.create(GUILD, USER, CHANNEL, "missed", soon(0.1))
    await asyncio.sleep(0.3)
    assert await Reminder.filter(id=reminder.id, sent_at=None).exists()
    child = await Child.start(botdata_db, botdata_database_url, tmp_path, "deliver")
    assert delivered(await child.events()) == [reminder.id]
    assert (await Reminder.get(id=reminder.id)).sent_at is not None


async def test_a_failed_delivery_is_retried_by_the_next_dispatcher_once(
    botdata_db, botdata_database_url, tmp_path
):
    reminder = await botdata_db.reminders.create(GUILD, USER, CHANNEL, "retry", soon(0.1))
    failing = await Child.start(
        botdata_db, botdata_database_url, tmp_path, "fail", settings={"REMINDER_RETRY_DELAY": 1.0}
    )
    events = await failing.events(clean=False)  # the failure is logged on stderr
    assert {"failed": reminder.id} in events
    assert delivered(events) == []
    row = await Reminder.get(id=reminder.id)
    assert row.sent_at is None
    assert row.attempts >= 1
    assert row.claimed_until is not None  # the backoff: nobody retries before it ends

    child = await Child.start(botdata_db, botdata_database_url, tmp_path, "deliver")
    events = await child.events()
    assert delivered(events) == [reminder.id]
    assert next(e["attempts"] for e in events if "delivered" in e) == row.attempts
    row = await Reminder.get(id=reminder.id)
    assert row.sent_at is not None
    assert row.claimed_until is None


async def test_a_reminder_created_elsewhere_wakes_a_sleeping_dispatcher(
    botdata_db, botdata_database_url, tmp_path
):
    # PostgreSQL + Redis: pub/sub wakes the other process long before its minute-long recheck.
    # SQLite + in-process cache: no cross-process pub/sub; the 1 s fallback recheck finds it.
    recheck = 60.0 if botdata_db.dialect == "postgres" else 1.0
    child = await Child.start(
        botdata_db,
        botdata_database_url,
        tmp_path,
        "one",
        settings={"REMINDER_RECHECK_INTERVAL": recheck},
    )
    await child.ready()
    await asyncio.sleep(0.3)  # the child now sleeps until its recheck
    reminder = await botdata_db.reminders.create(GUILD, USER, CHANNEL, "wake up", soon(0.3))
    events = await child.events()
    assert delivered(events) == [reminder.id]
    late = next(event["late"] for event in events if "delivered" in event)
    assert late < (1.0 if botdata_db.dialect == "postgres" else recheck + 0.5)


async def test_the_cap_holds_across_processes(botdata_db, botdata_database_url, tmp_path):
    due = soon(3600).isoformat()
    children = [
        await Child.start(
            botdata_db,
            botdata_database_url,
            tmp_path,
            "create",
            worker=i,
            workers=2,
            GUILD=GUILD,
            USER=USER,
            CHANNEL=CHANNEL,
            DUE=due,
            COUNT=20,
        )
        for i in range(2)
    ]
    results = [next(e for e in await child.events() if "created" in e) for child in children]
    created = [i for result in results for i in result["created"]]
    refused = [name for result in results for name in result["refused"]]
    assert len(created) == botdata_db.settings.REMINDER_MAX_PER_USER == 25
    assert refused == ["ReminderLimitError"] * 15
    assert await Reminder.filter(guild_id=GUILD, user_id=USER).count() == 25


async def test_close_waits_for_a_running_callback_and_stops_the_dispatcher(
    botdata_db, botdata_database_url, tmp_path
):
    reminder = await botdata_db.reminders.create(GUILD, USER, CHANNEL, "slow", soon(0.5))
    child = await Child.start(botdata_db, botdata_database_url, tmp_path, "slow")
    events = await child.events()
    # db.close() came while the callback slept; it finished and the reminder was marked sent.
    assert delivered(events) == [reminder.id]
    assert (await Reminder.get(id=reminder.id)).sent_at is not None


def recorded(path: Path) -> tuple[list[int], list[int]]:
    """The reminder ids a ``record`` child started and sent, in order."""
    lines = path.read_text().split() if path.exists() else []
    events = list(zip(lines[::2], map(int, lines[1::2]), strict=True))
    return [i for kind, i in events if kind == "start"], [i for kind, i in events if kind == "sent"]


async def test_a_killed_dispatcher_repeats_only_deliveries_it_had_not_recorded(
    botdata_db, botdata_database_url, tmp_path
):
    # Issue #9 point 21: a dispatcher SIGKILLed after claiming its batch repeated 25 of the 30
    # reminders it had sent (they were marked sent once per batch). Each is now marked as soon
    # as it is delivered: a repeat is a delivery whose one-row mark had not committed, and
    # there are at most as many as callbacks in flight (handed out, not yet marked) at the kill.
    count, spacing = 30, 0.05
    await botdata_db.guilds.ensure(GUILD)
    now = datetime.now(timezone.utc)
    await Tortoise.get_connection("default").execute_many(
        dialect_sql(
            "INSERT INTO reminders (guild_id, user_id, channel_id, content, due_at, attempts, "
            "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $6)",
            botdata_db.dialect,
        ),
        [[GUILD, USER, CHANNEL, str(rank), now, now] for rank in range(count)],
    )
    everything = {r.id for r in await Reminder.all()}
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    first = await Child.start(
        botdata_db,
        botdata_database_url,
        barrier,
        "record",
        RECORD=first_log,
        SPACING=spacing,
        settings={"REMINDER_CLAIM_LEASE": 2.0},
    )
    deadline = asyncio.get_running_loop().time() + 60
    while len(recorded(first_log)[1]) < count // 2:
        if asyncio.get_running_loop().time() > deadline or first.process.returncode is not None:
            first.process.kill()
            raise AssertionError(f"the first dispatcher stalled: {await first.events()}")
        await asyncio.sleep(0.01)
    first.process.kill()  # SIGKILL: no cleanup at all
    await first.process.wait()
    started, sent = recorded(first_log)
    marked = {r.id for r in await Reminder.filter(sent_at__isnull=False)}
    in_flight = set(started) - marked

    second = await Child.start(
        botdata_db, botdata_database_url, barrier, "record", RECORD=second_log, SPACING=0
    )
    await second.events()
    _, sent_again = recorded(second_log)

    assert set(sent) | set(sent_again) == everything  # none lost
    assert len(sent_again) == len(set(sent_again))
    repeated = set(sent) & set(sent_again)
    assert repeated == set(sent) - marked  # each repeat: a delivery whose mark had not committed
    assert len(repeated) <= len(in_flight)
    assert marked & set(sent), "deliveries before the kill were not marked one by one"
    print(  # the numbers for the record: pytest -s
        f"{botdata_db.dialect}: delivered before the kill {len(sent)}, marked {len(marked)}, "
        f"in flight {len(in_flight)}, repeated {len(repeated)}"
    )
