"""Loading the ``botdata_cogs`` package and single cog extensions in any order (both backends).

In this process the bot holds the test's handle (``bot.botdata``): the extensions never close it.
Handles the extensions open themselves are tested in a child process (``botdata.connect()``
from the environment, on the session database), where closing one is observable.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import AsyncIterator
from typing import Any

import discord
import discord.ext.test as dpytest
import pytest
from discord.ext import commands

import botdata
import botdata_cogs
from botdata_cogs import EXTENSIONS
from botdata_cogs.core import guild_prefix
from botdata_cogs.testing import say
from tests.support import REDIS_URL, run_python

#: The cog of each extension.
COGS = {
    "Config",
    "Permissions",
    "Moderation",
    "Cases",
    "Notes",
    "Starboard",
    "Privacy",
    "Levels",
    "AFK",
    "Snippets",
    "Reminders",
}


class Blocker(commands.Cog, name="AFK"):
    """Takes the AFK cog's name: loading ``botdata_cogs.afk`` then fails."""


@pytest.fixture
async def bot(botdata_db: botdata.Database) -> AsyncIterator[commands.Bot]:
    """A dpytest bot on the test's handle with no extension loaded."""
    bot = commands.Bot(command_prefix=guild_prefix, intents=discord.Intents.all())
    bot.botdata = botdata_db  # type: ignore[attr-defined]
    await bot._async_setup_hook()
    dpytest.configure(bot, members=["Member"])
    yield bot
    for name in list(bot.extensions):
        await bot.unload_extension(name)
    await dpytest.empty_queue()
    assert not botdata_db.closed


async def snippets_answer(db: botdata.Database) -> bool:
    """Whether the snippets commands work: create one, then post it."""
    member = dpytest.get_config().members[0]
    p = db.settings.DEFAULT_PREFIX
    await say(f"{p}snippet create hello Hello there", member)
    replies = await say(f"{p}snippet hello", member)
    await db.snippets.delete(member.guild.id, "hello", actor_id=member.id, is_moderator=True)
    return [reply.content for reply in replies] == ["Hello there"]


async def test_the_package_after_one_of_its_cogs_loads_the_rest_and_keeps_it(
    bot: commands.Bot, botdata_db: botdata.Database
) -> None:
    await bot.load_extension("botdata_cogs.snippets")
    snippets = bot.get_cog("Snippets")
    await bot.load_extension("botdata_cogs")  # failed: botdata_cogs.snippets was loaded already
    assert set(bot.cogs) == COGS
    assert set(bot.extensions) == {"botdata_cogs", *EXTENSIONS}
    assert bot.get_cog("Snippets") is snippets  # kept, not reloaded
    assert botdata_db.reminders.running
    assert await snippets_answer(botdata_db)

    await bot.unload_extension("botdata_cogs")  # unloads what it loaded, nothing else
    assert set(bot.extensions) == {"botdata_cogs.snippets"}
    assert set(bot.cogs) == {"Snippets"}
    assert not botdata_db.reminders.running
    assert await snippets_answer(botdata_db)
    # and it loads again the same way
    await bot.load_extension("botdata_cogs")
    assert set(bot.cogs) == COGS
    await bot.unload_extension("botdata_cogs")
    assert set(bot.cogs) == {"Snippets"}
    assert await snippets_answer(botdata_db)


async def test_a_package_load_failing_half_way_leaves_the_bot_as_it_was(
    bot: commands.Bot, botdata_db: botdata.Database
) -> None:
    await bot.load_extension("botdata_cogs.snippets")
    await bot.add_cog(Blocker())
    with pytest.raises(commands.ExtensionFailed):
        await bot.load_extension("botdata_cogs")  # the AFK cog fails, after seven others
    assert set(bot.extensions) == {"botdata_cogs.snippets"}
    assert set(bot.cogs) == {"Snippets", "AFK"}
    assert isinstance(bot.get_cog("AFK"), Blocker)
    assert await snippets_answer(botdata_db)
    # nothing of the cogs it had loaded is left behind
    assert bot.get_command("config") is None
    assert bot.get_command("case") is None
    assert not botdata_db.reminders.running

    await bot.remove_cog("AFK")
    await bot.load_extension("botdata_cogs")
    assert set(bot.cogs) == COGS


