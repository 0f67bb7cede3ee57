"""The levels cog through dpytest: XP from messages, level-ups and rewards, ranks, the
leaderboard and the admin commands, as members type them (both backends)."""

from __future__ import annotations

import sys
from typing import Any

import discord
import discord.ext.test as dpytest
import pytest
from discord.ext.test import backend

import botdata
from botdata.managers.xp import MAX_LEVEL, LevelSettings
from botdata_cogs import limits
from botdata_cogs.testing import SimulatedGuild, say, slash

#: Member ids for leaderboard rows (members need not be in the guild).
FAR_MEMBER = 420_000_000_000_000_000


def prefix(db: botdata.Database) -> str:
    return db.settings.DEFAULT_PREFIX


async def xp_of(
    db: botdata.Database, scene: SimulatedGuild, member: discord.abc.User
) -> int | None:
    row = await db.levels.get(scene.guild.id, member.id)
    return None if row is None else row.xp


async def configure(db: botdata.Database, scene: SimulatedGuild, **changes: Any) -> LevelSettings:
    return await db.levels.configure(scene.guild.id, LevelSettings(**changes))


@pytest.fixture
def mentions(simulated_guild: SimulatedGuild, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The ``allowed_mentions`` the bot sent each message with, by content."""
    seen: dict[str, Any] = {}
    original = simulated_guild.bot.http.send_message

    async def send_message(channel_id: int, *, params: Any) -> Any:
        # dpytest's fake send_message reads ``channel`` from its caller's locals.
        channel = sys._getframe(1).f_locals.get("channel")  # noqa: F841
        seen[params.payload.get("content")] = params.payload.get("allowed_mentions")
        return await original(channel_id, params=params)

    monkeypatch.setattr(simulated_guild.bot.http, "send_message", send_message)
    return seen


# XP from messages -----------------------------------------------------------------------------


async def test_a_message_earns_xp_once_per_cooldown(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    assert await say("hello there", simulated_guild.member) == []
    first = await xp_of(botdata_db, simulated_guild, simulated_guild.member)
    assert first is not None
    assert 15 <= first <= 25
    await say("and again", simulated_guild.member)  # within the default 60 s cooldown
    assert await xp_of(botdata_db, simulated_guild, simulated_guild.member) == first
    assert await xp_of(botdata_db, simulated_guild, simulated_guild.other) is None


async def test_no_xp_for_commands_bots_dms_and_no_xp_channels_or_roles(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await configure(botdata_db, simulated_guild, cooldown=0)
    p = prefix(botdata_db)
    await say(f"{p}rank", simulated_guild.member)  # a command
    await say(f"{p}nosuchsnippet", simulated_guild.member)  # <prefix><word>: a snippet's short form
    assert await xp_of(botdata_db, simulated_guild, simulated_guild.member) is None

    robot = backend.make_user("Robot", "0001")
    robot.bot = True
    await say("beep", backend.make_member(robot, simulated_guild.guild))
    assert await xp_of(botdata_db, simulated_guild, robot) is None

    dm = await simulated_guild.member.create_dm()
    await dpytest.message("hello in private", channel=dm, member=simulated_guild.member)
    assert await xp_of(botdata_db, simulated_guild, simulated_guild.member) is None

    quiet = backend.make_text_channel("quiet", simulated_guild.guild)
    await say(f"{p}levels settings noxpchannel add {quiet.mention}", simulated_guild.mod)
    await say("hello quietly", simulated_guild.member, quiet)
    muted = backend.make_role("Muted", simulated_guild.guild)
    await dpytest.add_role(simulated_guild.other, muted)
    await say(f"{p}levels settings noxprole add {muted.mention}", simulated_guild.mod)
    await say("hello muted", simulated_guild.other)
    assert await xp_of(botdata_db, simulated_guild, simulated_guild.member) is None
    assert await xp_of(botdata_db, simulated_guild, simulated_guild.other) is None

    await say("hello normally", simulated_guild.member)  # the same member elsewhere earns XP
    assert await xp_of(botdata_db, simulated_guild, simulated_guild.member) is not None


async def test_blacklisted_members_earn_nothing(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await configure(botdata_db, simulated_guild, cooldown=0)
    p = prefix(botdata_db)
    [reply] = await say(
        f"{p}levels blacklist {simulated_guild.member.mention}", simulated_guild.mod
    )
    assert reply.content == f"{simulated_guild.member} no longer earns XP."
    await say("hello", simulated_guild.member)
    assert await xp_of(botdata_db, simulated_guild, simulated_guild.member) == 0
    [reply] = await say(
        f"{p}levels unblacklist {simulated_guild.member.mention}", simulated_guild.mod
    )
    assert reply.content == f"{simulated_guild.member} earns XP again."
    await say("hello", simulated_guild.member)
    assert await xp_of(botdata_db, simulated_guild, simulated_guild.member) > 0
    [reply] = await say(
        f"{p}levels unblacklist {simulated_guild.other.mention}", simulated_guild.mod
    )
    assert reply.content == f"{simulated_guild.other} is not blacklisted."


async def test_a_levels_module_rule_stops_xp_for_the_member_or_the_channel(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await configure(botdata_db, simulated_guild, cooldown=0)
    p = prefix(botdata_db)
    [reply] = await say(
        f"{p}perm deny levels {simulated_guild.member.mention}", simulated_guild.mod
    )
    assert "deny module `levels`" in reply.content
    await say("hello", simulated_guild.member)
    assert await xp_of(botdata_db, simulated_guild, simulated_guild.member) is None
    await say("hello", simulated_guild.other)
    assert await xp_of(botdata_db, simulated_guild, simulated_guild.other) is not None
    quiet = backend.make_text_channel("quiet", simulated_guild.guild)
    [reply] = await say(f"{p}perm ignore levels {quiet.mention}", simulated_guild.mod)
    assert "ignore module `levels`" in reply.content
    before = await xp_of(botdata_db, simulated_guild, simulated_guild.other)
    await say("hello quietly", simulated_guild.other, quiet)
    assert await xp_of(botdata_db, simulated_guild, simulated_guild.other) == before
    [rule, _] = await botdata_db.permissions.rules(simulated_guild.guild.id)
    await botdata_db.permissions.remove_rule(simulated_guild.guild.id, rule.id)
    await say("hello again", simulated_guild.member)
    assert await xp_of(botdata_db, simulated_guild, simulated_guild.member) is not None


# Level-ups and rewards --------------------------------------------------------------------------


async def test_level_up_message_pings_only_the_member_and_gives_the_reward(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, mentions: dict[str, Any]
) -> None:
    reward = backend.make_role("Level 1", simulated_guild.guild)
    reward.position = 5
    await configure(botdata_db, simulated_guild, role_rewards={1: reward.id})
    await botdata_db.levels.set_xp(simulated_guild.guild.id, simulated_guild.member.id, 99)
    [announcement] = await say("this one levels me up", simulated_guild.member)
    content = f"<@{simulated_guild.member.id}> reached level 1"
    assert announcement.content == content
    assert announcement.channel.id == simulated_guild.channel.id
    assert mentions[content] == {"parse": [], "users": [simulated_guild.member.id]}
    assert reward in simulated_guild.member.roles
    assert (
        await botdata_db.levels.get(simulated_guild.guild.id, simulated_guild.member.id)
    ).level == 1


async def test_level_up_channel_and_highest_only_rewards(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    first = backend.make_role("Level 1", simulated_guild.guild)
    second = backend.make_role("Level 2", simulated_guild.guild)
    first.position, second.position = 5, 6
    ups = backend.make_text_channel("level-ups", simulated_guild.guild)
    await configure(
        botdata_db,
        simulated_guild,
        cooldown=0,
        role_rewards={1: first.id, 2: second.id},
        stack_rewards=False,
        level_up_channel_id=ups.id,
    )
    await botdata_db.levels.set_xp(simulated_guild.guild.id, simulated_guild.member.id, 99)
    [announcement] = await say("level 1", simulated_guild.member)
    assert (announcement.channel.id, announcement.content) == (
        ups.id,
        f"<@{simulated_guild.member.id}> reached level 1",
    )
    assert first in simulated_guild.member.roles
    await botdata_db.levels.set_xp(simulated_guild.guild.id, simulated_guild.member.id, 254)
    [announcement] = await say("level 2", simulated_guild.member)
    assert announcement.content == f"<@{simulated_guild.member.id}> reached level 2"
    assert second in simulated_guild.member.roles
    assert first not in simulated_guild.member.roles  # highest only: the lower reward is taken
    assert await say("no level-up", simulated_guild.member) == []


# rank and leaderboard ---------------------------------------------------------------------------


async def test_rank_shows_rank_level_xp_and_progress(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    [reply] = await say(f"{p}rank", simulated_guild.member)
    assert reply.content == f"{simulated_guild.member} has no XP yet."
    await botdata_db.levels.set_xp(simulated_guild.guild.id, simulated_guild.other.id, 500)
    await botdata_db.levels.set_xp(
        simulated_guild.guild.id, simulated_guild.member.id, 300
    )  # level 2: 255..475
    [reply] = await say(f"{p}rank", simulated_guild.member)
    embed = reply.embeds[0]
    assert embed.title == f"Rank of {simulated_guild.member.display_name}"
    fields = {f.name: f.value for f in embed.fields}
    assert (fields["Rank"], fields["Level"], fields["XP"]) == ("#2", "2", "300")
    assert fields["Progress to level 3"].endswith(" 45 / 220 XP")
    [reply] = await say(f"{p}rank {simulated_guild.other.mention}", simulated_guild.member)
    fields = {f.name: f.value for f in reply.embeds[0].fields}
    assert (fields["Rank"], fields["Level"], fields["XP"]) == ("#1", "3", "500")


async def test_leaderboard_pages(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    [reply] = await say(f"{p}leaderboard", simulated_guild.member)
    assert reply.content == "Nobody has XP yet."
    for i in range(12):
        await botdata_db.levels.set_xp(simulated_guild.guild.id, FAR_MEMBER + i, 1000 - i * 50)
    [reply] = await say(f"{p}leaderboard", simulated_guild.member)
    embed = reply.embeds[0]
    lines = (embed.description or "").split("\n")
    assert len(lines) == 10
    assert lines[0] == f"**#1** <@{FAR_MEMBER}> · level 4 · 1000 XP"
    assert lines[9] == f"**#10** <@{FAR_MEMBER + 9}> · level 3 · 550 XP"
    assert embed.footer.text == f"Page 1 · next: {p}leaderboard 2"
    [reply] = await say(f"{p}leaderboard 2", simulated_guild.member)
    embed = reply.embeds[0]
    assert (embed.description or "").split("\n") == [
        f"**#11** <@{FAR_MEMBER + 10}> · level 3 · 500 XP",
        f"**#12** <@{FAR_MEMBER + 11}> · level 2 · 450 XP",
    ]
    assert embed.footer.text == "Page 2"
    [reply] = await say(f"{p}leaderboard 3", simulated_guild.member)
    assert reply.content == "Page 3 is empty."
    [reply] = await say(f"{p}leaderboard 0", simulated_guild.member)
    assert "Usage" in reply.content


# Admin commands ---------------------------------------------------------------------------------


async def test_set_setlevel_and_reset(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    [reply] = await say(f"{p}levels set {simulated_guild.member.mention} 500", simulated_guild.mod)
    assert reply.content == f"{simulated_guild.member} now has 500 XP (level 3)."
    assert await xp_of(botdata_db, simulated_guild, simulated_guild.member) == 500
    [reply] = await say(
        f"{p}levels setlevel {simulated_guild.other.mention} 5", simulated_guild.mod
    )
    assert reply.content == f"{simulated_guild.other} is now level 5 (1150 XP)."
    assert await xp_of(botdata_db, simulated_guild, simulated_guild.other) == 1150

    [reply] = await say(f"{p}levels reset {simulated_guild.member.mention}", simulated_guild.mod)
    assert reply.content == f"{simulated_guild.member}'s XP was reset."
    assert await xp_of(botdata_db, simulated_guild, simulated_guild.member) is None
    [reply] = await say(f"{p}levels reset {simulated_guild.member.mention}", simulated_guild.mod)
    assert reply.content == f"{simulated_guild.member} has no XP."

    for words in ("", "all", "everyone confirm"):
        [reply] = await say(f"{p}levels reset {words}", simulated_guild.mod)
        assert f"`{p}levels reset all confirm`" in reply.content
    assert (
        await xp_of(botdata_db, simulated_guild, simulated_guild.other) == 1150
    )  # nothing reset without the words
    await botdata_db.levels.set_xp(simulated_guild.guild.id, simulated_guild.member.id, 10)
    [reply] = await say(f"{p}levels reset all confirm", simulated_guild.mod)
    assert reply.content == "Reset the XP of 2 members."
    assert await botdata_db.levels.leaderboard(simulated_guild.guild.id) == []

    [reply] = await say(f"{p}levels", simulated_guild.mod)
    assert reply.content == (
        "Subcommands of `levels`: `blacklist`, `reset`, `set`, `setlevel`, `settings`,"
        " `unblacklist`."
    )


async def test_a_member_without_the_level_is_refused_and_nothing_is_written(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    await botdata_db.levels.set_xp(simulated_guild.guild.id, simulated_guild.other.id, 300)
    before = await botdata_db.levels.settings_for(simulated_guild.guild.id)
    for command in (
        f"levels set {simulated_guild.member.mention} 500",
        f"levels setlevel {simulated_guild.member.mention} 5",
        f"levels reset {simulated_guild.other.mention}",
        "levels reset all confirm",
        f"levels blacklist {simulated_guild.other.mention}",
        f"levels unblacklist {simulated_guild.other.mention}",
        "levels settings",
        "levels settings cooldown 5",
    ):
        [reply] = await say(f"{p}{command}", simulated_guild.member)
        assert "permission level 5" in reply.content, command
    assert await xp_of(botdata_db, simulated_guild, simulated_guild.member) is None
    row = await botdata_db.levels.get(simulated_guild.guild.id, simulated_guild.other.id)
    assert (row.xp, row.blacklisted) == (300, False)
    assert await botdata_db.levels.settings_for(simulated_guild.guild.id) == before


async def test_bad_input_gets_a_clear_reply_and_writes_nothing(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    await botdata_db.levels.set_xp(simulated_guild.guild.id, simulated_guild.member.id, 40)
    [reply] = await say(f"{p}levels set {simulated_guild.member.mention} -5", simulated_guild.mod)
    assert "must be between 0 and 9007199254740991 but received -5" in reply.content
    assert f"Usage: `{p}levels set <member> <xp>`" in reply.content
    [reply] = await say(f"{p}levels set {simulated_guild.member.mention} lots", simulated_guild.mod)
    assert "Usage" in reply.content
    [reply] = await say(
        f"{p}levels setlevel {simulated_guild.member.mention} -1", simulated_guild.mod
    )
    assert "must be between 0 and" in reply.content
    [reply] = await say(f"{p}levels set {simulated_guild.guild.me.mention} 5", simulated_guild.mod)
    assert "Bots do not earn XP." in reply.content
    assert await xp_of(botdata_db, simulated_guild, simulated_guild.member) == 40
    assert await xp_of(botdata_db, simulated_guild, simulated_guild.guild.me) is None

    before = await botdata_db.levels.settings_for(simulated_guild.guild.id)
    bad = {
        "xp 30-20": "Invalid setting: xp_min (30) is above xp_max (20).",
        "xp lots": "Give the XP range as min-max, e.g. 15-25.",
        "cooldown -1": "Invalid setting: cooldown: Input should be greater than or equal to 0.",
        "cooldown soon": "`soon` is not a number of seconds.",
        "curve 0": "Invalid setting: curve_multiplier:",
        "reward 0 Members": "Invalid setting: role_rewards.0.[key]:",
        "reward 3 remove": "Level 3 has no reward.",
        "reward 3": "Give a level, then a role or remove: `reward 5 @Role`.",
        "multiplier 2": "Give a role, then a factor or remove: `multiplier @Role 2`.",
        "reward 3 NoSuchRole": 'Role "NoSuchRole" not found.',
        "multiplier Members 11": "Invalid setting: role_multipliers.",
        "multiplier Members remove": "Members has no multiplier.",
        "noxpchannel toggle #general": "Say `add` or `remove`, then which one.",
        "stacking maybe": "Stacking is `on` or `off`.",
        "levelupchannel nowhere": 'Channel "nowhere" not found.',
        "colour red": "Settings are xp, cooldown, curve,",
        "cooldown": "Give a value for `cooldown`.",
        "xp 1234567890-5": "`1234567890` is not an XP amount (too large or not a number).",
        f"xp 5-{'9' * 5000}": "is not an XP amount (too large or not a number).",
        f"reward {'9' * 5000} Members": "is not a level (too large or not a number).",
        "reward 99999999999999999999 Members": "is not a level (too large or not a number).",
        f"reward {MAX_LEVEL + 1} Members": f"A reward's level is at most {MAX_LEVEL}.",
    }
    for words, expected in bad.items():
        [reply] = await say(f"{p}levels settings {words}", simulated_guild.mod)
        assert expected in reply.content, (words, reply.content)
        assert limits.length(reply.content) <= limits.REFUSAL
    assert await botdata_db.levels.settings_for(simulated_guild.guild.id) == before


async def test_settings_show_and_change(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    role = simulated_guild.member_role
    ups = backend.make_text_channel("level-ups", simulated_guild.guild)
    [reply] = await say(f"{p}levels settings", simulated_guild.mod)
    description = reply.embeds[0].description or ""
    assert "`xp` XP per message: 15-25" in description
    assert "`levelupchannel` Level-up messages: where the member talked" in description

    changes = {
        "xp 5-10": "Updated. XP per message: 5-10",
        "cooldown 30": "Updated. Cooldown: 30s",
        "curve 1.5": "Updated. Curve multiplier: x1.5",
        f"noxpchannel add {ups.mention}": f"Updated. No-XP channels: <#{ups.id}>",
        f"noxprole add {role.mention}": f"Updated. No-XP roles: <@&{role.id}>",
        f"multiplier {role.mention} 2": f"Updated. Role multipliers: <@&{role.id}> x2",
        f"reward 5 {role.mention}": f"Updated. Rewards: level 5 <@&{role.id}>",
        "stacking off": "Updated. Stacking rewards: off (highest only)",
        f"levelupchannel {ups.mention}": f"Updated. Level-up messages: <#{ups.id}>",
    }
    for words, expected in changes.items():
        [reply] = await say(f"{p}levels settings {words}", simulated_guild.mod)
        assert reply.content == expected, words
    settings = await botdata_db.levels.settings_for(simulated_guild.guild.id)
    assert settings == LevelSettings(
        xp_min=5,
        xp_max=10,
        cooldown=30,
        curve_multiplier=1.5,
        no_xp_channel_ids={ups.id},
        no_xp_role_ids={role.id},
        role_multipliers={role.id: 2},
        role_rewards={5: role.id},
        stack_rewards=False,
        level_up_channel_id=ups.id,
    )
    for words in (
        f"noxpchannel remove {ups.mention}",
        f"noxprole remove {role.mention}",
        f"multiplier {role.mention} remove",
        "reward 5 remove",
        "stacking on",
        "levelupchannel none",
    ):
        [reply] = await say(f"{p}levels settings {words}", simulated_guild.mod)
        assert reply.content.startswith("Updated."), (words, reply.content)
    settings = await botdata_db.levels.settings_for(simulated_guild.guild.id)
    assert settings == LevelSettings(xp_min=5, xp_max=10, cooldown=30, curve_multiplier=1.5)


async def test_slash_levels_set(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    [sent] = await slash(
        simulated_guild.bot,
        simulated_guild.mod,
        "levels set",
        member=simulated_guild.member,
        xp=500,
    )
    assert sent.content == f"{simulated_guild.member} now has 500 XP (level 3)."
    assert await xp_of(botdata_db, simulated_guild, simulated_guild.member) == 500
    [refused] = await slash(
        simulated_guild.bot,
        simulated_guild.member,
        "levels set",
        member=simulated_guild.other,
        xp=5,
    )
    assert "permission level 5" in (refused.content or "")
    assert await xp_of(botdata_db, simulated_guild, simulated_guild.other) is None
