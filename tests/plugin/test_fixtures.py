"""The plugin's fixtures do what they say: a real Redis outage, the cog marker, the factories."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest
import redis.asyncio
from discord.ext import commands

import botdata
from botdata.testing import services
from botdata.testing.factories import cases, guild_with_config, levelled_member
from tests.support import run_python


async def test_redis_outage_cuts_the_handle_off_redis_and_only_it(
    botdata_db: botdata.Database,
    redis_outage: Callable[[], AbstractAsyncContextManager[None]],
) -> None:
    cache = botdata_db.cache
    key = cache.key("outage-probe")
    await cache.set_json(key, {"kept": True}, ttl=60)
    assert await cache.get_json(key) == {"kept": True}
    client = redis.asyncio.Redis.from_url(services.redis_url())
    try:
        async with redis_outage():
            assert await cache.get_json(key) is None  # unreachable: a miss
            assert await client.get(key) == b'{"kept":true}'  # Redis itself is up
        assert await cache.get_json(key) == {"kept": True}  # reachable again on leaving
    finally:
        await client.aclose()


@pytest.mark.botdata_cogs("afk", "levels")
async def test_the_marker_loads_only_the_cogs_it_names(botdata_bot: commands.Bot) -> None:
    assert sorted(botdata_bot.extensions) == ["botdata_cogs.afk", "botdata_cogs.levels"]


async def test_without_the_marker_every_cog_is_loaded(botdata_bot: commands.Bot) -> None:
    assert "botdata_cogs" in botdata_bot.extensions
    assert "botdata_cogs.moderation" in botdata_bot.extensions


async def test_the_factories_write_through_the_managers(botdata_db: botdata.Database) -> None:
    config = await guild_with_config(botdata_db, prefix="?")
    assert await botdata_db.guilds.prefix(config.guild_id) == "?"
    made = await cases(botdata_db, config.guild_id, 3)
    assert [case.number for case in made] == [1, 2, 3]
    assert len({(case.user_id, case.moderator_id) for case in made}) == 1
    member = await levelled_member(botdata_db, config.guild_id, 4)
    assert member.level == 4
    assert (await botdata_db.levels.get(config.guild_id, member.member_id)) == member


@pytest.mark.parametrize(
    ("missing", "loads"), [(None, ["botdata_cogs.testing"]), ("dpytest", []), ("discord.py", [])]
)
def test_the_bot_side_is_loaded_only_when_its_dependencies_are_installed(
    missing: str | None, loads: list[str]
) -> None:
    """A project with plain botdata (no discord.py or dpytest) gets the database fixtures only:
    pytest would fail importing the bot side."""
    code = f"""
        import importlib.metadata
        real = importlib.metadata.distribution
        def distribution(name):
            if name == {missing!r}:
                raise importlib.metadata.PackageNotFoundError(name)
            return real(name)
        importlib.metadata.distribution = distribution
        import botdata.testing.plugin as plugin
        print(plugin.pytest_plugins)
    """
    assert run_python(code).strip() == repr(loads)
