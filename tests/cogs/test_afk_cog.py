"""The AFK cog through dpytest: AFK statuses, nicknames, mention notices, coming back, moderators'
enforced AFK and the expiry task (both backends).

dpytest's fake ``edit_member`` cannot clear a nickname (it ignores ``nick=None``), so the ``nicks``
fixture replaces it with a recorder that applies the change to dpytest's guild state (faking
Discord, never the database).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import discord
import discord.ext.test as dpytest
import pytest
from discord.ext.test import backend, factories

import botdata
from botdata import ManualClock
from botdata_cogs import limits
from botdata_cogs.afk import AFK, EXPIRY_INTERVAL
from tests.cogs.conftest import Scene, say
from tests.cogs.slash import slash


@dataclass
class Nicks:
    """Nickname changes the bot asked Discord for: (member id, nick)."""

    edits: list[tuple[int, str | None]] = field(default_factory=list)
    forbidden: bool = False
    #: Discord cannot be reached (a connection error, not a refusal).
    unreachable: bool = False


@pytest.fixture
def nicks(scene: Scene, monkeypatch: pytest.MonkeyPatch) -> Nicks:
    record = Nicks()

    async def edit_member(
        guild_id: int, user_id: int, *, reason: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        if record.unreachable:
            raise ConnectionResetError("Discord cannot be reached")
        if record.forbidden:
            raise discord.Forbidden(backend.FakeRequest(403, "Forbidden"), "Missing Permissions")
        member = scene.guild.get_member(int(user_id))
        assert member is not None
        record.edits.append((member.id, fields["nick"]))
        set_nick(scene, member, fields["nick"] or None)  # "" clears the nickname
        return factories.dict_from_member(member)  # type: ignore[return-value]

    monkeypatch.setattr(scene.bot.http, "edit_member", edit_member)
    return record


def prefix(db: botdata.Database) -> str:
    return db.settings.DEFAULT_PREFIX


def cog(scene: Scene) -> AFK:
    # load_extension executes the module anew: the class is not botdata_cogs.afk.AFK.
    found = scene.bot.get_cog("AFK")
    assert type(found).__name__ == "AFK"
    return found  # type: ignore[return-value]


def set_nick(scene: Scene, member: discord.Member, nick: str | None) -> None:
    """Give ``member`` a nickname (or none) in dpytest's guild state."""
    data = factories.dict_from_member(member)
    data["nick"] = nick
    scene.bot._connection.parse_guild_member_update(data)  # type: ignore[arg-type]


def shown(member: discord.Member) -> str:
    """How the bot's messages name ``member`` (without the AFK tag)."""
    return discord.utils.escape_markdown(member.display_name.removeprefix("[AFK] "))


def since(status: Any) -> str:
    return discord.utils.format_dt(status.since, "R")


# Your own AFK ---------------------------------------------------------------------------------


async def test_afk_sets_the_status_and_the_nickname(
    scene: Scene, db: botdata.Database, nicks: Nicks
) -> None:
    set_nick(scene, scene.member, None)
    [reply] = await say(f"{prefix(db)}afk having lunch", scene.member)
    assert reply.content == f"{shown(scene.member)} is AFK: having lunch"
    status = await db.afk.get(scene.guild.id, scene.member.id)
    assert status is not None
    assert (status.reason, status.nickname, status.enforced, status.permanent, status.until) == (
        "having lunch",
        "",
        False,
        False,
        None,
    )
    assert scene.member.nick == f"[AFK] {scene.member.name}"
    # Setting it again keeps the nickname to restore and does not tag twice.
    [reply] = await say(f"{prefix(db)}afk", scene.member)
    assert reply.content == f"{shown(scene.member)} is AFK."
    status = await db.afk.get(scene.guild.id, scene.member.id)
    assert (status.reason, status.nickname) == ("", "")
    assert nicks.edits == [(scene.member.id, f"[AFK] {scene.member.name}")]


