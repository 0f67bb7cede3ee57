"""db.guilds: ensure, remove, the cached configuration and the prefix (both backends)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import botdata
from botdata.errors import InvalidPrefixError, InvalidSnowflakeError, UnknownConfigFieldError
from botdata.models import (
    AccessType,
    CaseType,
    Guild,
    GuildConfig,
    GuildPermission,
    GuildSetting,
    PermissionType,
)
from botdata.schemas import GuildConfigSchema, GuildSchema
from tests.support import REDIS_URL, run_python

GUILD = 1 << 40
OTHER_GUILD = (1 << 40) + 1
CHANNEL = 1 << 41
ROLE = 1 << 42
USER = 1 << 43


async def config_rows() -> list[dict[str, Any]]:
    return await GuildConfig.all().order_by("guild_id").values()


# ensure / remove --------------------------------------------------------------------------------


async def test_ensure_creates_guild_and_default_config(botdata_db: botdata.Database) -> None:
    guild = await botdata_db.guilds.ensure(GUILD)
    assert isinstance(guild, GuildSchema)
    assert guild.id == GUILD
    assert (guild.case_count, guild.note_count) == (0, 0)
    assert guild.joined_at.tzinfo is not None
    assert await Guild.all().count() == 1
    row = await GuildConfig.get(guild_id=GUILD)
    assert row.prefix is None
    assert row.mod_log_id is None


async def test_ensure_is_idempotent(botdata_db: botdata.Database) -> None:
    first = await botdata_db.guilds.ensure(GUILD)
    await botdata_db.guilds.update_config(GUILD, prefix="!")
    second = await botdata_db.guilds.ensure(GUILD)
    assert second == first
    assert await Guild.all().count() == 1
    assert await GuildConfig.all().count() == 1
    assert (await GuildConfig.get(guild_id=GUILD)).prefix == "!"


async def test_concurrent_ensure_in_one_process(botdata_db: botdata.Database) -> None:
    results = await asyncio.gather(*(botdata_db.guilds.ensure(GUILD) for _ in range(20)))
    assert len({r.joined_at for r in results}) == 1
    assert await Guild.all().count() == 1
    assert await GuildConfig.all().count() == 1


@pytest.mark.parametrize("bad", [0, 5, -GUILD, 1 << 63, True, "123", 1.5, None])
async def test_ensure_rejects_bad_id(botdata_db: botdata.Database, bad: object) -> None:
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.guilds.ensure(bad)  # type: ignore[arg-type]
    assert await Guild.all().count() == 0


async def test_remove_cascades_and_invalidates(botdata_db: botdata.Database) -> None:
    await botdata_db.guilds.update_config(GUILD, prefix="!")
    await botdata_db.guilds.update_config(OTHER_GUILD, prefix="?")
    await botdata_db.guilds.set_setting(GUILD, "fun", "enabled", True)
    await botdata_db.permissions.add_rule(
        GUILD,
        access=AccessType.BLACKLIST,
        target_type=PermissionType.MEMBER,
        target_id=USER,
        command="ping",
    )
    # warm every cache of the guild
    assert await botdata_db.guilds.prefix(GUILD) == "!"
    assert await botdata_db.guilds.get_setting(GUILD, "fun", "enabled") is True
    assert len(await botdata_db.permissions.rules(GUILD)) == 1
    await botdata_db.cases.create(GUILD, USER, USER + 1, CaseType.WARN, "spam")
    assert len(await botdata_db.cases.for_user(GUILD, USER)) == 1

    assert await botdata_db.guilds.remove(GUILD) is True

    assert await Guild.filter(id=GUILD).count() == 0
    assert await GuildConfig.filter(guild_id=GUILD).count() == 0
    assert await GuildSetting.filter(guild_id=GUILD).count() == 0
    assert await GuildPermission.filter(guild_id=GUILD).count() == 0
    assert await botdata_db.guilds.prefix(GUILD) == botdata_db.settings.DEFAULT_PREFIX
    assert await botdata_db.guilds.get_setting(GUILD, "fun", "enabled") is None
    assert await botdata_db.permissions.rules(GUILD) == []
    assert await botdata_db.cases.for_user(GUILD, USER) == []  # cached by another manager: gone too
    # the other guild is untouched
    assert await botdata_db.guilds.prefix(OTHER_GUILD) == "?"
    assert await Guild.all().count() == 1


async def test_remove_unknown_guild(botdata_db: botdata.Database) -> None:
    assert await botdata_db.guilds.remove(GUILD) is False
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.guilds.remove(7)


# config -----------------------------------------------------------------------------------------


async def test_config_of_unknown_guild_is_default_and_writes_nothing(
    botdata_db: botdata.Database,
) -> None:
    config = await botdata_db.guilds.config(GUILD)
    assert config == GuildConfigSchema(guild_id=GUILD)
    assert await botdata_db.guilds.config(GUILD) == config  # cached, still nothing written
    assert await botdata_db.guilds.prefix(GUILD) == botdata_db.settings.DEFAULT_PREFIX
    assert await Guild.all().count() == 0
    assert await GuildConfig.all().count() == 0


async def test_config_rejects_bad_id(botdata_db: botdata.Database) -> None:
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.guilds.config(12)


async def test_update_config_sets_fields_and_creates_guild(botdata_db: botdata.Database) -> None:
    config = await botdata_db.guilds.update_config(
        GUILD, updated_by=USER, prefix="!!", mod_log_id=CHANNEL, jail_role_id=ROLE
    )
    assert (config.prefix, config.mod_log_id, config.jail_role_id) == ("!!", CHANNEL, ROLE)
    assert config.audit_log_id is None
    row = await GuildConfig.get(guild_id=GUILD)
    assert (row.prefix, row.mod_log_id, row.jail_role_id, row.updated_by) == (
        "!!",
        CHANNEL,
        ROLE,
        USER,
    )
    assert await Guild.filter(id=GUILD).count() == 1
    assert await botdata_db.guilds.config(GUILD) == config


async def test_update_config_none_clears_a_field(botdata_db: botdata.Database) -> None:
    await botdata_db.guilds.update_config(GUILD, prefix="!", mod_log_id=CHANNEL)
    config = await botdata_db.guilds.update_config(GUILD, prefix=None, mod_log_id=None)
    assert (config.prefix, config.mod_log_id) == (None, None)
    assert await botdata_db.guilds.prefix(GUILD) == botdata_db.settings.DEFAULT_PREFIX


async def test_update_config_invalidates_cached_config(botdata_db: botdata.Database) -> None:
    await botdata_db.guilds.ensure(GUILD)
    assert (await botdata_db.guilds.config(GUILD)).audit_log_id is None  # cached (hot) now
    key = botdata_db.cache.key("guild_config", guild_id=GUILD)
    assert botdata_db.cache.hot_get(key) is not None
    await botdata_db.guilds.update_config(GUILD, audit_log_id=CHANNEL)
    assert (await botdata_db.guilds.config(GUILD)).audit_log_id == CHANNEL
    await botdata_db.guilds.update_config(GUILD, audit_log_id=CHANNEL + 1)
    assert (await botdata_db.guilds.config(GUILD)).audit_log_id == CHANNEL + 1


async def test_config_of_unknown_guild_then_update(botdata_db: botdata.Database) -> None:
    assert (
        await botdata_db.guilds.prefix(GUILD) == botdata_db.settings.DEFAULT_PREFIX
    )  # default cached
    await botdata_db.guilds.update_config(GUILD, prefix=">")
    assert await botdata_db.guilds.prefix(GUILD) == ">"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"colour": 3}, UnknownConfigFieldError),
        ({"prefix": "!", "created_by": USER}, UnknownConfigFieldError),
        ({"created_at": None}, UnknownConfigFieldError),
        ({"prefix": ""}, InvalidPrefixError),
        ({"prefix": "x" * 11}, InvalidPrefixError),
        ({"prefix": "a b"}, InvalidPrefixError),
        ({"prefix": "!\n"}, InvalidPrefixError),
        ({"prefix": 1}, InvalidPrefixError),
        ({"mod_log_id": 12}, InvalidSnowflakeError),
        ({"mod_log_id": "123456789012345678"}, InvalidSnowflakeError),
        ({"jail_role_id": True}, InvalidSnowflakeError),
        ({"perm_level_3_role_id": 1 << 64}, InvalidSnowflakeError),
        ({"prefix": "!", "dev_log_id": -5}, InvalidSnowflakeError),
    ],
)
async def test_update_config_rejects_bad_input_and_writes_nothing(
    botdata_db: botdata.Database, fields: dict[str, Any], error: type[Exception]
) -> None:
    await botdata_db.guilds.update_config(GUILD, prefix="?", mod_log_id=CHANNEL)
    before = await config_rows()
    with pytest.raises(error):
        await botdata_db.guilds.update_config(GUILD, **fields)
    assert await config_rows() == before
    assert await botdata_db.guilds.prefix(GUILD) == "?"
    # nor is an unknown guild created
    with pytest.raises(error):
        await botdata_db.guilds.update_config(OTHER_GUILD, **fields)
    assert await Guild.filter(id=OTHER_GUILD).count() == 0


async def test_update_config_rejects_bad_updated_by_and_guild(botdata_db: botdata.Database) -> None:
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.guilds.update_config(GUILD, prefix="!", updated_by=3)
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.guilds.update_config(3, prefix="!")
    assert await Guild.all().count() == 0
    assert await GuildConfig.all().count() == 0


# prefix -----------------------------------------------------------------------------------------


async def test_prefix_default_custom_and_dm(botdata_db: botdata.Database) -> None:
    assert botdata_db.settings.DEFAULT_PREFIX == "$"
    assert await botdata_db.guilds.prefix(None) == "$"
    assert await botdata_db.guilds.prefix(GUILD) == "$"
    await botdata_db.guilds.update_config(GUILD, prefix="tux.")
    assert await botdata_db.guilds.prefix(GUILD) == "tux."
    assert await botdata_db.guilds.prefix(OTHER_GUILD) == "$"


async def test_prefix_warm_path_is_served_from_the_hot_layer(botdata_db: botdata.Database) -> None:
    await botdata_db.guilds.update_config(GUILD, prefix="!")
    assert await botdata_db.guilds.prefix(GUILD) == "!"
    assert (
        botdata_db.cache.hot_get(botdata_db.cache.key("guild_config", guild_id=GUILD)) is not None
    )
    # A change behind the manager's back (no invalidation) is not seen: the value is cached.
    await GuildConfig.filter(guild_id=GUILD).update(prefix="?")
    assert await botdata_db.guilds.prefix(GUILD) == "!"


@pytest.mark.parametrize("botdata_backend", ["postgres"], indirect=True, scope="session")
async def test_prefix_change_in_another_process_reaches_this_one(
    botdata_db: botdata.Database,
) -> None:
    """Needs the shared (Redis) cache: the in-process backend shares nothing by design."""
    await botdata_db.guilds.update_config(GUILD, prefix="!")
    assert await botdata_db.guilds.prefix(GUILD) == "!"
    assert (
        botdata_db.cache.hot_get(botdata_db.cache.key("guild_config", guild_id=GUILD)) is not None
    )
    code = f"""
        import asyncio
        import botdata

        async def main():
            db = await botdata.connect(
                database_url={botdata_db.settings.DATABASE_URL!r},
                redis_url={REDIS_URL!r},
                CACHE_PREFIX={botdata_db.settings.CACHE_PREFIX!r},
            )
            try:
                await db.guilds.update_config({GUILD}, prefix="?")
            finally:
                await db.close()

        asyncio.run(main())
    """
    await asyncio.to_thread(run_python, code)
    deadline = time.monotonic() + 1.0
    seen = await botdata_db.guilds.prefix(GUILD)
    while seen != "?" and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        seen = await botdata_db.guilds.prefix(GUILD)
    assert seen == "?"
