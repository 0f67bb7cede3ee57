"""The AFK cog through dpytest: AFK statuses, nicknames, mention notices, coming back, moderators'
enforced AFK and the expiry task (both backends).

dpytest's fake ``edit_member`` cannot clear a nickname (it ignores ``nick=None``), so the ``nicks``
fixture replaces it with a recorder that applies the change to dpytest's guild state (faking
Discord, never the database).
"""

from __future__ import annotations

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
from botdata_cogs.testing import SimulatedGuild, say, slash


@dataclass
class Nicks:
    """Nickname changes the bot asked Discord for: (member id, nick)."""

    edits: list[tuple[int, str | None]] = field(default_factory=list)
    forbidden: bool = False
    #: Discord cannot be reached (a connection error, not a refusal).
    unreachable: bool = False


@pytest.fixture
def nicks(simulated_guild: SimulatedGuild, monkeypatch: pytest.MonkeyPatch) -> Nicks:
    record = Nicks()

    async def edit_member(
        guild_id: int, user_id: int, *, reason: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        if record.unreachable:
            raise ConnectionResetError("Discord cannot be reached")
        if record.forbidden:
            raise discord.Forbidden(backend.FakeRequest(403, "Forbidden"), "Missing Permissions")
        member = simulated_guild.guild.get_member(int(user_id))
        assert member is not None
        record.edits.append((member.id, fields["nick"]))
        set_nick(simulated_guild, member, fields["nick"] or None)  # "" clears the nickname
        return factories.dict_from_member(member)  # type: ignore[return-value]

    monkeypatch.setattr(simulated_guild.bot.http, "edit_member", edit_member)
    return record


def prefix(db: botdata.Database) -> str:
    return db.settings.DEFAULT_PREFIX


def cog(scene: SimulatedGuild) -> AFK:
    # load_extension executes the module anew: the class is not botdata_cogs.afk.AFK.
    found = scene.bot.get_cog("AFK")
    assert type(found).__name__ == "AFK"
    return found  # type: ignore[return-value]


def set_nick(scene: SimulatedGuild, member: discord.Member, nick: str | None) -> None:
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
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, nicks: Nicks
) -> None:
    set_nick(simulated_guild, simulated_guild.member, None)
    [reply] = await say(f"{prefix(botdata_db)}afk having lunch", simulated_guild.member)
    assert reply.content == f"{shown(simulated_guild.member)} is AFK: having lunch"
    status = await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id)
    assert status is not None
    assert (status.reason, status.nickname, status.enforced, status.permanent, status.until) == (
        "having lunch",
        "",
        False,
        False,
        None,
    )
    assert simulated_guild.member.nick == f"[AFK] {simulated_guild.member.name}"
    # Setting it again keeps the nickname to restore and does not tag twice.
    [reply] = await say(f"{prefix(botdata_db)}afk", simulated_guild.member)
    assert reply.content == f"{shown(simulated_guild.member)} is AFK."
    status = await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id)
    assert (status.reason, status.nickname) == ("", "")
    assert nicks.edits == [(simulated_guild.member.id, f"[AFK] {simulated_guild.member.name}")]


async def test_talking_brings_the_member_back_and_restores_the_nickname(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, nicks: Nicks
) -> None:
    set_nick(simulated_guild, simulated_guild.member, "Bobby")
    await say(f"{prefix(botdata_db)}afk brb", simulated_guild.member)
    assert simulated_guild.member.nick == "[AFK] Bobby"
    assert (
        await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id) is not None
    )  # the command: not back
    dm = await simulated_guild.member.create_dm()
    await dpytest.message(
        "a DM is not talking in the server", channel=dm, member=simulated_guild.member
    )
    assert await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id) is not None
    [welcome] = await say("I'm back", simulated_guild.member)
    assert welcome.content == "Welcome back, Bobby! You are no longer AFK."
    assert await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id) is None
    assert simulated_guild.member.nick == "Bobby"
    assert await say("still here", simulated_guild.member) == []