async def test_talking_brings_the_member_back_and_restores_the_nickname(
    scene: Scene, db: botdata.Database, nicks: Nicks
) -> None:
    set_nick(scene, scene.member, "Bobby")
    await say(f"{prefix(db)}afk brb", scene.member)
    assert scene.member.nick == "[AFK] Bobby"
    assert await db.afk.get(scene.guild.id, scene.member.id) is not None  # the command: not back
    dm = await scene.member.create_dm()
    await dpytest.message("a DM is not talking in the server", channel=dm, member=scene.member)
    assert await db.afk.get(scene.guild.id, scene.member.id) is not None
    [welcome] = await say("I'm back", scene.member)
    assert welcome.content == "Welcome back, Bobby! You are no longer AFK."
    assert await db.afk.get(scene.guild.id, scene.member.id) is None
    assert scene.member.nick == "Bobby"
    assert await say("still here", scene.member) == []


async def test_a_nickname_changed_meanwhile_is_kept(
    scene: Scene, db: botdata.Database, nicks: Nicks
) -> None:
    await say(f"{prefix(db)}afk", scene.member)
    set_nick(scene, scene.member, "Renamed")
    await say("back", scene.member)
    assert scene.member.nick == "Renamed"
    assert await db.afk.get(scene.guild.id, scene.member.id) is None


async def test_a_refused_rename_is_not_an_error(
    scene: Scene, db: botdata.Database, nicks: Nicks
) -> None:
    nicks.forbidden = True
    [reply] = await say(f"{prefix(db)}afk away", scene.member)
    assert reply.content == f"{shown(scene.member)} is AFK: away"
    assert await db.afk.get(scene.guild.id, scene.member.id) is not None
    [welcome] = await say("back", scene.member)
    assert welcome.content.startswith("Welcome back")


async def test_the_owner_and_higher_members_are_not_renamed(
    scene: Scene, db: botdata.Database, nicks: Nicks
) -> None:
    backend.update_member(scene.mod, roles=[scene.guild.me.top_role])  # as high as the bot
    await say(f"{prefix(db)}afk away", scene.mod)
    assert await db.afk.get(scene.guild.id, scene.mod.id) is not None
    assert nicks.edits == []


# Mentions ---------------------------------------------------------------------------------------


async def test_a_mention_gets_one_notice_per_burst_and_channel(
    scene: Scene, db: botdata.Database, nicks: Nicks
) -> None:
    await say(f"{prefix(db)}afk at the @everyone dentist", scene.member)
    status = await db.afk.get(scene.guild.id, scene.member.id)
    assert status is not None
    [notice] = await say(f"hey {scene.member.mention}", scene.other)
    assert notice.content == (
        f"{shown(scene.member)} is AFK: at the @everyone dentist (since {since(status)})"
    )
    for _ in range(3):
        assert await say(f"{scene.member.mention} are you there?", scene.other) == []
    assert await say(f"{scene.member.mention} hello?", scene.mod) == []  # per channel, not author
    elsewhere = backend.make_text_channel("elsewhere", scene.guild)
    [again] = await say(f"{scene.member.mention}!", scene.other, elsewhere)
    assert again.channel.id == elsewhere.id
    assert again.content.startswith(f"{shown(scene.member)} is AFK")


async def test_several_afk_members_in_one_notice_and_bots_ignored(
    scene: Scene, db: botdata.Database, nicks: Nicks
) -> None:
    await say(f"{prefix(db)}afk", scene.member)
    await say(f"{prefix(db)}afk sleeping", scene.other)
    first = await db.afk.get(scene.guild.id, scene.member.id)
    second = await db.afk.get(scene.guild.id, scene.other.id)
    robot = backend.make_member(backend.make_user("Robot", "0001"), scene.guild)
    robot._user.bot = True
    assert await say(f"{scene.member.mention} {scene.other.mention}", robot) == []
    [notice] = await say(f"{scene.member.mention} {scene.other.mention}", scene.mod)
    assert sorted(notice.content.split("\n")) == sorted(
        [
            f"{shown(scene.member)} is AFK (since {since(first)})",
            f"{shown(scene.other)} is AFK: sleeping (since {since(second)})",
        ]
    )


async def test_an_afk_module_rule_silences_notices_and_welcome_backs(
    scene: Scene, db: botdata.Database, nicks: Nicks
) -> None:
    p = prefix(db)
    await say(f"{p}afk away", scene.member)
    [reply] = await say(f"{p}perm ignore afk {scene.channel.mention}", scene.mod)
    assert "ignore module `afk`" in reply.content
    assert await say(f"hey {scene.member.mention}", scene.other) == []
    assert await say("I am back", scene.member) == []
    assert await db.afk.get(scene.guild.id, scene.member.id) is not None  # not cleared
    elsewhere = backend.make_text_channel("elsewhere", scene.guild)
    [notice] = await say(f"hey {scene.member.mention}", scene.other, elsewhere)
    assert notice.content.startswith(f"{shown(scene.member)} is AFK")


