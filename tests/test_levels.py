"""db.levels: XP grants, cooldowns, levels and rewards, ranks, leaderboards, admin operations."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis
from tortoise.connection import get_connection

import botdata
from botdata.errors import (
    InvalidLevelError,
    InvalidOffsetError,
    InvalidPageError,
    InvalidSettingValueError,
    InvalidSnowflakeError,
    InvalidTimestampError,
    InvalidXPError,
)
from botdata.managers.levels import COOLDOWN_KEY, RANK_KEY, RANK_MARKER, RANK_SQL
from botdata.managers.sql import fetch
from botdata.managers.xp import (
    MAX_LEVEL,
    MAX_XP,
    LevelSettings,
    level_for_xp,
    level_threshold,
    xp_to_next_level,
)
from botdata.models import Guild, GuildSetting, Levels
from botdata.models.base import MAX_SNOWFLAKE

GUILD = 300_000_000_000_000_001
OTHER_GUILD = 300_000_000_000_000_002
MEMBER = 400_000_000_000_000_001
CHANNEL = 500_000_000_000_000_001
ROLE_A = 600_000_000_000_000_001
ROLE_B = 600_000_000_000_000_002
ROLE_C = 600_000_000_000_000_003
T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)


def member(i: int) -> int:
    return MEMBER + i


@contextmanager
def counted_queries(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    """The database statements sent inside the block (Tortoise logs each one at DEBUG)."""
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="tortoise.db_client"):
        records: list[logging.LogRecord] = []
        yield records
        records.extend(r for r in caplog.records if r.name == "tortoise.db_client")


async def configure(db: botdata.Database, **changes: Any) -> LevelSettings:
    return await db.levels.configure(GUILD, LevelSettings(**changes))


async def db_rank(db: botdata.Database, guild_id: int, member_id: int) -> int | None:
    rows = await fetch(get_connection("default"), db.dialect, RANK_SQL, [guild_id, member_id])
    return int(rows[0]["rank"]) if rows else None


# The curve -----------------------------------------------------------------------------------


def test_curve_is_mee6() -> None:
    assert [xp_to_next_level(level) for level in range(4)] == [100, 155, 220, 295]
    assert [level_threshold(level) for level in range(6)] == [0, 100, 255, 475, 770, 1150]


def test_threshold_is_the_sum_of_the_steps_and_level_inverts_it() -> None:
    total = 0
    for level in range(2000):
        assert level_threshold(level) == total
        assert level_for_xp(total) == level
        if level:
            assert level_for_xp(total - 1) == level - 1
        total += xp_to_next_level(level)
    assert level_threshold(3, 2.0) == 950
    assert level_for_xp(949, 2.0) == 2
    assert level_for_xp(950, 2.0) == 3
    assert level_threshold(MAX_LEVEL, 10.0) <= MAX_XP < level_threshold(MAX_LEVEL + 1, 10.0)


def test_settings_validation() -> None:
    with pytest.raises(ValueError, match="above xp_max"):
        LevelSettings(xp_min=30, xp_max=20)
    with pytest.raises(ValueError, match="curve_multiplier"):
        LevelSettings(curve_multiplier=0)
    with pytest.raises(ValueError, match="no_xp_channel_ids"):
        LevelSettings(no_xp_channel_ids=[5])  # not a snowflake
    settings = LevelSettings(role_rewards={"5": ROLE_A}, role_multipliers={str(ROLE_A): 2})
    assert settings.role_rewards == {5: ROLE_A}
    assert settings.multiplier_for({ROLE_A}) == 2.0


# Granting ------------------------------------------------------------------------------------


async def test_grant_creates_guild_and_row(botdata_db: botdata.Database) -> None:
    assert not await Guild.exists(id=GUILD)
    grant = await botdata_db.levels.grant_message_xp(GUILD, MEMBER, now=T0)
    assert grant is not None
    assert 15 <= grant.gained <= 25
    assert (grant.xp, grant.level, grant.previous_level, grant.levelled_up) == (
        grant.gained,
        0,
        0,
        False,
    )
    assert await Guild.exists(id=GUILD)
    row = await Levels.get(guild_id=GUILD, member_id=MEMBER)
    assert (row.xp, row.level, row.last_message_at) == (grant.gained, 0, T0)
    stored = await botdata_db.levels.get(GUILD, MEMBER)
    assert stored is not None
    assert stored.xp == grant.xp
    assert stored.member_id == MEMBER
    assert await botdata_db.levels.get(GUILD, member(1)) is None


async def test_cooldown(botdata_db: botdata.Database) -> None:
    first = await botdata_db.levels.grant_message_xp(GUILD, MEMBER, now=T0)
    assert first is not None
    assert (
        await botdata_db.levels.grant_message_xp(GUILD, MEMBER, now=T0 + timedelta(seconds=30))
        is None
    )
    assert (
        await botdata_db.levels.grant_message_xp(GUILD, MEMBER, now=T0 + timedelta(seconds=59))
        is None
    )
    again = await botdata_db.levels.grant_message_xp(GUILD, MEMBER, now=T0 + timedelta(seconds=61))
    assert again is not None
    assert again.xp == first.xp + again.gained
    # Per member and per guild.
    assert await botdata_db.levels.grant_message_xp(GUILD, member(1), now=T0) is not None
    assert await botdata_db.levels.grant_message_xp(OTHER_GUILD, MEMBER, now=T0) is not None
    assert (await Levels.get(guild_id=GUILD, member_id=MEMBER)).xp == first.xp + again.gained


async def test_cooldown_at_the_current_time(botdata_db: botdata.Database) -> None:
    assert await botdata_db.levels.grant_message_xp(GUILD, MEMBER) is not None
    assert await botdata_db.levels.grant_message_xp(GUILD, MEMBER) is None


async def test_cooldown_holds_when_the_cache_lost_it(botdata_db: botdata.Database) -> None:
    """The database's last_message_at is the arbiter: a cleared cache grants nothing extra."""
    first = await botdata_db.levels.grant_message_xp(GUILD, MEMBER, now=T0)
    assert first is not None
    await botdata_db.cache.clear()
    assert (
        await botdata_db.levels.grant_message_xp(GUILD, MEMBER, now=T0 + timedelta(seconds=10))
        is None
    )
    assert (await Levels.get(guild_id=GUILD, member_id=MEMBER)).xp == first.xp
    assert await botdata_db.levels.grant_message_xp(GUILD, MEMBER, now=T0 + timedelta(seconds=61))


