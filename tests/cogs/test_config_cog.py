"""The config cog through dpytest, as a member would type it."""

from __future__ import annotations

import discord
import discord.ext.test as dpytest
from discord.ext import commands

import botdata
from botdata.models import AccessType, PermissionType
from tests.cogs.conftest import Scene, say


async def test_prefix_is_set_used_and_reset(scene: Scene, db: botdata.Database) -> None:
    default = db.settings.DEFAULT_PREFIX
    [reply] = await say(f"{default}config prefix ?", scene.mod)
    assert reply.content == "Prefix is now `?`."
    assert (await db.guilds.config(scene.guild.id)).prefix == "?"
    [reply] = await say("?config prefix reset", scene.mod)  # the new prefix works at once
    assert reply.content == f"Prefix is now `{default}`."
    assert (await db.guilds.config(scene.guild.id)).prefix is None


async def test_a_member_without_the_level_is_refused_and_nothing_changes(
    scene: Scene, db: botdata.Database
) -> None:
    [reply] = await say(f"{db.settings.DEFAULT_PREFIX}config prefix ?", scene.member)
    assert "permission level 5" in reply.content
    assert (await db.guilds.config(scene.guild.id)).prefix is None


async def test_bad_input_gets_a_clear_reply_and_writes_nothing(
    scene: Scene, db: botdata.Database
) -> None:
    p = db.settings.DEFAULT_PREFIX
    [reply] = await say(f"{p}config prefix waytoolongprefix", scene.mod)
    assert "1-10 characters" in reply.content
    [reply] = await say(f"{p}config level 9", scene.mod)
    assert "Usage" in reply.content
    [reply] = await say(f"{p}config log nowhere", scene.mod)
    assert "Usage" in reply.content
    config = await db.guilds.config(scene.guild.id)
    assert config.prefix is None
    assert config.mod_log_id is None


async def test_log_jail_level_and_overview(scene: Scene, db: botdata.Database) -> None:
    p = db.settings.DEFAULT_PREFIX
    channel = scene.channel
    await say(f"{p}config log mod {channel.mention}", scene.mod)
    await say(f"{p}config jail {scene.member_role.mention} {channel.mention}", scene.mod)
    [reply] = await say(f"{p}config level 3 {scene.member_role.mention}", scene.mod)
    assert reply.content == f"Level 3 is now {scene.member_role.mention}."
    config = await db.guilds.config(scene.guild.id)
    assert config.mod_log_id == channel.id
    assert (config.jail_role_id, config.jail_channel_id) == (scene.member_role.id, channel.id)
    assert config.perm_level_3_role_id == scene.member_role.id
    [reply] = await say(f"{p}config", scene.mod)
    fields = {f.name: f.value for f in reply.embeds[0].fields}
    assert f"mod: <#{channel.id}>" in fields["Logs"]
    assert f"3: <@&{scene.member_role.id}>" in fields["Permission levels"]


async def test_each_cog_loads_alone_and_leaves_a_bot_handle_open(db: botdata.Database) -> None:
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.all())
    bot.botdata = db  # type: ignore[attr-defined]
    await bot._async_setup_hook()
    dpytest.configure(bot)
    await bot.load_extension("botdata_cogs.config")
    assert bot.get_cog("Config") is not None
    await bot.unload_extension("botdata_cogs.config")
    assert not db.closed


async def test_blacklist_rule_refuses_and_ignore_rule_silences(
    scene: Scene, db: botdata.Database
) -> None:
    p = db.settings.DEFAULT_PREFIX
    rule = await db.permissions.add_rule(
        scene.guild.id,
        access=AccessType.BLACKLIST,
        target_type=PermissionType.MEMBER,
        target_id=scene.mod.id,
        command="config",
    )
    [reply] = await say(f"{p}config prefix ?", scene.mod)
    assert "not allowed" in reply.content
    await db.permissions.remove_rule(scene.guild.id, rule.id)
    await db.permissions.add_rule(
        scene.guild.id,
        access=AccessType.IGNORE,
        target_type=PermissionType.CHANNEL,
        target_id=scene.channel.id,
        module="config",
    )
    assert await say(f"{p}config", scene.mod) == []
    assert (await db.guilds.config(scene.guild.id)).prefix is None


async def test_nobody_sets_or_clears_a_level_at_or_above_their_own(
    scene: Scene, db: botdata.Database
) -> None:
    p = db.settings.DEFAULT_PREFIX
    role = scene.member_role.mention
    for command in (f"level 7 {role}", f"level 5 {role}", "level 5", "level 6"):
        [reply] = await say(f"{p}config {command}", scene.mod)  # the mod is level 5
        assert reply.content == "You can only set or clear levels below your own (5).", command
    config = await db.guilds.config(scene.guild.id)
    assert (config.perm_level_5_role_id, config.perm_level_7_role_id) == (scene.mod_role.id, None)
    [reply] = await say(f"{p}config level 4 {role}", scene.mod)
    assert reply.content == f"Level 4 is now {role}."
    scene.guild.owner_id = scene.other.id
    [reply] = await say(f"{p}config level 7 {role}", scene.other)
    assert reply.content == f"Level 7 is now {role}."
    [reply] = await say(f"{p}config level 5", scene.other)
    assert reply.content == "Level 5 has no role now."
    config = await db.guilds.config(scene.guild.id)
    assert (config.perm_level_4_role_id, config.perm_level_7_role_id) == (
        scene.member_role.id,
        scene.member_role.id,
    )
    assert config.perm_level_5_role_id is None