async def test_a_notice_about_many_afk_members_fits_in_a_message(
    scene: Scene, db: botdata.Database, nicks: Nicks
) -> None:
    away = [await dpytest.member_join(scene.guild, name=f"Away{n}") for n in range(12)]
    reason = "\U0001f600" * 250  # 500 UTF-16 units, cut to 200 in a notice
    for member in away:
        await say(f"{prefix(db)}afk {reason}", member)
    [notice] = await say(" ".join(member.mention for member in away), scene.other)
    assert limits.length(notice.content) <= limits.CONTENT
    lines = notice.content.split("\n")
    assert lines[-1].startswith("… and ")
    assert all(" is AFK: " in line for line in lines[:-1])
    assert len(lines[:-1]) + int(lines[-1].split()[2]) == len(away)


# Moderators ---------------------------------------------------------------------------------------


async def test_enforced_afk_is_not_cleared_by_talking(
    scene: Scene, db: botdata.Database, nicks: Nicks
) -> None:
    p = prefix(db)
    set_nick(scene, scene.member, None)
    [reply] = await say(f"{p}afk set {scene.member.mention} 1h on a break", scene.mod)
    assert reply.content == f"{shown(scene.member)} is AFK for 1h: on a break"
    status = await db.afk.get(scene.guild.id, scene.member.id)
    assert status is not None
    assert (status.enforced, status.permanent, status.reason) == (True, False, "on a break")
    assert status.until is not None
    expected = datetime.now(timezone.utc) + timedelta(hours=1)
    assert abs((status.until - expected).total_seconds()) < 30
    assert scene.member.nick == f"[AFK] {scene.member.name}"

    assert await say("I'm here!", scene.member) == []
    assert await db.afk.get(scene.guild.id, scene.member.id) == status
    [refused] = await say(f"{p}afk something else", scene.member)
    assert refused.content == "A moderator set your AFK; only a moderator can end it."
    assert await db.afk.get(scene.guild.id, scene.member.id) == status

    [reply] = await say(f"{p}afk clear {scene.member.mention}", scene.mod)
    assert reply.content == f"{shown(scene.member)} is no longer AFK."
    assert await db.afk.get(scene.guild.id, scene.member.id) is None
    assert scene.member.nick is None
    [reply] = await say(f"{p}afk clear {scene.member.mention}", scene.mod)
    assert reply.content == f"{shown(scene.member)} is not AFK."


async def test_afk_set_without_a_duration_is_permanent(
    scene: Scene, db: botdata.Database, nicks: Nicks
) -> None:
    [reply] = await say(f"{prefix(db)}afk set {scene.member.mention}", scene.mod)
    assert reply.content == f"{shown(scene.member)} is AFK until a moderator ends it."
    status = await db.afk.get(scene.guild.id, scene.member.id)
    assert status is not None
    assert (status.enforced, status.permanent, status.until, status.reason) == (
        True,
        True,
        None,
        "",
    )
    assert await cog(scene).expire(datetime.now(timezone.utc) + timedelta(days=3650)) == []
    assert await db.afk.get(scene.guild.id, scene.member.id) == status


async def test_expiry_ends_the_afk_and_restores_the_nickname(
    scene: Scene, db: botdata.Database, nicks: Nicks
) -> None:
    set_nick(scene, scene.member, "Bobby")
    await say(f"{prefix(db)}afk set {scene.member.mention} 10m", scene.mod)
    await say(f"{prefix(db)}afk away", scene.other)  # no until: never expires
    assert scene.member.nick == "[AFK] Bobby"
    assert await cog(scene).expire() == []  # not yet
    later = datetime.now(timezone.utc) + timedelta(minutes=11)
    [ended] = await cog(scene).expire(later)
    assert (ended.member_id, ended.nickname) == (scene.member.id, "Bobby")
    assert await db.afk.get(scene.guild.id, scene.member.id) is None
    assert scene.member.nick == "Bobby"
    assert await db.afk.get(scene.guild.id, scene.other.id) is not None
    assert await cog(scene).expire(later) == []  # claimed once


