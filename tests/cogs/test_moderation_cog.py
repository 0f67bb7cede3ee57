"""The moderation cog through dpytest, as a moderator would type it (both backends).

dpytest's fake HTTP has no unban and mishandles bans by id and role/timeout edits: the ``fake``
fixture routes those calls to :class:`simulated_discord.SimulatedDiscord` (faking Discord, never the
database).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
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
from simulated_discord import SimulatedDiscord
from tests.cogs.conftest import Scene, say
from tests.cogs.slash import slash

OTHER_GUILD = 100_000_000_000_000_009


@pytest.fixture
def fake(scene: Scene, monkeypatch: pytest.MonkeyPatch) -> SimulatedDiscord:
    record = SimulatedDiscord(scene.guild)
    for name in ("ban", "unban", "edit_member", "get_user"):
        monkeypatch.setattr(scene.bot.http, name, getattr(record, name))
    return record


@pytest.fixture
async def mod_log(scene: Scene, db: botdata.Database) -> discord.TextChannel:
    channel = backend.make_text_channel("mod-log", scene.guild)
    await db.guilds.update_config(scene.guild.id, updated_by=scene.mod.id, mod_log_id=channel.id)
    return channel


def close_dms(monkeypatch: pytest.MonkeyPatch, scene: Scene) -> None:
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
    scene: Scene, db: botdata.Database, mod_log: discord.TextChannel
) -> None:
    sent = await say(f"{prefix(db)}warn {scene.member.mention} spamming links", scene.mod)
    [case] = await all_cases(db, scene.guild.id)
    assert (case.number, case.type, case.reason) == (1, CaseType.WARN, "spamming links")
    assert (case.user_id, case.moderator_id) == (scene.member.id, scene.mod.id)
    assert replies(sent, scene.channel) == [f"Case #1: {scene.member} was warned."]
    [dm] = dms(sent)
    assert "You were warned in" in dm
    assert scene.guild.name in dm
    assert dm.endswith("Reason: spamming links")
    [log_message] = [m for m in sent if m.channel.id == mod_log.id]
    embed = log_message.embeds[0]
    assert embed.title == "Case #1 · WARN"
    assert "spamming links" in (embed.description or "")
    fields = {f.name: f.value for f in embed.fields}
    assert str(scene.member.id) in fields["Member"]
    assert fields["Moderator"] == f"<@{scene.mod.id}>"


async def test_reason_is_optional(scene: Scene, db: botdata.Database) -> None:
    await say(f"{prefix(db)}warn {scene.member.mention}", scene.mod)
    [case] = await all_cases(db, scene.guild.id)
    assert case.reason == "No reason given"


async def test_a_closed_dm_does_not_fail_the_command(
    scene: Scene, db: botdata.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    close_dms(monkeypatch, scene)
    sent = await say(f"{prefix(db)}warn {scene.member.mention} rude", scene.mod)
    assert dms(sent) == []
    assert replies(sent, scene.channel) == [
        f"Case #1: {scene.member} was warned. I could not DM them."
    ]
    sent = await say(f"{prefix(db)}kick {scene.member.mention} rude", scene.mod)
    assert replies(sent, scene.channel) == [
        f"Case #2: {scene.member} was kicked. I could not DM them."
    ]
    assert scene.guild.get_member(scene.member.id) is None
    assert [c.type for c in await all_cases(db, scene.guild.id)] == [CaseType.KICK, CaseType.WARN]


async def test_a_failed_kick_writes_nothing_and_takes_the_dm_back(
    scene: Scene, db: botdata.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    deleted: list[int] = []

    async def kick(user_id: int, guild_id: int, reason: str | None = None) -> None:
        raise discord.Forbidden(backend.FakeRequest(403, "Forbidden"), "Missing Permissions")

    async def delete_message(channel_id: int, message_id: int, **_: Any) -> None:
        deleted.append(message_id)

    monkeypatch.setattr(scene.bot.http, "kick", kick)
    monkeypatch.setattr(scene.bot.http, "delete_message", delete_message)
    sent = await say(f"{prefix(db)}kick {scene.member.mention} rude", scene.mod)
    [dm] = [m for m in sent if isinstance(m.channel, discord.DMChannel)]
    assert deleted == [dm.id]
    assert replies(sent, scene.channel) == ["I lack the Discord permission to do that."]
    assert scene.guild.get_member(scene.member.id) is not None
    assert await all_cases(db, scene.guild.id) == []


async def test_no_mod_log_configured_posts_nothing_else(scene: Scene, db: botdata.Database) -> None:
    sent = await say(f"{prefix(db)}warn {scene.member.mention} rude", scene.mod)
    assert {m.channel.id for m in sent if not isinstance(m.channel, discord.DMChannel)} == {
        scene.channel.id
    }


async def test_a_reason_over_2000_characters_is_refused_and_nothing_written(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord
) -> None:
    p = prefix(db)
    [reply] = await say(f"{p}warn {scene.member.mention} {'x' * 2001}", scene.mod)
    assert "2000" in reply.content
    [reply] = await say(f"{p}ban {scene.member.mention} {'x' * 2001}", scene.mod)
    assert "2000" in reply.content
    assert fake.bans == set()
    assert scene.guild.get_member(scene.member.id) is not None
    assert await all_cases(db, scene.guild.id) == []


async def test_a_long_reason_still_reaches_the_member_and_the_mod_log(
    scene: Scene, db: botdata.Database, mod_log: discord.TextChannel
) -> None:
    reason = "r" * 1990
    sent = await say(f"{prefix(db)}warn {scene.member.mention} {reason}", scene.mod)
    assert replies(sent, scene.channel) == [f"Case #1: {scene.member} was warned."]  # DM sent
    [dm] = dms(sent)
    assert limits.length(dm) <= limits.CONTENT
    assert f"Reason: {'r' * 1900}" in dm
    assert dm.endswith(limits.ELLIPSIS)
    [log_message] = [m for m in sent if m.channel.id == mod_log.id]
    assert reason in (log_message.embeds[0].description or "")


# Who may act on whom ----------------------------------------------------------------------------


async def test_a_non_moderator_is_refused_and_nothing_is_written(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord
) -> None:
    p = prefix(db)
    other = scene.other.mention
    for command in (f"warn {other}", f"kick {other}", f"ban {other}", f"timeout {other} 1h"):
        sent = await say(f"{p}{command} nope", scene.member)
        assert len(sent) == 1
        assert "permission level" in sent[0].content
    [reply] = await say(f"{p}snippetban {other}", scene.member)
    assert "permission level 2" in reply.content
    [reply] = await say(f"{p}jail {other}", scene.member)
    assert "manage roles" in reply.content
    assert await all_cases(db, scene.guild.id) == []
    assert scene.guild.get_member(scene.other.id) is not None
    assert fake.bans == set()
    assert fake.edits == []


async def test_the_discord_permission_is_enough_without_a_level(
    scene: Scene, db: botdata.Database
) -> None:
    helper_role = backend.make_role(
        "Helpers", scene.guild, permissions=discord.Permissions(moderate_members=True).value
    )
    helper_role.position = 5
    await dpytest.add_role(scene.member, helper_role)
    sent = await say(f"{prefix(db)}warn {scene.other.mention} hush", scene.member)
    assert replies(sent, scene.channel) == [f"Case #1: {scene.other} was warned."]
    [reply] = await say(f"{prefix(db)}kick {scene.other.mention}", scene.member)
    assert "kick members" in reply.content
    assert len(await all_cases(db, scene.guild.id)) == 1


async def test_hierarchy_protects_equal_roles_the_owner_the_bot_and_oneself(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord
) -> None:
    p = prefix(db)
    await dpytest.add_role(scene.other, scene.mod_role)  # as high as the moderator
    [reply] = await say(f"{p}warn {scene.other.mention}", scene.mod)
    assert reply.content == f"{scene.other} has a role at or above yours."
    [reply] = await say(f"{p}hackban {scene.other.id}", scene.mod)
    assert reply.content == f"{scene.other} has a role at or above yours."
    [reply] = await say(f"{p}ban {scene.guild.me.mention}", scene.mod)
    assert reply.content == "I will not moderate myself."
    [reply] = await say(f"{p}kick {scene.mod.mention}", scene.mod)
    assert reply.content == "You cannot moderate yourself."
    scene.guild.owner_id = scene.member.id
    [reply] = await say(f"{p}timeout {scene.member.mention} 1h", scene.mod)
    assert reply.content == "You cannot moderate the server owner."
    assert await all_cases(db, scene.guild.id) == []
    assert fake.bans == set()
    assert fake.edits == []
    assert scene.guild.get_member(scene.mod.id) is not None


async def test_the_bot_needs_the_discord_permission(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord
) -> None:
    bot_role = scene.guild.me.top_role
    backend.update_role(bot_role, permissions=discord.Permissions(send_messages=True).value)
    [reply] = await say(f"{prefix(db)}ban {scene.member.mention}", scene.mod)
    assert "Ban Members" in reply.content
    assert fake.bans == set()
    assert await all_cases(db, scene.guild.id) == []


# Kick and bans ----------------------------------------------------------------------------------


async def test_kick_dms_first_then_removes_the_member(
    scene: Scene, db: botdata.Database, mod_log: discord.TextChannel
) -> None:
    sent = await say(f"{prefix(db)}kick {scene.member.mention} trolling", scene.mod)
    assert scene.guild.get_member(scene.member.id) is None
    [dm] = dms(sent)
    assert "You were kicked from" in dm
    assert replies(sent, scene.channel) == [f"Case #1: {scene.member} was kicked."]
    [case] = await all_cases(db, scene.guild.id)
    assert (case.type, case.user_id, case.reason) == (CaseType.KICK, scene.member.id, "trolling")
    assert [m.embeds[0].title for m in sent if m.channel.id == mod_log.id] == ["Case #1 · KICK"]


async def test_ban_then_unban_by_id(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord
) -> None:
    p = prefix(db)
    sent = await say(f"{p}ban {scene.member.mention} raiding", scene.mod)
    assert fake.bans == {scene.member.id}
    assert scene.guild.get_member(scene.member.id) is None
    assert "You were banned from" in dms(sent)[0]
    sent = await say(f"{p}unban {scene.member.id} appeal accepted", scene.mod)
    assert fake.unbans == [scene.member.id]
    assert replies(sent, scene.channel) == [f"Case #2: {scene.member} was unbanned."]
    [reply] = await say(f"{p}unban {scene.member.id}", scene.mod)
    assert reply.content == f"{scene.member} is not banned."
    cases = await all_cases(db, scene.guild.id)
    assert [(c.type, c.reason) for c in cases] == [
        (CaseType.UNBAN, "appeal accepted"),
        (CaseType.BAN, "raiding"),
    ]


async def test_hackban_bans_a_user_who_is_not_in_the_server(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord
) -> None:
    stranger = backend.make_user("Stranger", "0042")
    sent = await say(f"{prefix(db)}hackban {stranger.id} known raider", scene.mod)
    assert fake.bans == {stranger.id}
    assert replies(sent, scene.channel) == [f"Case #1: {stranger} was banned."]
    assert dms(sent) == []
    [case] = await all_cases(db, scene.guild.id)
    assert (case.type, case.user_id) == (CaseType.HACKBAN, stranger.id)


async def test_an_id_no_user_has_is_refused(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord
) -> None:
    for command in ("hackban", "unban"):
        for user_id in ("99999999999999999999", "123456789012345678"):
            [reply] = await say(f"{prefix(db)}{command} {user_id} raider", scene.mod)
            assert reply.content.startswith(f'User "{user_id}" not found.'), reply.content
    assert fake.bans == set()
    assert await all_cases(db, scene.guild.id) == []


async def test_tempban_records_when_it_ends(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord
) -> None:
    before = datetime.now(timezone.utc)
    sent = await say(f"{prefix(db)}tempban {scene.member.mention} 1d cool off", scene.mod)
    assert fake.bans == {scene.member.id}
    assert replies(sent, scene.channel) == [f"Case #1: {scene.member} was banned for 1d."]
    assert "for 1d" in dms(sent)[0]
    [case] = await all_cases(db, scene.guild.id)
    assert (case.type, case.reason) == (CaseType.TEMPBAN, "cool off")
    assert case.expires_at is not None
    assert before + timedelta(days=1) <= case.expires_at <= before + timedelta(days=1, minutes=1)


async def test_bad_durations_are_refused_and_nothing_written(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord
) -> None:
    p = prefix(db)
    [reply] = await say(f"{p}tempban {scene.member.mention} 10x spam", scene.mod)
    assert "`10x` is not a duration" in reply.content
    assert "Usage" in reply.content
    [reply] = await say(f"{p}timeout {scene.member.mention} 0m spam", scene.mod)
    assert "more than 0" in reply.content
    [reply] = await say(f"{p}timeout {scene.member.mention} 29d spam", scene.mod)
    assert "at most 28 days" in reply.content
    [reply] = await say(f"{p}tempban {scene.member.mention}", scene.mod)
    assert reply.content.startswith("Missing `duration`")
    for huge in ("99999999999d", "99999999999999999999w", f"{'9' * 5000}s", "1w" * 300):
        [reply] = await say(f"{p}tempban {scene.member.mention} {huge} spam", scene.mod)
        assert "at most 5 years" in reply.content, huge
        [reply] = await say(f"{p}timeout {scene.member.mention} {huge} spam", scene.mod)
        assert "at most 5 years" in reply.content, huge
    assert fake.bans == set()
    assert fake.edits == []
    assert await all_cases(db, scene.guild.id) == []


# Timeout ----------------------------------------------------------------------------------------


async def test_timeout_and_untimeout(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord
) -> None:
    p = prefix(db)
    sent = await say(f"{p}timeout {scene.member.mention} 10m calm down", scene.mod)
    assert replies(sent, scene.channel) == [f"Case #1: {scene.member} was timed out for 10m."]
    [(user_id, fields)] = fake.edits
    assert user_id == scene.member.id
    until = datetime.fromisoformat(fields["communication_disabled_until"])
    assert timedelta(minutes=9) < until - datetime.now(timezone.utc) <= timedelta(minutes=10)
    assert scene.member.is_timed_out()
    sent = await say(f"{p}untimeout {scene.member.mention} ok now", scene.mod)
    assert replies(sent, scene.channel) == [f"Case #2: {scene.member}'s timeout was lifted."]
    assert fake.edits[-1] == (scene.member.id, {"communication_disabled_until": None})
    [reply] = await say(f"{p}untimeout {scene.member.mention}", scene.mod)
    assert reply.content == f"{scene.member} is not timed out."
    cases = await all_cases(db, scene.guild.id)
    assert [c.type for c in cases] == [CaseType.UNTIMEOUT, CaseType.TIMEOUT]
    assert cases[1].expires_at is not None


# Jail -------------------------------------------------------------------------------------------


@pytest.fixture
async def jail_role(scene: Scene, db: botdata.Database) -> discord.Role:
    role = backend.make_role("Jailed", scene.guild, permissions=0)
    role.position = 3
    await db.guilds.update_config(
        scene.guild.id,
        updated_by=scene.mod.id,
        jail_role_id=role.id,
        jail_channel_id=scene.channel.id,
    )
    return role


async def test_jail_saves_the_roles_and_unjail_gives_them_back(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord, jail_role: discord.Role
) -> None:
    p = prefix(db)
    extra = backend.make_role("Artists", scene.guild, permissions=0)
    extra.position = 1
    await dpytest.add_role(scene.member, extra)
    before = {scene.member_role.id, extra.id}
    assert {r.id for r in scene.member.roles if not r.is_default()} == before
    sent = await say(f"{p}jail {scene.member.mention} flooding", scene.mod)
    assert replies(sent, scene.channel) == [f"Case #1: {scene.member} was jailed."]
    assert f"<#{scene.channel.id}>" in dms(sent)[0]
    assert [r.id for r in scene.member.roles if not r.is_default()] == [jail_role.id]
    [case] = await all_cases(db, scene.guild.id)
    assert (case.type, case.expires_at) == (CaseType.JAIL, None)
    assert set(case.user_roles) == before
    assert await db.cases.is_jailed(scene.guild.id, scene.member.id)
    [reply] = await say(f"{p}jail {scene.member.mention} again", scene.mod)
    assert reply.content == f"{scene.member} is already jailed."
    [reply] = await say(f"{p}case 1", scene.mod)
    saved = {f.name: f.value for f in reply.embeds[0].fields}["Saved roles"]
    assert set(saved.split()) == {f"<@&{role_id}>" for role_id in before}

    sent = await say(f"{p}unjail {scene.member.mention} behaved", scene.mod)
    assert replies(sent, scene.channel) == [f"Case #2: {scene.member} was released."]
    assert {r.id for r in scene.member.roles if not r.is_default()} == before
    assert not await db.cases.is_jailed(scene.guild.id, scene.member.id)
    [reply] = await say(f"{p}unjail {scene.member.mention}", scene.mod)
    assert reply.content == f"{scene.member} is not jailed."
    assert [c.type for c in await all_cases(db, scene.guild.id)] == [CaseType.UNJAIL, CaseType.JAIL]


async def test_jail_takes_an_optional_duration(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord, jail_role: discord.Role
) -> None:
    p = prefix(db)
    sent = await say(f"{p}jail {scene.member.mention} 2h flooding", scene.mod)
    assert replies(sent, scene.channel) == [f"Case #1: {scene.member} was jailed for 2h."]
    await say(f"{p}jail {scene.other.mention} flooding again", scene.mod)
    timed, untimed = sorted(await all_cases(db, scene.guild.id), key=lambda c: c.number)
    assert timed.reason == "flooding"
    assert timed.expires_at is not None
    assert untimed.reason == "flooding again"
    assert untimed.expires_at is None


async def test_a_jail_duration_that_does_not_parse_is_refused_not_permanent(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord, jail_role: discord.Role
) -> None:
    p = prefix(db)
    member = scene.member.mention
    for words, refusal in (
        ("2000d rude", "at most 5 years"),
        ("0s rude", "more than 0"),
        ("99999999999999999999d rude", "at most 5 years"),
        (f"{'9' * 5000}d rude", "at most 5 years"),
        ("10x rude", "`10x` is not a duration"),
        ("5 rude", "`5` is not a duration"),
        ('"2h rude"', "is not a duration"),
    ):
        [reply] = await say(f"{p}jail {member} {words}", scene.mod)
        assert refusal in reply.content, words
    sent = await slash(scene.bot, scene.mod, "jail", member=scene.member, duration="rude")
    assert "`rude` is not a duration" in (sent[0].content or "")
    assert fake.edits == []
    assert await all_cases(db, scene.guild.id) == []
    sent = await slash(
        scene.bot, scene.mod, "jail", member=scene.member, duration="1h", reason="rude"
    )
    assert [s.content for s in sent] == [f"Case #1: {scene.member} was jailed for 1h."]
    [case] = await all_cases(db, scene.guild.id)
    assert (case.reason, case.expires_at is not None) == ("rude", True)


async def test_a_jailed_member_who_rejoins_is_jailed_again(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord, jail_role: discord.Role
) -> None:
    await say(f"{prefix(db)}jail {scene.member.mention} flooding", scene.mod)
    backend.delete_member(scene.member)
    returned = await dpytest.member_join(scene.guild, scene.member._user)
    await dpytest.run_all_events()
    assert [r.id for r in returned.roles if not r.is_default()] == [jail_role.id]
    [case] = await all_cases(db, scene.guild.id)  # records only: no new case
    assert case.type is CaseType.JAIL
    await say(f"{prefix(db)}unjail {returned.mention} behaved", scene.mod)
    backend.delete_member(returned)
    edits = len(fake.edits)
    returned = await dpytest.member_join(scene.guild, scene.member._user)
    await dpytest.run_all_events()
    assert len(fake.edits) == edits  # released: nothing to restore
    assert [r for r in returned.roles if not r.is_default()] == []


async def test_a_rejoining_member_takes_again_the_roles_the_jail_took(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord, jail_role: discord.Role
) -> None:
    await say(f"{prefix(db)}jail {scene.member.mention} flooding", scene.mod)
    keeps = backend.make_role("Newcomers", scene.guild, permissions=0)
    keeps.position = 1
    user = scene.member._user
    backend.delete_member(scene.member)
    # Joining with roles (another bot's autoroles): the saved role goes, the others stay.
    returned = backend.make_member(user, scene.guild, roles=[scene.member_role, keeps])
    await dpytest.run_all_events()
    assert {r.id for r in returned.roles if not r.is_default()} == {keeps.id, jail_role.id}


async def test_a_timed_out_member_who_rejoins_is_timed_out_again(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord
) -> None:
    await say(f"{prefix(db)}timeout {scene.member.mention} 1h spam", scene.mod)
    [case] = await all_cases(db, scene.guild.id)
    backend.delete_member(scene.member)
    returned = await dpytest.member_join(scene.guild, scene.member._user)
    await dpytest.run_all_events()
    assert returned.timed_out_until == case.expires_at
    assert returned.is_timed_out()
    await say(f"{prefix(db)}untimeout {returned.mention} ok", scene.mod)
    backend.delete_member(returned)
    returned = await dpytest.member_join(scene.guild, scene.member._user)
    await dpytest.run_all_events()
    assert not returned.is_timed_out()  # lifted: not applied again


async def test_jail_needs_a_jail_role(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord
) -> None:
    [reply] = await say(f"{prefix(db)}jail {scene.member.mention}", scene.mod)
    assert "No jail role is set" in reply.content
    assert fake.edits == []
    assert await all_cases(db, scene.guild.id) == []


# Snippet and poll bans --------------------------------------------------------------------------


async def test_snippet_and_poll_bans(scene: Scene, db: botdata.Database) -> None:
    p = prefix(db)
    guild_id, member = scene.guild.id, scene.member
    sent = await say(f"{p}snippetban {member.mention} spam snippets", scene.mod)
    assert replies(sent, scene.channel) == [f"Case #1: {member} was banned from snippets."]
    assert "no longer use snippets" in dms(sent)[0]
    assert await db.cases.is_snippet_banned(guild_id, member.id)
    [reply] = await say(f"{p}snippetban {member.mention}", scene.mod)
    assert reply.content == f"{member} is already banned from snippets."
    await say(f"{p}snippetunban {member.mention}", scene.mod)
    assert not await db.cases.is_snippet_banned(guild_id, member.id)
    await say(f"{p}pollban {member.mention} spam polls", scene.mod)
    assert await db.cases.is_poll_banned(guild_id, member.id)
    assert not await db.cases.is_snippet_banned(guild_id, member.id)
    sent = await say(f"{p}pollunban {member.mention}", scene.mod)
    assert replies(sent, scene.channel) == [f"Case #4: {member} was allowed polls again."]
    [reply] = await say(f"{p}pollunban {member.mention}", scene.mod)
    assert reply.content == f"{member} is not banned from polls."
    assert not await db.cases.is_poll_banned(guild_id, member.id)
    assert [c.type for c in await all_cases(db, guild_id)] == [
        CaseType.POLLUNBAN,
        CaseType.POLLBAN,
        CaseType.SNIPPETUNBAN,
        CaseType.SNIPPETBAN,
    ]


# Expiry -----------------------------------------------------------------------------------------


def cog(scene: Scene) -> Moderation:
    # load_extension executes the module anew: the class is not botdata_cogs.moderation.Moderation.
    found = scene.bot.get_cog("Moderation")
    assert type(found).__name__ == "Moderation"
    return found  # type: ignore[return-value]


def later(**delta: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(**delta)


async def test_an_expired_tempban_is_lifted_once(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord, mod_log: discord.TextChannel
) -> None:
    await say(f"{prefix(db)}tempban {scene.member.mention} 1h cool off", scene.mod)
    assert await cog(scene).lift_expired() == []  # not expired yet
    assert fake.unbans == []
    [lifted] = await cog(scene).lift_expired(later(hours=2))
    assert (lifted.number, lifted.type) == (1, CaseType.TEMPBAN)
    assert fake.unbans == [scene.member.id]
    assert fake.bans == set()
    unban, tempban = await all_cases(db, scene.guild.id)
    assert (unban.type, unban.reason, unban.user_id) == (CaseType.UNBAN, "expired", scene.member.id)
    assert unban.moderator_id == scene.bot.user.id
    assert unban.metadata == {"expired_case": 1}
    assert tempban.active
    assert await cog(scene).lift_expired(later(hours=3)) == []  # never claimed again
    assert fake.unbans == [scene.member.id]
    assert len(await all_cases(db, scene.guild.id)) == 2


async def test_the_lift_is_posted_in_the_mod_log(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord, mod_log: discord.TextChannel
) -> None:
    await say(f"{prefix(db)}tempban {scene.member.mention} 1h", scene.mod)
    await cog(scene).lift_expired(later(hours=2))
    [posted] = await drain()
    assert posted.channel.id == mod_log.id
    assert posted.embeds[0].title == "Case #2 · UNBAN"
    assert posted.embeds[0].description == "**Reason:** expired"


async def test_expired_timed_jail_and_timeout_are_lifted(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord, jail_role: discord.Role
) -> None:
    p = prefix(db)
    await say(f"{p}jail {scene.member.mention} 1h", scene.mod)
    await say(f"{p}timeout {scene.other.mention} 1h", scene.mod)
    assert [r.id for r in scene.member.roles if not r.is_default()] == [jail_role.id]
    lifted = await cog(scene).lift_expired(later(hours=2))
    assert sorted(c.type for c in lifted) == [CaseType.JAIL, CaseType.TIMEOUT]
    assert [r.id for r in scene.member.roles if not r.is_default()] == [scene.member_role.id]
    assert not await db.cases.is_jailed(scene.guild.id, scene.member.id)
    assert fake.edits[-1] == (scene.other.id, {"communication_disabled_until": None})
    assert not scene.other.is_timed_out()
    follow_ups = {(c.type, c.user_id, c.reason) for c in await all_cases(db, scene.guild.id)}
    assert (CaseType.UNJAIL, scene.member.id, "expired") in follow_ups
    assert (CaseType.UNTIMEOUT, scene.other.id, "expired") in follow_ups


async def test_two_workers_lift_an_expired_case_once(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord
) -> None:
    await say(f"{prefix(db)}tempban {scene.member.mention} 1h", scene.mod)
    first = cog(scene)
    second = type(first)(scene.bot, db)  # another bot process's cog, on the same database
    now = later(hours=2)
    lifted = await asyncio.gather(first.lift_expired(now), second.lift_expired(now))
    assert sorted(len(batch) for batch in lifted) == [0, 1]
    assert fake.unbans == [scene.member.id]
    assert [c.type for c in await all_cases(db, scene.guild.id)] == [
        CaseType.UNBAN,
        CaseType.TEMPBAN,
    ]


async def test_a_failed_lift_is_released_and_retried(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord
) -> None:
    await say(f"{prefix(db)}tempban {scene.member.mention} 1h", scene.mod)
    fake.fail_unban = True
    assert await cog(scene).lift_expired(later(hours=2)) == []
    assert [c.type for c in await all_cases(db, scene.guild.id)] == [CaseType.TEMPBAN]
    fake.fail_unban = False
    [lifted] = await cog(scene).lift_expired(later(hours=2))  # released: claimable at once
    assert lifted.number == 1
    assert fake.unbans == [scene.member.id]


async def test_cases_of_guilds_this_process_does_not_see_are_left_to_others(
    scene: Scene, db: botdata.Database
) -> None:
    await db.cases.create(
        OTHER_GUILD, scene.member.id, scene.mod.id, CaseType.TEMPBAN, "x", duration=timedelta(1)
    )
    assert await cog(scene).lift_expired(later(days=2)) == []
    [released] = await db.cases.claim_due(later(days=2))
    assert (released.guild_id, released.number) == (OTHER_GUILD, 1)
    assert await all_cases(db, OTHER_GUILD) == [released]  # no UNBAN written


async def test_unban_settles_a_pending_tempban(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord
) -> None:
    p = prefix(db)
    await say(f"{p}tempban {scene.member.mention} 1h", scene.mod)
    await say(f"{p}unban {scene.member.id} early", scene.mod)
    assert await cog(scene).lift_expired(later(hours=2)) == []
    assert fake.unbans == [scene.member.id]  # the manual unban only
    assert [c.type for c in await all_cases(db, scene.guild.id)] == [
        CaseType.UNBAN,
        CaseType.TEMPBAN,
    ]


async def test_the_expiry_loop_runs_while_the_cog_is_loaded(scene: Scene) -> None:
    task = cog(scene).expiry_loop
    assert not task.done()
    await scene.bot.unload_extension("botdata_cogs.moderation")
    assert task.cancelled()
    await scene.bot.load_extension("botdata_cogs.moderation")
    assert not cog(scene).expiry_loop.done()


@pytest.fixture
def clock(scene: Scene, db: botdata.Database) -> Iterator[ManualClock]:
    """A ManualClock on the handle for the test (the cogs' loops move onto it), then the
    handle's clock again."""
    # dpytest never sends READY: the loops wait for it before their first pass.
    assert not scene.bot.is_ready()
    scene.bot._ready.set()  # type: ignore[union-attr]
    before = db.clock
    db.clock = manual = ManualClock()
    yield manual
    db.clock = before


async def test_advancing_the_clock_lifts_an_expired_tempban_through_the_loop(
    scene: Scene, db: botdata.Database, fake: SimulatedDiscord, clock: ManualClock
) -> None:
    await say(f"{prefix(db)}tempban {scene.member.mention} 1h cool off", scene.mod)
    await clock.advance(minutes=59)
    assert fake.unbans == []
    await clock.advance(minutes=1, seconds=1)  # expired: the loop (asleep 30 s) passes
    assert fake.unbans == [scene.member.id]
    unban, tempban = await all_cases(db, scene.guild.id)
    assert (unban.type, unban.reason) == (CaseType.UNBAN, "expired")
    assert unban.created_at >= tempban.created_at


async def test_a_failing_expiry_pass_is_logged_and_the_loop_goes_on(
    scene: Scene,
    db: botdata.Database,
    fake: SimulatedDiscord,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await say(f"{prefix(db)}tempban {scene.member.mention} 1h", scene.mod)
    claim_due = db.cases.claim_due

    async def broken(now: datetime) -> list[CaseSchema]:
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(db.cases, "claim_due", broken)
    await clock.advance(hours=2)
    assert "lifting expired cases failed" in caplog.text
    assert fake.unbans == []
    monkeypatch.setattr(db.cases, "claim_due", claim_due)
    await clock.advance(seconds=EXPIRY_INTERVAL)
    assert fake.unbans == [scene.member.id]


# Slash ------------------------------------------------------------------------------------------


async def test_slash_warn(scene: Scene, db: botdata.Database) -> None:
    sent = await slash(scene.bot, scene.mod, "warn", member=scene.member, reason="via slash")
    assert [s.content for s in sent] == [f"Case #1: {scene.member} was warned."]
    [case] = await all_cases(db, scene.guild.id)
    assert (case.type, case.reason, case.user_id) == (CaseType.WARN, "via slash", scene.member.id)
    sent = await slash(scene.bot, scene.member, "warn", member=scene.other)
    assert len(sent) == 1
    assert "permission level 2" in (sent[0].content or "")
    assert sent[0].ephemeral
    assert len(await all_cases(db, scene.guild.id)) == 1
