"""A dpytest guild with the cogs loaded over the test's botdata handle (both backends).

Members (``scene``): the moderator (permission level 5 through the "Mods" role, whose position is
above the members'), two ordinary members, and the bot. Use :func:`say` to type a message as a
member and get back what the bot sent.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import discord
import discord.ext.test as dpytest
import pytest
from discord.ext import commands
from discord.ext.test import backend

import botdata
from botdata_cogs.core import guild_prefix
from simulated_discord import enforce_limits

MOD_LEVEL = 5


@dataclass
class Scene:
    bot: commands.Bot
    guild: discord.Guild
    channel: discord.TextChannel
    mod: discord.Member
    member: discord.Member
    other: discord.Member
    mod_role: discord.Role
    member_role: discord.Role


@pytest.fixture
async def bot(db: botdata.Database) -> AsyncIterator[commands.Bot]:
    bot = commands.Bot(command_prefix=guild_prefix, intents=discord.Intents.all())
    bot.botdata = db  # type: ignore[attr-defined]
    await bot._async_setup_hook()
    dpytest.configure(bot, members=["Mod", "Member", "Other"])
    enforce_limits(bot)  # a message over Discord's limits fails as on Discord
    await bot.load_extension("botdata_cogs")
    yield bot
    await bot.unload_extension("botdata_cogs")
    await dpytest.empty_queue()
    assert not db.closed, "the extension closed a handle it did not open"


@pytest.fixture
async def scene(bot: commands.Bot, db: botdata.Database) -> Scene:
    config = dpytest.get_config()
    guild = config.guilds[0]
    mod, member, other = config.members
    mod_role = backend.make_role("Mods", guild, permissions=0)
    member_role = backend.make_role("Members", guild, permissions=0)
    bot_role = backend.make_role("Bot", guild, permissions=discord.Permissions.all().value)
    bot_role.position, mod_role.position, member_role.position = 20, 10, 2
    await dpytest.add_role(guild.me, bot_role)
    await dpytest.add_role(mod, mod_role)
    await dpytest.add_role(member, member_role)
    await dpytest.add_role(other, member_role)
    await db.permissions.set_level_role(guild.id, MOD_LEVEL, mod_role.id)
    return Scene(bot, guild, config.channels[0], mod, member, other, mod_role, member_role)


async def say(
    content: str, member: discord.Member, channel: discord.abc.Messageable | None = None
) -> list[discord.Message]:
    """Send ``content`` as ``member``; return every message the bot sent in reply."""
    target = channel if channel is not None else dpytest.get_config().channels[0]
    # dpytest re-raises command errors; the cog has replied to them already.
    with contextlib.suppress(commands.CommandError):
        await dpytest.message(content, channel=target, member=member)
    sent = []
    while not dpytest.sent_queue.empty():
        sent.append(await dpytest.sent_queue.get())
    return sent
