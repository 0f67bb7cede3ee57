"""The moderation cog through dpytest, as a moderator would type it (both backends).

dpytest's fake HTTP has no unban and mishandles bans by id and role/timeout edits: the
``simulated_guild`` fixture routes those calls to its ``discord_api``, a
:class:`botdata_cogs.testing.SimulatedDiscord` (faking Discord, never the database).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import discord
import discord.ext.test as dpytest
import pytest
from discord.ext.test import backend

import botdata
from botdata import ManualClock
from botdata.models import CaseType
from botdata.schemas import CaseSchema
from botdata_cogs import limits
from botdata_cogs.moderation import EXPIRY_INTERVAL, Moderation
from botdata_cogs.testing import SimulatedGuild, say, slash

OTHER_GUILD = 100_000_000_000_000_009


@pytest.fixture
async def mod_log(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> discord.TextChannel:
    channel = backend.make_text_channel("mod-log", simulated_guild.guild)
    await botdata_db.guilds.update_config(
        simulated_guild.guild.id, updated_by=simulated_guild.mod.id, mod_log_id=channel.id
    )
    return channel


def close_dms(monkeypatch: pytest.MonkeyPatch, scene: SimulatedGuild) -> None:
    """Make every DM fail as a member with closed DMs does (HTTP 403)."""

    async def start_private_message(user_id: int) -> None:
        raise discord.Forbidden(backend.FakeRequest(403, "Forbidden"), "Cannot send messages")

    monkeypatch.setattr(scene.bot.http, "start_private_message", start_private_message)


def replies(sent: list[discord.Message], channel: discord.abc.Messageable) -> list[str]:
    return [m.content for m in sent if m.channel.id == channel.id]


def dms(sent: list[discord.Message]) -> list[str]:
    return [m.content for m in sent if isinstance(m.channel, discord.DMChannel)]


async def drain() -> list[discord.Message]:
    """What the bot sent outside a command (the expiry task)."""
    sent = []
    while not dpytest.sent_queue.empty():
        sent.append(await dpytest.sent_queue.get())
    return sent


async def all_cases(db: botdata.Database, guild_id: int) -> list[CaseSchema]:
    return await db.cases.search(guild_id, limit=100)


def prefix(db: botdata.Database) -> str:
    return db.settings.DEFAULT_PREFIX


# Warn and the common parts --------------------------------------------------------------------


async def test_warn_records_a_case_dms_the_member_and_posts_the_mod_log(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, mod_log: discord.TextChannel
) -> None:
    sent = await say(
        f"{prefix(botdata_db)}warn {simulated_guild.member.mention} spamming links",
        simulated_guild.mod,
    )
    [case] = await all_cases(botdata_db, simulated_guild.guild.id)
    assert (case.number, case.type, case.reason) == (1, CaseType.WARN, "spamming links")
    assert (case.user_id, case.moderator_id) == (simulated_guild.member.id, simulated_guild.mod.id)
    assert replies(sent, simulated_guild.channel) == [
        f"Case #1: {simulated_guild.member} was warned."
    ]
    [dm] = dms(sent)
    assert "You were warned in" in dm
    assert simulated_guild.guild.name in dm
    assert dm.endswith("Reason: spamming links")
    [log_message] = [m for m in sent if m.channel.id == mod_log.id]
    embed = log_message.embeds[0]
    assert embed.title == "Case #1 · WARN"
    assert "spamming links" in (embed.description or "")
    fields = {f.name: f.value for f in embed.fields}
    assert str(simulated_guild.member.id) in fields["Member"]
    assert fields["Moderator"] == f"<@{simulated_guild.mod.id}>"


async def test_reason_is_optional(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await say(f"{prefix(botdata_db)}warn {simulated_guild.member.mention}", simulated_guild.mod)
    [case] = await all_cases(botdata_db, simulated_guild.guild.id)
    assert case.reason == "No reason given"


async def test_a_closed_dm_does_not_fail_the_command(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    close_dms(monkeypatch, simulated_guild)
    sent = await say(
        f"{prefix(botdata_db)}warn {simulated_guild.member.mention} rude", simulated_guild.mod
    )
    assert dms(sent) == []
    assert replies(sent, simulated_guild.channel) == [
        f"Case #1: {simulated_guild.member} was warned. I could not DM them."
    ]
    sent = await say(
        f"{prefix(botdata_db)}kick {simulated_guild.member.mention} rude", simulated_guild.mod
    )
    assert replies(sent, simulated_guild.channel) == [
        f"Case #2: {simulated_guild.member} was kicked. I could not DM them."
    ]
    assert simulated_guild.guild.get_member(simulated_guild.member.id) is None
    assert [c.type for c in await all_cases(botdata_db, simulated_guild.guild.id)] == [
        CaseType.KICK,
        CaseType.WARN,
    ]


async def test_a_failed_kick_writes_nothing_and_takes_the_dm_back(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    deleted: list[int] = []

    async def kick(user_id: int, guild_id: int, reason: str | None = None) -> None:
        raise discord.Forbidden(backend.FakeRequest(403, "Forbidden"), "Missing Permissions")

    async def delete_message(channel_id: int, message_id: int, **_: Any) -> None:
        deleted.append(message_id)

    monkeypatch.setattr(simulated_guild.bot.http, "kick", kick)
    monkeypatch.setattr(simulated_guild.bot.http, "delete_message", delete_message)
    sent = await say(
        f"{prefix(botdata_db)}kick {simulated_guild.member.mention} rude", simulated_guild.mod
    )
    [dm] = [m for m in sent if isinstance(m.channel, discord.DMChannel)]
    assert deleted == [dm.id]
    assert replies(sent, simulated_guild.channel) == ["I lack the Discord permission to do that."]
    assert simulated_guild.guild.get_member(simulated_guild.member.id) is not None
    assert await all_cases(botdata_db, simulated_guild.guild.id) == []


async def test_no_mod_log_configured_posts_nothing_else(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    sent = await say(
        f"{prefix(botdata_db)}warn {simulated_guild.member.mention} rude", simulated_guild.mod
    )
    assert {m.channel.id for m in sent if not isinstance(m.channel, discord.DMChannel)} == {
        simulated_guild.channel.id
    }


async def test_a_reason_over_2000_characters_is_refused_and_nothing_written(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    [reply] = await say(
        f"{p}warn {simulated_guild.member.mention} {'x' * 2001}", simulated_guild.mod
    )
    assert "2000" in reply.content
    [reply] = await say(
        f"{p}ban {simulated_guild.member.mention} {'x' * 2001}", simulated_guild.mod
    )
    assert "2000" in reply.content
    assert simulated_guild.discord_api.bans == set()
    assert simulated_guild.guild.get_member(simulated_guild.member.id) is not None
    assert await all_cases(botdata_db, simulated_guild.guild.id) == []


async def test_a_long_reason_still_reaches_the_member_and_the_mod_log(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, mod_log: discord.TextChannel
) -> None:
    reason = "r" * 1990
    sent = await say(
        f"{prefix(botdata_db)}warn {simulated_guild.member.mention} {reason}", simulated_guild.mod
    )
    assert replies(sent, simulated_guild.channel) == [
        f"Case #1: {simulated_guild.member} was warned."
    ]  # DM sent
    [dm] = dms(sent)
    assert limits.length(dm) <= limits.CONTENT
    assert f"Reason: {'r' * 1900}" in dm
    assert dm.endswith(limits.ELLIPSIS)
    [log_message] = [m for m in sent if m.channel.id == mod_log.id]
    assert reason in (log_message.embeds[0].description or "")


# Who may act on whom ----------------------------------------------------------------------------


async def test_a_non_moderator_is_refused_and_nothing_is_written(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    other = simulated_guild.other.mention
    for command in (f"warn {other}", f"kick {other}", f"ban {other}", f"timeout {other} 1h"):
        sent = await say(f"{p}{command} nope", simulated_guild.member)
        assert len(sent) == 1
        assert "permission level" in sent[0].content
    [reply] = await say(f"{p}snippetban {other}", simulated_guild.member)
    assert "permission level 2" in reply.content
    [reply] = await say(f"{p}jail {other}", simulated_guild.member)
    assert "manage roles" in reply.content
    assert await all_cases(botdata_db, simulated_guild.guild.id) == []
    assert simulated_guild.guild.get_member(simulated_guild.other.id) is not None
    assert simulated_guild.discord_api.bans == set()
    assert simulated_guild.discord_api.edits == []


async def test_the_discord_permission_is_enough_without_a_level(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    helper_role = backend.make_role(
        "Helpers",
        simulated_guild.guild,
        permissions=discord.Permissions(moderate_members=True).value,
    )
    helper_role.position = 5
    await dpytest.add_role(simulated_guild.member, helper_role)
    sent = await say(
        f"{prefix(botdata_db)}warn {simulated_guild.other.mention} hush", simulated_guild.member
    )
    assert replies(sent, simulated_guild.channel) == [
        f"Case #1: {simulated_guild.other} was warned."
    ]
    [reply] = await say(
        f"{prefix(botdata_db)}kick {simulated_guild.other.mention}", simulated_guild.member
    )
    assert "kick members" in reply.content
    assert len(await all_cases(botdata_db, simulated_guild.guild.id)) == 1


async def test_hierarchy_protects_equal_roles_the_owner_the_bot_and_oneself(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    await dpytest.add_role(
        simulated_guild.other, simulated_guild.mod_role
    )  # as high as the moderator
    [reply] = await say(f"{p}warn {simulated_guild.other.mention}", simulated_guild.mod)
    assert reply.content == f"{simulated_guild.other} has a role at or above yours."
    [reply] = await say(f"{p}hackban {simulated_guild.other.id}", simulated_guild.mod)
    assert reply.content == f"{simulated_guild.other} has a role at or above yours."
    [reply] = await say(f"{p}ban {simulated_guild.guild.me.mention}", simulated_guild.mod)
    assert reply.content == "I will not moderate myself."
    [reply] = await say(f"{p}kick {simulated_guild.mod.mention}", simulated_guild.mod)
    assert reply.content == "You cannot moderate yourself."
    simulated_guild.guild.owner_id = simulated_guild.member.id
    [reply] = await say(f"{p}timeout {simulated_guild.member.mention} 1h", simulated_guild.mod)
    assert reply.content == "You cannot moderate the server owner."
    assert await all_cases(botdata_db, simulated_guild.guild.id) == []
    assert simulated_guild.discord_api.bans == set()
    assert simulated_guild.discord_api.edits == []
    assert simulated_guild.guild.get_member(simulated_guild.mod.id) is not None


async def test_the_bot_needs_the_discord_permission(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    bot_role = simulated_guild.guild.me.top_role
    backend.update_role(bot_role, permissions=discord.Permissions(send_messages=True).value)
    [reply] = await say(
        f"{prefix(botdata_db)}ban {simulated_guild.member.mention}", simulated_guild.mod
    )
    assert "Ban Members" in reply.content
    assert simulated_guild.discord_api.bans == set()
    assert await all_cases(botdata_db, simulated_guild.guild.id) == []


# Kick and bans ----------------------------------------------------------------------------------


async def test_kick_dms_first_then_removes_the_member(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, mod_log: discord.TextChannel
) -> None:
    sent = await say(
        f"{prefix(botdata_db)}kick {simulated_guild.member.mention} trolling", simulated_guild.mod
    )
    assert simulated_guild.guild.get_member(simulated_guild.member.id) is None
    [dm] = dms(sent)
    assert "You were kicked from" in dm
    assert replies(sent, simulated_guild.channel) == [
        f"Case #1: {simulated_guild.member} was kicked."
    ]
    [case] = await all_cases(botdata_db, simulated_guild.guild.id)
    assert (case.type, case.user_id, case.reason) == (
        CaseType.KICK,
        simulated_guild.member.id,
        "trolling",
    )
    assert [m.embeds[0].title for m in sent if m.channel.id == mod_log.id] == ["Case #1 · KICK"]


async def test_ban_then_unban_by_id(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    sent = await say(f"{p}ban {simulated_guild.member.mention} raiding", simulated_guild.mod)
    assert simulated_guild.discord_api.bans == {simulated_guild.member.id}
    assert simulated_guild.guild.get_member(simulated_guild.member.id) is None
    assert "You were banned from" in dms(sent)[0]
    sent = await say(f"{p}unban {simulated_guild.member.id} appeal accepted", simulated_guild.mod)
    assert simulated_guild.discord_api.unbans == [simulated_guild.member.id]
    assert replies(sent, simulated_guild.channel) == [
        f"Case #2: {simulated_guild.member} was unbanned."
    ]
    [reply] = await say(f"{p}unban {simulated_guild.member.id}", simulated_guild.mod)
    assert reply.content == f"{simulated_guild.member} is not banned."
    cases = await all_cases(botdata_db, simulated_guild.guild.id)
    assert [(c.type, c.reason) for c in cases] == [
        (CaseType.UNBAN, "appeal accepted"),
        (CaseType.BAN, "raiding"),
    ]


async def test_hackban_bans_a_user_who_is_not_in_the_server(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    stranger = backend.make_user("Stranger", "0042")
    sent = await say(f"{prefix(botdata_db)}hackban {stranger.id} known raider", simulated_guild.mod)
    assert simulated_guild.discord_api.bans == {stranger.id}
    assert replies(sent, simulated_guild.channel) == [f"Case #1: {stranger} was banned."]
    assert dms(sent) == []
    [case] = await all_cases(botdata_db, simulated_guild.guild.id)
    assert (case.type, case.user_id) == (CaseType.HACKBAN, stranger.id)


async def test_an_id_no_user_has_is_refused(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    for command in ("hackban", "unban"):
        for user_id in ("99999999999999999999", "123456789012345678"):
            [reply] = await say(
                f"{prefix(botdata_db)}{command} {user_id} raider", simulated_guild.mod
            )
            assert reply.content.startswith(f'User "{user_id}" not found.'), reply.content
    assert simulated_guild.discord_api.bans == set()
    assert await all_cases(botdata_db, simulated_guild.guild.id) == []


async def test_tempban_records_when_it_ends(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    before = datetime.now(timezone.utc)
    sent = await say(
        f"{prefix(botdata_db)}tempban {simulated_guild.member.mention} 1d cool off",
        simulated_guild.mod,
    )
    assert simulated_guild.discord_api.bans == {simulated_guild.member.id}
    assert replies(sent, simulated_guild.channel) == [
        f"Case #1: {simulated_guild.member} was banned for 1d."
    ]
    assert "for 1d" in dms(sent)[0]
    [case] = await all_cases(botdata_db, simulated_guild.guild.id)
    assert (case.type, case.reason) == (CaseType.TEMPBAN, "cool off")
    assert case.expires_at is not None
    assert before + timedelta(days=1) <= case.expires_at <= before + timedelta(days=1, minutes=1)


async def test_bad_durations_are_refused_and_nothing_written(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    [reply] = await say(
        f"{p}tempban {simulated_guild.member.mention} 10x spam", simulated_guild.mod
    )
    assert "`10x` is not a duration" in reply.content
    assert "Usage" in reply.content
    [reply] = await say(f"{p}timeout {simulated_guild.member.mention} 0m spam", simulated_guild.mod)
    assert "more than 0" in reply.content
    [reply] = await say(
        f"{p}timeout {simulated_guild.member.mention} 29d spam", simulated_guild.mod
    )
    assert "at most 28 days" in reply.content
    [reply] = await say(f"{p}tempban {simulated_guild.member.mention}", simulated_guild.mod)
    assert reply.content.startswith("Missing `duration`")
    for huge in ("99999999999d", "99999999999999999999w", f"{'9' * 5000}s", "1w" * 300):
        [reply] = await say(
            f"{p}tempban {simulated_guild.member.mention} {huge} spam", simulated_guild.mod
        )
        assert "at most 5 years" in reply.content, huge
        [reply] = await say(
            f"{p}timeout {simulated_guild.member.mention} {huge} spam", simulated_guild.mod
        )
        assert "at most 5 years" in reply.content, huge
    assert simulated_guild.discord_api.bans == set()
    assert simulated_guild.discord_api.edits == []
    assert await all_cases(botdata_db, simulated_guild.guild.id) == []


# Timeout ----------------------------------------------------------------------------------------


async def test_timeout_and_untimeout(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    sent = await say(
        f"{p}timeout {simulated_guild.member.mention} 10m calm down", simulated_guild.mod
    )
    assert replies(sent, simulated_guild.channel) == [
        f"Case #1: {simulated_guild.member} was timed out for 10m."
    ]
    [(user_id, fields)] = simulated_guild.discord_api.edits
    assert user_id == simulated_guild.member.id
    until = datetime.fromisoformat(fields["communication_disabled_until"])
    assert timedelta(minutes=9) < until - datetime.now(timezone.utc) <= timedelta(minutes=10)
    assert simulated_guild.member.is_timed_out()
    sent = await say(f"{p}untimeout {simulated_guild.member.mention} ok now", simulated_guild.mod)
    assert replies(sent, simulated_guild.channel) == [
        f"Case #2: {simulated_guild.member}'s timeout was lifted."
    ]
    assert simulated_guild.discord_api.edits[-1] == (
        simulated_guild.member.id,
        {"communication_disabled_until": None},
    )
    [reply] = await say(f"{p}untimeout {simulated_guild.member.mention}", simulated_guild.mod)
    assert reply.content == f"{simulated_guild.member} is not timed out."
    cases = await all_cases(botdata_db, simulated_guild.guild.id)
    assert [c.type for c in cases] == [CaseType.UNTIMEOUT, CaseType.TIMEOUT]
    assert cases[1].expires_at is not None


# Jail -------------------------------------------------------------------------------------------


@pytest.fixture
async def jail_role(simulated_guild: SimulatedGuild, botdata_db: botdata.Database) -> discord.Role:
    role = backend.make_role("Jailed", simulated_guild.guild, permissions=0)
    role.position = 3
    await botdata_db.guilds.update_config(
        simulated_guild.guild.id,
        updated_by=simulated_guild.mod.id,
        jail_role_id=role.id,
        jail_channel_id=simulated_guild.channel.id,
    )
    return role


async def test_jail_saves_the_roles_and_unjail_gives_them_back(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, jail_role: discord.Role
) -> None:
    p = prefix(botdata_db)
    extra = backend.make_role("Artists", simulated_guild.guild, permissions=0)
    extra.position = 1
    await dpytest.add_role(simulated_guild.member, extra)
    before = {simulated_guild.member_role.id, extra.id}
    assert {r.id for r in simulated_guild.member.roles if not r.is_default()} == before
    sent = await say(f"{p}jail {simulated_guild.member.mention} flooding", simulated_guild.mod)
    assert replies(sent, simulated_guild.channel) == [
        f"Case #1: {simulated_guild.member} was jailed."
    ]
    assert f"<#{simulated_guild.channel.id}>" in dms(sent)[0]
    assert [r.id for r in simulated_guild.member.roles if not r.is_default()] == [jail_role.id]
    [case] = await all_cases(botdata_db, simulated_guild.guild.id)
    assert (case.type, case.expires_at) == (CaseType.JAIL, None)
    assert set(case.user_roles) == before
    assert await botdata_db.cases.is_jailed(simulated_guild.guild.id, simulated_guild.member.id)
    [reply] = await say(f"{p}jail {simulated_guild.member.mention} again", simulated_guild.mod)
    assert reply.content == f"{simulated_guild.member} is already jailed."
    [reply] = await say(f"{p}case 1", simulated_guild.mod)
    saved = {f.name: f.value for f in reply.embeds[0].fields}["Saved roles"]
    assert set(saved.split()) == {f"<@&{role_id}>" for role_id in before}

    sent = await say(f"{p}unjail {simulated_guild.member.mention} behaved", simulated_guild.mod)
    assert replies(sent, simulated_guild.channel) == [
        f"Case #2: {simulated_guild.member} was released."
    ]
    assert {r.id for r in simulated_guild.member.roles if not r.is_default()} == before
    assert not await botdata_db.cases.is_jailed(simulated_guild.guild.id, simulated_guild.member.id)
    [reply] = await say(f"{p}unjail {simulated_guild.member.mention}", simulated_guild.mod)
    assert reply.content == f"{simulated_guild.member} is not jailed."
    assert [c.type for c in await all_cases(botdata_db, simulated_guild.guild.id)] == [
        CaseType.UNJAIL,
        CaseType.JAIL,
    ]


async def test_jail_takes_an_optional_duration(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, jail_role: discord.Role
) -> None:
    p = prefix(botdata_db)
    sent = await say(f"{p}jail {simulated_guild.member.mention} 2h flooding", simulated_guild.mod)
    assert replies(sent, simulated_guild.channel) == [
        f"Case #1: {simulated_guild.member} was jailed for 2h."
    ]
    await say(f"{p}jail {simulated_guild.other.mention} flooding again", simulated_guild.mod)
    timed, untimed = sorted(
        await all_cases(botdata_db, simulated_guild.guild.id), key=lambda c: c.number
    )
    assert timed.reason == "flooding"
    assert timed.expires_at is not None
    assert untimed.reason == "flooding again"
    assert untimed.expires_at is None


async def test_a_jail_duration_that_does_not_parse_is_refused_not_permanent(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, jail_role: discord.Role
) -> None:
    p = prefix(botdata_db)
    member = simulated_guild.member.mention
    for words, refusal in (
        ("2000d rude", "at most 5 years"),
        ("0s rude", "more than 0"),
        ("99999999999999999999d rude", "at most 5 years"),
        (f"{'9' * 5000}d rude", "at most 5 years"),
        ("10x rude", "`10x` is not a duration"),
        ("5 rude", "`5` is not a duration"),
        ('"2h rude"', "is not a duration"),
    ):
        [reply] = await say(f"{p}jail {member} {words}", simulated_guild.mod)
        assert refusal in reply.content, words
    sent = await slash(
        simulated_guild.bot,
        simulated_guild.mod,
        "jail",
        member=simulated_guild.member,
        duration="rude",
    )
    assert "`rude` is not a duration" in (sent[0].content or "")
    assert simulated_guild.discord_api.edits == []
    assert await all_cases(botdata_db, simulated_guild.guild.id) == []
    sent = await slash(
        simulated_guild.bot,
        simulated_guild.mod,
        "jail",
        member=simulated_guild.member,
        duration="1h",
        reason="rude",
    )
    assert [s.content for s in sent] == [f"Case #1: {simulated_guild.member} was jailed for 1h."]
    [case] = await all_cases(botdata_db, simulated_guild.guild.id)
    assert (case.reason, case.expires_at is not None) == ("rude", True)


async def test_a_jailed_member_who_rejoins_is_jailed_again(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, jail_role: discord.Role
) -> None:
    await say(
        f"{prefix(botdata_db)}jail {simulated_guild.member.mention} flooding", simulated_guild.mod
    )
    backend.delete_member(simulated_guild.member)
    returned = await dpytest.member_join(simulated_guild.guild, simulated_guild.member._user)
    await dpytest.run_all_events()
    assert [r.id for r in returned.roles if not r.is_default()] == [jail_role.id]
    [case] = await all_cases(botdata_db, simulated_guild.guild.id)  # records only: no new case
    assert case.type is CaseType.JAIL
    await say(f"{prefix(botdata_db)}unjail {returned.mention} behaved", simulated_guild.mod)
    backend.delete_member(returned)
    edits = len(simulated_guild.discord_api.edits)
    returned = await dpytest.member_join(simulated_guild.guild, simulated_guild.member._user)
    await dpytest.run_all_events()
    assert len(simulated_guild.discord_api.edits) == edits  # released: nothing to restore
    assert [r for r in returned.roles if not r.is_default()] == []


async def test_a_rejoining_member_takes_again_the_roles_the_jail_took(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, jail_role: discord.Role
) -> None:
    await say(
        f"{prefix(botdata_db)}jail {simulated_guild.member.mention} flooding", simulated_guild.mod
    )
    keeps = backend.make_role("Newcomers", simulated_guild.guild, permissions=0)
    keeps.position = 1
    user = simulated_guild.member._user
    backend.delete_member(simulated_guild.member)
    # Joining with roles (another bot's autoroles): the saved role goes, the others stay.
    returned = backend.make_member(
        user, simulated_guild.guild, roles=[simulated_guild.member_role, keeps]
    )
    await dpytest.run_all_events()
    assert {r.id for r in returned.roles if not r.is_default()} == {keeps.id, jail_role.id}


async def test_a_timed_out_member_who_rejoins_is_timed_out_again(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await say(
        f"{prefix(botdata_db)}timeout {simulated_guild.member.mention} 1h spam", simulated_guild.mod
    )
    [case] = await all_cases(botdata_db, simulated_guild.guild.id)
    backend.delete_member(simulated_guild.member)
    returned = await dpytest.member_join(simulated_guild.guild, simulated_guild.member._user)
    await dpytest.run_all_events()
    assert returned.timed_out_until == case.expires_at
    assert returned.is_timed_out()
    await say(f"{prefix(botdata_db)}untimeout {returned.mention} ok", simulated_guild.mod)
    backend.delete_member(returned)
    returned = await dpytest.member_join(simulated_guild.guild, simulated_guild.member._user)
    await dpytest.run_all_events()
    assert not returned.is_timed_out()  # lifted: not applied again


async def test_jail_needs_a_jail_role(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    [reply] = await say(
        f"{prefix(botdata_db)}jail {simulated_guild.member.mention}", simulated_guild.mod
    )
    assert "No jail role is set" in reply.content
    assert simulated_guild.discord_api.edits == []
    assert await all_cases(botdata_db, simulated_guild.guild.id) == []


# Snippet and poll bans --------------------------------------------------------------------------


async def test_snippet_and_poll_bans(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    guild_id, member = simulated_guild.guild.id, simulated_guild.member
    sent = await say(f"{p}snippetban {member.mention} spam snippets", simulated_guild.mod)
    assert replies(sent, simulated_guild.channel) == [
        f"Case #1: {member} was banned from snippets."
    ]
    assert "no longer use snippets" in dms(sent)[0]
    assert await botdata_db.cases.is_snippet_banned(guild_id, member.id)
    [reply] = await say(f"{p}snippetban {member.mention}", simulated_guild.mod)
    assert reply.content == f"{member} is already banned from snippets."
    await say(f"{p}snippetunban {member.mention}", simulated_guild.mod)
    assert not await botdata_db.cases.is_snippet_banned(guild_id, member.id)
    await say(f"{p}pollban {member.mention} spam polls", simulated_guild.mod)
    assert await botdata_db.cases.is_poll_banned(guild_id, member.id)
    assert not await botdata_db.cases.is_snippet_banned(guild_id, member.id)
    sent = await say(f"{p}pollunban {member.mention}", simulated_guild.mod)
    assert replies(sent, simulated_guild.channel) == [f"Case #4: {member} was allowed polls again."]
    [reply] = await say(f"{p}pollunban {member.mention}", simulated_guild.mod)
    assert reply.content == f"{member} is not banned from polls."
    assert not await botdata_db.cases.is_poll_banned(guild_id, member.id)
    assert [c.type for c in await all_cases(botdata_db, guild_id)] == [
        CaseType.POLLUNBAN,
        CaseType.POLLBAN,
        CaseType.SNIPPETUNBAN,
        CaseType.SNIPPETBAN,
    ]


# Expiry -----------------------------------------------------------------------------------------


def cog(scene: SimulatedGuild) -> Moderation:
    # load_extension executes the module anew: the class is not botdata_cogs.moderation.Moderation.
    found = scene.bot.get_cog("Moderation")
    assert type(found).__name__ == "Moderation"
    return found  # type: ignore[return-value]


def later(**delta: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(**delta)


async def test_an_expired_tempban_is_lifted_once(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, mod_log: discord.TextChannel
) -> None:
    await say(
        f"{prefix(botdata_db)}tempban {simulated_guild.member.mention} 1h cool off",
        simulated_guild.mod,
    )
    assert await cog(simulated_guild).lift_expired() == []  # not expired yet
    assert simulated_guild.discord_api.unbans == []
    [lifted] = await cog(simulated_guild).lift_expired(later(hours=2))
    assert (lifted.number, lifted.type) == (1, CaseType.TEMPBAN)
    assert simulated_guild.discord_api.unbans == [simulated_guild.member.id]
    assert simulated_guild.discord_api.bans == set()
    unban, tempban = await all_cases(botdata_db, simulated_guild.guild.id)
    assert (unban.type, unban.reason, unban.user_id) == (
        CaseType.UNBAN,
        "expired",
        simulated_guild.member.id,
    )
    assert unban.moderator_id == simulated_guild.bot.user.id
    assert unban.metadata == {"expired_case": 1}
    assert tempban.active
    assert await cog(simulated_guild).lift_expired(later(hours=3)) == []  # never claimed again
    assert simulated_guild.discord_api.unbans == [simulated_guild.member.id]
    assert len(await all_cases(botdata_db, simulated_guild.guild.id)) == 2


async def test_the_lift_is_posted_in_the_mod_log(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, mod_log: discord.TextChannel
) -> None:
    await say(
        f"{prefix(botdata_db)}tempban {simulated_guild.member.mention} 1h", simulated_guild.mod
    )
    await cog(simulated_guild).lift_expired(later(hours=2))
    [posted] = await drain()
    assert posted.channel.id == mod_log.id
    assert posted.embeds[0].title == "Case #2 · UNBAN"
    assert posted.embeds[0].description == "**Reason:** expired"


async def test_expired_timed_jail_and_timeout_are_lifted(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, jail_role: discord.Role
) -> None:
    p = prefix(botdata_db)
    await say(f"{p}jail {simulated_guild.member.mention} 1h", simulated_guild.mod)
    await say(f"{p}timeout {simulated_guild.other.mention} 1h", simulated_guild.mod)
    assert [r.id for r in simulated_guild.member.roles if not r.is_default()] == [jail_role.id]
    lifted = await cog(simulated_guild).lift_expired(later(hours=2))
    assert sorted(c.type for c in lifted) == [CaseType.JAIL, CaseType.TIMEOUT]
    assert [r.id for r in simulated_guild.member.roles if not r.is_default()] == [
        simulated_guild.member_role.id
    ]
    assert not await botdata_db.cases.is_jailed(simulated_guild.guild.id, simulated_guild.member.id)
    assert simulated_guild.discord_api.edits[-1] == (
        simulated_guild.other.id,
        {"communication_disabled_until": None},
    )
    assert not simulated_guild.other.is_timed_out()
    follow_ups = {
        (c.type, c.user_id, c.reason) for c in await all_cases(botdata_db, simulated_guild.guild.id)
    }
    assert (CaseType.UNJAIL, simulated_guild.member.id, "expired") in follow_ups
    assert (CaseType.UNTIMEOUT, simulated_guild.other.id, "expired") in follow_ups


async def test_two_workers_lift_an_expired_case_once(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await say(
        f"{prefix(botdata_db)}tempban {simulated_guild.member.mention} 1h", simulated_guild.mod
    )
    first = cog(simulated_guild)
    second = type(first)(
        simulated_guild.bot, botdata_db
    )  # another bot process's cog, on the same database
    now = later(hours=2)
    lifted = await asyncio.gather(first.lift_expired(now), second.lift_expired(now))
    assert sorted(len(batch) for batch in lifted) == [0, 1]
    assert simulated_guild.discord_api.unbans == [simulated_guild.member.id]
    assert [c.type for c in await all_cases(botdata_db, simulated_guild.guild.id)] == [
        CaseType.UNBAN,
        CaseType.TEMPBAN,
    ]


async def test_a_failed_lift_is_released_and_retried(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await say(
        f"{prefix(botdata_db)}tempban {simulated_guild.member.mention} 1h", simulated_guild.mod
    )
    simulated_guild.discord_api.fail_unban = True
    assert await cog(simulated_guild).lift_expired(later(hours=2)) == []
    assert [c.type for c in await all_cases(botdata_db, simulated_guild.guild.id)] == [
        CaseType.TEMPBAN
    ]
    simulated_guild.discord_api.fail_unban = False
    [lifted] = await cog(simulated_guild).lift_expired(
        later(hours=2)
    )  # released: claimable at once
    assert lifted.number == 1
    assert simulated_guild.discord_api.unbans == [simulated_guild.member.id]


async def test_cases_of_guilds_this_process_does_not_see_are_left_to_others(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await botdata_db.cases.create(
        OTHER_GUILD,
        simulated_guild.member.id,
        simulated_guild.mod.id,
        CaseType.TEMPBAN,
        "x",
        duration=timedelta(1),
    )
    assert await cog(simulated_guild).lift_expired(later(days=2)) == []
    [released] = await botdata_db.cases.claim_due(later(days=2))
    assert (released.guild_id, released.number) == (OTHER_GUILD, 1)
    assert await all_cases(botdata_db, OTHER_GUILD) == [released]  # no UNBAN written


async def test_unban_settles_a_pending_tempban(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    await say(f"{p}tempban {simulated_guild.member.mention} 1h", simulated_guild.mod)
    await say(f"{p}unban {simulated_guild.member.id} early", simulated_guild.mod)
    assert await cog(simulated_guild).lift_expired(later(hours=2)) == []
    assert simulated_guild.discord_api.unbans == [
        simulated_guild.member.id
    ]  # the manual unban only
    assert [c.type for c in await all_cases(botdata_db, simulated_guild.guild.id)] == [
        CaseType.UNBAN,
        CaseType.TEMPBAN,
    ]


async def test_the_expiry_loop_runs_while_the_cog_is_loaded(
    simulated_guild: SimulatedGuild,
) -> None:
    task = cog(simulated_guild).expiry_loop
    assert not task.done()
    await simulated_guild.bot.unload_extension("botdata_cogs.moderation")
    assert task.cancelled()
    await simulated_guild.bot.load_extension("botdata_cogs.moderation")
    assert not cog(simulated_guild).expiry_loop.done()


async def test_advancing_the_clock_lifts_an_expired_tempban_through_the_loop(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, botdata_clock: ManualClock
) -> None:
    await say(
        f"{prefix(botdata_db)}tempban {simulated_guild.member.mention} 1h cool off",
        simulated_guild.mod,
    )
    await botdata_clock.advance(minutes=59)
    assert simulated_guild.discord_api.unbans == []
    await botdata_clock.advance(minutes=1, seconds=1)  # expired: the loop (asleep 30 s) passes
    assert simulated_guild.discord_api.unbans == [simulated_guild.member.id]
    unban, tempban = await all_cases(botdata_db, simulated_guild.guild.id)
    assert (unban.type, unban.reason) == (CaseType.UNBAN, "expired")
    assert unban.created_at >= tempban.created_at


async def test_a_failing_expiry_pass_is_logged_and_the_loop_goes_on(
    simulated_guild: SimulatedGuild,
    botdata_db: botdata.Database,
    botdata_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await say(
        f"{prefix(botdata_db)}tempban {simulated_guild.member.mention} 1h", simulated_guild.mod
    )
    claim_due = botdata_db.cases.claim_due

    async def broken(now: datetime) -> list[CaseSchema]:
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(botdata_db.cases, "claim_due", broken)
    await botdata_clock.advance(hours=2)
    assert "lifting expired cases failed" in caplog.text
    assert simulated_guild.discord_api.unbans == []
    monkeypatch.setattr(botdata_db.cases, "claim_due", claim_due)
    await botdata_clock.advance(seconds=EXPIRY_INTERVAL)
    assert simulated_guild.discord_api.unbans == [simulated_guild.member.id]


# Slash ------------------------------------------------------------------------------------------


async def test_slash_warn(simulated_guild: SimulatedGuild, botdata_db: botdata.Database) -> None:
    sent = await slash(
        simulated_guild.bot,
        simulated_guild.mod,
        "warn",
        member=simulated_guild.member,
        reason="via slash",
    )
    assert [s.content for s in sent] == [f"Case #1: {simulated_guild.member} was warned."]
    [case] = await all_cases(botdata_db, simulated_guild.guild.id)
    assert (case.type, case.reason, case.user_id) == (
        CaseType.WARN,
        "via slash",
        simulated_guild.member.id,
    )
    sent = await slash(
        simulated_guild.bot, simulated_guild.member, "warn", member=simulated_guild.other
    )
    assert len(sent) == 1
    assert "permission level 2" in (sent[0].content or "")
    assert sent[0].ephemeral
    assert len(await all_cases(botdata_db, simulated_guild.guild.id)) == 1