async def test_a_nickname_changed_meanwhile_is_kept(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, nicks: Nicks
) -> None:
    await say(f"{prefix(botdata_db)}afk", simulated_guild.member)
    set_nick(simulated_guild, simulated_guild.member, "Renamed")
    await say("back", simulated_guild.member)
    assert simulated_guild.member.nick == "Renamed"
    assert await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id) is None


async def test_a_refused_rename_is_not_an_error(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, nicks: Nicks
) -> None:
    nicks.forbidden = True
    [reply] = await say(f"{prefix(botdata_db)}afk away", simulated_guild.member)
    assert reply.content == f"{shown(simulated_guild.member)} is AFK: away"
    assert await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id) is not None
    [welcome] = await say("back", simulated_guild.member)
    assert welcome.content.startswith("Welcome back")


async def test_the_owner_and_higher_members_are_not_renamed(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, nicks: Nicks
) -> None:
    backend.update_member(
        simulated_guild.mod, roles=[simulated_guild.guild.me.top_role]
    )  # as high as the bot
    await say(f"{prefix(botdata_db)}afk away", simulated_guild.mod)
    assert await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.mod.id) is not None
    assert nicks.edits == []


# Mentions ---------------------------------------------------------------------------------------


async def test_a_mention_gets_one_notice_per_burst_and_channel(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, nicks: Nicks
) -> None:
    await say(f"{prefix(botdata_db)}afk at the @everyone dentist", simulated_guild.member)
    status = await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id)
    assert status is not None
    [notice] = await say(f"hey {simulated_guild.member.mention}", simulated_guild.other)
    assert notice.content == (
        f"{shown(simulated_guild.member)} is AFK: at the @everyone dentist (since {since(status)})"
    )
    for _ in range(3):
        assert (
            await say(f"{simulated_guild.member.mention} are you there?", simulated_guild.other)
            == []
        )
    assert (
        await say(f"{simulated_guild.member.mention} hello?", simulated_guild.mod) == []
    )  # per channel, not author
    elsewhere = backend.make_text_channel("elsewhere", simulated_guild.guild)
    [again] = await say(f"{simulated_guild.member.mention}!", simulated_guild.other, elsewhere)
    assert again.channel.id == elsewhere.id
    assert again.content.startswith(f"{shown(simulated_guild.member)} is AFK")


async def test_several_afk_members_in_one_notice_and_bots_ignored(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, nicks: Nicks
) -> None:
    await say(f"{prefix(botdata_db)}afk", simulated_guild.member)
    await say(f"{prefix(botdata_db)}afk sleeping", simulated_guild.other)
    first = await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id)
    second = await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.other.id)
    robot = backend.make_member(backend.make_user("Robot", "0001"), simulated_guild.guild)
    robot._user.bot = True
    assert (
        await say(f"{simulated_guild.member.mention} {simulated_guild.other.mention}", robot) == []
    )
    [notice] = await say(
        f"{simulated_guild.member.mention} {simulated_guild.other.mention}", simulated_guild.mod
    )
    assert sorted(notice.content.split("\n")) == sorted(
        [
            f"{shown(simulated_guild.member)} is AFK (since {since(first)})",
            f"{shown(simulated_guild.other)} is AFK: sleeping (since {since(second)})",
        ]
    )


async def test_an_afk_module_rule_silences_notices_and_welcome_backs(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, nicks: Nicks
) -> None:
    p = prefix(botdata_db)
    await say(f"{p}afk away", simulated_guild.member)
    [reply] = await say(
        f"{p}perm ignore afk {simulated_guild.channel.mention}", simulated_guild.mod
    )
    assert "ignore module `afk`" in reply.content
    assert await say(f"hey {simulated_guild.member.mention}", simulated_guild.other) == []
    assert await say("I am back", simulated_guild.member) == []
    assert (
        await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id) is not None
    )  # not cleared
    elsewhere = backend.make_text_channel("elsewhere", simulated_guild.guild)
    [notice] = await say(f"hey {simulated_guild.member.mention}", simulated_guild.other, elsewhere)
    assert notice.content.startswith(f"{shown(simulated_guild.member)} is AFK")