async def test_cooldown_ends_on_time(botdata_db: botdata.Database) -> None:
    """The member's next message after the cooldown earns XP: what the process remembers of
    a cooldown never outlasts it."""
    await configure(botdata_db, cooldown=0.3)
    assert await botdata_db.levels.grant_message_xp(GUILD, MEMBER) is not None
    assert await botdata_db.levels.grant_message_xp(GUILD, MEMBER) is None
    await asyncio.sleep(0.35)
    assert await botdata_db.levels.grant_message_xp(GUILD, MEMBER) is not None
    assert await botdata_db.levels.grant_message_xp(GUILD, MEMBER) is None


async def test_cooldown_is_remembered_in_process(botdata_db: botdata.Database) -> None:
    """After a member's cooldown was claimed, their messages within it reach neither the
    database nor Redis: the claim, deleted from Redis behind the process's back, is not made
    again."""
    assert await botdata_db.levels.grant_message_xp(GUILD, MEMBER) is not None
    key = botdata_db.cache.key(COOLDOWN_KEY, MEMBER, guild_id=GUILD)
    if botdata_db.settings.REDIS_URL is None:
        assert await botdata_db.cache.claim(key, 60) is not None  # the in-process store holds it
        return
    client = redis.Redis.from_url(botdata_db.settings.REDIS_URL)
    try:
        assert client.exists(key) == 1
        client.delete(key)
        assert await botdata_db.levels.grant_message_xp(GUILD, MEMBER) is None
        assert client.exists(key) == 0
    finally:
        client.close()