@pytest.fixture
def clock(scene: Scene, db: botdata.Database) -> Iterator[ManualClock]:
    """A ManualClock on the handle for the test (the cogs' loops move onto it), then the
    handle's clock again."""
    # dpytest never sends READY: the loops wait for it before their first pass.
    scene.bot._ready.set()  # type: ignore[union-attr]
    before = db.clock
    db.clock = manual = ManualClock()
    yield manual
    db.clock = before


async def test_advancing_the_clock_ends_an_afk_through_the_loop(
    scene: Scene, db: botdata.Database, nicks: Nicks, clock: ManualClock
) -> None:
    set_nick(scene, scene.member, "Bobby")
    await say(f"{prefix(db)}afk set {scene.member.mention} 10m", scene.mod)
    assert (await db.afk.get(scene.guild.id, scene.member.id)).until == clock.now() + timedelta(
        minutes=10
    )
    await clock.advance(minutes=9, seconds=59)
    assert scene.member.nick == "[AFK] Bobby"
    await clock.advance(seconds=EXPIRY_INTERVAL)  # expired, and the loop (asleep 60 s) passed
    assert scene.member.nick == "Bobby"
    assert await db.afk.get(scene.guild.id, scene.member.id) is None


async def test_a_failed_restore_is_retried_by_the_next_run(
    scene: Scene, db: botdata.Database, nicks: Nicks
) -> None:
    set_nick(scene, scene.member, "Bobby")
    await say(f"{prefix(db)}afk set {scene.member.mention} 10m", scene.mod)
    later = datetime.now(timezone.utc) + timedelta(minutes=11)
    nicks.unreachable = True
    assert await cog(scene).expire(later) == []  # released, not lost
    assert scene.member.nick == "[AFK] Bobby"
    assert await cog(scene).expire(later) == []  # still failing: released again
    nicks.unreachable = False
    [ended] = await cog(scene).expire(later)
    assert (ended.member_id, ended.nickname) == (scene.member.id, "Bobby")
    assert scene.member.nick == "Bobby"
    assert await cog(scene).expire(later) == []  # completed: gone


async def test_a_member_without_the_level_is_refused_and_nothing_is_written(
    scene: Scene, db: botdata.Database, nicks: Nicks
) -> None:
    p = prefix(db)
    [reply] = await say(f"{p}afk set {scene.other.mention} 1h", scene.member)
    assert "permission level 2" in reply.content
    assert await db.afk.get(scene.guild.id, scene.other.id) is None
    await say(f"{p}afk set {scene.other.mention}", scene.mod)
    [reply] = await say(f"{p}afk clear {scene.other.mention}", scene.member)
    assert "permission level 2" in reply.content
    assert await db.afk.get(scene.guild.id, scene.other.id) is not None
    [reply] = await say(f"{p}afk set {scene.mod.mention} 1h", scene.mod)
    assert reply.content == "You cannot moderate yourself."
    assert await db.afk.get(scene.guild.id, scene.mod.id) is None


async def test_bad_input_gets_a_clear_reply_and_writes_nothing(
    scene: Scene, db: botdata.Database, nicks: Nicks
) -> None:
    p = prefix(db)
    [reply] = await say(f"{p}afk {'x' * 501}", scene.member)
    assert "between 1 and 500 characters" in reply.content
    [reply] = await say(f"{p}afk set {scene.member.mention} 1h {'x' * 501}", scene.mod)
    assert "between 1 and 500 characters" in reply.content
    [reply] = await say(f"{p}afk set nobody 1h", scene.mod)
    assert 'Member "nobody" not found.' in reply.content
    assert await db.afk.get(scene.guild.id, scene.member.id) is None
    assert nicks.edits == []


async def test_slash_afk(scene: Scene, db: botdata.Database, nicks: Nicks) -> None:
    [sent] = await slash(scene.bot, scene.member, "afk me", reason="gaming")
    assert sent.content == f"{shown(scene.member)} is AFK: gaming"
    status = await db.afk.get(scene.guild.id, scene.member.id)
    assert status is not None
    assert (status.reason, status.enforced) == ("gaming", False)