async def test_a_notice_about_many_afk_members_fits_in_a_message(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, nicks: Nicks
) -> None:
    away = [await dpytest.member_join(simulated_guild.guild, name=f"Away{n}") for n in range(12)]
    reason = "\U0001f600" * 250  # 500 UTF-16 units, cut to 200 in a notice
    for member in away:
        await say(f"{prefix(botdata_db)}afk {reason}", member)
    [notice] = await say(" ".join(member.mention for member in away), simulated_guild.other)
    assert limits.length(notice.content) <= limits.CONTENT
    lines = notice.content.split("\n")
    assert lines[-1].startswith("… and ")
    assert all(" is AFK: " in line for line in lines[:-1])
    assert len(lines[:-1]) + int(lines[-1].split()[2]) == len(away)


# Moderators ---------------------------------------------------------------------------------------


async def test_enforced_afk_is_not_cleared_by_talking(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, nicks: Nicks
) -> None:
    p = prefix(botdata_db)
    set_nick(simulated_guild, simulated_guild.member, None)
    [reply] = await say(
        f"{p}afk set {simulated_guild.member.mention} 1h on a break", simulated_guild.mod
    )
    assert reply.content == f"{shown(simulated_guild.member)} is AFK for 1h: on a break"
    status = await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id)
    assert status is not None
    assert (status.enforced, status.permanent, status.reason) == (True, False, "on a break")
    assert status.until is not None
    expected = datetime.now(timezone.utc) + timedelta(hours=1)
    assert abs((status.until - expected).total_seconds()) < 30
    assert simulated_guild.member.nick == f"[AFK] {simulated_guild.member.name}"

    assert await say("I'm here!", simulated_guild.member) == []
    assert await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id) == status
    [refused] = await say(f"{p}afk something else", simulated_guild.member)
    assert refused.content == "A moderator set your AFK; only a moderator can end it."
    assert await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id) == status

    [reply] = await say(f"{p}afk clear {simulated_guild.member.mention}", simulated_guild.mod)
    assert reply.content == f"{shown(simulated_guild.member)} is no longer AFK."
    assert await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id) is None
    assert simulated_guild.member.nick is None
    [reply] = await say(f"{p}afk clear {simulated_guild.member.mention}", simulated_guild.mod)
    assert reply.content == f"{shown(simulated_guild.member)} is not AFK."


async def test_afk_set_without_a_duration_is_permanent(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, nicks: Nicks
) -> None:
    [reply] = await say(
        f"{prefix(botdata_db)}afk set {simulated_guild.member.mention}", simulated_guild.mod
    )
    assert reply.content == f"{shown(simulated_guild.member)} is AFK until a moderator ends it."
    status = await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id)
    assert status is not None
    assert (status.enforced, status.permanent, status.until, status.reason) == (
        True,
        True,
        None,
        "",
    )
    assert (
        await cog(simulated_guild).expire(datetime.now(timezone.utc) + timedelta(days=3650)) == []
    )
    assert await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id) == status


async def test_expiry_ends_the_afk_and_restores_the_nickname(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, nicks: Nicks
) -> None:
    set_nick(simulated_guild, simulated_guild.member, "Bobby")
    await say(
        f"{prefix(botdata_db)}afk set {simulated_guild.member.mention} 10m", simulated_guild.mod
    )
    await say(f"{prefix(botdata_db)}afk away", simulated_guild.other)  # no until: never expires
    assert simulated_guild.member.nick == "[AFK] Bobby"
    assert await cog(simulated_guild).expire() == []  # not yet
    later = datetime.now(timezone.utc) + timedelta(minutes=11)
    [ended] = await cog(simulated_guild).expire(later)
    assert (ended.member_id, ended.nickname) == (simulated_guild.member.id, "Bobby")
    assert await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id) is None
    assert simulated_guild.member.nick == "Bobby"
    assert await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.other.id) is not None
    assert await cog(simulated_guild).expire(later) == []  # claimed once