async def test_concurrent_grants_with_cooldown_grant_once(botdata_db: botdata.Database) -> None:
    grants = await asyncio.gather(
        *(botdata_db.levels.grant_message_xp(GUILD, MEMBER, now=T0) for _ in range(20))
    )
    granted = [g for g in grants if g is not None]
    assert len(granted) == 1
    assert (await Levels.get(guild_id=GUILD, member_id=MEMBER)).xp == granted[0].gained


async def test_round_trips(botdata_db: botdata.Database, caplog: pytest.LogCaptureFixture) -> None:
    """Warm caches: a granted message is one statement, a member on cooldown none."""
    assert await botdata_db.levels.grant_message_xp(
        GUILD, MEMBER, now=T0
    )  # warms settings, blacklist
    with counted_queries(caplog) as granted:
        assert await botdata_db.levels.grant_message_xp(GUILD, member(1), now=T0)
    assert len(granted) == 1
    with counted_queries(caplog) as refused:
        assert await botdata_db.levels.grant_message_xp(GUILD, member(1)) is None
    assert refused == []


async def test_blacklist(botdata_db: botdata.Database, caplog: pytest.LogCaptureFixture) -> None:
    first = await botdata_db.levels.grant_message_xp(GUILD, MEMBER, now=T0)
    assert first is not None
    row = await botdata_db.levels.blacklist(GUILD, MEMBER)
    assert row.blacklisted
    assert row.xp == first.xp
    with counted_queries(caplog) as queries:
        assert (
            await botdata_db.levels.grant_message_xp(GUILD, MEMBER, now=T0 + timedelta(hours=1))
            is None
        )
    assert len(queries) <= 1  # at most the load of the blacklist; no XP written
    assert (await Levels.get(guild_id=GUILD, member_id=MEMBER)).xp == first.xp
    # Blacklisting a member without a row creates it.
    fresh = await botdata_db.levels.blacklist(GUILD, member(1))
    assert fresh.blacklisted
    assert fresh.xp == 0
    assert await botdata_db.levels.grant_message_xp(GUILD, member(1), now=T0) is None
    unlisted = await botdata_db.levels.unblacklist(GUILD, MEMBER)
    assert unlisted is not None
    assert not unlisted.blacklisted
    assert await botdata_db.levels.grant_message_xp(GUILD, MEMBER, now=T0 + timedelta(hours=1))
    assert await botdata_db.levels.unblacklist(GUILD, member(2)) is None
    assert not await Levels.exists(guild_id=GUILD, member_id=member(2))


async def test_no_xp_channels_and_roles(botdata_db: botdata.Database) -> None:
    await configure(botdata_db, no_xp_channel_ids=[CHANNEL], no_xp_role_ids=[ROLE_A])
    assert (
        await botdata_db.levels.grant_message_xp(GUILD, MEMBER, channel_id=CHANNEL, now=T0) is None
    )
    both = await botdata_db.levels.grant_message_xp(
        GUILD, MEMBER, role_ids=[ROLE_B, ROLE_A], now=T0
    )
    assert both is None
    assert not await Levels.exists(guild_id=GUILD)
    assert await botdata_db.levels.grant_message_xp(
        GUILD, MEMBER, role_ids=[ROLE_B], channel_id=CHANNEL + 1, now=T0
    )


