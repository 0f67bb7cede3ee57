"""The config cog through dpytest, as a member would type it."""

from __future__ import annotations

import discord
import discord.ext.test as dpytest
from discord.ext import commands

import botdata
from botdata.models import AccessType, PermissionType
from botdata_cogs.testing import SimulatedGuild, say


async def test_prefix_is_set_used_and_reset(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    default = botdata_db.settings.DEFAULT_PREFIX
    [reply] = await say(f"{default}config prefix ?", simulated_guild.mod)
    assert reply.content == "Prefix is now `?`."
    assert (await botdata_db.guilds.config(simulated_guild.guild.id)).prefix == "?"
    [reply] = await say("?config prefix reset", simulated_guild.mod)  # the new prefix works at once
    assert reply.content == f"Prefix is now `{default}`."
    assert (await botdata_db.guilds.config(simulated_guild.guild.id)).prefix is None


async def test_a_member_without_the_level_is_refused_and_nothing_changes(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    [reply] = await say(
        f"{botdata_db.settings.DEFAULT_PREFIX}config prefix ?", simulated_guild.member
    )
    assert "permission level 5" in reply.content
    assert (await botdata_db.guilds.config(simulated_guild.guild.id)).prefix is None


async def test_bad_input_gets_a_clear_reply_and_writes_nothing(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = botdata_db.settings.DEFAULT_PREFIX
    [reply] = await say(f"{p}config prefix waytoolongprefix", simulated_guild.mod)
    assert "1-10 characters" in reply.content
    [reply] = await say(f"{p}config level 9", simulated_guild.mod)
    assert "Usage" in reply.content
    [reply] = await say(f"{p}config log nowhere", simulated_guild.mod)
    assert "Usage" in reply.content
    config = await botdata_db.guilds.config(simulated_guild.guild.id)
    assert config.prefix is None
    assert config.mod_log_id is None


async def test_log_jail_level_and_overview(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = botdata_db.settings.DEFAULT_PREFIX
    channel = simulated_guild.channel
    await say(f"{p}config log mod {channel.mention}", simulated_guild.mod)
    await say(
        f"{p}config jail {simulated_guild.member_role.mention} {channel.mention}",
        simulated_guild.mod,
    )
    [reply] = await say(
        f"{p}config level 3 {simulated_guild.member_role.mention}", simulated_guild.mod
    )
    assert reply.content == f"Level 3 is now {simulated_guild.member_role.mention}."
    config = await botdata_db.guilds.config(simulated_guild.guild.id)
    assert config.mod_log_id == channel.id
    assert (config.jail_role_id, config.jail_channel_id) == (
        simulated_guild.member_role.id,
        channel.id,
    )
    assert config.perm_level_3_role_id == simulated_guild.member_role.id
    [reply] = await say(f"{p}config", simulated_guild.mod)
    fields = {f.name: f.value for f in reply.embeds[0].fields}
    assert f"mod: <#{channel.id}>" in fields["Logs"]
    assert f"3: <@&{simulated_guild.member_role.id}>" in fields["Permission levels"]


async def test_each_cog_loads_alone_and_leaves_a_bot_handle_open(
    botdata_db: botdata.Database,
) -> None:
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.all())
    bot.botdata = botdata_db  # type: ignore[attr-defined]
    await bot._async_setup_hook()
    dpytest.configure(bot)
    await bot.load_extension("botdata_cogs.config")
    assert bot.get_cog("Config") is not None
    await bot.unload_extension("botdata_cogs.config")
    assert not botdata_db.closed


async def test_blacklist_rule_refuses_and_ignore_rule_silences(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = botdata_db.settings.DEFAULT_PREFIX
    rule = await botdata_db.permissions.add_rule(
        simulated_guild.guild.id,
        access=AccessType.BLACKLIST,
        target_type=PermissionType.MEMBER,
        target_id=simulated_guild.mod.id,
        command="config",
    )
    [reply] = await say(f"{p}config prefix ?", simulated_guild.mod)
    assert "not allowed" in reply.content
    await botdata_db.permissions.remove_rule(simulated_guild.guild.id, rule.id)
    await botdata_db.permissions.add_rule(
        simulated_guild.guild.id,
        access=AccessType.IGNORE,
        target_type=PermissionType.CHANNEL,
        target_id=simulated_guild.channel.id,
        module="config",
    )
    assert await say(f"{p}config", simulated_guild.mod) == []
    assert (await botdata_db.guilds.config(simulated_guild.guild.id)).prefix is None


async def test_nobody_sets_or_clears_a_level_at_or_above_their_own(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = botdata_db.settings.DEFAULT_PREFIX
    role = simulated_guild.member_role.mention
    for command in (f"level 7 {role}", f"level 5 {role}", "level 5", "level 6"):
        [reply] = await say(f"{p}config {command}", simulated_guild.mod)  # the mod is level 5
        assert reply.content == "You can only set or clear levels below your own (5).", command
    config = await botdata_db.guilds.config(simulated_guild.guild.id)
    assert (config.perm_level_5_role_id, config.perm_level_7_role_id) == (
        simulated_guild.mod_role.id,
        None,
    )
    [reply] = await say(f"{p}config level 4 {role}", simulated_guild.mod)
    assert reply.content == f"Level 4 is now {role}."
    simulated_guild.guild.owner_id = simulated_guild.other.id
    [reply] = await say(f"{p}config level 7 {role}", simulated_guild.other)
    assert reply.content == f"Level 7 is now {role}."
    [reply] = await say(f"{p}config level 5", simulated_guild.other)
    assert reply.content == "Level 5 has no role now."
    config = await botdata_db.guilds.config(simulated_guild.guild.id)
    assert (config.perm_level_4_role_id, config.perm_level_7_role_id) == (
        simulated_guild.member_role.id,
        simulated_guild.member_role.id,
    )
    assert config.perm_level_5_role_id is None
