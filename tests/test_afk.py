"""db.afk: setting, clearing, reading one or many (hot cache), claiming, releasing and completing
expired statuses."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import botdata
from botdata.errors import (
    InvalidAFKExpiryError,
    InvalidAFKNicknameError,
    InvalidAFKReasonError,
    InvalidExpiryError,
    InvalidFlagError,
    InvalidPageError,
    InvalidSnowflakeError,
    InvalidTimestampError,
)
from botdata.managers.afk import AFK_MEMBERS_KEY
from botdata.models import AFK, Guild
from tests.support import REDIS_URL, run_processes

GUILD = 310_000_000_000_000_001
OTHER_GUILD = 310_000_000_000_000_002
MEMBER = 410_000_000_000_000_001


def member(i: int) -> int:
    return MEMBER + i


def soon(seconds: float = 3600) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


async def test_set_get_and_upsert(botdata_db: botdata.Database) -> None:
    assert not await Guild.exists(id=GUILD)
    until = soon()
    status = await botdata_db.afk.set(GUILD, MEMBER, nickname="Bob", reason="lunch", until=until)
    assert (status.guild_id, status.member_id, status.nickname, status.reason) == (
        GUILD,
        MEMBER,
        "Bob",
        "lunch",
    )
    assert (status.until, status.enforced, status.permanent) == (until, False, False)
    assert await Guild.exists(id=GUILD)  # created for the row
    assert await botdata_db.afk.get(GUILD, MEMBER) == status
    # Setting again replaces the status: still one row.
    again = await botdata_db.afk.set(
        GUILD, MEMBER, nickname="Bob", reason="", enforced=True, permanent=True
    )
    assert (again.reason, again.until, again.enforced, again.permanent) == ("", None, True, True)
    assert again.since >= status.since
    assert await AFK.filter(guild_id=GUILD).count() == 1
    assert await botdata_db.afk.get(GUILD, MEMBER) == again
    assert await botdata_db.afk.get(OTHER_GUILD, MEMBER) is None
    assert await botdata_db.afk.get(GUILD, member(1)) is None


async def test_limits_are_inclusive(botdata_db: botdata.Database) -> None:
    status = await botdata_db.afk.set(GUILD, MEMBER, nickname="n" * 100, reason="r" * 500)
    assert (len(status.nickname), len(status.reason)) == (100, 500)


async def test_clear(botdata_db: botdata.Database) -> None:
    status = await botdata_db.afk.set(GUILD, MEMBER, nickname="Bob", reason="away")
    assert await botdata_db.afk.clear(GUILD, MEMBER) == status
    assert await botdata_db.afk.get(GUILD, MEMBER) is None
    assert await botdata_db.afk.clear(GUILD, MEMBER) is None
    assert not await AFK.exists()


async def test_get_many(botdata_db: botdata.Database) -> None:
    for i in (2, 5):
        await botdata_db.afk.set(GUILD, member(i), nickname=f"m{i}", reason="zzz")
    await botdata_db.afk.set(OTHER_GUILD, member(3), nickname="elsewhere")
    found = await botdata_db.afk.get_many(GUILD, [member(i) for i in range(10)])
    assert sorted(found) == [member(2), member(5)]
    assert found[member(5)].nickname == "m5"
    assert await botdata_db.afk.get_many(GUILD, []) == {}
    # The cached set follows writes.
    await botdata_db.afk.clear(GUILD, member(2))
    await botdata_db.afk.set(GUILD, member(7), nickname="m7")
    assert sorted(await botdata_db.afk.get_many(GUILD, [member(i) for i in range(10)])) == [
        member(5),
        member(7),
    ]


async def test_get_many_of_members_not_afk_queries_nothing(
    botdata_db: botdata.Database, caplog: pytest.LogCaptureFixture
) -> None:
    """The common case (nobody mentioned is AFK) is answered by the hot cache."""
    await botdata_db.afk.set(GUILD, member(99), nickname="away")
    mentioned = [member(i) for i in range(10)]
    assert await botdata_db.afk.get_many(GUILD, mentioned) == {}  # loads the guild's AFK set
    assert (
        botdata_db.cache.hot_get(botdata_db.cache.key(AFK_MEMBERS_KEY, guild_id=GUILD)) is not None
    )
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="tortoise.db_client"):
        assert await botdata_db.afk.get_many(GUILD, mentioned) == {}
        assert await botdata_db.afk.get(GUILD, member(3)) is None
        queries = [r for r in caplog.records if r.name == "tortoise.db_client"]
        assert queries == []
        # An AFK member among them: one query for all of them.
        assert list(await botdata_db.afk.get_many(GUILD, [*mentioned, member(99)])) == [member(99)]
        queries = [r for r in caplog.records if r.name == "tortoise.db_client"]
        assert len(queries) == 1


async def test_expired_statuses_are_not_afk_and_are_claimed_once(
    botdata_db: botdata.Database,
) -> None:
    now = datetime.now(timezone.utc)
    await botdata_db.afk.set(GUILD, member(1), nickname="a", until=now + timedelta(minutes=1))
    await botdata_db.afk.set(GUILD, member(2), nickname="b", until=now + timedelta(minutes=2))
    await botdata_db.afk.set(OTHER_GUILD, member(3), nickname="c", until=now + timedelta(minutes=3))
    await botdata_db.afk.set(GUILD, member(4), nickname="d", until=now + timedelta(hours=5))
    await botdata_db.afk.set(GUILD, member(5), nickname="e", permanent=True)
    await botdata_db.afk.set(GUILD, member(6), nickname="f")
    later = now + timedelta(minutes=10)
    assert await botdata_db.afk.claim_expired(now) == []
    claimed = await botdata_db.afk.claim_expired(later, limit=2)
    assert [(s.guild_id, s.member_id) for s in claimed] == [(GUILD, member(1)), (GUILD, member(2))]
    [third] = await botdata_db.afk.claim_expired(later)
    assert (third.guild_id, third.member_id) == (OTHER_GUILD, member(3))
    assert await botdata_db.afk.claim_expired(later) == []  # all claimed
    for status in [*claimed, third]:
        assert await botdata_db.afk.complete_expiry(status.guild_id, status.member_id)
        assert not await botdata_db.afk.complete_expiry(status.guild_id, status.member_id)
    assert sorted(await botdata_db.afk.get_many(GUILD, [member(i) for i in range(7)])) == [
        member(4),
        member(5),
        member(6),
    ]
    # A status whose time passed is not AFK even before it is claimed.
    await AFK.filter(member_id=member(4)).update(until=now - timedelta(seconds=1))
    assert await botdata_db.afk.get(GUILD, member(4)) is None
    far = now + timedelta(days=3650)
    [fourth] = await botdata_db.afk.claim_expired(far)
    assert fourth.member_id == member(4)
    assert await botdata_db.afk.complete_expiry(GUILD, member(4))
    assert sorted(await AFK.all().values_list("member_id", flat=True)) == [member(5), member(6)]


async def test_a_released_expiry_stays_until_completed(botdata_db: botdata.Database) -> None:
    """A failed nickname restore (released) is not lost: the status is claimed again."""
    now = datetime.now(timezone.utc)
    await botdata_db.afk.set(GUILD, MEMBER, nickname="Bob", until=now + timedelta(minutes=1))
    later = now + timedelta(minutes=2)
    [claimed] = await botdata_db.afk.claim_expired(later)
    assert await AFK.filter(member_id=MEMBER).exists()  # claiming deletes nothing
    assert await botdata_db.afk.claim_expired(later) == []
    assert await botdata_db.afk.release(GUILD, MEMBER)
    assert not await botdata_db.afk.release(GUILD, MEMBER)  # not claimed any more
    assert not await botdata_db.afk.complete_expiry(GUILD, MEMBER)  # nor completable
    lease = timedelta(minutes=1)
    assert await botdata_db.afk.claim_expired(later, lease=lease) == [claimed]
    # A lease that ran out (the claimer died) hands it out again, to one claimer.
    assert await botdata_db.afk.claim_expired(later + lease / 2) == []
    assert await botdata_db.afk.claim_expired(later + lease, lease=lease) == [claimed]
    assert await botdata_db.afk.claim_expired(later + lease) == []
    assert await botdata_db.afk.complete_expiry(GUILD, MEMBER)
    assert not await AFK.exists()
    assert await botdata_db.afk.claim_expired(later + timedelta(days=1)) == []


async def test_a_new_status_voids_the_claim_on_the_old_one(botdata_db: botdata.Database) -> None:
    now = datetime.now(timezone.utc)
    await botdata_db.afk.set(GUILD, MEMBER, nickname="Bob", until=now + timedelta(minutes=1))
    assert [
        a.member_id for a in await botdata_db.afk.claim_expired(now + timedelta(minutes=2))
    ] == [MEMBER]
    new = await botdata_db.afk.set(GUILD, MEMBER, nickname="Bob", reason="back later")
    assert not await botdata_db.afk.complete_expiry(GUILD, MEMBER)  # the new status stays
    assert not await botdata_db.afk.release(GUILD, MEMBER)
    assert await botdata_db.afk.get(GUILD, MEMBER) == new
    # Cleared (the member came back) after the claim: nothing to complete either.
    await botdata_db.afk.set(GUILD, member(1), nickname="a", until=now + timedelta(minutes=1))
    claimed = await botdata_db.afk.claim_expired(now + timedelta(minutes=2))
    assert [a.member_id for a in claimed] == [member(1)]
    assert await botdata_db.afk.clear(GUILD, member(1)) is not None
    assert not await botdata_db.afk.complete_expiry(GUILD, member(1))


async def test_completing_an_expiry_drops_the_cached_member_set(
    botdata_db: botdata.Database,
) -> None:
    now = datetime.now(timezone.utc)
    await botdata_db.afk.set(GUILD, MEMBER, nickname="Bob", until=now + timedelta(seconds=2))
    assert await botdata_db.afk.get_many(GUILD, [MEMBER]) != {}  # loads the guild's AFK set
    assert len(await botdata_db.afk.claim_expired(now + timedelta(minutes=1))) == 1
    assert await botdata_db.afk.complete_expiry(GUILD, MEMBER)
    assert botdata_db.cache.hot_get(botdata_db.cache.key(AFK_MEMBERS_KEY, guild_id=GUILD)) is None


async def test_claim_expired_across_processes(
    botdata_db: botdata.Database, botdata_database_url: str, botdata_backend: str, tmp_path: Path
) -> None:
    """Each expired status goes to exactly one of several processes claiming (and completing)
    at once."""
    statuses = [
        AFK(guild_id=GUILD, member_id=member(i), nickname="x", reason="", until=soon(60 + i))
        for i in range(300)
    ]
    await botdata_db.guilds.ensure(GUILD)
    await AFK.bulk_create(statuses)
    code = """
        import asyncio, json, os, time
        from datetime import datetime, timedelta, timezone
        import botdata

        async def main():
            db = await botdata.connect(database_url=os.environ["URL"],
                                       redis_url=os.environ.get("REDIS") or None,
                                       CACHE_PREFIX=os.environ["PREFIX"])
            later = datetime.now(timezone.utc) + timedelta(hours=1)
            # Barrier: claim once every worker is connected.
            open(os.path.join(os.environ["BARRIER"], os.environ["WORKER"]), "w").close()
            deadline = time.monotonic() + 60
            while len(os.listdir(os.environ["BARRIER"])) < 4 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            got = []
            try:
                while batch := await db.afk.claim_expired(later, limit=7):
                    for s in batch:
                        if await db.afk.complete_expiry(s.guild_id, s.member_id):
                            got.append(s.member_id)
            finally:
                await db.close()
            print(json.dumps(got))

        asyncio.run(main())
    """
    env = {
        "BARRIER": str(tmp_path),
        "URL": botdata_database_url,
        "REDIS": REDIS_URL if botdata_backend == "postgres" else "",
        "PREFIX": botdata_db.settings.CACHE_PREFIX,
    }
    outputs = run_processes(code, 4, env=env)
    claimed = [m for out in outputs for m in json.loads(out.strip().splitlines()[-1])]
    assert sorted(claimed) == [member(i) for i in range(300)]  # all of them, each once
    assert not await AFK.exists()


BAD_SETS: list[tuple[tuple[Any, ...], dict[str, Any], type[Exception]]] = [
    ((5, MEMBER), {"nickname": "x"}, InvalidSnowflakeError),
    ((GUILD, "1"), {"nickname": "x"}, InvalidSnowflakeError),
    ((GUILD, MEMBER), {"nickname": "n" * 101}, InvalidAFKNicknameError),
    ((GUILD, MEMBER), {"nickname": None}, InvalidAFKNicknameError),
    ((GUILD, MEMBER), {"nickname": "x", "reason": "r" * 501}, InvalidAFKReasonError),
    ((GUILD, MEMBER), {"nickname": "x", "reason": 5}, InvalidAFKReasonError),
    ((GUILD, MEMBER), {"nickname": "x", "enforced": 1}, InvalidFlagError),
    ((GUILD, MEMBER), {"nickname": "x", "permanent": "yes"}, InvalidFlagError),
    ((GUILD, MEMBER), {"nickname": "x", "until": datetime(2099, 1, 1)}, InvalidAFKExpiryError),
    ((GUILD, MEMBER), {"nickname": "x", "until": "2099-01-01"}, InvalidAFKExpiryError),
    (
        (GUILD, MEMBER),
        {"nickname": "x", "until": datetime(2000, 1, 1, tzinfo=timezone.utc)},
        InvalidAFKExpiryError,
    ),
    ((GUILD, MEMBER), {"nickname": "x", "until": soon(), "permanent": True}, InvalidAFKExpiryError),
]


@pytest.mark.parametrize(("args", "kwargs", "error"), BAD_SETS)
async def test_bad_set_raises_and_writes_nothing(
    botdata_db: botdata.Database,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    error: type[Exception],
) -> None:
    before = await botdata_db.afk.set(GUILD, MEMBER, nickname="kept", reason="kept")
    with pytest.raises(error):
        await botdata_db.afk.set(*args, **kwargs)
    assert [(a.member_id, a.nickname, a.reason) for a in await AFK.all()] == [
        (MEMBER, "kept", "kept")
    ]
    assert await botdata_db.afk.get(GUILD, MEMBER) == before
    assert await Guild.all().count() == 1


async def test_bad_reads_raise(botdata_db: botdata.Database) -> None:
    await botdata_db.afk.set(GUILD, MEMBER, nickname="kept")
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.afk.get_many(GUILD, [MEMBER, 12])
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.afk.get(None, MEMBER)  # type: ignore[arg-type]
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.afk.clear(GUILD, -1)
    with pytest.raises(InvalidTimestampError):
        await botdata_db.afk.claim_expired(datetime(2099, 1, 1))
    with pytest.raises(InvalidPageError):
        await botdata_db.afk.claim_expired(limit=0)
    with pytest.raises(InvalidPageError):
        await botdata_db.afk.claim_expired(limit=True)
    with pytest.raises(InvalidExpiryError):
        await botdata_db.afk.claim_expired(lease=timedelta(0))
    with pytest.raises(InvalidExpiryError):
        await botdata_db.afk.claim_expired(lease=60)  # type: ignore[arg-type]
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.afk.complete_expiry(GUILD, 0)
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.afk.release(None, MEMBER)  # type: ignore[arg-type]
    assert await AFK.all().count() == 1