async def test_xp_range_and_role_multipliers(botdata_db: botdata.Database) -> None:
    await configure(
        botdata_db,
        xp_min=10,
        xp_max=10,
        cooldown=0,
        role_multipliers={ROLE_A: 2.5, ROLE_B: 0.5, ROLE_C: 0},
    )
    assert (await botdata_db.levels.grant_message_xp(GUILD, MEMBER)).gained == 10
    assert (await botdata_db.levels.grant_message_xp(GUILD, MEMBER, role_ids=[ROLE_B])).gained == 5
    # The highest multiplier among the member's roles applies.
    grant = await botdata_db.levels.grant_message_xp(GUILD, MEMBER, role_ids=[ROLE_B, ROLE_A])
    assert grant.gained == 25
    assert grant.xp == 40
    only_zero = await botdata_db.levels.grant_message_xp(GUILD, member(1), role_ids=[ROLE_C])
    assert only_zero is None
    assert not await Levels.exists(guild_id=GUILD, member_id=member(1))


async def test_level_up_and_stacking_rewards(botdata_db: botdata.Database) -> None:
    await configure(
        botdata_db, xp_min=60, xp_max=60, cooldown=0, role_rewards={1: ROLE_A, 2: ROLE_B, 5: ROLE_C}
    )
    first = await botdata_db.levels.grant_message_xp(GUILD, MEMBER)
    assert (first.xp, first.level, first.levelled_up, first.rewards_due) == (60, 0, False, ())
    second = await botdata_db.levels.grant_message_xp(GUILD, MEMBER)
    assert (second.xp, second.previous_level, second.level, second.levelled_up) == (120, 0, 1, True)
    assert second.rewards_due == (ROLE_A,)
    assert second.rewards_revoked == ()
    row = await Levels.get(guild_id=GUILD, member_id=MEMBER)
    assert row.level == 1  # the level column follows the XP
    third = await botdata_db.levels.grant_message_xp(GUILD, MEMBER)
    assert (third.xp, third.level, third.levelled_up, third.rewards_due) == (180, 1, False, ())
    # Crossing several levels at once gives every reward passed.
    await botdata_db.levels.set_xp(GUILD, MEMBER, 99)
    await configure(
        botdata_db,
        xp_min=700,
        xp_max=700,
        cooldown=0,
        role_rewards={1: ROLE_A, 2: ROLE_B, 5: ROLE_C},
    )
    jump = await botdata_db.levels.grant_message_xp(GUILD, MEMBER)
    assert (jump.previous_level, jump.level) == (0, 4)  # 799 XP
    assert jump.rewards_due == (ROLE_A, ROLE_B)
    assert jump.rewards_revoked == ()


async def test_highest_only_rewards(botdata_db: botdata.Database) -> None:
    await configure(
        botdata_db,
        xp_min=200,
        xp_max=200,
        cooldown=0,
        role_rewards={1: ROLE_A, 2: ROLE_B, 4: ROLE_C},
        stack_rewards=False,
    )
    first = await botdata_db.levels.grant_message_xp(GUILD, MEMBER)  # 200: level 1
    assert first.rewards_due == (ROLE_A,)
    assert first.rewards_revoked == ()
    second = await botdata_db.levels.grant_message_xp(GUILD, MEMBER)  # 400: level 2
    assert second.rewards_due == (ROLE_B,)
    assert second.rewards_revoked == (ROLE_A,)
    third = await botdata_db.levels.grant_message_xp(GUILD, MEMBER)  # 600: level 3, no reward
    assert third.levelled_up
    assert third.rewards_due == ()
    assert third.rewards_revoked == ()
    fourth = await botdata_db.levels.grant_message_xp(GUILD, MEMBER)  # 800: level 4
    assert fourth.rewards_due == (ROLE_C,)
    assert fourth.rewards_revoked == (ROLE_A, ROLE_B)


