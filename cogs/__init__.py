"""botdata's ready-made cogs, as a discord.py extension (needs the ``botdata[cogs]`` extra).

The repository's ``cogs/`` folder installs as the package ``botdata_cogs``, a name no bot's own
``cogs`` package collides with. ``await bot.load_extension("botdata_cogs")`` loads every cog;
each also loads alone, e.g. ``await bot.load_extension("botdata_cogs.moderation")``. The
extensions use the bot's ``bot.botdata`` handle when it holds an open one (it stays the bot's to
close) and otherwise connect from the settings themselves, store the handle in ``bot.botdata``
and close it when the last is unloaded.
Use :func:`botdata_cogs.core.guild_prefix` as the bot's ``command_prefix`` for per-guild prefixes.

The package and single cogs mix, in any order:

- loading the package loads the cog extensions that are not loaded yet and remembers which; a
  cog loaded on its own before stays as it is (same cog object, same state);
- unloading the package unloads only those it loaded: the others stay loaded, and so does the
  handle they use;
- when loading the package fails half-way, it unloads what it loaded and raises: the bot is
  left as it was before, never half-loaded.

discord.py removes every cog, command and listener of a module under the package when it
unloads or fails to load, also those of an extension loaded on its own; :func:`teardown`
(which discord.py calls right after) reloads such extensions, before it unloads its own so that
the handle never loses its last user on the way.
"""

from __future__ import annotations

import logging
import weakref

from discord.ext import commands

log = logging.getLogger(__name__)

#: Every cog extension, in load order, under the name this package is imported as
#: (``botdata_cogs`` when installed).
EXTENSIONS: tuple[str, ...] = tuple(
    f"{__name__}.{cog}"
    for cog in (
        "config",
        "permissions",
        "moderation",
        "cases",
        "notes",
        "starboard",
        "privacy",
        "levels",
        "afk",
        "snippets",
        "reminders",
    )
)

# The extensions the package loaded, per bot, in load order.
_loaded: weakref.WeakKeyDictionary[commands.Bot, list[str]] = weakref.WeakKeyDictionary()


async def setup(bot: commands.Bot) -> None:
    """Load every cog extension that is not loaded yet.

    Raises what the failing extension's load raised (discord.py's ``ExtensionError``); then
    :func:`teardown` unloads those loaded here.
    """
    loaded = _loaded[bot] = []
    for name in EXTENSIONS:
        if name not in bot.extensions:
            await bot.load_extension(name)
            loaded.append(name)


async def teardown(bot: commands.Bot) -> None:
    """Put back the cogs of extensions loaded on their own (discord.py has just removed them),
    then unload the extensions :func:`setup` loaded."""
    loaded = _loaded.pop(bot, [])
    for name in [n for n in bot.extensions if n.startswith(f"{__name__}.") and n not in loaded]:
        try:
            await bot.reload_extension(name)
        except commands.ExtensionError:
            log.exception("extension %s lost its cogs with the package and failed to reload", name)
    for name in reversed(loaded):
        if name in bot.extensions:
            await bot.unload_extension(name)