CHILD = """
import asyncio, json, os
import discord
from discord.ext import commands

class Blocker(commands.Cog, name="AFK"):
    pass

async def main():
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.none())
    await bot._async_setup_hook()
    await bot.load_extension("botdata_cogs.snippets")  # opens the handle from the environment
    db = bot.botdata
    if os.environ["SCENARIO"] == "unload":
        await bot.load_extension("botdata_cogs")
        await bot.unload_extension("botdata_cogs")
    elif os.environ["SCENARIO"] == "failure":
        await bot.add_cog(Blocker())
        try:
            await bot.load_extension("botdata_cogs")
        except commands.ExtensionFailed:
            pass
        await bot.remove_cog("AFK")
    else:  # "purged": unloading the package purges botdata_cogs.* (its core too) from sys.modules
        await bot.load_extension("botdata_cogs")
        await bot.unload_extension("botdata_cogs")
        await bot.load_extension("botdata_cogs.levels")
        await bot.unload_extension("botdata_cogs.snippets")
    seen = {"cogs": sorted(bot.cogs), "extensions": sorted(bot.extensions), "open": not db.closed}
    if seen["open"]:
        await db.snippets.create(1 << 40, "usable", "yes", author_id=1 << 41)
    for name in list(bot.extensions):
        await bot.unload_extension(name)  # the last extension out closes the handle
    seen["closed_at_last"] = db.closed and not hasattr(bot, "botdata")
    print(json.dumps(seen))

asyncio.run(main())
"""


def run_child(db: botdata.Database, database_url: str, scenario: str) -> dict[str, Any]:
    """What :data:`CHILD` saw after ``scenario``, in a process whose extensions open the handle
    (no ``bot.botdata`` before the first load)."""
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL if db.dialect == "postgres" else "",
        "CACHE_PREFIX": db.settings.CACHE_PREFIX,
        "SCENARIO": scenario,
    }
    out = run_python(CHILD, env=env)
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


async def test_unloading_the_package_keeps_the_handle_a_cog_loaded_alone_uses(
    botdata_db: botdata.Database, botdata_database_url: str
) -> None:
    assert run_child(botdata_db, botdata_database_url, "unload") == {
        "cogs": ["Snippets"],
        "extensions": ["botdata_cogs.snippets"],
        "open": True,
        "closed_at_last": True,
    }


async def test_a_failed_package_load_keeps_the_handle_a_cog_loaded_alone_uses(
    botdata_db: botdata.Database, botdata_database_url: str
) -> None:
    assert run_child(botdata_db, botdata_database_url, "failure") == {
        "cogs": ["Snippets"],
        "extensions": ["botdata_cogs.snippets"],
        "open": True,
        "closed_at_last": True,
    }


async def test_a_cog_loaded_after_the_package_shares_the_handle_count(
    botdata_db: botdata.Database, botdata_database_url: str
) -> None:
    assert run_child(botdata_db, botdata_database_url, "purged") == {
        "cogs": ["Levels"],
        "extensions": ["botdata_cogs.levels"],
        "open": True,
        "closed_at_last": True,
    }


def test_every_cog_module_is_in_the_extension_list() -> None:
    """A module of the package with a ``setup`` is an extension: the package loads it."""
    with_setup = {
        f"botdata_cogs.{info.name}"
        for info in pkgutil.iter_modules(botdata_cogs.__path__)
        if hasattr(importlib.import_module(f"botdata_cogs.{info.name}"), "setup")
    }
    assert with_setup == set(EXTENSIONS)