async def test_each_level_up_is_reported_once_under_concurrency(
    botdata_db: botdata.Database,
) -> None:
    rewards = {level: ROLE_A + level for level in range(1, 8)}
    await configure(botdata_db, xp_min=15, xp_max=25, cooldown=0, role_rewards=rewards)
    grants = await asyncio.gather(
        *(botdata_db.levels.grant_message_xp(GUILD, MEMBER) for _ in range(150))
    )
    total = (await Levels.get(guild_id=GUILD, member_id=MEMBER)).xp
    assert total == sum(g.gained for g in grants)
    final = level_for_xp(total)
    assert final >= 5
    ups = sorted(level for g in grants for level in range(g.previous_level + 1, g.level + 1))
    assert ups == list(range(1, final + 1))
    given = sorted(role for g in grants for role in g.rewards_due)
    assert given == sorted(rewards[level] for level in range(1, min(final, 7) + 1))
    assert (await Levels.get(guild_id=GUILD, member_id=MEMBER)).level == final


async def test_curve_multiplier(botdata_db: botdata.Database) -> None:
    await configure(botdata_db, xp_min=100, xp_max=100, cooldown=0, curve_multiplier=2.0)
    first = await botdata_db.levels.grant_message_xp(GUILD, MEMBER)
    assert first.level == 0  # level 1 needs 200
    second = await botdata_db.levels.grant_message_xp(GUILD, MEMBER)
    assert second.level == 1
    assert second.levelled_up
    row = await botdata_db.levels.set_level(GUILD, MEMBER, 3)
    assert (row.xp, row.level) == (950, 3)
    # Changing the curve: levels follow the XP, which stays.
    await configure(botdata_db)
    assert (await botdata_db.levels.get(GUILD, MEMBER)).level == 4  # 950 XP on the default curve
    entry = (await botdata_db.levels.leaderboard(GUILD))[0]
    assert (entry.xp, entry.level) == (950, 4)


async def test_settings(botdata_db: botdata.Database) -> None:
    assert await botdata_db.levels.settings_for(GUILD) == LevelSettings()
    stored = await botdata_db.levels.configure(GUILD, {"xp_min": 1, "xp_max": 2, "cooldown": 5})
    assert (stored.xp_min, stored.xp_max, stored.cooldown) == (1, 2, 5)
    assert await botdata_db.levels.settings_for(GUILD) == stored
    assert await botdata_db.guilds.get_setting(GUILD, "levels", "settings") == stored
    with pytest.raises(InvalidSettingValueError):
        await botdata_db.levels.configure(GUILD, {"xp_min": 30, "xp_max": 20})
    with pytest.raises(InvalidSettingValueError):
        await botdata_db.levels.configure(GUILD, {"unknown": 1})
    assert await botdata_db.levels.settings_for(GUILD) == stored
    assert await GuildSetting.filter(guild_id=GUILD).count() == 1


async def test_level_up_channel_setting(botdata_db: botdata.Database) -> None:
    assert LevelSettings().level_up_channel_id is None
    stored = await botdata_db.levels.configure(GUILD, {"level_up_channel_id": CHANNEL})
    assert (
        (await botdata_db.levels.settings_for(GUILD)).level_up_channel_id
        == CHANNEL
        == (stored.level_up_channel_id)
    )
    with pytest.raises(InvalidSettingValueError, match="level_up_channel_id"):
        await botdata_db.levels.configure(GUILD, {"level_up_channel_id": 5})  # not a snowflake
    assert await botdata_db.levels.settings_for(GUILD) == stored


# Admin operations ----------------------------------------------------------------------------


async def test_set_xp_and_set_level(botdata_db: botdata.Database) -> None:
    row = await botdata_db.levels.set_xp(GUILD, MEMBER, 500)
    assert (row.xp, row.level, row.blacklisted) == (500, 3, False)
    assert (await Levels.get(guild_id=GUILD, member_id=MEMBER)).level == 3
    row = await botdata_db.levels.set_xp(GUILD, MEMBER, 0)
    assert (row.xp, row.level) == (0, 0)
    row = await botdata_db.levels.set_level(GUILD, MEMBER, 5)
    assert (row.xp, row.level) == (1150, 5)
    grant = await botdata_db.levels.grant_message_xp(GUILD, MEMBER, now=T0)
    assert grant.xp == 1150 + grant.gained
    assert grant.level == 5
    assert not grant.levelled_up


