"""botdata's ready-made cogs, as a discord.py extension.

``await bot.load_extension("cogs")`` loads every cog; each also loads alone, e.g.
``await bot.load_extension("cogs.moderation")``. The extensions use the bot's ``bot.botdata``
handle when it holds an open one (it stays the bot's to close) and otherwise connect from the
settings themselves, store the handle in ``bot.botdata`` and close it when the last is unloaded.
Use :func:`cogs.core.guild_prefix` as the bot's ``command_prefix`` for per-guild prefixes.
"""

from __future__ import annotations

from discord.ext import commands

#: Every cog extension, in load order.
EXTENSIONS: tuple[str, ...] = (
    "cogs.config",
    "cogs.permissions",
    "cogs.moderation",
    "cogs.cases",
    "cogs.notes",
    "cogs.starboard",
    "cogs.privacy",
    "cogs.levels",
    "cogs.afk",
    "cogs.snippets",
    "cogs.reminders",
)


async def setup(bot: commands.Bot) -> None:
    """Load every cog extension."""
    for name in EXTENSIONS:
        await bot.load_extension(name)


async def teardown(bot: commands.Bot) -> None:
    """Unload the cog extensions this package loaded."""
    for name in reversed(EXTENSIONS):
        if name in bot.extensions:
            await bot.unload_extension(name)