async def test_advancing_the_clock_ends_an_afk_through_the_loop(
    simulated_guild: SimulatedGuild,
    botdata_db: botdata.Database,
    nicks: Nicks,
    botdata_clock: ManualClock,
) -> None:
    set_nick(simulated_guild, simulated_guild.member, "Bobby")
    await say(
        f"{prefix(botdata_db)}afk set {simulated_guild.member.mention} 10m", simulated_guild.mod
    )
    assert (
        await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id)
    ).until == botdata_clock.now() + timedelta(minutes=10)
    await botdata_clock.advance(minutes=9, seconds=59)
    assert simulated_guild.member.nick == "[AFK] Bobby"
    await botdata_clock.advance(
        seconds=EXPIRY_INTERVAL
    )  # expired, and the loop (asleep 60 s) passed
    assert simulated_guild.member.nick == "Bobby"
    assert await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id) is None


async def test_a_failed_restore_is_retried_by_the_next_run(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, nicks: Nicks
) -> None:
    set_nick(simulated_guild, simulated_guild.member, "Bobby")
    await say(
        f"{prefix(botdata_db)}afk set {simulated_guild.member.mention} 10m", simulated_guild.mod
    )
    later = datetime.now(timezone.utc) + timedelta(minutes=11)
    nicks.unreachable = True
    assert await cog(simulated_guild).expire(later) == []  # released, not lost
    assert simulated_guild.member.nick == "[AFK] Bobby"
    assert await cog(simulated_guild).expire(later) == []  # still failing: released again
    nicks.unreachable = False
    [ended] = await cog(simulated_guild).expire(later)
    assert (ended.member_id, ended.nickname) == (simulated_guild.member.id, "Bobby")
    assert simulated_guild.member.nick == "Bobby"
    assert await cog(simulated_guild).expire(later) == []  # completed: gone


async def test_a_member_without_the_level_is_refused_and_nothing_is_written(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, nicks: Nicks
) -> None:
    p = prefix(botdata_db)
    [reply] = await say(f"{p}afk set {simulated_guild.other.mention} 1h", simulated_guild.member)
    assert "permission level 2" in reply.content
    assert await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.other.id) is None
    await say(f"{p}afk set {simulated_guild.other.mention}", simulated_guild.mod)
    [reply] = await say(f"{p}afk clear {simulated_guild.other.mention}", simulated_guild.member)
    assert "permission level 2" in reply.content
    assert await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.other.id) is not None
    [reply] = await say(f"{p}afk set {simulated_guild.mod.mention} 1h", simulated_guild.mod)
    assert reply.content == "You cannot moderate yourself."
    assert await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.mod.id) is None


async def test_bad_input_gets_a_clear_reply_and_writes_nothing(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, nicks: Nicks
) -> None:
    p = prefix(botdata_db)
    [reply] = await say(f"{p}afk {'x' * 501}", simulated_guild.member)
    assert "between 1 and 500 characters" in reply.content
    [reply] = await say(
        f"{p}afk set {simulated_guild.member.mention} 1h {'x' * 501}", simulated_guild.mod
    )
    assert "between 1 and 500 characters" in reply.content
    [reply] = await say(f"{p}afk set nobody 1h", simulated_guild.mod)
    assert 'Member "nobody" not found.' in reply.content
    assert await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id) is None
    assert nicks.edits == []


async def test_slash_afk(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, nicks: Nicks
) -> None:
    [sent] = await slash(simulated_guild.bot, simulated_guild.member, "afk me", reason="gaming")
    assert sent.content == f"{shown(simulated_guild.member)} is AFK: gaming"
    status = await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id)
    assert status is not None
    assert (status.reason, status.enforced) == ("gaming", False)