async def test_reset(botdata_db: botdata.Database) -> None:
    for i in range(4):
        await botdata_db.levels.set_xp(GUILD, member(i), 100 * (i + 1))
    await botdata_db.levels.set_xp(OTHER_GUILD, MEMBER, 100)
    await botdata_db.levels.blacklist(GUILD, member(3))
    assert await botdata_db.levels.reset(GUILD, member(0)) == 1
    assert await botdata_db.levels.get(GUILD, member(0)) is None
    assert await botdata_db.levels.rank(GUILD, member(1)) == 3
    assert await botdata_db.levels.reset(GUILD, member(0)) == 0
    assert await botdata_db.levels.reset(GUILD) == 3
    kept = await botdata_db.levels.get(GUILD, member(3))
    assert kept is not None
    assert kept.blacklisted
    assert kept.xp == 0
    assert [e.member_id for e in await botdata_db.levels.leaderboard(GUILD)] == [member(3)]
    assert (await botdata_db.levels.get(OTHER_GUILD, MEMBER)).xp == 100


# Ranks and leaderboards ----------------------------------------------------------------------


async def test_rank_and_leaderboard_order(botdata_db: botdata.Database) -> None:
    totals = {member(0): 50, member(1): 300, member(2): 300, member(3): 10, member(4): 300}
    for member_id, xp in totals.items():
        await botdata_db.levels.set_xp(GUILD, member_id, xp)
    await botdata_db.levels.set_xp(OTHER_GUILD, member(9), 10_000)
    expected = [member(1), member(2), member(4), member(0), member(3)]
    for position, member_id in enumerate(expected, start=1):
        assert await botdata_db.levels.rank(GUILD, member_id) == position
        assert await db_rank(botdata_db, GUILD, member_id) == position
    assert await botdata_db.levels.rank(GUILD, member(5)) is None
    board = await botdata_db.levels.leaderboard(GUILD, limit=10)
    assert [(e.rank, e.member_id, e.xp) for e in board] == [
        (i + 1, m, totals[m]) for i, m in enumerate(expected)
    ]
    assert board[0].level == level_for_xp(300)
    page = await botdata_db.levels.leaderboard(GUILD, limit=2, offset=2)
    assert [(e.rank, e.member_id) for e in page] == [(3, member(4)), (4, member(0))]
    assert await botdata_db.levels.leaderboard(GUILD, limit=5, offset=5) == []


async def test_rank_follows_grants(botdata_db: botdata.Database) -> None:
    await configure(botdata_db, xp_min=10, xp_max=10, cooldown=0)
    await botdata_db.levels.set_xp(GUILD, member(1), 25)
    assert await botdata_db.levels.rank(GUILD, member(1)) == 1  # builds the rank set, if any
    for _ in range(3):
        await botdata_db.levels.grant_message_xp(GUILD, member(2))
    assert await botdata_db.levels.rank(GUILD, member(2)) == 1
    assert await botdata_db.levels.rank(GUILD, member(1)) == 2
    await botdata_db.levels.reset(GUILD, member(2))
    assert await botdata_db.levels.rank(GUILD, member(1)) == 1
    assert await botdata_db.levels.rank(GUILD, member(2)) is None
    assert [e.member_id for e in await botdata_db.levels.leaderboard(GUILD)] == [member(1)]


async def test_rank_set_is_rebuilt_and_matches_the_database(botdata_db: botdata.Database) -> None:
    """With Redis the ranks come from a sorted set; it must agree with the database, also
    after it was lost (then rebuilt) and when only members' writes reached a new set."""
    await configure(botdata_db, cooldown=0)
    for i in range(30):
        await botdata_db.levels.set_xp(GUILD, member(i), (i * 37) % 11 * 10)
    await botdata_db.levels.rank(GUILD, member(0))
    key = botdata_db.cache.key(RANK_KEY, guild_id=GUILD)
    if botdata_db.settings.REDIS_URL is not None:  # the set was built and is marked complete
        assert [m for m, _ in await botdata_db.cache.zrevrange(key, 0, 0)] == [RANK_MARKER]
    for i in range(0, 30, 3):
        await botdata_db.levels.grant_message_xp(GUILD, member(i))
    await botdata_db.cache.delete(key)
    await botdata_db.levels.grant_message_xp(GUILD, member(1))  # lands in a set without its marker
    for i in range(30):
        assert await botdata_db.levels.rank(GUILD, member(i)) == await db_rank(
            botdata_db, GUILD, member(i)
        )
    board = await botdata_db.levels.leaderboard(GUILD, limit=30)
    by_db = await Levels.filter(guild_id=GUILD).order_by("-xp", "member_id")
    assert [(e.member_id, e.xp) for e in board] == [(r.member_id, r.xp) for r in by_db]


async def test_rank_sets_exist_only_where_ranks_are_asked_and_expire(
    botdata_db: botdata.Database,
) -> None:
    """Grants and admin writes update a guild's rank set only when it exists: nobody asked
    for a rank in OTHER_GUILD, so it has none. A set, once built, carries a TTL."""
    await configure(botdata_db, xp_min=10, xp_max=10, cooldown=0)
    key = botdata_db.cache.key(RANK_KEY, guild_id=GUILD)
    other = botdata_db.cache.key(RANK_KEY, guild_id=OTHER_GUILD)
    await botdata_db.levels.grant_message_xp(GUILD, member(1))
    await botdata_db.levels.set_xp(GUILD, member(2), 5)
    await botdata_db.levels.grant_message_xp(OTHER_GUILD, member(1))
    await botdata_db.levels.set_xp(OTHER_GUILD, member(2), 50)
    await botdata_db.levels.reset(OTHER_GUILD, member(1))
    assert await botdata_db.cache.zrevrange(key, 0, -1) == []
    assert await botdata_db.levels.rank(GUILD, member(2)) == 2
    for _ in range(2):
        await botdata_db.levels.grant_message_xp(GUILD, member(2))
    assert await botdata_db.levels.rank(GUILD, member(2)) == 1
    assert await botdata_db.cache.zrevrange(other, 0, -1) == []
    if botdata_db.settings.REDIS_URL is None:
        return
    assert [m for m, _ in await botdata_db.cache.zrevrange(key, 0, 0)] == [RANK_MARKER]
    assert await botdata_db.cache.zrevrange(key, 1, 1) == [
        (f"{MAX_SNOWFLAKE - member(2):019d}", 25.0)
    ]
    client = redis.Redis.from_url(botdata_db.settings.REDIS_URL)
    try:
        assert 0 < client.pttl(key) <= botdata_db.settings.XP_LEADERBOARD_TTL * 1000
        assert client.exists(other) == 0
    finally:
        client.close()


async def test_rank_set_being_built_is_not_used(botdata_db: botdata.Database) -> None:
    """A set whose build has not finished (its marker still at the bottom) is not read: the
    database answers, also when the set holds nothing else yet."""
    for i in range(3):
        await botdata_db.levels.set_xp(GUILD, member(i), 10 * (i + 1))
    key = botdata_db.cache.key(RANK_KEY, guild_id=GUILD)
    # Another process is building the set: it holds the lock, the set has only the marker.
    await botdata_db.cache.set_if_absent(
        botdata_db.cache.key(RANK_KEY, "building", guild_id=GUILD), "1", 60
    )
    await botdata_db.cache.zadd(key, {RANK_MARKER: -1.0}, ttl=60)
    board = await botdata_db.levels.leaderboard(GUILD)
    assert [(e.rank, e.member_id, e.xp) for e in board] == [
        (1, member(2), 30),
        (2, member(1), 20),
        (3, member(0), 10),
    ]
    assert await botdata_db.levels.rank(GUILD, member(0)) == 3


# Bad input -----------------------------------------------------------------------------------


BAD_CALLS = [
    ("grant_message_xp", (GUILD, 5), {}, InvalidSnowflakeError),
    ("grant_message_xp", ("x", MEMBER), {}, InvalidSnowflakeError),
    ("grant_message_xp", (GUILD, MEMBER), {"role_ids": [ROLE_A, 12]}, InvalidSnowflakeError),
    ("grant_message_xp", (GUILD, MEMBER), {"channel_id": True}, InvalidSnowflakeError),
    ("grant_message_xp", (GUILD, MEMBER), {"now": datetime(2030, 1, 1)}, InvalidTimestampError),
    ("set_xp", (GUILD, MEMBER, -1), {}, InvalidXPError),
    ("set_xp", (GUILD, MEMBER, MAX_XP + 1), {}, InvalidXPError),
    ("set_xp", (GUILD, MEMBER, 1.5), {}, InvalidXPError),
    ("set_xp", (GUILD, MEMBER, True), {}, InvalidXPError),
    ("set_xp", (GUILD, None, 5), {}, InvalidSnowflakeError),
    ("set_level", (GUILD, MEMBER, -1), {}, InvalidLevelError),
    ("set_level", (GUILD, MEMBER, MAX_LEVEL + 1), {}, InvalidLevelError),
    ("set_level", (GUILD, MEMBER, "3"), {}, InvalidLevelError),
    ("blacklist", (GUILD, 2**64), {}, InvalidSnowflakeError),
    ("unblacklist", (0, MEMBER), {}, InvalidSnowflakeError),
    ("reset", (GUILD, -5), {}, InvalidSnowflakeError),
    ("rank", (GUILD, "1"), {}, InvalidSnowflakeError),
    ("leaderboard", (GUILD,), {"limit": 0}, InvalidPageError),
    ("leaderboard", (GUILD,), {"limit": 101}, InvalidPageError),
    ("leaderboard", (GUILD,), {"offset": -1}, InvalidOffsetError),
    ("leaderboard", (5,), {}, InvalidSnowflakeError),
    ("configure", (GUILD, {"cooldown": -1}), {}, InvalidSettingValueError),
    ("configure", (GUILD, {"role_rewards": {"0": ROLE_A}}), {}, InvalidSettingValueError),
    ("configure", (7, {}), {}, InvalidSnowflakeError),
]


@pytest.mark.parametrize(("method", "args", "kwargs", "error"), BAD_CALLS)
async def test_bad_input_raises_and_writes_nothing(
    botdata_db: botdata.Database, method: str, args: tuple, kwargs: dict, error: type[Exception]
) -> None:
    await botdata_db.levels.set_xp(OTHER_GUILD, MEMBER, 10)
    with pytest.raises(error):
        await getattr(botdata_db.levels, method)(*args, **kwargs)
    assert [(r.guild_id, r.member_id, r.xp) for r in await Levels.all()] == [
        (OTHER_GUILD, MEMBER, 10)
    ]
    assert await Guild.filter(id=GUILD).count() == 0
    assert await GuildSetting.all().count() == 0


async def test_rank_set_writes_keep_the_highest_total(botdata_db: botdata.Database) -> None:
    """Grants write totals with ``higher_only``: a late, lower total does not win."""
    key = botdata_db.cache.key(RANK_KEY, "probe", guild_id=GUILD)
    await botdata_db.cache.zadd(key, {"a": 50.0})
    await botdata_db.cache.zadd(key, {"a": 30.0, "b": 10.0}, higher_only=True)
    assert await botdata_db.cache.zrevrange(key, 0, -1) == [("a", 50.0), ("b", 10.0)]
    await botdata_db.cache.zadd(key, {"a": 70.0}, higher_only=True)
    await botdata_db.cache.zadd(key, {"b": 5.0})  # an overwrite may lower
    assert await botdata_db.cache.zrevrange(key, 0, -1) == [("a", 70.0), ("b", 5.0)]
